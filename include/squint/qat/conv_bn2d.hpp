// SPDX-License-Identifier: Apache-2.0
// qat/conv_bn2d.hpp: a convolution and the BatchNorm after it, trained together with fake
// quantization as PyTorch's QAT ConvBn2d trains them (Krishnamoorthi 2018, section 3.2).
//
// Until its statistics are frozen (freeze_statistics(), PyTorch's freeze_bn_stats), a training
// forward fake-quantizes the weights folded with the running statistics, s = gamma / sqrt(running
// var + eps), W_fold = W * s per output channel, convolves, undoes the scale (y / s + bias) and
// normalizes that with the batch's statistics, updating the running ones: the batch statistics
// train the model while the quantized weights follow the statistics the deployed model will
// fold. Once frozen, and in evaluation, the forward is the folded convolution itself
// (W_fold, beta + (bias - running mean) * s, the BatchNorm's activation) — the deployed layer's,
// so convert() is bit for bit. The backward is the forward's derivative with s a function of
// gamma (the running statistics are constants), through the straight-through estimators.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <optional>
#include <vector>

#include "squint/qat/batch_norm.hpp"
#include "squint/qat/conv2d.hpp"

SQUINT_NAMESPACE_BEGIN
namespace qat {

class conv_bn2d {
 public:
  /// The convolution f (no activation: the BatchNorm's follows) and its BatchNorm's state.
  /// @throws squint::error as qat::conv2d and qat::batch_norm, on an activation before the
  ///         BatchNorm, or a BatchNorm of another channel count.
  conv_bn2d(const float_conv& f, batch_norm_state bn, const std::optional<weight_quant>& weights,
            const std::optional<activation_quant>& input, const nn::backend& kernels = nn::native_backend())
      : conv_(working(f), weights, input, kernels), bn_(std::move(bn)) {
    squint::detail::require(f.act == nn::activation::none,
                            "qat::conv_bn2d: the convolution has an activation before its BatchNorm");
    squint::detail::require(bn_.channels() == f.filter.out_channels, "qat::conv_bn2d: the BatchNorm has ",
                            bn_.channels(), " channels, the convolution ", f.filter.out_channels, " outputs");
    w_ = conv_.w_;
    b_ = f.bias.empty() ? std::vector<float>(f.filter.out_channels, 0.0f) : f.bias;
    dw_.assign(w_.size(), 0.0f);
    db_.assign(b_.size(), 0.0f);
    dgamma_.assign(b_.size(), 0.0f);
    dbeta_.assign(b_.size(), 0.0f);
  }

  image_shape output_shape(const image_shape& in) const { return conv_.output_shape(in); }
  const batch_norm_state& batch_norm_statistics() const { return bn_.state(); }
  /// Whether the statistics are frozen: the forward is the folded convolution from then on.
  bool frozen() const { return frozen_; }
  void freeze_statistics() { frozen_ = true; }
  void freeze_observer() { conv_.freeze_observer(); }
  std::optional<qparams> input_qparams() const { return conv_.input_qparams(); }

  /// y (NHWC) = the layer on x (see the top of this header): batch statistics when `training`
  /// and not frozen (updating the running ones), else the folded convolution. x and y must stay
  /// valid until backward().
  /// @throws squint::error as qat::conv2d::forward.
  void forward(const float* x, const image_shape& in, float* y, bool training) {
    statistics_ = training && !frozen_;
    fold_into(conv_, !statistics_, s_, rstd_);
    if (!statistics_) {
      conv_.forward(x, in, y);
      return;
    }
    const image_shape out = conv_.output_shape(in);
    const std::size_t oc = b_.size();
    conv_out_.resize(out.size());
    conv_.forward(x, in, conv_out_.data());
    unscaled_.resize(out.size());
    for (std::size_t e = 0; e < out.size(); ++e) unscaled_[e] = conv_out_[e] / s_[e % oc] + b_[e % oc];
    bn_.forward(unscaled_.data(), out, y, true);
  }

  /// Given dy for the last forward(): every parameter's gradient, and dx (may be null).
  /// @throws squint::error on null dy with elements.
  void backward(const float* dy, float* dx) {
    const std::size_t oc = b_.size(), depth = w_.size() / oc;
    std::vector<double> ds(oc, 0.0);  // d loss / d s: gamma's path through the folding
    if (statistics_) {
      dunscaled_.resize(unscaled_.size());
      bn_.backward(dy, dunscaled_.data());
      const std::vector<parameter> bn = bn_.parameters();
      std::copy(bn[0].grad, bn[0].grad + oc, dgamma_.begin());
      std::copy(bn[1].grad, bn[1].grad + oc, dbeta_.begin());
      // conv / s + bias: the convolution's gradient is s times smaller. s's own term there,
      // -sum d * conv / s^2 = -sum d * (unscaled - bias) / s, is 0: a BatchNorm on batch
      // statistics is invariant to its input's shift and scale, so its input gradient d sums to
      // 0 and is orthogonal to the input.
      dconv_.resize(unscaled_.size());
      std::vector<double> db(oc, 0.0);
      for (std::size_t e = 0; e < dconv_.size(); ++e) {
        dconv_[e] = dunscaled_[e] / s_[e % oc];
        db[e % oc] += dunscaled_[e];
      }
      for (std::size_t c = 0; c < oc; ++c) db_[c] = static_cast<float>(db[c]);
      conv_.backward(dconv_.data(), dx);
    } else {
      // The folded bias beta + (bias - running mean) * s.
      conv_.backward(dy, dx);
      const batch_norm_state& st = bn_.state();
      for (std::size_t c = 0; c < oc; ++c) {
        const float dbias = conv_.db_[c];
        dbeta_[c] = dbias;
        db_[c] = dbias * s_[c];
        dgamma_[c] = 0.0f;
        ds[c] += static_cast<double>(dbias) * (static_cast<double>(b_[c]) - st.running_mean[c]);
      }
    }
    // The folded weights W * s (their gradient after the straight-through estimator).
    for (std::size_t c = 0; c < oc; ++c) {
      for (std::size_t i = 0; i < depth; ++i) {
        const float dfold = conv_.dw_[c * depth + i];
        dw_[c * depth + i] = dfold * s_[c];
        ds[c] += static_cast<double>(dfold) * w_[c * depth + i];
      }
      // s = gamma * rstd, rstd = 1 / sqrt(running var + eps) as the forward folded it (before
      // its running update): a constant.
      dgamma_[c] += static_cast<float>(ds[c] * rstd_[c]);
    }
  }

  /// W, the bias, gamma, beta, and the quantizers' learned qparams, with their last gradients.
  std::vector<parameter> parameters() {
    const std::vector<parameter> bn = bn_.parameters();
    std::vector<parameter> p{{w_.data(), dw_.data(), w_.size(), true},
                             {b_.data(), db_.data(), b_.size(), false},
                             {bn[0].value, dgamma_.data(), bn[0].size, false},
                             {bn[1].value, dbeta_.data(), bn[1].size, false}};
    const std::vector<parameter> conv = conv_.parameters();
    p.insert(p.end(), conv.begin() + 2, conv.end());  // its learned qparams, after its W and bias
    return p;
  }

  /// The convolution as given (master weights, OHWI, and bias; no activation).
  float_conv float_layer() const {
    return {w_, b_, conv_.filter(), filter_layout::ohwi, conv_.params(), nn::activation::none};
  }

  /// The folded convolution with the running statistics as they are: what convert() and
  /// qat::graph::build deploy.
  conv2d folded() const {
    conv2d c = conv_;
    std::vector<float> s, rstd;
    fold_into(c, true, s, rstd);
    return c;
  }
  nn::conv2d convert(const nn::backend& kernels) const { return folded().convert(kernels); }

 private:
  /// f without its bias and activation (conv_bn2d adds them), checked by qat::conv2d.
  static float_conv working(const float_conv& f) {
    float_conv w = f;
    w.bias.assign(f.filter.out_channels, 0.0f);
    w.act = nn::activation::none;
    return w;
  }

  /// Sets c's weights to W * s, s = gamma * rstd, rstd = 1 / sqrt(running var + eps) per
  /// channel, and, when `folded`, its bias and activation to the folded BatchNorm's; else no
  /// bias or activation.
  void fold_into(conv2d& c, bool folded, std::vector<float>& s, std::vector<float>& rstd) const {
    const batch_norm_state& st = bn_.state();
    const std::size_t oc = b_.size(), depth = w_.size() / oc;
    s.resize(oc);
    rstd.resize(oc);
    for (std::size_t j = 0; j < oc; ++j) {
      rstd[j] = 1.0f / std::sqrt(st.running_var[j] + st.eps);
      s[j] = st.gamma[j] / std::sqrt(st.running_var[j] + st.eps);
      for (std::size_t i = 0; i < depth; ++i) c.w_[j * depth + i] = w_[j * depth + i] * s[j];
      c.b_[j] = folded ? st.beta[j] + (b_[j] - st.running_mean[j]) * s[j] : 0.0f;
    }
    c.act_ = folded ? st.act : nn::activation::none;
  }

  conv2d conv_;  // the working convolution: folded weights, the quantizers, the last forward
  batch_norm bn_;
  std::vector<float> w_, b_, dw_, db_, dgamma_, dbeta_;  // the unfolded master weights and bias
  bool frozen_ = false, statistics_ = false;
  // The last forward's s and rstd (before its running update), convolution output and its
  // unscaled form; backward's buffers.
  std::vector<float> s_, rstd_, conv_out_, unscaled_, dunscaled_, dconv_;
};

}  // namespace qat
SQUINT_NAMESPACE_END

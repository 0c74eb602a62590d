// SPDX-License-Identifier: Apache-2.0
// qat/conv2d.hpp: the training form of nn::conv2d — float master weights (OHWI), fake-quantized
// weights and input, forward and backward.
//
// As qat::linear: with weights and input fake-quantized the forward is the deployed layer's own
// (nn::conv2d::from_int8 on the weights' codes and the input's qparams: uint8 codes, the zero
// point as padding, the exact integer GEMM, the float output stage), so convert() gives a layer
// whose outputs are the QAT forward's bit for bit. With weights quantized per group it is the
// int4 convolution they convert to: int4_dynamic with per-row input codes (each window's row of
// the im2col matrix quantized on its own, as the W4A8 kernel does), int4_weight_only without.
// Otherwise the forward is nn::conv2d in FP32 on the effective weights. The backward is FP32 on
// im2col rows of the effective input (padding is a real 0, which the zero point's code also
// stands for): per group dW = dZ^T . cols and dcols = dZ . W, summed back onto the pixels
// (col2im), each through its quantizer's straight-through estimator.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "squint/conv/im2col.hpp"
#include "squint/conv/pack.hpp"
#include "squint/nn/conv2d.hpp"
#include "squint/qat/layer_state.hpp"
#include "squint/qat/quantizers.hpp"
#include "squint/reference/quantize.hpp"

SQUINT_NAMESPACE_BEGIN
namespace qat {

/// A convolution's float description: weights (`layout`), bias (empty or out_channels), and the
/// activation after it.
struct float_conv {
  std::vector<float> weights;
  std::vector<float> bias;
  filter_shape filter;
  filter_layout layout = filter_layout::ohwi;
  conv2d_params params = {};
  nn::activation act = nn::activation::none;
};

class graph;
class conv_bn2d;

class conv2d : public detail::layer_state {
 public:
  /// Starts from the float convolution f (its weights become the master copy training updates).
  /// Without `weights` and `input` the layer trains in FP32; `input` needs `weights`.
  /// @throws squint::error on bad filter sizes or parameters, weights or bias of the wrong size,
  ///         input quantization without weight quantization, per-row input codes without grouped
  ///         weights or the other way round, a depth above gemm_max_k for the int8 convolution,
  ///         or invalid quantizer options.
  conv2d(const float_conv& f, const std::optional<weight_quant>& weights, const std::optional<activation_quant>& input,
         const nn::backend& kernels = nn::native_backend())
      : layer_state(ohwi_of(f, weights, input), f.bias, f.filter.out_channels,
                    f.filter.taps() * f.filter.group_channels, weights, input, kernels),
        filter_(f.filter),
        params_(f.params),
        act_(f.act) {}

  const filter_shape& filter() const { return filter_; }
  const conv2d_params& params() const { return params_; }
  nn::activation act() const { return act_; }
  /// The output shape for inputs of shape `in`. @throws squint::error as squint::resolve.
  image_shape output_shape(const image_shape& in) const { return resolve("qat::conv2d", in, filter_, params_).out; }

  /// y (NHWC, output_shape(in)) = act(conv(fq(x), fq(W)) + b), showing x to the input observer.
  /// x and y must stay valid until backward().
  /// @throws squint::error on a shape that does not fit or null pointers with elements.
  void forward(const float* x, const image_shape& in, float* y) {
    g_ = resolve("qat::conv2d::forward", in, filter_, params_);
    squint::detail::require_matrix("qat::conv2d::forward", "x", x, g_.in.pixels(), g_.in.channels);
    squint::detail::require_matrix("qat::conv2d::forward", "y", y, g_.out.pixels(), g_.out.channels);
    x_ = x;
    y_ = y;
    if (weights_) weights_->quantize(w_.data(), kernels_);
    if (weights_ && weights_->options().group) {
      a_.assign(x, x + in.size());  // per-row codes are the windows' (backward quantizes the rows)
      int4_layer(weights_->codes(), weights_->scales(), kernels_).forward(x, in, y);
      return;
    }
    if (input_) {
      const qparams p = input_->observe(x, in.size());
      seen_ = true;
      // The deployed layer's own activation policy makes the codes, so they are its codes.
      std::vector<std::uint8_t> codes(in.size());
      nn::input_quantizer::frozen_at(p, input_->options().reduce_range).quantize(x, codes.size(), codes.data(),
                                                                                  kernels_);
      a_.resize(codes.size());
      for (std::size_t i = 0; i < codes.size(); ++i) a_[i] = reference::dequantize_value(codes[i], p);
      deployed(weights_->codes(), weights_->scales(), p).forward(x, in, y);
      return;
    }
    a_.assign(x, x + in.size());
    fp32_layer(weights_ ? weights_->values() : w_, kernels_).forward(x, in, y);
  }

  /// Given dy (NHWC, the last forward's output shape): the parameters' gradients, and dx (its
  /// input's shape), the input's gradient, unless dx is null (the first layer).
  /// @throws squint::error on null dy with elements.
  void backward(const float* dy, float* dx) {
    const std::size_t rows = g_.out.pixels(), oc = filter_.out_channels, ocg = g_.group_out_channels();
    const std::size_t depth = g_.depth(), c = g_.in.channels;
    squint::detail::require(dy != nullptr || rows * oc == 0, "qat::conv2d::backward: argument 'dy' is null");
    std::fill(dw_.begin(), dw_.end(), 0.0f);
    std::fill(db_.begin(), db_.end(), 0.0f);
    const bool relu = act_ == nn::activation::relu;
    dz_.resize(rows * oc);
    for (std::size_t e = 0; e < rows * oc; ++e) dz_[e] = relu && !(y_[e] > 0.0f) ? 0.0f : dy[e];
    for (std::size_t i = 0; i < rows && !db_.empty(); ++i)
      for (std::size_t j = 0; j < oc; ++j) db_[j] += dz_[i * oc + j];
    const bool learns_input = input_ && input_->learns();
    const bool wants_dx = dx != nullptr || learns_input;
    const std::vector<float>& w = weights_ ? weights_->values() : w_;
    da_.assign(wants_dx ? g_.in.size() : 0, 0.0f);
    const std::vector<float> pad(c, 0.0f);
    std::vector<const float*> taps(filter_.taps());
    for (std::size_t k = 0; k < g_.groups() && rows > 0; ++k) {
      cols_.resize(rows * depth);
      squint::detail::im2col(a_.data(), g_, k, pad.data(), 0, rows, taps.data(), cols_.data());
      if (input_ && input_->per_row()) {
        activation_quantizer::quantize_rows(cols_.data(), rows, depth, rows_, kernels_);
        cols_.swap(rows_);
      }
      dzt_.resize(ocg * rows);
      for (std::size_t i = 0; i < rows; ++i)
        for (std::size_t j = 0; j < ocg; ++j) dzt_[j * rows + i] = dz_[i * oc + k * ocg + j];
      gemm_float(dzt_.data(), ocg, rows, packed_float_weights::from_float_transposed(cols_.data(), rows, depth, depth),
                 nullptr, false, dw_.data() + k * ocg * depth, depth, {}, kernels_.gemm_float);
      if (!wants_dx) continue;
      // dcols (rows x depth) = dZ_k . W_k, then each window row's gradients onto its pixels.
      gemm_float(dz_.data() + k * ocg, rows, oc,
                 packed_float_weights::from_float_transposed(w.data() + k * ocg * depth, ocg, depth, depth), nullptr,
                 false, cols_.data(), depth, {}, kernels_.gemm_float);
      col2im_add(k, cols_.data());
    }
    if (weights_) weights_->backward(w_.data(), dw_.data(), dw_.data(), kernels_.fake_quant);
    if (!wants_dx) return;
    if (input_) input_->backward(x_, da_.data(), dx, g_.in.size(), kernels_.fake_quant);
    else std::copy(da_.begin(), da_.end(), dx);
  }

  /// The deployed layer: int8_static from the weights' codes and the input's qparams,
  /// int4_dynamic or int4_weight_only from grouped weights' codes (with or without per-row input
  /// codes), FP32 on the fake-quantized values (weights only), or FP32.
  /// @throws squint::error for a quantized input that has seen no data.
  nn::conv2d convert(const nn::backend& kernels) const {
    if (!weights_) return fp32_layer(w_, kernels);
    std::vector<std::int8_t> codes;
    std::vector<float> scales, values;
    weights_->compute(w_.data(), kernels_, codes, scales, values);
    if (weights_->options().group) return int4_layer(codes, scales, kernels);
    if (!input_) return fp32_layer(values, kernels);
    squint::detail::require(seen_, "qat::conv2d::convert: the input quantizer has seen no data; train first");
    return deployed(codes, scales, input_->current(), kernels);
  }

  /// The float master weights (OHWI) as a float_conv.
  float_conv float_layer() const { return {w_, b_, filter_, filter_layout::ohwi, params_, act_}; }

 private:
  friend class graph;      // cross-layer equalization scales the master weights in place
  friend class conv_bn2d;  // folds its BatchNorm into the working weights, bias and activation

  /// f's weights in OHWI once its filter, parameters, sizes and options are checked.
  static std::vector<float> ohwi_of(const float_conv& f, const std::optional<weight_quant>& weights,
                                    const std::optional<activation_quant>& input) {
    squint::detail::check_filter("qat::conv2d", f.filter, f.params);
    const std::size_t depth = f.filter.taps() * f.filter.group_channels;
    squint::detail::require(f.weights.size() == f.filter.out_channels * depth, "qat::conv2d: ", f.weights.size(),
                            " weights for a filter of ", f.filter.out_channels, " x ", depth);
    squint::detail::require(f.bias.empty() || f.bias.size() == f.filter.out_channels, "qat::conv2d: ", f.bias.size(),
                            " biases for ", f.filter.out_channels, " output channels");
    squint::detail::require(!input || weights, "qat::conv2d: fake-quantized input needs fake-quantized weights "
                            "(the deployed integer layer quantizes both)");
    const bool grouped = weights && weights->group > 0;
    squint::detail::require(!input || input->per_row == grouped, "qat::conv2d: ",
                            grouped ? "weights quantized per group take per-row input codes (int4_dynamic) or none"
                                    : "per-row input codes need weights quantized per group (int4_dynamic)");
    squint::detail::require(!input || grouped || depth <= gemm_max_k, "qat::conv2d: depth ", depth,
                            " exceeds gemm_max_k = ", gemm_max_k, " for an int8 GEMM");
    return squint::detail::to_ohwi(f.weights.data(), f.filter, f.layout);
  }

  nn::conv2d fp32_layer(const std::vector<float>& w, const nn::backend& kernels) const {
    nn::conv2d_options o;
    o.mode = nn::precision::fp32;
    o.act = act_;
    o.kernels = kernels;
    return nn::conv2d(w.data(), filter_, filter_layout::ohwi, params_, b_.empty() ? nullptr : b_.data(), o);
  }
  /// The int4 convolution of grouped codes and scales: W4A8 with per-row input codes, else weight-only.
  nn::conv2d int4_layer(const std::vector<std::int8_t>& codes, const std::vector<float>& scales,
                        const nn::backend& kernels) const {
    nn::conv2d_options o;
    o.mode = input_ ? nn::precision::int4_dynamic : nn::precision::int4_weight_only;
    o.act = act_;
    o.kernels = kernels;
    return nn::conv2d::from_int4(codes.data(), filter_, filter_layout::ohwi, params_, weights_->options().group,
                                 scales, b_.empty() ? nullptr : b_.data(), o);
  }
  nn::conv2d deployed(const std::vector<std::int8_t>& codes, const std::vector<float>& scales, qparams p) const {
    return deployed(codes, scales, p, kernels_);
  }
  nn::conv2d deployed(const std::vector<std::int8_t>& codes, const std::vector<float>& scales, qparams p,
                      const nn::backend& kernels) const {
    nn::conv2d_options o;
    o.act = act_;
    o.kernels = kernels;
    o.reduce_range = input_->options().reduce_range;
    return nn::conv2d::from_int8(codes.data(), filter_, filter_layout::ohwi, params_, scales,
                                 b_.empty() ? nullptr : b_.data(), p, o);
  }

  /// da += the window rows' gradients dcols (rows x depth, group k) on the pixels they read.
  void col2im_add(std::size_t k, const float* dcols) {
    const std::size_t rows = g_.out.pixels(), cg = filter_.group_channels, count = filter_.taps();
    const std::vector<float> pad(g_.in.channels, 0.0f);
    std::vector<const float*> taps(count);
    // Walking the input's windows gives each tap's pixel as an offset into the image batch.
    squint::detail::window_walker<float> walk(a_.data(), g_, pad.data(), 0, taps.data());
    for (std::size_t r = 0; r < rows; ++r, dcols += count * cg) {
      if (r > 0) walk.next();
      for (std::size_t t = 0; t < count; ++t) {
        if (taps[t] == pad.data()) continue;
        float* to = da_.data() + (taps[t] - a_.data()) + k * cg;
        for (std::size_t j = 0; j < cg; ++j) to[j] += dcols[t * cg + j];
      }
    }
  }

  filter_shape filter_;
  conv2d_params params_;
  nn::activation act_;
  // The last forward's geometry, input, output and effective input (fq(x) or x); backward's buffers.
  conv2d_geometry g_;
  const float* x_ = nullptr;
  const float* y_ = nullptr;
  std::vector<float> a_, dz_, dzt_, cols_, rows_, da_;
};

}  // namespace qat
SQUINT_NAMESPACE_END

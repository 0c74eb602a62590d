// SPDX-License-Identifier: Apache-2.0
// qat/linear.hpp: the training form of nn::linear — float master weights, fake-quantized weights
// and input, forward and backward.
//
// With both weights and input fake-quantized, the forward is the deployed layer's own: the
// input's uint8 codes times the weights' int8 codes on squint's exact integer GEMM, then the
// float output stage (scale, bias, ReLU). That is the fake-quantized product fq(x) . fq(W)^T,
// summed exactly and rounded once, so convert() gives an nn::linear whose outputs are the QAT
// forward's bit for bit, and the forward runs at INT8 speed. Weights quantized per group run on
// the int4 form they convert to: int4_dynamic (W4A8) with per-row input codes, int4_weight_only
// without. Otherwise (FP32 training, or weights alone fake-quantized per channel or tensor) the
// forward is squint's FP32 GEMM on the effective weights. The backward is FP32:
// dW = dZ^T . fq(x), dx = dZ . fq(W), each through its quantizer's straight-through estimator,
// plus the LSQ gradients of learned qparams.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "squint/nn/input_quantizer.hpp"
#include "squint/nn/linear.hpp"
#include "squint/nn/sequential.hpp"
#include "squint/nn/weights/int8_weights.hpp"
#include "squint/qat/layer_state.hpp"
#include "squint/qat/quantizers.hpp"

SQUINT_NAMESPACE_BEGIN
namespace qat {

class graph;

class linear : public detail::layer_state {
 public:
  /// Starts from the float layer f (its weights are the master copy training updates). Without
  /// `weights` and `input` the layer trains in FP32; `input` needs `weights`.
  /// @throws squint::error on inconsistent shapes, invalid quantizer options, or input
  ///         quantization without weight quantization.
  linear(const nn::float_layer& f, const std::optional<weight_quant>& weights,
         const std::optional<activation_quant>& input, const nn::backend& kernels = nn::native_backend())
      : layer_state(checked(f, weights, input).weights, f.bias, f.out, f.in, weights, input, kernels),
        out_(f.out),
        in_(f.in),
        act_(f.act) {}

  std::size_t in_features() const { return in_; }
  std::size_t out_features() const { return out_; }
  nn::activation act() const { return act_; }
  /// The uint8 codes of the last forward's input (m x in; empty without input quantization).
  const std::vector<std::uint8_t>& input_codes() const { return codes_; }

  /// y (m x out) = act(fq(x) . fq(W)^T + b), showing x to the input observer. x and y must stay
  /// valid until backward().
  /// @throws squint::error on null pointers with rows.
  void forward(const float* x, std::size_t m, float* y) {
    squint::detail::require(x != nullptr || m == 0, "qat::linear::forward: argument 'x' is null with ", m, " rows");
    squint::detail::require(y != nullptr || m == 0, "qat::linear::forward: argument 'y' is null with ", m, " rows");
    x_ = x;
    y_ = y;
    m_ = m;
    if (m == 0) return;
    const float* bias = b_.empty() ? nullptr : b_.data();
    const bool relu = act_ == nn::activation::relu;
    if (weights_) weights_->quantize(w_.data(), kernels_);
    if (weights_ && weights_->options().group) {
      int4_layer(weights_->codes(), weights_->scales(), kernels_).forward(x, m, y);
      if (input_) activation_quantizer::quantize_rows(x, m, in_, a_, kernels_);
      else a_.assign(x, x + m * in_);
      return;
    }
    if (input_) {
      const qparams p = input_->observe(x, m * in_);
      seen_ = true;
      codes_.resize(m * in_);
      // The deployed layer's own activation policy makes the codes, so they are its codes.
      nn::input_quantizer::frozen_at(p, input_->options().reduce_range).quantize(x, m * in_, codes_.data(), kernels_);
      a_.resize(m * in_);
      for (std::size_t i = 0; i < m * in_; ++i) a_[i] = reference::dequantize_value(codes_[i], p);
      const nn::int8_weights form(packed_weights::from_int8(weights_->codes().data(), out_, in_, in_,
                                                            weights_->scales(), {0}),
                                  kernels_);
      form.run_quantized({codes_.data(), &p, false}, m, {bias, relu}, y, {});
      return;
    }
    a_.assign(x, x + m * in_);
    const std::vector<float>& w = weights_ ? weights_->values() : w_;
    gemm_float(a_.data(), m, in_, packed_float_weights::from_float(w.data(), out_, in_, in_), bias, relu, y, out_, {},
               kernels_.gemm_float);
  }

  /// Given dy (m x out) for the last forward(): the parameters' gradients, and dx (m x in), the
  /// input's gradient, unless dx is null (the first layer).
  void backward(const float* dy, float* dx) {
    squint::detail::require(dy != nullptr || m_ == 0, "qat::linear::backward: argument 'dy' is null");
    const std::size_t m = m_;
    std::fill(dw_.begin(), dw_.end(), 0.0f);
    std::fill(db_.begin(), db_.end(), 0.0f);
    if (m == 0) return;
    // dZ, transposed (out x m) for dW = dZ^T . A.
    dz_.resize(m * out_);
    dzt_.resize(out_ * m);
    const bool relu = act_ == nn::activation::relu;
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = 0; j < out_; ++j) {
        const float g = relu && !(y_[i * out_ + j] > 0.0f) ? 0.0f : dy[i * out_ + j];
        dz_[i * out_ + j] = g;
        dzt_[j * m + i] = g;
        if (!db_.empty()) db_[j] += g;
      }
    gemm_float(dzt_.data(), out_, m, packed_float_weights::from_float_transposed(a_.data(), m, in_, in_), nullptr,
               false, dw_.data(), in_, {}, kernels_.gemm_float);
    if (weights_) weights_->backward(w_.data(), dw_.data(), dw_.data(), kernels_.fake_quant);
    const bool learns_input = input_ && input_->learns();
    if (dx == nullptr && !learns_input) return;
    const std::vector<float>& w = weights_ ? weights_->values() : w_;
    // Without an input quantizer dx is the product itself; with one, its straight-through pass follows.
    da_.resize(input_ ? m * in_ : 0);
    float* da = input_ ? da_.data() : dx;
    gemm_float(dz_.data(), m, out_, packed_float_weights::from_float_transposed(w.data(), out_, in_, in_), nullptr,
               false, da, in_, {}, kernels_.gemm_float);
    if (input_) input_->backward(x_, da, dx, m * in_, kernels_.fake_quant);
  }

  /// The deployed layer: int8_static from the weights' codes and the input's qparams (both
  /// fake-quantized), int4_dynamic or int4_weight_only from grouped weights' codes (with or
  /// without per-row input codes), FP32 on the fake-quantized values (weights only), or FP32.
  /// @throws squint::error for a quantized input that has seen no data.
  nn::linear convert(const nn::backend& kernels) const {
    const float* bias = b_.empty() ? nullptr : b_.data();
    nn::linear_options o;
    o.act = act_;
    o.kernels = kernels;
    if (!weights_) {
      o.mode = nn::precision::fp32;
      return nn::linear(w_.data(), out_, in_, in_, bias, o);
    }
    std::vector<std::int8_t> codes;
    std::vector<float> scales, values;
    weights_->compute(w_.data(), kernels_, codes, scales, values);
    if (weights_->options().group) return int4_layer(codes, scales, kernels);
    if (!input_) {
      o.mode = nn::precision::fp32;
      return nn::linear(values.data(), out_, in_, in_, bias, o);
    }
    squint::detail::require(seen_, "qat::linear::convert: the input quantizer has seen no data; train first");
    o.reduce_range = input_->options().reduce_range;
    return nn::linear::from_int8(codes.data(), out_, in_, in_, scales, bias, input_->current(), o);
  }

  /// The float master weights as an nn::float_layer.
  nn::float_layer float_layer() const { return {w_, b_, out_, in_, act_}; }

 private:
  friend class graph;  // cross-layer equalization scales the master weights in place

  static const nn::float_layer& checked(const nn::float_layer& f, const std::optional<weight_quant>& weights,
                                        const std::optional<activation_quant>& input) {
    squint::detail::require(f.out > 0 && f.in > 0, "qat::linear: out (", f.out, ") and in (", f.in,
                            ") must be positive");
    squint::detail::require(f.weights.size() == f.out * f.in, "qat::linear: ", f.weights.size(), " weights for ", f.out,
                            " x ", f.in);
    squint::detail::require(f.bias.empty() || f.bias.size() == f.out, "qat::linear: ", f.bias.size(), " biases for ",
                            f.out, " outputs");
    squint::detail::require(!input || weights, "qat::linear: fake-quantized input needs fake-quantized weights "
                            "(the deployed integer layer quantizes both)");
    const bool grouped = weights && weights->group > 0;
    squint::detail::require(!input || input->per_row == grouped, "qat::linear: ",
                            grouped ? "weights quantized per group take per-row input codes (int4_dynamic) or none"
                                    : "per-row input codes need weights quantized per group (int4_dynamic)");
    squint::detail::require(!input || grouped || f.in <= gemm_max_k, "qat::linear: in = ", f.in,
                            " exceeds gemm_max_k = ", gemm_max_k, " for an int8 GEMM");
    return f;
  }

  /// The int4 layer of grouped codes and scales: W4A8 with per-row input codes, else weight-only.
  nn::linear int4_layer(const std::vector<std::int8_t>& codes, const std::vector<float>& scales,
                        const nn::backend& kernels) const {
    nn::linear_options o;
    o.mode = input_ ? nn::precision::int4_dynamic : nn::precision::int4_weight_only;
    o.act = act_;
    o.kernels = kernels;
    return nn::linear::from_int4(codes.data(), out_, in_, in_, weights_->options().group, scales,
                                 b_.empty() ? nullptr : b_.data(), o);
  }

  std::size_t out_, in_;
  nn::activation act_;
  // The last forward's input, output and effective input (fq(x) or x), and backward's buffers.
  const float* x_ = nullptr;
  const float* y_ = nullptr;
  std::size_t m_ = 0;
  std::vector<std::uint8_t> codes_;
  std::vector<float> a_, dz_, dzt_, da_;
};

}  // namespace qat
SQUINT_NAMESPACE_END

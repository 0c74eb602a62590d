// SPDX-License-Identifier: Apache-2.0
// qat/quantizers.hpp: the fake quantizers a QAT layer holds for its weights and its input.
//
// Weights: symmetric int codes of `bits` bits (2..8) per output channel, per tensor, or (up to
// 4 bits) per output channel and group of inputs, the int4 forms' layout; the scale either from
// the current weights' range at every step (TensorFlow's "last value"; PyTorch uses a moving
// average of it) or learned by LSQ from that start. Activations: uint8 affine codes whose
// qparams a moving-average min-max observer tracks (PyTorch's QAT default) until it is frozen,
// or learned by LSQ+ (scale and zero point) from the observer's first estimate; or, beside
// grouped weights, int8 codes per row from each row's own range (the W4A8 kernels' activations).
// Codes are computed as the deployed layer computes them (x / scale, ONNX's division), so the
// converted model reproduces the QAT forward exactly.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

#include "squint/gemm/w4a8.hpp"
#include "squint/nn/backend.hpp"
#include "squint/nn/observer.hpp"
#include "squint/nn/weights/form.hpp"
#include "squint/qat/fake_quant.hpp"

SQUINT_NAMESPACE_BEGIN
namespace qat {

/// How a layer's weights are fake-quantized.
struct weight_quant {
  int bits = 8;              ///< 2..8
  bool per_channel = true;   ///< one scale per output channel, else one per tensor
  /// narrow: codes in [-(2^(b-1) - 1), 2^(b-1) - 1], scale amax / qmax; full: [-2^(b-1),
  /// 2^(b-1) - 1], scale amax / ((qmax - qmin) / 2) (PyTorch's symmetric divisor).
  nn::int8_weight_range range = nn::int8_weight_range::narrow;
  bool learn_scale = false;  ///< LSQ: the scale is a trained parameter (gradient scale 1 / sqrt(n * qmax), n its weights)
  /// > 0: one scale per output channel and group of `group` inputs (a multiple of 16, with
  /// per_channel and bits <= 4): the int4 forms' layout, so convert() gives int4_weight_only or,
  /// with per-row activations, int4_dynamic (W4A8). 0: per channel or per tensor.
  std::size_t group = 0;
};

/// How a layer's input activations are fake-quantized (uint8 affine).
struct activation_quant {
  float averaging_constant = 0.01f;  ///< the moving-average min-max observer's
  bool learn = false;                ///< LSQ+: scale and zero point trained from the observer's first qparams
  bool reduce_range = false;         ///< 7-bit codes, [0, 127] (nn::linear_options::reduce_range)
  /// Another observer instead of the moving-average min-max one (e.g. entropy, to start LSQ from
  /// a calibrated range); its quant_spec must be uint8 affine, with reduce_range as above.
  std::optional<nn::observer> observer = std::nullopt;
  /// int8 codes per row at every call, symmetric, scale amax / 127 of the row's finite values:
  /// what the W4A8 kernels do to their input (int4_dynamic), so it goes with grouped weights
  /// (weight_quant::group). Nothing to observe or learn; the gradient passes where x is finite.
  bool per_row = false;
};

/// A trainable tensor: its values, the gradient the last backward() wrote, and whether weight
/// decay applies.
struct parameter {
  float* value;
  const float* grad;
  std::size_t size;
  bool decay;
};

/// Smallest scale a learned quantizer uses (a step may drive the parameter below it).
constexpr float min_learned_scale = 1e-8f;

/// The code range of a weight_quant.
inline quant_range weight_range(const weight_quant& q) {
  const std::int32_t top = (1 << (q.bits - 1)) - 1;
  return {q.range == nn::int8_weight_range::narrow ? -top : -top - 1, top};
}

inline void check(const weight_quant& q) {
  squint::detail::require(q.bits >= 2 && q.bits <= 8, "qat::weight_quant: bits must be in [2, 8], got ", q.bits);
  if (q.group == 0) return;
  squint::detail::require(q.group % 16 == 0 && q.group <= w4a8_max_group, "qat::weight_quant: group ", q.group,
                          " is not a multiple of 16 up to ", w4a8_max_group);
  squint::detail::require(q.per_channel, "qat::weight_quant: group needs per_channel (one scale per channel and group)");
  squint::detail::require(q.bits <= 4, "qat::weight_quant: group needs bits <= 4 (the int4 forms' codes), got ",
                          q.bits);
}

inline void check(const activation_quant& q) {
  squint::detail::require(q.averaging_constant > 0.0f && q.averaging_constant <= 1.0f,
                          "qat::activation_quant: averaging_constant must be in (0, 1], got ", q.averaging_constant);
  squint::detail::require(!q.per_row || (!q.learn && !q.reduce_range && !q.observer),
                          "qat::activation_quant: per_row codes come from each row's range: no learn, reduce_range "
                          "or observer");
  if (!q.observer) return;
  const quant_spec& s = q.observer->spec();
  squint::detail::require(s.type == dtype::uint8 && s.scheme == qscheme::affine && s.reduce_range == q.reduce_range &&
                              !s.custom_range && !s.narrow_range,
                          "qat::activation_quant: observer '", q.observer->name(),
                          "' must quantize to uint8 affine codes on the full range (reduce_range as the options)");
}

/// The fake-quantized weights of one layer (out x in) at the current step.
class weight_quantizer {
 public:
  weight_quantizer(const weight_quant& q, std::size_t out, std::size_t in)
      : q_(q), out_(out), in_(in), span_(q.group ? q.group : in) {
    check(q);
    const std::size_t scales = q.per_channel ? out * groups() : 1;
    learned_.assign(q.learn_scale ? scales : 0, 0.0f);
    learned_grad_.assign(learned_.size(), 0.0f);
    zero_points_.assign(groups(), 0);
  }

  const weight_quant& options() const { return q_; }
  quant_range range() const { return weight_range(q_); }
  /// Scales per output channel: ceil(in / group) when grouped, else 1.
  std::size_t groups() const { return (in_ + span_ - 1) / span_; }
  /// The codes (out x in) and scales (out x groups(), row-major) of the last quantize().
  const std::vector<std::int8_t>& codes() const { return codes_; }
  const std::vector<float>& scales() const { return scales_; }
  /// code * scale, the weights the forward multiplies by (out x in).
  const std::vector<float>& values() const { return values_; }

  /// Codes and values of w at this step: scales from w's range, or the learned ones (set from
  /// w's range the first time).
  void quantize(const float* w, const nn::backend& kernels) {
    if (!initialized_ && !learned_.empty()) {
      if (q_.per_channel)
        for_each_span([&](std::size_t s, std::size_t offset, std::size_t n) {
          learned_[s] = range_scale(w + offset, n, kernels);
        });
      else
        learned_[0] = range_scale(w, out_ * in_, kernels);
    }
    initialized_ = true;
    compute(w, kernels, codes_, scales_, values_);
  }

  /// What quantize() would produce for w now, without changing anything.
  void compute(const float* w, const nn::backend& kernels, std::vector<std::int8_t>& codes, std::vector<float>& scales,
               std::vector<float>& values) const {
    const quant_range r = range();
    scales.resize(out_ * groups());
    if (!learned_.empty() && initialized_) {
      for (std::size_t s = 0; s < scales.size(); ++s)
        scales[s] = std::max(learned_[q_.per_channel ? s : 0], min_learned_scale);
    } else if (q_.per_channel) {
      for_each_span([&](std::size_t s, std::size_t offset, std::size_t n) {
        scales[s] = range_scale(w + offset, n, kernels);
      });
    } else {
      std::fill(scales.begin(), scales.end(), range_scale(w, out_ * in_, kernels));
    }
    codes.resize(out_ * in_);
    values.resize(out_ * in_);
    // int8 codes with x / scale, then the narrower range: clamping after rounding is clamping
    // before. Per channel: its whole spans in one call, then its shorter last one.
    const std::size_t whole = in_ / span_, rest = in_ % span_;
    for (std::size_t c = 0; c < out_; ++c) {
      const std::size_t row = c * in_, s = c * groups();
      kernels.quantize_s8_channels(w + row, codes.data() + row, 1, whole, span_, &scales[s], zero_points_.data(),
                                   false);
      if (rest)
        kernels.quantize_s8_channels(w + row + whole * span_, codes.data() + row + whole * span_, 1, 1, rest,
                                     &scales[s + whole], zero_points_.data(), false);
    }
    if (r.qmin > -128 || r.qmax < 127)
      for (std::int8_t& c : codes)
        c = static_cast<std::int8_t>(std::min<std::int32_t>(std::max<std::int32_t>(c, r.qmin), r.qmax));
    // code * scale: DequantizeLinear with a zero point of 0.
    for_each_span([&](std::size_t s, std::size_t offset, std::size_t n) {
      for (std::size_t i = offset; i < offset + n; ++i) values[i] = static_cast<float>(codes[i]) * scales[s];
    });
  }

  /// dw = the straight-through gradient given dvalues (the gradient of values()), in place
  /// allowed; the learned scales' gradients from the same pass.
  void backward(const float* w, const float* dvalues, float* dw, squint::detail::fake_quant_fn kernel) {
    const quant_range r = range();
    kernels::fake_quant_params k;
    k.qmin = r.qmin;
    k.qmax = r.qmax;
    k.reciprocal = false;
    std::fill(learned_grad_.begin(), learned_grad_.end(), 0.0f);
    const float g = lsq_grad_scale(q_.per_channel ? span_ : out_ * in_, r.qmax);
    for_each_span([&](std::size_t s, std::size_t offset, std::size_t n) {
      k.x = w + offset;
      k.dy = dvalues + offset;
      k.dx = dw + offset;
      k.n = n;
      k.scale = scales_[s];
      const fake_quant_sums sums = kernel(k);
      if (!learned_grad_.empty()) learned_grad_[q_.per_channel ? s : 0] += static_cast<float>(sums.scale) * g;
    });
  }

  /// The learned scales as a parameter (none unless learn_scale).
  std::optional<parameter> learned() {
    if (learned_.empty()) return std::nullopt;
    return parameter{learned_.data(), learned_grad_.data(), learned_.size(), false};
  }

 private:
  weight_quant q_;
  std::size_t out_, in_, span_;  // span_: the inputs one scale covers within a channel
  bool initialized_ = false;
  std::vector<float> learned_, learned_grad_;
  std::vector<float> scales_, values_;
  std::vector<std::int8_t> codes_;
  std::vector<std::int32_t> zero_points_;  // groups() zeros for the quantize kernel

  /// f(scale index, offset, count) for each channel's spans of span_ inputs (the last one shorter).
  template <class F>
  void for_each_span(F&& f) const {
    std::size_t s = 0;
    for (std::size_t c = 0; c < out_; ++c)
      for (std::size_t i = 0; i < in_; i += span_) f(s++, c * in_ + i, std::min(span_, in_ - i));
  }

  /// The symmetric scale of n weights' finite range (choose_qparams on the code range).
  float range_scale(const float* w, std::size_t n, const nn::backend& kernels) const {
    quant_spec spec{dtype::int8, qscheme::symmetric};
    spec.custom_range = range();
    float lo = HUGE_VALF, hi = -HUGE_VALF;
    std::size_t nonfinite = 0;
    kernels.min_max(w, n, &lo, &hi, &nonfinite);
    if (lo > hi) lo = hi = 0.0f;
    return choose_qparams(lo, hi, spec).scale;
  }
};

/// The fake-quantized input of one layer: qparams tracked by an observer, then frozen or learned.
class activation_quantizer {
 public:
  explicit activation_quantizer(const activation_quant& q)
      : q_(q), observer_(q.observer ? *q.observer : nn::observers::moving_average(q.averaging_constant, spec())) {
    check(q);
  }

  const activation_quant& options() const { return q_; }
  quant_range range() const { return range_of(spec()); }
  bool per_row() const { return q_.per_row; }
  bool frozen() const { return frozen_; }
  /// Stops the observer: the qparams stay as they are (learned ones keep training).
  void freeze() { frozen_ = initialized_; }

  /// The qparams of this step after showing x (m x in) to the observer, unless frozen or learned.
  qparams observe(const float* x, std::size_t count) {
    if (!frozen_ && !(q_.learn && initialized_)) {
      observer_.observe(tensor_view<const float>(x, shape{count}));
      current_ = observer_.qparams();
      if (q_.learn) scale_ = current_.scale, zero_point_ = static_cast<float>(current_.zero_point);
      initialized_ = true;
    }
    return current();
  }

  /// The qparams in use (learned ones rounded as the forward uses them).
  qparams current() const {
    if (!q_.learn || !initialized_) return current_;
    const quant_range r = range();
    const float z = std::nearbyint(std::min(std::max(zero_point_, static_cast<float>(r.qmin)), static_cast<float>(r.qmax)));
    return {std::max(scale_, min_learned_scale), static_cast<std::int32_t>(z)};
  }

  /// values (m x n) = x's per-row codes times their row's scale: gemm_w4a8's input (per_row).
  static void quantize_rows(const float* x, std::size_t m, std::size_t n, std::vector<float>& values,
                            const nn::backend& kernels) {
    values.resize(m * n);
    std::vector<std::int8_t> codes(m * n);
    std::vector<float> scales(m);
    quantize_rows_s8(x, m, n, n, codes.data(), scales.data(), {kernels.min_max, kernels.quantize_s8_channels});
    for (std::size_t i = 0; i < m; ++i) kernels.dequantize_s8(codes.data() + i * n, values.data() + i * n, n, scales[i], 0);
  }

  /// dx = the straight-through gradient of the input given dvalues (dx may be null when only the
  /// learned parameters need their gradients); count elements.
  void backward(const float* x, const float* dvalues, float* dx, std::size_t count,
                squint::detail::fake_quant_fn kernel) {
    if (q_.per_row) {
      // Each row's range holds its finite values: nothing clips.
      for (std::size_t i = 0; dx && i < count; ++i) dx[i] = std::isfinite(x[i]) ? dvalues[i] : 0.0f;
      return;
    }
    const qparams p = current();
    const quant_range r = range();
    kernels::fake_quant_params k;
    k.x = x;
    k.dy = dvalues;
    k.dx = dx;
    k.n = count;
    k.scale = p.scale;
    k.zero_point = p.zero_point;
    k.qmin = r.qmin;
    k.qmax = r.qmax;
    k.reciprocal = false;
    const fake_quant_sums sums = kernel(k);
    const float g = lsq_grad_scale(count, r.qmax);
    grad_[0] = static_cast<float>(sums.scale) * g;
    grad_[1] = static_cast<float>(sums.zero_point) * g;
  }

  /// Whether backward() has anything to do without an input gradient (learned qparams).
  bool learns() const { return q_.learn; }
  /// The learned scale and zero point as parameters (none unless learn).
  std::vector<parameter> learned() {
    if (!q_.learn) return {};
    return {parameter{&scale_, &grad_[0], 1, false}, parameter{&zero_point_, &grad_[1], 1, false}};
  }

 private:
  quant_spec spec() const {
    quant_spec s;
    s.reduce_range = q_.reduce_range;
    return s;
  }

  activation_quant q_;
  nn::observer observer_;
  bool frozen_ = false, initialized_ = false;
  qparams current_;
  float scale_ = 1.0f, zero_point_ = 0.0f;
  float grad_[2] = {0.0f, 0.0f};
};

}  // namespace qat
SQUINT_NAMESPACE_END

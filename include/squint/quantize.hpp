// SPDX-License-Identifier: Apache-2.0
// quantize.hpp: checked public entry points for quantize, dequantize, fake-quantize, requantize
// and fp16 / bfloat16 conversion.
//
// Each function validates its arguments (throwing squint::error before anything is written),
// then runs the SIMD kernels of the best instruction set this translation unit is compiled for
// (arch::native: static dispatch, no setup). squint/dispatch.hpp offers the same functions with
// the kernels chosen per CPU at run time. Integer results equal squint/reference/ on every arch.
#pragma once

#include <cfenv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "squint/kernels/convert.hpp"
#include "squint/kernels/quantize.hpp"
#include "squint/kernels/reduce.hpp"
#include "squint/qparams.hpp"
#include "squint/reference/requantize.hpp"
#include "squint/tensor.hpp"

SQUINT_NAMESPACE_BEGIN

namespace detail {

/// Runs the enclosed kernels under round-to-nearest and restores the caller's mode: x / scale
/// and float(acc) * multiplier are rounded by the FP environment, and the contract promises the
/// same integers whatever mode the caller has set.
class nearest_rounding_scope {
 public:
  nearest_rounding_scope() : saved_(std::fegetround()) {
    if (saved_ != FE_TONEAREST) std::fesetround(FE_TONEAREST);
  }
  ~nearest_rounding_scope() {
    if (saved_ != FE_TONEAREST) std::fesetround(saved_);
  }
  nearest_rounding_scope(const nearest_rounding_scope&) = delete;
  nearest_rounding_scope& operator=(const nearest_rounding_scope&) = delete;

 private:
  int saved_;
};

template <class In, class Out>
void require_same_shape(const char* function, const tensor_view<In>& in, const tensor_view<Out>& out) {
  require_data(function, "input", in);
  require_data(function, "output", out);
  require(in.extents() == out.extents(), function, ": output shape ", out.extents(),
          " differs from input shape ", in.extents());
}

inline axis_split require_per_channel(const char* function, const shape& s, const per_channel_qparams& p,
                                      quant_range range) {
  const axis_split split = split_at(s, p.axis);
  require(p.scale.size() == split.channels && p.zero_point.size() == split.channels, function,
          ": per-channel qparams have ", p.scale.size(), " scales and ", p.zero_point.size(),
          " zero points but axis ", p.axis, " of shape ", s, " has ", split.channels, " channels");
  for (std::size_t c = 0; c < split.channels; ++c) validate(p[c], range, function);
  return split;
}

/// Shared checks of requantize: shapes, zero point, multiplier count; returns the split
/// (one multiplier: the whole tensor is one channel).
template <class T, class Multiplier>
axis_split check_requantize(const char* function, const tensor_view<const std::int32_t>& acc,
                            const tensor_view<T>& q, const std::vector<Multiplier>& multiplier,
                            std::int32_t zero_point, int axis) {
  require_same_shape(function, acc, q);
  const quant_range range = full_range(dtype_of<T>());
  require(zero_point >= range.qmin && zero_point <= range.qmax, function, ": zero_point ", zero_point,
          " is outside [", range.qmin, ", ", range.qmax, "]");
  if (multiplier.size() == 1) return {1, 1, acc.size()};
  const axis_split split = split_at(acc.extents(), axis);
  require(multiplier.size() == split.channels, function, ": ", multiplier.size(), " multipliers for ",
          split.channels, " channels along axis ", axis);
  return split;
}

}  // namespace detail

/// Quantizes x into q: q = clamp(round_half_even(x / scale) + zero_point, T's range).
/// @param mode  `divide` (ONNX QuantizeLinear, default) or `reciprocal` (PyTorch, x * (1/scale)).
/// @throws squint::error if shapes differ, a pointer is null with elements, the scale is not
///         finite and > 0, or the zero point is outside T's range.
/// @note NaN maps to the zero point; +-inf saturate. Independent of the FP rounding mode.
template <class T>
void quantize(tensor_view<const float> x, tensor_view<T> q, qparams p, quantize_mode mode = quantize_mode::divide) {
  detail::require_same_shape("quantize", x, q);
  validate(p, full_range(dtype_of<T>()), "quantize");
  const detail::nearest_rounding_scope rounding;
  kernels::quantize_kernel<arch::native, T>::per_tensor(x.data(), q.data(), x.size(), p.scale, p.zero_point,
                                                        mode == quantize_mode::reciprocal);
}

/// Pointer form of per-tensor quantize: `n` floats from x into q (T deduced from q).
template <class T>
void quantize(const float* x, T* q, std::size_t n, qparams p, quantize_mode mode = quantize_mode::divide) {
  quantize(tensor_view<const float>(x, n), tensor_view<T>(q, n), p, mode);
}

/// Per-channel quantize along `p.axis` (any axis of a contiguous N-d tensor).
/// @throws squint::error as the per-tensor form, and if the axis or channel count is wrong.
template <class T>
void quantize(tensor_view<const float> x, tensor_view<T> q, const per_channel_qparams& p,
              quantize_mode mode = quantize_mode::divide) {
  detail::require_same_shape("quantize", x, q);
  const axis_split s = detail::require_per_channel("quantize", x.extents(), p, full_range(dtype_of<T>()));
  const detail::nearest_rounding_scope rounding;
  kernels::quantize_kernel<arch::native, T>::per_channel(x.data(), q.data(), s.outer, s.channels, s.inner,
                                                         p.scale.data(), p.zero_point.data(),
                                                         mode == quantize_mode::reciprocal);
}

/// Dequantizes q into x: x = (q - zero_point) * scale, in float32 (ONNX DequantizeLinear).
template <class T>
void dequantize(tensor_view<const T> q, tensor_view<float> x, qparams p) {
  detail::require_same_shape("dequantize", q, x);
  validate(p, full_range(dtype_of<T>()), "dequantize");
  const detail::nearest_rounding_scope rounding;
  kernels::dequantize_kernel<arch::native, T>::per_tensor(q.data(), x.data(), q.size(), p.scale, p.zero_point);
}

/// Pointer form of per-tensor dequantize: `n` values from q into x.
template <class T>
void dequantize(const T* q, float* x, std::size_t n, qparams p) {
  dequantize(tensor_view<const T>(q, n), tensor_view<float>(x, n), p);
}

/// Per-channel dequantize along `p.axis`.
template <class T>
void dequantize(tensor_view<const T> q, tensor_view<float> x, const per_channel_qparams& p) {
  detail::require_same_shape("dequantize", q, x);
  const axis_split s = detail::require_per_channel("dequantize", q.extents(), p, full_range(dtype_of<T>()));
  const detail::nearest_rounding_scope rounding;
  kernels::dequantize_kernel<arch::native, T>::per_channel(q.data(), x.data(), s.outer, s.channels, s.inner,
                                                           p.scale.data(), p.zero_point.data());
}

/// y = dequantize(quantize(x)) with codes clamped to `range` (quantization-aware training and
/// error analysis). Defaults to PyTorch's reciprocal mode, as fake_quantize_per_tensor_affine.
/// @throws squint::error on shape, pointer, range or qparams errors. `x` and `y` may alias.
inline void fake_quantize(tensor_view<const float> x, tensor_view<float> y, qparams p, quant_range range,
                          quantize_mode mode = quantize_mode::reciprocal) {
  detail::require_same_shape("fake_quantize", x, y);
  detail::require(range.qmin < range.qmax, "fake_quantize: range [", range.qmin, ", ", range.qmax, "] is empty");
  validate(p, range, "fake_quantize");
  const detail::nearest_rounding_scope rounding;
  kernels::quantize_kernel<arch::native, std::int8_t>::fake(x.data(), y.data(), x.size(), p.scale, p.zero_point,
                                                            range.qmin, range.qmax, mode == quantize_mode::reciprocal);
}

/// Per-channel fake-quantize along `p.axis`.
inline void fake_quantize(tensor_view<const float> x, tensor_view<float> y, const per_channel_qparams& p,
                          quant_range range, quantize_mode mode = quantize_mode::reciprocal) {
  detail::require_same_shape("fake_quantize", x, y);
  detail::require(range.qmin < range.qmax, "fake_quantize: range [", range.qmin, ", ", range.qmax, "] is empty");
  const axis_split s = detail::require_per_channel("fake_quantize", x.extents(), p, range);
  const detail::nearest_rounding_scope rounding;
  for (std::size_t o = 0; o < s.outer; ++o)
    for (std::size_t c = 0; c < s.channels; ++c) {
      const std::size_t offset = (o * s.channels + c) * s.inner;
      kernels::quantize_kernel<arch::native, std::int8_t>::fake(x.data() + offset, y.data() + offset, s.inner,
                                                                p.scale[c], p.zero_point[c], range.qmin, range.qmax,
                                                                mode == quantize_mode::reciprocal);
    }
}

/// Requantizes int32 accumulators: q = clamp(round_half_even(float(acc) * multiplier) + zero_point).
/// `multiplier` holds one value (per tensor) or one per channel along `axis`; typically
/// input_scale * weight_scale[c] / output_scale.
/// @throws squint::error on shape or pointer errors, a multiplier that is not finite and > 0,
///         a wrong multiplier count, or a zero point outside T's range.
template <class T>
void requantize(tensor_view<const std::int32_t> acc, tensor_view<T> q, const std::vector<float>& multiplier,
                std::int32_t zero_point, int axis = -1) {
  for (float m : multiplier)
    detail::require(std::isfinite(m) && m > 0.0f, "requantize: multiplier must be finite and > 0, got ", m);
  const axis_split s = detail::check_requantize("requantize", acc, q, multiplier, zero_point, axis);
  const detail::nearest_rounding_scope rounding;
  kernels::requantize_kernel<arch::native, T>::run(acc.data(), q.data(), s.outer, s.channels, s.inner,
                                                   multiplier.data(), zero_point);
}

/// Integer-only requantization with fixed-point multipliers (gemmlowp / TFLite): see
/// squint::quantize_multiplier. Rounds as gemmlowp does (tie-up high multiply, then a
/// round-half-away shift).
template <class T>
void requantize_fixed_point(tensor_view<const std::int32_t> acc, tensor_view<T> q,
                            const std::vector<fixed_point_multiplier>& multiplier, std::int32_t zero_point,
                            int axis = -1) {
  for (const fixed_point_multiplier& m : multiplier)
    detail::require(m.multiplier >= 0 && m.shift <= 31 && m.shift >= -31, "requantize_fixed_point: multiplier (",
                    m.multiplier, ", shift ", m.shift, ") is not a quantize_multiplier result");
  const axis_split s = detail::check_requantize("requantize_fixed_point", acc, q, multiplier, zero_point, axis);
  reference::requantize(acc.data(), q.data(), s, multiplier.data(), zero_point);
}

/// float -> IEEE binary16 bits, round to nearest even; overflow -> inf; NaN stays NaN.
inline void float_to_half(tensor_view<const float> x, tensor_view<std::uint16_t> h) {
  detail::require_same_shape("float_to_half", x, h);
  kernels::convert_kernel<arch::native>::float_to_half(x.data(), h.data(), x.size());
}
/// IEEE binary16 bits -> float (exact).
inline void half_to_float(tensor_view<const std::uint16_t> h, tensor_view<float> x) {
  detail::require_same_shape("half_to_float", h, x);
  kernels::convert_kernel<arch::native>::half_to_float(h.data(), x.data(), h.size());
}
/// float -> bfloat16 bits, round to nearest even; NaN stays NaN.
inline void float_to_bfloat16(tensor_view<const float> x, tensor_view<std::uint16_t> b) {
  detail::require_same_shape("float_to_bfloat16", x, b);
  kernels::convert_kernel<arch::native>::float_to_bfloat16(x.data(), b.data(), x.size());
}
/// bfloat16 bits -> float (exact).
inline void bfloat16_to_float(tensor_view<const std::uint16_t> b, tensor_view<float> x) {
  detail::require_same_shape("bfloat16_to_float", b, x);
  kernels::convert_kernel<arch::native>::bfloat16_to_float(b.data(), x.data(), b.size());
}

/// Range of the finite values of x; non-finite values are skipped. {+inf, -inf} if there are none.
inline std::pair<float, float> finite_min_max(tensor_view<const float> x) {
  detail::require_data("finite_min_max", "x", x);
  float lo = HUGE_VALF, hi = -HUGE_VALF;
  std::size_t nonfinite = 0;
  kernels::reduce_kernel<arch::native>::min_max(x.data(), x.size(), &lo, &hi, &nonfinite);
  return {lo, hi};
}

/// ONNX DynamicQuantizeLinear: chooses uint8 affine qparams from x's range (widened to include 0)
/// and quantizes x with them. Non-finite values are left out of the range (NaN -> zero point,
/// +-inf saturate); an input without finite values gives scale eps and zero point 0.
/// @returns the chosen qparams.
inline qparams dynamic_quantize(tensor_view<const float> x, tensor_view<std::uint8_t> q) {
  detail::require_same_shape("dynamic_quantize", x, q);
  auto [lo, hi] = finite_min_max(x);
  if (lo > hi) lo = hi = 0.0f;
  const qparams p = choose_qparams(lo, hi, quant_spec{});
  quantize(x, q, p);
  return p;
}

SQUINT_NAMESPACE_END

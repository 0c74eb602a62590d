// SPDX-License-Identifier: Apache-2.0
// quantize.hpp: checked public entry points for quantize, dequantize, fake-quantize, requantize.
//
// Each function validates its arguments (throwing squint::error before anything is written) and
// then runs the implementation. The numeric contract is the one of squint/reference/, which is
// also the implementation until the SIMD kernels take over the hot paths.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "squint/qparams.hpp"
#include "squint/reference/quantize.hpp"
#include "squint/reference/requantize.hpp"
#include "squint/tensor.hpp"

SQUINT_NAMESPACE_BEGIN

namespace detail {

template <class In, class Out>
void require_same_shape(const char* function, const tensor_view<In>& in, const tensor_view<Out>& out) {
  require_data(function, "input", in);
  require_data(function, "output", out);
  require(in.extents() == out.extents(), function, ": output shape ", out.extents(),
          " differs from input shape ", in.extents());
}

inline axis_split require_per_channel(const char* function, const shape& s,
                                      const per_channel_qparams& p, quant_range range) {
  const axis_split split = split_at(s, p.axis);
  require(p.scale.size() == split.channels && p.zero_point.size() == split.channels, function,
          ": per-channel qparams have ", p.scale.size(), " scales and ", p.zero_point.size(),
          " zero points but axis ", p.axis, " of shape ", s, " has ", split.channels, " channels");
  for (std::size_t c = 0; c < split.channels; ++c) validate(p[c], range, function);
  return split;
}

}  // namespace detail

/// Quantizes x into q: q = clamp(round_half_even(x / scale) + zero_point, T's range).
/// @param mode  `divide` (ONNX QuantizeLinear, default) or `reciprocal` (PyTorch, x * (1/scale)).
/// @throws squint::error if shapes differ, a pointer is null with elements, the scale is not
///         finite and > 0, or the zero point is outside T's range.
/// @note NaN maps to the zero point; +-inf saturate. Independent of the FP rounding mode.
template <class T>
void quantize(tensor_view<const float> x, tensor_view<T> q, qparams p,
              quantize_mode mode = quantize_mode::divide) {
  detail::require_same_shape("quantize", x, q);
  validate(p, full_range(dtype_of<T>()), "quantize");
  reference::quantize(x.data(), q.data(), x.size(), p, mode);
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
  const axis_split split = detail::require_per_channel("quantize", x.extents(), p, full_range(dtype_of<T>()));
  reference::quantize_per_channel(x.data(), q.data(), split, p.scale.data(), p.zero_point.data(), mode);
}

/// Dequantizes q into x: x = (q - zero_point) * scale, in float32 (ONNX DequantizeLinear).
template <class T>
void dequantize(tensor_view<const T> q, tensor_view<float> x, qparams p) {
  detail::require_same_shape("dequantize", q, x);
  validate(p, full_range(dtype_of<T>()), "dequantize");
  reference::dequantize(q.data(), x.data(), q.size(), p);
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
  const axis_split split = detail::require_per_channel("dequantize", q.extents(), p, full_range(dtype_of<T>()));
  reference::dequantize_per_channel(q.data(), x.data(), split, p.scale.data(), p.zero_point.data());
}

/// y = dequantize(quantize(x)) with codes clamped to `range` (quantization-aware training and
/// error analysis). Defaults to PyTorch's reciprocal mode, as fake_quantize_per_tensor_affine.
/// @throws squint::error on shape, pointer, range or qparams errors. `x` and `y` may alias.
inline void fake_quantize(tensor_view<const float> x, tensor_view<float> y, qparams p, quant_range range,
                          quantize_mode mode = quantize_mode::reciprocal) {
  detail::require_same_shape("fake_quantize", x, y);
  detail::require(range.qmin < range.qmax, "fake_quantize: range [", range.qmin, ", ", range.qmax,
                  "] is empty");
  validate(p, range, "fake_quantize");
  reference::fake_quantize(x.data(), y.data(), x.size(), p, range, mode);
}

/// Per-channel fake-quantize along `p.axis`.
inline void fake_quantize(tensor_view<const float> x, tensor_view<float> y, const per_channel_qparams& p,
                          quant_range range, quantize_mode mode = quantize_mode::reciprocal) {
  detail::require_same_shape("fake_quantize", x, y);
  detail::require(range.qmin < range.qmax, "fake_quantize: range [", range.qmin, ", ", range.qmax,
                  "] is empty");
  const axis_split split = detail::require_per_channel("fake_quantize", x.extents(), p, range);
  reference::fake_quantize_per_channel(x.data(), y.data(), split, p.scale.data(), p.zero_point.data(),
                                       range, mode);
}

/// Requantizes int32 accumulators: q = clamp(round_half_even(float(acc) * multiplier) + zero_point).
/// `multiplier` holds one value (per tensor) or one per channel along `axis`; typically
/// input_scale * weight_scale[c] / output_scale.
/// @throws squint::error on shape or pointer errors, a multiplier that is not finite and > 0,
///         a wrong multiplier count, or a zero point outside T's range.
template <class T>
void requantize(tensor_view<const std::int32_t> acc, tensor_view<T> q, const std::vector<float>& multiplier,
                std::int32_t zero_point, int axis = -1) {
  detail::require_same_shape("requantize", acc, q);
  const quant_range range = full_range(dtype_of<T>());
  detail::require(zero_point >= range.qmin && zero_point <= range.qmax, "requantize: zero_point ",
                  zero_point, " is outside [", range.qmin, ", ", range.qmax, "]");
  for (float m : multiplier)
    detail::require(std::isfinite(m) && m > 0.0f, "requantize: multiplier must be finite and > 0, got ", m);
  axis_split split{1, 1, acc.size()};
  if (multiplier.size() != 1) {
    split = split_at(acc.extents(), axis);
    detail::require(multiplier.size() == split.channels, "requantize: ", multiplier.size(),
                    " multipliers for ", split.channels, " channels along axis ", axis);
  }
  reference::requantize(acc.data(), q.data(), split, multiplier.data(), zero_point);
}

/// Integer-only requantization with fixed-point multipliers (gemmlowp / TFLite): see
/// squint::quantize_multiplier. Rounds half away from zero.
template <class T>
void requantize_fixed_point(tensor_view<const std::int32_t> acc, tensor_view<T> q,
                            const std::vector<fixed_point_multiplier>& multiplier, std::int32_t zero_point,
                            int axis = -1) {
  detail::require_same_shape("requantize_fixed_point", acc, q);
  const quant_range range = full_range(dtype_of<T>());
  detail::require(zero_point >= range.qmin && zero_point <= range.qmax, "requantize_fixed_point: zero_point ",
                  zero_point, " is outside [", range.qmin, ", ", range.qmax, "]");
  for (const fixed_point_multiplier& m : multiplier)
    detail::require(m.multiplier >= 0 && m.shift <= 31 && m.shift >= -31,
                    "requantize_fixed_point: fixed-point multiplier (", m.multiplier, ", shift ", m.shift,
                    ") is not a quantize_multiplier result");
  axis_split split{1, 1, acc.size()};
  if (multiplier.size() != 1) {
    split = split_at(acc.extents(), axis);
    detail::require(multiplier.size() == split.channels, "requantize_fixed_point: ", multiplier.size(),
                    " multipliers for ", split.channels, " channels along axis ", axis);
  }
  reference::requantize(acc.data(), q.data(), split, multiplier.data(), zero_point);
}

/// Range of the finite values of x; non-finite values are skipped. {+inf, -inf} if there are none.
inline std::pair<float, float> finite_min_max(tensor_view<const float> x) {
  float lo = std::numeric_limits<float>::infinity();
  float hi = -lo;
  for (float v : x) {
    if (!std::isfinite(v)) continue;
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
  }
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
  reference::quantize(x.data(), q.data(), x.size(), p, quantize_mode::divide);
  return p;
}

SQUINT_NAMESPACE_END

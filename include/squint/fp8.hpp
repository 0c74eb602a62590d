// SPDX-License-Identifier: Apache-2.0
// fp8.hpp: FP8 (OCP E4M3FN and E5M2) quantize and dequantize with a scale, per tensor or per
// channel — ONNX QuantizeLinear / DequantizeLinear to and from float8 (zero point 0): codes =
// float_to_fp8(x / scale), rounding to nearest even, saturating to +-max by default (ONNX's
// saturate=1) or overflowing to NaN (E4M3FN) / infinity (E5M2). reference/fp8.hpp states the
// conversion; every ISA's kernel (kernels/fp8.hpp) matches it bit for bit. `kernel` is this
// translation unit's own unless a dispatched one is passed (squint::runtime's do).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "squint/kernels/fp8.hpp"
#include "squint/quantize.hpp"

SQUINT_NAMESPACE_BEGIN

namespace detail {

using fp8_quantize_fn = void (*)(const float*, std::uint8_t*, std::size_t, float, bool, bool) noexcept;
using fp8_dequantize_fn = void (*)(const std::uint8_t*, float*, std::size_t, float, bool) noexcept;

inline void check_fp8_scale(const char* function, float scale) {
  require(std::isfinite(scale) && scale > 0.0f, function, ": scale must be finite and > 0, got ", scale);
}

/// The split of a per-channel FP8 call, after checking the scales.
inline axis_split check_fp8_channels(const char* function, const shape& s, const std::vector<float>& scale, int axis) {
  const axis_split split = split_at(s, axis);
  require(scale.size() == split.channels, function, ": ", scale.size(), " scales for ", split.channels,
          " channels along axis ", axis);
  for (float v : scale) check_fp8_scale(function, v);
  return split;
}

}  // namespace detail

/// q = FP8 codes of x / scale (see the top of this header).
/// @throws squint::error on shape or pointer errors, or a scale that is not finite and > 0.
inline void quantize_fp8(tensor_view<const float> x, tensor_view<std::uint8_t> q, float scale, fp8_format format,
                         bool saturate = true,
                         detail::fp8_quantize_fn kernel = &kernels::fp8_kernel<arch::native>::quantize) {
  detail::require_same_shape("quantize_fp8", x, q);
  detail::check_fp8_scale("quantize_fp8", scale);
  const detail::nearest_rounding_scope rounding;
  kernel(x.data(), q.data(), x.size(), scale, format == fp8_format::e5m2, saturate);
}

/// Per-channel quantize_fp8: scale[c] for channel c along `axis`.
/// @throws squint::error as the per-tensor form, or on a scale count that does not match the axis.
inline void quantize_fp8(tensor_view<const float> x, tensor_view<std::uint8_t> q, const std::vector<float>& scale,
                         int axis, fp8_format format, bool saturate = true,
                         detail::fp8_quantize_fn kernel = &kernels::fp8_kernel<arch::native>::quantize) {
  detail::require_same_shape("quantize_fp8", x, q);
  const axis_split s = detail::check_fp8_channels("quantize_fp8", x.extents(), scale, axis);
  const detail::nearest_rounding_scope rounding;
  for (std::size_t o = 0; o < s.outer; ++o)
    for (std::size_t c = 0; c < s.channels; ++c) {
      const std::size_t offset = (o * s.channels + c) * s.inner;
      kernel(x.data() + offset, q.data() + offset, s.inner, scale[c], format == fp8_format::e5m2, saturate);
    }
}

/// x = float(q) * scale (exact decoding, one float32 product).
/// @throws squint::error on shape or pointer errors, or a scale that is not finite and > 0.
inline void dequantize_fp8(tensor_view<const std::uint8_t> q, tensor_view<float> x, float scale, fp8_format format,
                           detail::fp8_dequantize_fn kernel = &kernels::fp8_kernel<arch::native>::dequantize) {
  detail::require_same_shape("dequantize_fp8", q, x);
  detail::check_fp8_scale("dequantize_fp8", scale);
  const detail::nearest_rounding_scope rounding;
  kernel(q.data(), x.data(), q.size(), scale, format == fp8_format::e5m2);
}

/// Per-channel dequantize_fp8.
inline void dequantize_fp8(tensor_view<const std::uint8_t> q, tensor_view<float> x, const std::vector<float>& scale,
                           int axis, fp8_format format,
                           detail::fp8_dequantize_fn kernel = &kernels::fp8_kernel<arch::native>::dequantize) {
  detail::require_same_shape("dequantize_fp8", q, x);
  const axis_split s = detail::check_fp8_channels("dequantize_fp8", q.extents(), scale, axis);
  const detail::nearest_rounding_scope rounding;
  for (std::size_t o = 0; o < s.outer; ++o)
    for (std::size_t c = 0; c < s.channels; ++c) {
      const std::size_t offset = (o * s.channels + c) * s.inner;
      kernel(q.data() + offset, x.data() + offset, s.inner, scale[c], format == fp8_format::e5m2);
    }
}

/// The scale that maps amax onto the format's largest value (amax / max; 1 for amax 0 or not
/// finite): the usual per-tensor FP8 scaling.
inline float fp8_scale(float amax, fp8_format format) {
  return std::isfinite(amax) && amax > 0.0f ? amax / traits_of(format).max : 1.0f;
}

SQUINT_NAMESPACE_END

// SPDX-License-Identifier: Apache-2.0
// reference/quantize.hpp: scalar oracle for quantize, dequantize and fake-quantize.
//
// Plain loops with no SIMD and nothing shared with kernels/: every optimized path is tested
// against these functions and must match their integers exactly. Arguments are not checked here;
// the public entry points in squint/quantize.hpp validate before calling an implementation.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "squint/qparams.hpp"
#include "squint/tensor.hpp"

SQUINT_NAMESPACE_BEGIN
namespace reference {

/// q = clamp(round_half_even(x / scale) + zero_point, range); NaN -> zero_point, +-inf saturate.
/// `mode` selects x / scale (ONNX) or x * (1 / scale) (PyTorch). The arithmetic after the
/// float32 scaling is exact, so the result does not depend on the FP rounding mode. A scaled
/// value that is NaN (0 * inf when 1 / scale overflows for a subnormal scale) also gives the
/// zero point, as the kernels do.
inline std::int32_t quantize_value(float x, qparams p, quant_range range,
                                   quantize_mode mode = quantize_mode::divide) {
  const float scaled = mode == quantize_mode::divide ? x / p.scale : x * (1.0f / p.scale);
  if (std::isnan(scaled)) return p.zero_point;
  if (std::isinf(scaled)) return scaled > 0 ? range.qmax : range.qmin;
  const double q = detail::round_half_even(scaled) + p.zero_point;
  if (q <= range.qmin) return range.qmin;
  if (q >= range.qmax) return range.qmax;
  return static_cast<std::int32_t>(q);
}

/// real = (q - zero_point) * scale, the difference exact (int64), the product in float32 (ONNX
/// DequantizeLinear).
inline float dequantize_value(std::int32_t q, qparams p) {
  return static_cast<float>(static_cast<std::int64_t>(q) - p.zero_point) * p.scale;
}

/// Quantizes n floats into T with per-tensor parameters, clamping to T's full range.
template <class T>
void quantize(const float* x, T* q, std::size_t n, qparams p,
              quantize_mode mode = quantize_mode::divide) {
  const quant_range range = full_range(dtype_of<T>());
  for (std::size_t i = 0; i < n; ++i) q[i] = static_cast<T>(quantize_value(x[i], p, range, mode));
}

/// Dequantizes n values of T with per-tensor parameters.
template <class T>
void dequantize(const T* q, float* x, std::size_t n, qparams p) {
  for (std::size_t i = 0; i < n; ++i) x[i] = dequantize_value(q[i], p);
}

/// Quantize then dequantize with codes clamped to `range` (PyTorch fake_quantize_per_tensor_affine
/// uses the reciprocal mode).
inline void fake_quantize(const float* x, float* y, std::size_t n, qparams p, quant_range range,
                          quantize_mode mode = quantize_mode::reciprocal) {
  for (std::size_t i = 0; i < n; ++i) y[i] = dequantize_value(quantize_value(x[i], p, range, mode), p);
}

/// Per-channel quantize: element (o, c, i) of the split uses channel c's parameters.
template <class T>
void quantize_per_channel(const float* x, T* q, axis_split split, const float* scale,
                          const std::int32_t* zero_point, quantize_mode mode = quantize_mode::divide) {
  const quant_range range = full_range(dtype_of<T>());
  std::size_t offset = 0;
  for (std::size_t o = 0; o < split.outer; ++o)
    for (std::size_t c = 0; c < split.channels; ++c) {
      const qparams p{scale[c], zero_point[c]};
      for (std::size_t i = 0; i < split.inner; ++i, ++offset)
        q[offset] = static_cast<T>(quantize_value(x[offset], p, range, mode));
    }
}

/// Per-channel dequantize, the inverse layout of quantize_per_channel.
template <class T>
void dequantize_per_channel(const T* q, float* x, axis_split split, const float* scale,
                            const std::int32_t* zero_point) {
  std::size_t offset = 0;
  for (std::size_t o = 0; o < split.outer; ++o)
    for (std::size_t c = 0; c < split.channels; ++c) {
      const qparams p{scale[c], zero_point[c]};
      for (std::size_t i = 0; i < split.inner; ++i, ++offset) x[offset] = dequantize_value(q[offset], p);
    }
}

/// Per-channel fake-quantize (PyTorch fake_quantize_per_channel_affine).
inline void fake_quantize_per_channel(const float* x, float* y, axis_split split, const float* scale,
                                      const std::int32_t* zero_point, quant_range range,
                                      quantize_mode mode = quantize_mode::reciprocal) {
  std::size_t offset = 0;
  for (std::size_t o = 0; o < split.outer; ++o)
    for (std::size_t c = 0; c < split.channels; ++c) {
      const qparams p{scale[c], zero_point[c]};
      for (std::size_t i = 0; i < split.inner; ++i, ++offset)
        y[offset] = dequantize_value(quantize_value(x[offset], p, range, mode), p);
    }
}

}  // namespace reference
SQUINT_NAMESPACE_END

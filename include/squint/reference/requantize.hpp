// SPDX-License-Identifier: Apache-2.0
// reference/requantize.hpp: scalar oracle for int32 -> int8/uint8 requantization.
//
// Two forms, both common in deployed runtimes:
//   float:       q = saturate(round_half_even(float(acc) * multiplier) + zero_point)
//                (ONNX Runtime's QLinearMatMul / QLinearConv and PyTorch's requantize)
//   fixed point: q = saturate(rounding_high_mul(acc << left, m) >> right + zero_point)
//                (gemmlowp / TFLite: integer only, rounding half away from zero)
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "squint/qparams.hpp"
#include "squint/tensor.hpp"

SQUINT_NAMESPACE_BEGIN

/// A real multiplier in (0, 1) or above as a Q31 mantissa and a power-of-two exponent:
/// real ~= multiplier * 2^(shift - 31), multiplier in [2^30, 2^31).
struct fixed_point_multiplier {
  std::int32_t multiplier = 0;
  std::int32_t shift = 0;
};

/// Decomposes a positive finite real multiplier into its fixed-point form (TFLite's
/// QuantizeMultiplier: mantissa rounded half away from zero; below 2^-31 it becomes zero).
/// @throws squint::error if `real` is not finite or negative, or is 2^31 or more.
inline fixed_point_multiplier quantize_multiplier(double real) {
  detail::require(std::isfinite(real) && real >= 0.0 && real < 2147483648.0,
                  "quantize_multiplier: real multiplier must be finite and in [0, 2^31), got ", real);
  if (real == 0.0) return {};
  int exponent = 0;
  const double mantissa = std::frexp(real, &exponent);  // real = mantissa * 2^exponent, [0.5, 1)
  auto q = static_cast<std::int64_t>(std::round(mantissa * 2147483648.0));
  if (q == (std::int64_t{1} << 31)) {
    q /= 2;
    ++exponent;
  }
  if (exponent < -31) return {};
  return {static_cast<std::int32_t>(q), exponent};
}

namespace reference {

/// round(a * b / 2^31), ties away from zero, saturating the single overflow case (INT32_MIN^2).
inline std::int32_t saturating_rounding_doubling_high_mul(std::int32_t a, std::int32_t b) {
  if (a == std::numeric_limits<std::int32_t>::min() && b == a)
    return std::numeric_limits<std::int32_t>::max();
  const std::int64_t product = static_cast<std::int64_t>(a) * b;
  const std::int64_t nudge = product >= 0 ? (std::int64_t{1} << 30) : 1 - (std::int64_t{1} << 30);
  return static_cast<std::int32_t>((product + nudge) / (std::int64_t{1} << 31));
}

/// x / 2^exponent rounded half away from zero, exponent in [0, 31].
inline std::int32_t rounding_divide_by_pot(std::int32_t x, int exponent) {
  const std::int32_t mask = static_cast<std::int32_t>((std::int64_t{1} << exponent) - 1);
  const std::int32_t remainder = x & mask;
  const std::int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/// acc * real, where `m` is quantize_multiplier(real): TFLite's MultiplyByQuantizedMultiplier.
inline std::int32_t multiply_by_quantized_multiplier(std::int32_t acc, fixed_point_multiplier m) {
  const int left = m.shift > 0 ? m.shift : 0;
  const int right = m.shift > 0 ? 0 : -m.shift;
  const std::int64_t shifted = static_cast<std::int64_t>(acc) * (std::int64_t{1} << left);
  const auto clamped = static_cast<std::int32_t>(
      std::clamp<std::int64_t>(shifted, std::numeric_limits<std::int32_t>::min(),
                               std::numeric_limits<std::int32_t>::max()));
  return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(clamped, m.multiplier), right);
}

/// Float-form requantization of one accumulator to `range`.
inline std::int32_t requantize_value(std::int32_t acc, float multiplier, std::int32_t zero_point,
                                     quant_range range) {
  const float scaled = static_cast<float>(acc) * multiplier;
  const double q = detail::round_half_even(scaled) + zero_point;
  if (q <= range.qmin) return range.qmin;
  if (q >= range.qmax) return range.qmax;
  return static_cast<std::int32_t>(q);
}

/// Fixed-point requantization of one accumulator to `range`.
inline std::int32_t requantize_value(std::int32_t acc, fixed_point_multiplier m,
                                     std::int32_t zero_point, quant_range range) {
  const std::int64_t q = static_cast<std::int64_t>(multiply_by_quantized_multiplier(acc, m)) + zero_point;
  return static_cast<std::int32_t>(std::clamp<std::int64_t>(q, range.qmin, range.qmax));
}

/// Requantizes an outer x channels x inner block of accumulators: channel c uses multiplier[c]
/// (pass channels = 1 for per-tensor). The output zero point is per tensor.
template <class T, class Multiplier>
void requantize(const std::int32_t* acc, T* q, axis_split split, const Multiplier* multiplier,
                std::int32_t zero_point) {
  const quant_range range = full_range(dtype_of<T>());
  std::size_t offset = 0;
  for (std::size_t o = 0; o < split.outer; ++o)
    for (std::size_t c = 0; c < split.channels; ++c)
      for (std::size_t i = 0; i < split.inner; ++i, ++offset)
        q[offset] = static_cast<T>(requantize_value(acc[offset], multiplier[c], zero_point, range));
}

}  // namespace reference
SQUINT_NAMESPACE_END

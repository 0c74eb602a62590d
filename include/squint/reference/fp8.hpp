// SPDX-License-Identifier: Apache-2.0
// reference/fp8.hpp: scalar oracle for the 8-bit float formats (OCP FP8: E4M3 "fn" and E5M2).
//
//   E4M3FN: 1 sign, 4 exponent (bias 7), 3 mantissa bits; no infinity; S.1111.111 is NaN; max 448;
//           smallest subnormal 2^-9.
//   E5M2:   1 sign, 5 exponent (bias 15), 2 mantissa bits; IEEE-like: S.11111.00 is infinity,
//           S.11111.xx (xx != 0) NaN; max 57344; smallest subnormal 2^-16.
//
// float -> fp8 rounds to nearest, ties to even, on the format's grid (subnormals included). A
// result beyond the largest finite value (after rounding, so 464 and above for E4M3FN, 61440 and
// above for E5M2), and +-inf, become +-max when saturating; otherwise NaN (E4M3FN, which has no
// infinity) or +-inf (E5M2). NaN becomes S.1111111 (0x7F with the input's sign). These are ONNX's
// Cast / QuantizeLinear rules (saturate=1 is ONNX's default). fp8 -> float is exact.
// Written with double arithmetic, independently of the kernels' bit manipulation.
#pragma once

#include <cmath>
#include <cstdint>

#include "squint/qparams.hpp"

SQUINT_NAMESPACE_BEGIN

/// The two OCP 8-bit float formats.
enum class fp8_format : std::uint8_t {
  e4m3fn,  ///< 4 exponent, 3 mantissa bits, finite only (max 448): weights and activations
  e5m2,    ///< 5 exponent, 2 mantissa bits, with infinity (max 57344): gradients, wide ranges
};

/// The constants of a format.
struct fp8_traits {
  int mantissa_bits, bias, min_exponent;  ///< min_exponent: that of the smallest normal value
  float max;                              ///< the largest finite value
  std::uint8_t max_code, overflow_code;   ///< +max, and what a non-saturating overflow gives
};

constexpr fp8_traits traits_of(fp8_format f) {
  return f == fp8_format::e4m3fn ? fp8_traits{3, 7, -6, 448.0f, 0x7E, 0x7F} : fp8_traits{2, 15, -14, 57344.0f, 0x7B, 0x7C};
}

namespace reference {

/// float -> fp8 bits (see the top of this header).
inline std::uint8_t float_to_fp8(float x, fp8_format f, bool saturate = true) {
  const fp8_traits t = traits_of(f);
  const std::uint8_t sign = std::signbit(x) ? 0x80 : 0x00;
  if (std::isnan(x)) return static_cast<std::uint8_t>(sign | 0x7F);
  const double a = std::fabs(static_cast<double>(x));
  if (a == 0.0) return sign;
  const auto overflow = [&] { return static_cast<std::uint8_t>(sign | (saturate ? t.max_code : t.overflow_code)); };
  if (std::isinf(a)) return overflow();
  int e = 0;
  std::frexp(a, &e);  // a = f * 2^e, f in [0.5, 1): floor(log2 a) = e - 1
  const int quantum = (e - 1 > t.min_exponent ? e - 1 : t.min_exponent) - t.mantissa_bits;
  const double m = detail::round_half_even(std::ldexp(a, -quantum));
  const double r = std::ldexp(m, quantum);
  if (r > static_cast<double>(t.max)) return overflow();
  if (r < std::ldexp(1.0, t.min_exponent)) return static_cast<std::uint8_t>(sign | static_cast<int>(m));  // subnormal
  int er = 0;
  const double fraction = std::frexp(r, &er);  // r = fraction * 2^er: exponent er - 1, mantissa 2 fraction - 1
  const int mantissa = static_cast<int>((2.0 * fraction - 1.0) * static_cast<double>(1 << t.mantissa_bits));
  return static_cast<std::uint8_t>(sign | ((er - 1 + t.bias) << t.mantissa_bits) | mantissa);
}

/// fp8 bits -> float (exact).
inline float fp8_to_float(std::uint8_t c, fp8_format f) {
  const fp8_traits t = traits_of(f);
  const double sign = (c & 0x80) ? -1.0 : 1.0;
  const int exponent = (c & 0x7F) >> t.mantissa_bits, mantissa = c & ((1 << t.mantissa_bits) - 1);
  const int top = f == fp8_format::e4m3fn ? 15 : 31;
  if (f == fp8_format::e4m3fn && (c & 0x7F) == 0x7F) return std::copysign(NAN, static_cast<float>(sign));
  if (f == fp8_format::e5m2 && exponent == top)
    return mantissa == 0 ? static_cast<float>(sign * HUGE_VAL) : std::copysign(NAN, static_cast<float>(sign));
  const double value = exponent == 0
                           ? std::ldexp(static_cast<double>(mantissa), t.min_exponent - t.mantissa_bits)
                           : std::ldexp(1.0 + mantissa / static_cast<double>(1 << t.mantissa_bits), exponent - t.bias);
  return static_cast<float>(sign * value);
}

/// ONNX QuantizeLinear to fp8: float_to_fp8(x / scale) (float32 division; zero point 0).
inline std::uint8_t quantize_fp8_value(float x, float scale, fp8_format f, bool saturate = true) {
  return float_to_fp8(x / scale, f, saturate);
}

/// ONNX DequantizeLinear from fp8: fp8_to_float(c) * scale in float32.
inline float dequantize_fp8_value(std::uint8_t c, float scale, fp8_format f) { return fp8_to_float(c, f) * scale; }

}  // namespace reference
SQUINT_NAMESPACE_END

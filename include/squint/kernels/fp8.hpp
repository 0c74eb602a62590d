// SPDX-License-Identifier: Apache-2.0
// kernels/fp8.hpp: float <-> FP8 (E4M3FN, E5M2) with a scale, as ONNX QuantizeLinear and
// DequantizeLinear to and from float8.
//
// Encoding on xsimd batches with integer bit operations: the quantum of each value is 2 to its
// exponent (no lower than the smallest normal's) minus the mantissa bits, the value is rounded
// to a multiple of it with the ISA's explicit round-to-even (exact: scaling by a power of two),
// and the code is put together from the rounded value's exponent and top mantissa bits (or is
// the multiple itself below the smallest normal). Overflow, infinity and NaN are selected last.
// Codes equal reference::float_to_fp8 bit for bit; decoding is exact. Unchecked and noexcept:
// squint/fp8.hpp's entry points validate first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "squint/kernels/quantize.hpp"
#include "squint/reference/fp8.hpp"

namespace squint::kernels {

/// The format travels as `e5m2` (else E4M3FN): kernel signatures hold only builtin types, which
/// name the same thing in every arch's object.
template <class Arch>
struct fp8_kernel {
  /// q[i] = float_to_fp8(x[i] / scale) (float32 division).
  static void quantize(const float* x, std::uint8_t* q, std::size_t n, float scale, bool e5m2,
                       bool saturate) noexcept;
  /// x[i] = fp8_to_float(q[i]) * scale.
  static void dequantize(const std::uint8_t* q, float* x, std::size_t n, float scale, bool e5m2) noexcept;
};

namespace detail_fp8 {

/// The codes (0..255 in int32 lanes) of v.
template <class Arch>
SQUINT_ALWAYS_INLINE typename ops<Arch>::vi encode(typename ops<Arch>::vf v, const fp8_traits& t, bool saturate) {
  using O = ops<Arch>;
  using vf = typename O::vf;
  using vi = typename O::vi;
  const vi bits = xsimd::bitwise_cast<vi>(v);
  const vi sign = (bits >> 31) & vi(1);
  const vf a = xsimd::bitwise_cast<vf>(bits & vi(0x7FFFFFFF));
  // Biased exponent of the quantum's binade: the value's, or the smallest normal's below it.
  const vi binade = xsimd::max(xsimd::bitwise_cast<vi>(a) >> 23, vi(t.min_exponent + 127));
  const vf inverse_quantum = xsimd::bitwise_cast<vf>((vi(254 + t.mantissa_bits) - binade) << 23);
  const vf quantum = xsimd::bitwise_cast<vf>((binade - vi(t.mantissa_bits)) << 23);
  const vf m = O::round_even(a * inverse_quantum);
  const vf r = m * quantum;
  const vi rbits = xsimd::bitwise_cast<vi>(r);
  const vi normal = (((rbits >> 23) - vi(127 - t.bias)) << t.mantissa_bits) |
                    ((rbits >> (23 - t.mantissa_bits)) & vi((1 << t.mantissa_bits) - 1));
  const vf smallest_normal = xsimd::bitwise_cast<vf>(vi(t.min_exponent + 127) << 23);
  vf code = xsimd::select(r < smallest_normal, m, O::to_float(normal));
  code = xsimd::select(r > vf(t.max), vf(static_cast<float>(saturate ? t.max_code : t.overflow_code)), code);
  code = xsimd::select(v == v, code, vf(127.0f));  // NaN (masked last: SSE2's rounding mangles it)
  return O::to_int(code) + (sign << 7);
}

/// The floats of codes c (0..255 in int32 lanes).
template <class Arch>
SQUINT_ALWAYS_INLINE typename ops<Arch>::vf decode(typename ops<Arch>::vi c, const fp8_traits& t, bool e4m3fn) {
  using O = ops<Arch>;
  using vf = typename O::vf;
  using vi = typename O::vi;
  const vi sign = (c & vi(0x80)) << 24;
  const vi magnitude = c & vi(0x7F);
  const vi exponent = magnitude >> t.mantissa_bits, mantissa = magnitude & vi((1 << t.mantissa_bits) - 1);
  const vf normal = xsimd::bitwise_cast<vf>(sign | ((exponent + vi(127 - t.bias)) << 23) |
                                            (mantissa << (23 - t.mantissa_bits)));
  const vf tiny = xsimd::bitwise_cast<vf>(vi(t.min_exponent - t.mantissa_bits + 127) << 23);
  const vf subnormal = xsimd::bitwise_cast<vf>(xsimd::bitwise_cast<vi>(O::to_float(mantissa) * tiny) | sign);
  vf value = xsimd::select(O::to_float(exponent) == vf(0.0f), subnormal, normal);
  const vf nan = xsimd::bitwise_cast<vf>(sign | vi(0x7FC00000)), inf = xsimd::bitwise_cast<vf>(sign | vi(0x7F800000));
  const vf mag = O::to_float(magnitude);
  if (e4m3fn) return xsimd::select(mag == vf(127.0f), nan, value);
  value = xsimd::select(mag == vf(124.0f), inf, value);  // S.11111.00
  return xsimd::select(mag > vf(124.0f), nan, value);
}

}  // namespace detail_fp8

template <class Arch>
void fp8_kernel<Arch>::quantize(const float* x, std::uint8_t* q, std::size_t n, float scale, bool e5m2,
                                bool saturate) noexcept {
  const fp8_format f = e5m2 ? fp8_format::e5m2 : fp8_format::e4m3fn;
  if constexpr (std::is_same<Arch, arch::scalar>::value) {
    for (std::size_t i = 0; i < n; ++i) q[i] = reference::quantize_fp8_value(x[i], scale, f, saturate);
  } else {
    using O = ops<Arch>;
    using vf = typename O::vf;
    constexpr std::size_t L = O::lanes;
    const fp8_traits t = traits_of(f);
    const vf s(scale);
    detail_quantize::blocks<Arch, float, std::uint8_t, 4 * L>(x, q, n, [&](const float* in, std::uint8_t* out) {
      const auto r0 = detail_fp8::encode<Arch>(O::div(vf::load_unaligned(in), s), t, saturate);
      const auto r1 = detail_fp8::encode<Arch>(O::div(vf::load_unaligned(in + L), s), t, saturate);
      const auto r2 = detail_fp8::encode<Arch>(O::div(vf::load_unaligned(in + 2 * L), s), t, saturate);
      const auto r3 = detail_fp8::encode<Arch>(O::div(vf::load_unaligned(in + 3 * L), s), t, saturate);
      O::template store_narrow<std::uint8_t>(out, r0, r1, r2, r3);
    });
  }
}

template <class Arch>
void fp8_kernel<Arch>::dequantize(const std::uint8_t* q, float* x, std::size_t n, float scale,
                                  bool e5m2) noexcept {
  const fp8_format f = e5m2 ? fp8_format::e5m2 : fp8_format::e4m3fn;
  if constexpr (std::is_same<Arch, arch::scalar>::value) {
    for (std::size_t i = 0; i < n; ++i) x[i] = reference::dequantize_fp8_value(q[i], scale, f);
  } else {
    using O = ops<Arch>;
    using vf = typename O::vf;
    using vi = typename O::vi;
    constexpr std::size_t L = O::lanes;
    const fp8_traits t = traits_of(f);
    const vf s(scale);
    detail_quantize::blocks<Arch, std::uint8_t, float, 4 * L>(q, x, n, [&](const std::uint8_t* in, float* out) {
      vi w[4];
      O::template load_widen<std::uint8_t>(in, w);
      for (std::size_t j = 0; j < 4; ++j) (detail_fp8::decode<Arch>(w[j], t, !e5m2) * s).store_unaligned(out + j * L);
    });
  }
}

}  // namespace squint::kernels

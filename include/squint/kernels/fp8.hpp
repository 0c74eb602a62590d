// SPDX-License-Identifier: Apache-2.0
// kernels/fp8.hpp: float <-> FP8 (E4M3FN, E5M2) with a scale, as ONNX QuantizeLinear and
// DequantizeLinear to and from float8.
//
// On xsimd batches, one instantiation per format. Encoding: one float addition of a per-value
// power of two rounds each value to the format's grid, integer arithmetic counts its quanta
// into the code, and a clamp, a minimum and a select give saturation, overflow and NaN.
// Decoding: an integer add rebiases a normal code's fields moved into float's, a conversion
// and a product give the subnormals, selects the specials.
// Codes equal reference::float_to_fp8 bit for bit; decoding is exact. Unchecked and noexcept:
// squint/fp8.hpp's entry points validate first.
#pragma once

#include <cmath>
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

/// The codes (0..255 in int32 lanes) of v in format F, |v| clamped to `clamp` first (max when
/// saturating: the rounding then cannot pass it; else 2 max: whatever rounds above max still
/// does, and the exponent arithmetic below stays in range, inf included).
/// With c = |v| in binade 2^e, e no lower than the smallest normal's, and M = 2^(e + 23 -
/// mantissa bits), the float sum c + M has the format's quantum at e as its ulp: one addition
/// rounds c to the grid, to nearest even (the caller's rounding mode: the entry points set it),
/// and bits(c + M) - bits(M) counts the quanta. The code is then ((e - the smallest normal's
/// exponent) << mantissa bits) + that count, subnormals, and a rounding that carries into the
/// next binade, included.
template <class Arch, fp8_format F>
SQUINT_ALWAYS_INLINE typename ops<Arch>::vi encode(typename ops<Arch>::vf v, typename ops<Arch>::vf clamp) {
  using vf = typename ops<Arch>::vf;
  using vi = typename ops<Arch>::vi;
  constexpr fp8_traits t = traits_of(F);
  const vi smallest_normal((t.min_exponent + 127) << 23);
  const vi bits = xsimd::bitwise_cast<vi>(v);
  const vi magnitude = bits & vi(0x7FFFFFFF);
  const vf c = xsimd::min(xsimd::bitwise_cast<vf>(magnitude), clamp);
  const vi binade = xsimd::max(xsimd::bitwise_cast<vi>(c) & vi(0x7F800000), smallest_normal);
  const vi magic = binade + vi((23 - t.mantissa_bits) << 23);
  const vi quanta = xsimd::bitwise_cast<vi>(c + xsimd::bitwise_cast<vf>(magic)) - magic;
  vi code = ((binade - smallest_normal) >> (23 - t.mantissa_bits)) + quanta;
  code = xsimd::min(code, vi(t.overflow_code));  // non-saturating overflow: NaN (E4M3FN) or inf (E5M2)
  code = xsimd::select(magnitude > vi(0x7F800000), vi(0x7F), code);  // NaN
  return code | ((bits >> 24) & vi(0x80));
}

/// q = codes of x / scale in format F (the blocks of fp8_kernel::quantize).
template <class Arch, fp8_format F>
void quantize(const float* x, std::uint8_t* q, std::size_t n, float scale, bool saturate) {
  using O = ops<Arch>;
  using vf = typename O::vf;
  constexpr std::size_t L = O::lanes;
  constexpr fp8_traits t = traits_of(F);
  const vf s(scale), clamp(saturate ? t.max : 2.0f * t.max);
  detail_quantize::blocks<Arch, float, std::uint8_t, 4 * L>(x, q, n, [&](const float* in, std::uint8_t* out) {
    O::template store_narrow<std::uint8_t>(out, encode<Arch, F>(O::div(vf::load_unaligned(in), s), clamp),
                                           encode<Arch, F>(O::div(vf::load_unaligned(in + L), s), clamp),
                                           encode<Arch, F>(O::div(vf::load_unaligned(in + 2 * L), s), clamp),
                                           encode<Arch, F>(O::div(vf::load_unaligned(in + 3 * L), s), clamp));
  });
}

/// The floats of codes c (0..255 in int32 lanes) of format F. A normal code's exponent and
/// mantissa fields, moved up into float's, need only the exponent rebiased (one integer add); a
/// subnormal one (exponent field 0) is its mantissa times the smallest subnormal.
template <class Arch, fp8_format F>
SQUINT_ALWAYS_INLINE typename ops<Arch>::vf decode(typename ops<Arch>::vi c) {
  using O = ops<Arch>;
  using vf = typename O::vf;
  using vi = typename O::vi;
  constexpr fp8_traits t = traits_of(F);
  const vi sign = (c & vi(0x80)) << 24;
  const vi magnitude = c & vi(0x7F);
  const vi normal = (magnitude << (23 - t.mantissa_bits)) + vi((127 - t.bias) << 23);
  const vf tiny = xsimd::bitwise_cast<vf>(vi(t.min_exponent - t.mantissa_bits + 127) << 23);
  vi value = xsimd::select(magnitude < vi(1 << t.mantissa_bits),
                           xsimd::bitwise_cast<vi>(O::to_float(magnitude) * tiny), normal);
  if constexpr (F == fp8_format::e4m3fn) {
    value = xsimd::select(magnitude == vi(0x7F), vi(0x7FC00000), value);  // NaN
  } else {
    value = xsimd::select(magnitude == vi(0x7C), vi(0x7F800000), value);  // S.11111.00: infinity
    value = xsimd::select(magnitude > vi(0x7C), vi(0x7FC00000), value);   // NaN
  }
  return xsimd::bitwise_cast<vf>(value | sign);
}

#if XSIMD_WITH_AVX2 && defined(__F16C__)
/// The fp16 bits of 16 codes of format F: for E4M3FN value * 2^-8 (the code's 7 low bits moved
/// up by 7 are an fp16 with E4M3's fields, fp16's exponent bias being 8 more, subnormals
/// included), for E5M2 the value itself (fp16's top byte); NaN codes become fp16's quiet NaN
/// with their sign, which the hardware widens to reference::fp8_to_float's NaN. vcvtph2ps then
/// converts exactly, fp16 subnormals included (MXCSR.DAZ does not apply to fp16 inputs).
template <class Arch, fp8_format F>
SQUINT_ALWAYS_INLINE __m256i half_bits(__m128i codes) {
  const __m256i c = _mm256_cvtepu8_epi16(codes);
  const __m256i magnitude = _mm256_and_si256(c, _mm256_set1_epi16(0x7F));
  __m256i h, nan;
  if constexpr (F == fp8_format::e4m3fn) {
    // code << 8 puts the sign at bit 15; an arithmetic shift by 1 moves the rest to bits 7..14
    // and copies the sign into bit 14, which the mask clears.
    h = _mm256_and_si256(_mm256_srai_epi16(_mm256_slli_epi16(c, 8), 1), _mm256_set1_epi16(static_cast<short>(0xBFFF)));
    nan = _mm256_cmpeq_epi16(magnitude, _mm256_set1_epi16(0x7F));
  } else {
    h = _mm256_slli_epi16(c, 8);
    nan = _mm256_cmpgt_epi16(magnitude, _mm256_set1_epi16(0x7C));
  }
  const __m256i quiet = _mm256_or_si256(_mm256_and_si256(h, _mm256_set1_epi16(static_cast<short>(0x8000))),
                                        _mm256_set1_epi16(0x7E00));
  return _mm256_blendv_epi8(h, quiet, nan);
}

/// dequantize on the fp16 conversion: E4M3FN's 2^-8 is folded into the scale (exact while
/// scale * 2^8 is finite: the product then rounds once, as fp8_to_float(c) * scale does).
template <class Arch, fp8_format F>
void dequantize_via_half(const std::uint8_t* q, float* x, std::size_t n, float scale) {
  constexpr std::size_t step = 64;
  detail_quantize::blocks<Arch, std::uint8_t, float, step>(q, x, n, [&](const std::uint8_t* in, float* out) {
    for (std::size_t j = 0; j < step; j += 16) {
      const __m256i h = half_bits<Arch, F>(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + j)));
#if XSIMD_WITH_AVX512F
      if constexpr (std::is_same<Arch, arch::avx512bw>::value) {
        _mm512_storeu_ps(out + j, _mm512_mul_ps(_mm512_cvtph_ps(h), _mm512_set1_ps(scale)));
        continue;
      }
#endif
      _mm256_storeu_ps(out + j, _mm256_mul_ps(_mm256_cvtph_ps(_mm256_castsi256_si128(h)), _mm256_set1_ps(scale)));
      _mm256_storeu_ps(out + j + 8, _mm256_mul_ps(_mm256_cvtph_ps(_mm256_extracti128_si256(h, 1)), _mm256_set1_ps(scale)));
    }
  });
}
#endif

/// x = floats of codes q in format F times scale (the blocks of fp8_kernel::dequantize).
template <class Arch, fp8_format F>
void dequantize(const std::uint8_t* q, float* x, std::size_t n, float scale) {
#if XSIMD_WITH_AVX2 && defined(__F16C__)
  if constexpr (std::is_same<Arch, arch::avx2>::value || std::is_same<Arch, arch::avx512bw>::value) {
    const float factor = F == fp8_format::e4m3fn ? 256.0f : 1.0f;
    if (std::isfinite(scale * factor)) return dequantize_via_half<Arch, F>(q, x, n, scale * factor);
  }
#endif
  using O = ops<Arch>;
  using vf = typename O::vf;
  using vi = typename O::vi;
  constexpr std::size_t L = O::lanes;
  const vf s(scale);
  detail_quantize::blocks<Arch, std::uint8_t, float, 4 * L>(q, x, n, [&](const std::uint8_t* in, float* out) {
    vi w[4];
    O::template load_widen<std::uint8_t>(in, w);
    for (std::size_t j = 0; j < 4; ++j) (decode<Arch, F>(w[j]) * s).store_unaligned(out + j * L);
  });
}

}  // namespace detail_fp8

template <class Arch>
void fp8_kernel<Arch>::quantize(const float* x, std::uint8_t* q, std::size_t n, float scale, bool e5m2,
                                bool saturate) noexcept {
  if constexpr (std::is_same<Arch, arch::scalar>::value) {
    const fp8_format f = e5m2 ? fp8_format::e5m2 : fp8_format::e4m3fn;
    for (std::size_t i = 0; i < n; ++i) q[i] = reference::quantize_fp8_value(x[i], scale, f, saturate);
  } else if (e5m2) {
    detail_fp8::quantize<Arch, fp8_format::e5m2>(x, q, n, scale, saturate);
  } else {
    detail_fp8::quantize<Arch, fp8_format::e4m3fn>(x, q, n, scale, saturate);
  }
}

template <class Arch>
void fp8_kernel<Arch>::dequantize(const std::uint8_t* q, float* x, std::size_t n, float scale,
                                  bool e5m2) noexcept {
  if constexpr (std::is_same<Arch, arch::scalar>::value) {
    const fp8_format f = e5m2 ? fp8_format::e5m2 : fp8_format::e4m3fn;
    for (std::size_t i = 0; i < n; ++i) x[i] = reference::dequantize_fp8_value(q[i], scale, f);
  } else if (e5m2) {
    detail_fp8::dequantize<Arch, fp8_format::e5m2>(q, x, n, scale);
  } else {
    detail_fp8::dequantize<Arch, fp8_format::e4m3fn>(q, x, n, scale);
  }
}

}  // namespace squint::kernels

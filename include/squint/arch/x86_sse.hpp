// SPDX-License-Identifier: Apache-2.0
// arch/x86_sse.hpp: SSE2 and SSE4.1 primitives (4 float lanes).
#pragma once

#include <cstddef>
#include <cstdint>

#include "squint/arch/tags.hpp"

#if XSIMD_WITH_SSE2
#include <emmintrin.h>

#include <type_traits>
#if XSIMD_WITH_SSE4_1
#include <smmintrin.h>
#endif

namespace squint::kernels {

/// Shared by the 128-bit x86 families; `Round` supplies round_even.
template <class Family>
struct sse_ops_base {
  using simd = typename Family::simd;
  using vf = xsimd::batch<float, simd>;
  using vi = xsimd::batch<std::int32_t, simd>;
  static constexpr std::size_t lanes = 4;
  static constexpr bool has_half = false;
  static constexpr bool has_stream = true;

  static vf div(vf a, vf b) { return _mm_div_ps(a, b); }

  using vd = xsimd::batch<double, simd>;
  /// lanes / 2 floats widened to doubles (exact).
  static vd load_widen_double(const float* src) {
    return _mm_cvtps_pd(_mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(src))));
  }
  /// Truncating double -> int32 for lanes / 2 values in int32 range.
  static void store_truncated(std::int32_t* dst, vd v) {
    _mm_storel_epi64(reinterpret_cast<__m128i*>(dst), _mm_cvttpd_epi32(v));
  }
  static vi to_int(vf v) { return _mm_cvttps_epi32(v); }
  static vf to_float(vi v) { return _mm_cvtepi32_ps(v); }

  /// Four in-range int32 batches as 16 codes of T.
  template <class T>
  static __m128i pack(vi a, vi b, vi c, vi d) {
    const __m128i ab = _mm_packs_epi32(a, b);
    const __m128i cd = _mm_packs_epi32(c, d);
    return std::is_same<T, std::int8_t>::value ? _mm_packs_epi16(ab, cd) : _mm_packus_epi16(ab, cd);
  }
  template <class T>
  static void store_narrow(T* dst, vi a, vi b, vi c, vi d) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), pack<T>(a, b, c, d));
  }
  /// store_narrow with a non-temporal store; dst is 16-byte aligned.
  template <class T>
  static void stream_narrow(T* dst, vi a, vi b, vi c, vi d) {
    _mm_stream_si128(reinterpret_cast<__m128i*>(dst), pack<T>(a, b, c, d));
  }
  static void stream_fence() { _mm_sfence(); }
};

template <>
struct ops<arch::sse2> : sse_ops_base<arch::sse2> {
  /// SSE2 has no rounding instruction: truncate, then step away from zero when the dropped
  /// fraction is above one half, or exactly one half and the truncated value is odd. Every
  /// step is exact, so no rounding mode is involved. |v| >= 2^23 is integral already and passes
  /// through (the truncation would overflow int32 from 2^31, which wide fake-quantize ranges reach).
  static vf round_even(vf v) {
    const __m128 magnitude = _mm_andnot_ps(_mm_castsi128_ps(_mm_set1_epi32(static_cast<int>(0x80000000u))), v);
    const __m128 integral = _mm_cmpge_ps(magnitude, _mm_set1_ps(8388608.0f));
    return _mm_or_ps(_mm_and_ps(integral, v), _mm_andnot_ps(integral, round_small(v)));
  }
  /// round_even for |v| < 2^31.
  static vf round_small(vf v) {
    const __m128i t = _mm_cvttps_epi32(v);
    const __m128 tf = _mm_cvtepi32_ps(t);
    const __m128 frac = _mm_sub_ps(v, tf);  // exact: v and tf share the integer part
    const __m128 sign = _mm_and_ps(v, _mm_castsi128_ps(_mm_set1_epi32(static_cast<int>(0x80000000u))));
    const __m128 afrac = _mm_andnot_ps(_mm_castsi128_ps(_mm_set1_epi32(static_cast<int>(0x80000000u))), frac);
    const __m128 half = _mm_set1_ps(0.5f);
    const __m128i odd = _mm_slli_epi32(t, 31);
    const __m128 up = _mm_or_ps(_mm_cmpgt_ps(afrac, half),
                                _mm_and_ps(_mm_cmpeq_ps(afrac, half), _mm_castsi128_ps(_mm_cmplt_epi32(odd, _mm_setzero_si128()))));
    const __m128 step = _mm_or_ps(_mm_and_ps(up, _mm_set1_ps(1.0f)), sign);  // +-1 or +-0
    return _mm_add_ps(tf, _mm_and_ps(up, step));
  }

  template <class T>
  static void load_widen(const T* src, vi out[4]) {
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src));
    if (std::is_same<T, std::int8_t>::value) {
      const __m128i lo16 = _mm_srai_epi16(_mm_unpacklo_epi8(bytes, bytes), 8);
      const __m128i hi16 = _mm_srai_epi16(_mm_unpackhi_epi8(bytes, bytes), 8);
      out[0] = _mm_srai_epi32(_mm_unpacklo_epi16(lo16, lo16), 16);
      out[1] = _mm_srai_epi32(_mm_unpackhi_epi16(lo16, lo16), 16);
      out[2] = _mm_srai_epi32(_mm_unpacklo_epi16(hi16, hi16), 16);
      out[3] = _mm_srai_epi32(_mm_unpackhi_epi16(hi16, hi16), 16);
    } else {
      const __m128i zero = _mm_setzero_si128();
      const __m128i lo16 = _mm_unpacklo_epi8(bytes, zero);
      const __m128i hi16 = _mm_unpackhi_epi8(bytes, zero);
      out[0] = _mm_unpacklo_epi16(lo16, zero);
      out[1] = _mm_unpackhi_epi16(lo16, zero);
      out[2] = _mm_unpacklo_epi16(hi16, zero);
      out[3] = _mm_unpackhi_epi16(hi16, zero);
    }
  }
};

#if XSIMD_WITH_SSE4_1
template <>
struct ops<arch::sse41> : sse_ops_base<arch::sse41> {
  static vf round_even(vf v) { return _mm_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }

  template <class T>
  static void load_widen(const T* src, vi out[4]) {
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src));
    const bool s8 = std::is_same<T, std::int8_t>::value;
    out[0] = s8 ? _mm_cvtepi8_epi32(bytes) : _mm_cvtepu8_epi32(bytes);
    out[1] = s8 ? _mm_cvtepi8_epi32(_mm_srli_si128(bytes, 4)) : _mm_cvtepu8_epi32(_mm_srli_si128(bytes, 4));
    out[2] = s8 ? _mm_cvtepi8_epi32(_mm_srli_si128(bytes, 8)) : _mm_cvtepu8_epi32(_mm_srli_si128(bytes, 8));
    out[3] = s8 ? _mm_cvtepi8_epi32(_mm_srli_si128(bytes, 12)) : _mm_cvtepu8_epi32(_mm_srli_si128(bytes, 12));
  }
};
#endif

}  // namespace squint::kernels
#endif

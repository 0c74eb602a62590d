// SPDX-License-Identifier: Apache-2.0
// arch/x86_avx2.hpp: AVX2 + FMA + F16C primitives (8 float lanes).
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "squint/arch/tags.hpp"

#if XSIMD_WITH_AVX2 && XSIMD_WITH_FMA3_AVX2 && defined(__F16C__)
#include <immintrin.h>

namespace squint::kernels {

template <>
struct ops<arch::avx2> {
  using simd = arch::avx2::simd;
  using vf = xsimd::batch<float, simd>;
  using vi = xsimd::batch<std::int32_t, simd>;
  static constexpr std::size_t lanes = 8;
  static constexpr bool has_half = true;
  static constexpr bool has_stream = true;

  static vf div(vf a, vf b) { return _mm256_div_ps(a, b); }
  using vd = xsimd::batch<double, simd>;
  /// lanes / 2 floats widened to doubles (exact).
  static vd load_widen_double(const float* src) { return _mm256_cvtps_pd(_mm_loadu_ps(src)); }
  /// Truncating double -> int32 for lanes / 2 values in int32 range.
  static void store_truncated(std::int32_t* dst, vd v) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), _mm256_cvttpd_epi32(v));
  }
  static vf round_even(vf v) { return _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static vi to_int(vf v) { return _mm256_cvttps_epi32(v); }
  static vf to_float(vi v) { return _mm256_cvtepi32_ps(v); }

  /// Four in-range int32 batches as 32 codes of T, in element order.
  template <class T>
  static __m256i pack(vi a, vi b, vi c, vi d) {
    // Packs work within 128-bit lanes; the dword permute restores element order.
    const __m256i ab = _mm256_packs_epi32(a, b);
    const __m256i cd = _mm256_packs_epi32(c, d);
    const __m256i bytes = std::is_same<T, std::int8_t>::value ? _mm256_packs_epi16(ab, cd) : _mm256_packus_epi16(ab, cd);
    return _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  }
  template <class T>
  static void store_narrow(T* dst, vi a, vi b, vi c, vi d) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), pack<T>(a, b, c, d));
  }
  /// store_narrow with a non-temporal store; dst is 32-byte aligned.
  template <class T>
  static void stream_narrow(T* dst, vi a, vi b, vi c, vi d) {
    _mm256_stream_si256(reinterpret_cast<__m256i*>(dst), pack<T>(a, b, c, d));
  }
  static void stream_fence() { _mm_sfence(); }

  template <class T>
  static void load_widen(const T* src, vi out[4]) {
    for (int i = 0; i < 4; ++i) {
      const __m128i v = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(src + 8 * i));
      out[i] = std::is_same<T, std::int8_t>::value ? _mm256_cvtepi8_epi32(v) : _mm256_cvtepu8_epi32(v);
    }
  }

  static void store_half(std::uint16_t* dst, vf v) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  static vf load_half(const std::uint16_t* src) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src)));
  }
};

}  // namespace squint::kernels
#endif

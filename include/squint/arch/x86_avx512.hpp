// SPDX-License-Identifier: Apache-2.0
// arch/x86_avx512.hpp: AVX-512 F/BW/DQ/VL primitives (16 float lanes).
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "squint/arch/tags.hpp"

#if XSIMD_WITH_AVX512BW && XSIMD_WITH_AVX512DQ && defined(__AVX512VL__) && defined(__F16C__) && defined(__FMA__)
#include <immintrin.h>

namespace squint::kernels {

template <>
struct ops<arch::avx512bw> {
  using simd = arch::avx512bw::simd;
  using vf = xsimd::batch<float, simd>;
  using vi = xsimd::batch<std::int32_t, simd>;
  static constexpr std::size_t lanes = 16;
  static constexpr bool has_half = true;
  static constexpr bool has_stream = true;

  static vf div(vf a, vf b) { return _mm512_div_ps(a, b); }
  using vd = xsimd::batch<double, simd>;
  /// lanes / 2 floats widened to doubles (exact).
  static vd load_widen_double(const float* src) { return _mm512_cvtps_pd(_mm256_loadu_ps(src)); }
  /// Truncating double -> int32 for lanes / 2 values in int32 range.
  static void store_truncated(std::int32_t* dst, vd v) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), _mm512_cvttpd_epi32(v));
  }
  static vf round_even(vf v) { return _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static vi to_int(vf v) { return _mm512_cvttps_epi32(v); }
  static vf to_float(vi v) { return _mm512_cvtepi32_ps(v); }

  template <class T>
  static void store_narrow(T* dst, vi a, vi b, vi c, vi d) {
    // vpmovdb truncates; the values are in range, so this is exact for int8 and uint8.
    __m128i* out = reinterpret_cast<__m128i*>(dst);
    _mm_storeu_si128(out + 0, _mm512_cvtepi32_epi8(a));
    _mm_storeu_si128(out + 1, _mm512_cvtepi32_epi8(b));
    _mm_storeu_si128(out + 2, _mm512_cvtepi32_epi8(c));
    _mm_storeu_si128(out + 3, _mm512_cvtepi32_epi8(d));
  }

  /// store_narrow with a non-temporal store; dst is 64-byte aligned.
  template <class T>
  static void stream_narrow(T* dst, vi a, vi b, vi c, vi d) {
    __m512i bytes = _mm512_castsi128_si512(_mm512_cvtepi32_epi8(a));
    bytes = _mm512_inserti32x4(bytes, _mm512_cvtepi32_epi8(b), 1);
    bytes = _mm512_inserti32x4(bytes, _mm512_cvtepi32_epi8(c), 2);
    bytes = _mm512_inserti32x4(bytes, _mm512_cvtepi32_epi8(d), 3);
    _mm512_stream_si512(reinterpret_cast<__m512i*>(dst), bytes);
  }
  static void stream_fence() { _mm_sfence(); }

  template <class T>
  static void load_widen(const T* src, vi out[4]) {
    for (int i = 0; i < 4; ++i) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 16 * i));
      out[i] = std::is_same<T, std::int8_t>::value ? _mm512_cvtepi8_epi32(v) : _mm512_cvtepu8_epi32(v);
    }
  }

  static void store_half(std::uint16_t* dst, vf v) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst),
                        _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  static vf load_half(const std::uint16_t* src) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src)));
  }
};

}  // namespace squint::kernels
#endif

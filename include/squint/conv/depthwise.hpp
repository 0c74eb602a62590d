// SPDX-License-Identifier: Apache-2.0
// conv/depthwise.hpp: the int8 depthwise convolution kernels, one per ISA family.
//
// A depthwise layer has one filter per channel, so there is no reduction over channels for a
// GEMM to block: each output pixel is, per channel, a dot product over the kernel's taps. The
// kernels vectorize over channels (NHWC keeps them contiguous) and read each tap through a
// pointer (XNNPACK's indirection: taps in the padding point at a row of zero-point bytes, so they
// add nothing and no padded copy of the image exists).
//
// Weights are packed once as int16 w - w_zero_point (in [-255, 255]) with the taps in pairs,
// channel by channel: element [(pair * channels + c) * 2 + tap % 2] (an odd last tap pairs with a
// zero weight). Inputs become x - x_zero_point in int16 (also in [-255, 255]), so a pair of taps
// of one channel is one pmaddwd lane: two products of at most 65025, exact in int32, as is the
// sum over up to squint::gemm_max_k taps.
//   AVX-512BW: 16 channels per zmm (two 16-byte loads interleaved by punpck{l,h}bw, widened).
//   AVX2:      8 channels per ymm, the same interleave on 8-byte halves.
//   SSE4.1:    4 channels per xmm.
//   NEON:      vld2q_s16 splits the pairs back into taps; smlal / smlal2 multiply-accumulate.
//   scalar:    plain loops (and every ISA's channel tail).
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "squint/arch/tags.hpp"

#if defined(__SSE4_1__) || defined(__AVX2__)
#include <immintrin.h>
#endif
#if defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#endif

namespace squint::kernels {

template <class Arch>
struct depthwise_kernel {
  /// out[c] = init[c] + sum over t < tap_count of (x_t[c] - a_zero_point) * (w_t[c] - w_zp[c])
  /// for c < channels, where x_t = taps[t] (uint8, or int8 with a_signed) and the weights are
  /// packed as this header describes; init may be null (zero). Sums wrap modulo 2^32 with init.
  static void run(const std::uint8_t* const* taps, std::size_t tap_count, bool a_signed, std::int32_t a_zero_point,
                  const std::int16_t* weights, std::size_t channels, const std::int32_t* init,
                  std::int32_t* out) noexcept;
};

namespace detail_depthwise {

/// Channels [c0, channels) in plain C++: the scalar kernel and every ISA's tail.
template <class Arch, bool Signed>
void run_scalar(const std::uint8_t* const* taps, std::size_t tap_count, std::int32_t a_zero_point,
                const std::int16_t* weights, std::size_t channels, const std::int32_t* init, std::int32_t* out,
                std::size_t c0) {
  const std::size_t pairs = (tap_count + 1) / 2;
  for (std::size_t c = c0; c < channels; ++c) {
    std::uint32_t acc = init ? static_cast<std::uint32_t>(init[c]) : 0u;
    for (std::size_t p = 0; p < pairs; ++p) {
      const std::size_t t1 = 2 * p + 1 < tap_count ? 2 * p + 1 : 2 * p;
      const std::int32_t x0 = (Signed ? static_cast<std::int8_t>(taps[2 * p][c]) : taps[2 * p][c]) - a_zero_point;
      const std::int32_t x1 = (Signed ? static_cast<std::int8_t>(taps[t1][c]) : taps[t1][c]) - a_zero_point;
      const std::int16_t* w = weights + (p * channels + c) * 2;
      acc += static_cast<std::uint32_t>(x0 * w[0] + x1 * w[1]);
    }
    out[c] = static_cast<std::int32_t>(acc);
  }
}

// Each ISA's body is templated on the arch tag it is compiled for and compiled only under its
// flags (only the kernel of the arch a translation unit instantiates is used there).
#if defined(__AVX512BW__) && defined(__AVX512VL__)
template <class Arch, bool Signed>
inline __m512i widen_pairs_zmm(__m128i x0, __m128i x1, __m512i zero_point) {
  const __m256i pairs = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_unpacklo_epi8(x0, x1)),
                                                _mm_unpackhi_epi8(x0, x1), 1);
  return _mm512_sub_epi16(Signed ? _mm512_cvtepi8_epi16(pairs) : _mm512_cvtepu8_epi16(pairs), zero_point);
}
#endif

#if defined(__AVX2__)
template <class Arch, bool Signed>
inline __m256i widen_pairs_ymm(__m128i pairs, __m256i zero_point) {
  return _mm256_sub_epi16(Signed ? _mm256_cvtepi8_epi16(pairs) : _mm256_cvtepu8_epi16(pairs), zero_point);
}
#endif

#if defined(__SSE4_1__)
template <class Arch, bool Signed>
inline __m128i widen_pairs_xmm(__m128i pairs, __m128i zero_point) {
  return _mm_sub_epi16(Signed ? _mm_cvtepi8_epi16(pairs) : _mm_cvtepu8_epi16(pairs), zero_point);
}
#endif

/// Returns how many leading channels the vector body covered; the caller runs the rest.
template <class Arch, bool Signed>
std::size_t run_simd(const std::uint8_t* const* taps, std::size_t tap_count, std::int32_t a_zero_point,
                     const std::int16_t* weights, std::size_t channels, const std::int32_t* init, std::int32_t* out) {
  const std::size_t pairs = (tap_count + 1) / 2;
  std::size_t c = 0;
  (void)taps, (void)pairs, (void)a_zero_point, (void)weights, (void)init, (void)out;
  if constexpr (std::is_same_v<Arch, arch::avx512bw>) {
#if defined(__AVX512BW__) && defined(__AVX512VL__)
    const __m512i zp = _mm512_set1_epi16(static_cast<std::int16_t>(a_zero_point));
    for (; c + 32 <= channels; c += 32) {
      __m512i acc0 = init ? _mm512_loadu_si512(init + c) : _mm512_setzero_si512();
      __m512i acc1 = init ? _mm512_loadu_si512(init + c + 16) : _mm512_setzero_si512();
      for (std::size_t p = 0; p < pairs; ++p) {
        const std::uint8_t* x0 = taps[2 * p] + c;
        const std::uint8_t* x1 = taps[2 * p + 1 < tap_count ? 2 * p + 1 : 2 * p] + c;
        const std::int16_t* w = weights + (p * channels + c) * 2;
        const __m512i v0 = widen_pairs_zmm<Arch, Signed>(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x0)),
                                                         _mm_loadu_si128(reinterpret_cast<const __m128i*>(x1)), zp);
        const __m512i v1 = widen_pairs_zmm<Arch, Signed>(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x0 + 16)),
                                                         _mm_loadu_si128(reinterpret_cast<const __m128i*>(x1 + 16)), zp);
        acc0 = _mm512_add_epi32(acc0, _mm512_madd_epi16(v0, _mm512_loadu_si512(w)));
        acc1 = _mm512_add_epi32(acc1, _mm512_madd_epi16(v1, _mm512_loadu_si512(w + 32)));
      }
      _mm512_storeu_si512(out + c, acc0);
      _mm512_storeu_si512(out + c + 16, acc1);
    }
#endif
  } else if constexpr (std::is_same_v<Arch, arch::avx2>) {
#if defined(__AVX2__)
    const __m256i zp = _mm256_set1_epi16(static_cast<std::int16_t>(a_zero_point));
    for (; c + 16 <= channels; c += 16) {
      __m256i acc0 = init ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(init + c)) : _mm256_setzero_si256();
      __m256i acc1 =
          init ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(init + c + 8)) : _mm256_setzero_si256();
      for (std::size_t p = 0; p < pairs; ++p) {
        const __m128i x0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(taps[2 * p] + c));
        const __m128i x1 =
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(taps[2 * p + 1 < tap_count ? 2 * p + 1 : 2 * p] + c));
        const auto* w = reinterpret_cast<const __m256i*>(weights + (p * channels + c) * 2);
        acc0 = _mm256_add_epi32(
            acc0, _mm256_madd_epi16(widen_pairs_ymm<Arch, Signed>(_mm_unpacklo_epi8(x0, x1), zp), _mm256_loadu_si256(w)));
        acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(widen_pairs_ymm<Arch, Signed>(_mm_unpackhi_epi8(x0, x1), zp),
                                                        _mm256_loadu_si256(w + 1)));
      }
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + c), acc0);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + c + 8), acc1);
    }
#endif
  } else if constexpr (std::is_same_v<Arch, arch::sse41>) {
#if defined(__SSE4_1__)
    const __m128i zp = _mm_set1_epi16(static_cast<std::int16_t>(a_zero_point));
    for (; c + 8 <= channels; c += 8) {
      __m128i acc0 = init ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(init + c)) : _mm_setzero_si128();
      __m128i acc1 = init ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(init + c + 4)) : _mm_setzero_si128();
      for (std::size_t p = 0; p < pairs; ++p) {
        const __m128i x0 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(taps[2 * p] + c));
        const __m128i x1 =
            _mm_loadl_epi64(reinterpret_cast<const __m128i*>(taps[2 * p + 1 < tap_count ? 2 * p + 1 : 2 * p] + c));
        const __m128i both = _mm_unpacklo_epi8(x0, x1);
        const auto* w = reinterpret_cast<const __m128i*>(weights + (p * channels + c) * 2);
        acc0 = _mm_add_epi32(acc0, _mm_madd_epi16(widen_pairs_xmm<Arch, Signed>(both, zp), _mm_loadu_si128(w)));
        acc1 = _mm_add_epi32(
            acc1, _mm_madd_epi16(widen_pairs_xmm<Arch, Signed>(_mm_srli_si128(both, 8), zp), _mm_loadu_si128(w + 1)));
      }
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + c), acc0);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + c + 4), acc1);
    }
#endif
  } else if constexpr (std::is_same_v<Arch, arch::neon64>) {
#if defined(__aarch64__) && defined(__ARM_NEON)
    const int16x8_t zp = vdupq_n_s16(static_cast<std::int16_t>(a_zero_point));
    for (; c + 8 <= channels; c += 8) {
      int32x4_t acc0 = init ? vld1q_s32(init + c) : vdupq_n_s32(0);
      int32x4_t acc1 = init ? vld1q_s32(init + c + 4) : vdupq_n_s32(0);
      for (std::size_t p = 0; p < pairs; ++p) {
        const std::uint8_t* p0 = taps[2 * p] + c;
        const std::uint8_t* p1 = taps[2 * p + 1 < tap_count ? 2 * p + 1 : 2 * p] + c;
        const int16x8_t x0 = vsubq_s16(Signed ? vmovl_s8(vld1_s8(reinterpret_cast<const std::int8_t*>(p0)))
                                              : vreinterpretq_s16_u16(vmovl_u8(vld1_u8(p0))), zp);
        const int16x8_t x1 = vsubq_s16(Signed ? vmovl_s8(vld1_s8(reinterpret_cast<const std::int8_t*>(p1)))
                                              : vreinterpretq_s16_u16(vmovl_u8(vld1_u8(p1))), zp);
        const int16x8x2_t w = vld2q_s16(weights + (p * channels + c) * 2);
        acc0 = vmlal_s16(vmlal_s16(acc0, vget_low_s16(x0), vget_low_s16(w.val[0])), vget_low_s16(x1), vget_low_s16(w.val[1]));
        acc1 = vmlal_high_s16(vmlal_high_s16(acc1, x0, w.val[0]), x1, w.val[1]);
      }
      vst1q_s32(out + c, acc0);
      vst1q_s32(out + c + 4, acc1);
    }
#endif
  }
  return c;
}

}  // namespace detail_depthwise

template <class Arch>
void depthwise_kernel<Arch>::run(const std::uint8_t* const* taps, std::size_t tap_count, bool a_signed,
                                 std::int32_t a_zero_point, const std::int16_t* weights, std::size_t channels,
                                 const std::int32_t* init, std::int32_t* out) noexcept {
  using namespace detail_depthwise;
  if (a_signed) {
    const std::size_t done = run_simd<Arch, true>(taps, tap_count, a_zero_point, weights, channels, init, out);
    run_scalar<Arch, true>(taps, tap_count, a_zero_point, weights, channels, init, out, done);
  } else {
    const std::size_t done = run_simd<Arch, false>(taps, tap_count, a_zero_point, weights, channels, init, out);
    run_scalar<Arch, false>(taps, tap_count, a_zero_point, weights, channels, init, out, done);
  }
}

}  // namespace squint::kernels

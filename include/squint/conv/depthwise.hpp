// SPDX-License-Identifier: Apache-2.0
// conv/depthwise.hpp: the int8 depthwise convolution kernels, one per ISA family.
//
// A depthwise layer has one filter per channel, so there is no reduction over channels for a
// GEMM to block: each output pixel is, per channel, a dot product over the kernel's taps. The
// kernels vectorize over channels (NHWC keeps them contiguous) and read each tap through a
// pointer (XNNPACK's indirection: taps in the padding point at a row of zero-point bytes, so no
// padded copy of the image exists).
//
// Weights are packed once as int16 w - w_zero_point (in [-255, 255]), two taps per 32-bit lane,
// so that one pmaddwd multiplies two taps of one channel (products of at most 255 * 255, exact
// in int32, as is the sum over up to squint::gemm_max_k taps). Inputs are widened as they are,
// without their zero point: sum_t (x_t - x_zp) * w_t = sum_t x_t * w_t - x_zp * sum_t w_t, and
// the caller folds the second term into `init` (padding taps then add x_zp * w_t - x_zp * w_t = 0).
// Widening a tap's channels to int16 and interleaving two taps with punpck{l,h}wd leaves, in each
// 128-bit lane, channels 8k..8k+3 in the low result and 8k+4..8k+7 in the high one. The packing
// follows that: per tap pair, the low halves of every 8-channel block, then the high halves
// (depthwise_index), so a vector of either is one load on every width. The accumulators come out
// in that order and are put back in channel order once per pixel.
//   AVX-512BW: 32 channels per step (vpmovzxbw zmm, vpunpck{l,h}wd, vpmaddwd; vpermt2d at the end).
//   AVX2:      16 channels per step (vperm2i128 at the end).
//   SSE4.1:    8 channels per step.
//   NEON:      8 channels per step; vld2_s16 splits the pairs back into taps for smlal.
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

/// Where tap t of channel c sits in the depthwise packing of `channels` channels (int16 units).
constexpr std::size_t depthwise_index(std::size_t t, std::size_t c, std::size_t channels) {
  const std::size_t blocks = (channels + 7) / 8, within = c % 8;
  return ((t / 2 * 2 + within / 4) * blocks + c / 8) * 8 + within % 4 * 2 + t % 2;
}

/// Elements of the depthwise packing of `taps` x `channels` (padding is zero).
constexpr std::size_t depthwise_packed_size(std::size_t taps, std::size_t channels) {
  return (taps + 1) / 2 * 2 * ((channels + 7) / 8) * 8;
}

template <class Arch>
struct depthwise_kernel {
  /// out[c] = init[c] + sum over t < tap_count of x_t[c] * w_t[c] for c < channels, where x_t =
  /// taps[t] (uint8, or int8 with a_signed) and w the packing this header describes; init may
  /// be null (zero). Sums wrap modulo 2^32 with init.
  static void run(const std::uint8_t* const* taps, std::size_t tap_count, bool a_signed, const std::int16_t* weights,
                  std::size_t channels, const std::int32_t* init, std::int32_t* out) noexcept;
};

namespace detail_depthwise {

/// Channels [c0, channels) in plain C++: the scalar kernel and every ISA's tail.
template <class Arch, bool Signed>
void run_scalar(const std::uint8_t* const* taps, std::size_t tap_count, const std::int16_t* weights,
                std::size_t channels, const std::int32_t* init, std::int32_t* out, std::size_t c0) {
  for (std::size_t c = c0; c < channels; ++c) {
    std::uint32_t acc = init ? static_cast<std::uint32_t>(init[c]) : 0u;
    for (std::size_t t = 0; t < tap_count; ++t) {
      const std::int32_t x = Signed ? static_cast<std::int8_t>(taps[t][c]) : taps[t][c];
      acc += static_cast<std::uint32_t>(x * weights[depthwise_index(t, c, channels)]);
    }
    out[c] = static_cast<std::int32_t>(acc);
  }
}

// The vector bodies, one per width, each templated on the arch tag of the translation unit
// that compiles it and defined only under the flags it needs. An arch runs its widest body and
// then the narrower ones its flags allow on what is left (AVX-512: 32, then 16, then 8 channels),
// so only a tail of fewer than 8 channels takes the scalar loop. Each returns the channel it
// stopped at.

/// The pair loop's two tap pointers for pair p (an odd last tap pairs with itself and weight 0).
template <class Arch>
inline void pair_taps(const std::uint8_t* const* taps, std::size_t tap_count, std::size_t p, const std::uint8_t*& t0,
                      const std::uint8_t*& t1) {
  t0 = taps[2 * p];
  t1 = taps[2 * p + 1 < tap_count ? 2 * p + 1 : 2 * p];
}

/// The low and high halves of pair p's 8-channel blocks from block b.
template <class Arch>
inline const std::int16_t* half(const std::int16_t* weights, std::size_t blocks, std::size_t p, std::size_t h,
                                std::size_t b) {
  return weights + ((p * 2 + h) * blocks + b) * 8;
}

#if defined(__AVX512BW__) && defined(__AVX512VL__)
template <class Arch, bool Signed>
std::size_t run_zmm(const std::uint8_t* const* taps, std::size_t tap_count, const std::int16_t* weights,
                    std::size_t channels, const std::int32_t* init, std::int32_t* out, std::size_t c) {
  const std::size_t pairs = (tap_count + 1) / 2, blocks = (channels + 7) / 8;
  const __m512i first = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
  const __m512i second = _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
  for (; c + 32 <= channels; c += 32) {
    __m512i lo = _mm512_setzero_si512(), hi = _mm512_setzero_si512();
    for (std::size_t p = 0; p < pairs; ++p) {
      const std::uint8_t *t0, *t1;
      pair_taps<Arch>(taps, tap_count, p, t0, t1);
      const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t0 + c));
      const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t1 + c));
      const __m512i x0 = Signed ? _mm512_cvtepi8_epi16(b0) : _mm512_cvtepu8_epi16(b0);
      const __m512i x1 = Signed ? _mm512_cvtepi8_epi16(b1) : _mm512_cvtepu8_epi16(b1);
      lo = _mm512_add_epi32(lo, _mm512_madd_epi16(_mm512_unpacklo_epi16(x0, x1),
                                                  _mm512_loadu_si512(half<Arch>(weights, blocks, p, 0, c / 8))));
      hi = _mm512_add_epi32(hi, _mm512_madd_epi16(_mm512_unpackhi_epi16(x0, x1),
                                                  _mm512_loadu_si512(half<Arch>(weights, blocks, p, 1, c / 8))));
    }
    __m512i a = _mm512_permutex2var_epi32(lo, first, hi), b = _mm512_permutex2var_epi32(lo, second, hi);
    if (init) {
      a = _mm512_add_epi32(a, _mm512_loadu_si512(init + c));
      b = _mm512_add_epi32(b, _mm512_loadu_si512(init + c + 16));
    }
    _mm512_storeu_si512(out + c, a);
    _mm512_storeu_si512(out + c + 16, b);
  }
  return c;
}
#endif

#if defined(__AVX2__)
template <class Arch, bool Signed>
std::size_t run_ymm(const std::uint8_t* const* taps, std::size_t tap_count, const std::int16_t* weights,
                    std::size_t channels, const std::int32_t* init, std::int32_t* out, std::size_t c) {
  const std::size_t pairs = (tap_count + 1) / 2, blocks = (channels + 7) / 8;
  for (; c + 16 <= channels; c += 16) {
    __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
    for (std::size_t p = 0; p < pairs; ++p) {
      const std::uint8_t *t0, *t1;
      pair_taps<Arch>(taps, tap_count, p, t0, t1);
      const __m128i b0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(t0 + c));
      const __m128i b1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(t1 + c));
      const __m256i x0 = Signed ? _mm256_cvtepi8_epi16(b0) : _mm256_cvtepu8_epi16(b0);
      const __m256i x1 = Signed ? _mm256_cvtepi8_epi16(b1) : _mm256_cvtepu8_epi16(b1);
      const auto* wl = reinterpret_cast<const __m256i*>(half<Arch>(weights, blocks, p, 0, c / 8));
      const auto* wh = reinterpret_cast<const __m256i*>(half<Arch>(weights, blocks, p, 1, c / 8));
      lo = _mm256_add_epi32(lo, _mm256_madd_epi16(_mm256_unpacklo_epi16(x0, x1), _mm256_loadu_si256(wl)));
      hi = _mm256_add_epi32(hi, _mm256_madd_epi16(_mm256_unpackhi_epi16(x0, x1), _mm256_loadu_si256(wh)));
    }
    __m256i a = _mm256_permute2x128_si256(lo, hi, 0x20), b = _mm256_permute2x128_si256(lo, hi, 0x31);
    if (init) {
      a = _mm256_add_epi32(a, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(init + c)));
      b = _mm256_add_epi32(b, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(init + c + 8)));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + c), a);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + c + 8), b);
  }
  return c;
}
#endif

#if defined(__SSE4_1__)
template <class Arch, bool Signed>
std::size_t run_xmm(const std::uint8_t* const* taps, std::size_t tap_count, const std::int16_t* weights,
                    std::size_t channels, const std::int32_t* init, std::int32_t* out, std::size_t c) {
  const std::size_t pairs = (tap_count + 1) / 2, blocks = (channels + 7) / 8;
  for (; c + 8 <= channels; c += 8) {
    __m128i lo = _mm_setzero_si128(), hi = _mm_setzero_si128();
    for (std::size_t p = 0; p < pairs; ++p) {
      const std::uint8_t *t0, *t1;
      pair_taps<Arch>(taps, tap_count, p, t0, t1);
      const __m128i b0 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(t0 + c));
      const __m128i b1 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(t1 + c));
      const __m128i x0 = Signed ? _mm_cvtepi8_epi16(b0) : _mm_cvtepu8_epi16(b0);
      const __m128i x1 = Signed ? _mm_cvtepi8_epi16(b1) : _mm_cvtepu8_epi16(b1);
      const auto* wl = reinterpret_cast<const __m128i*>(half<Arch>(weights, blocks, p, 0, c / 8));
      const auto* wh = reinterpret_cast<const __m128i*>(half<Arch>(weights, blocks, p, 1, c / 8));
      lo = _mm_add_epi32(lo, _mm_madd_epi16(_mm_unpacklo_epi16(x0, x1), _mm_loadu_si128(wl)));
      hi = _mm_add_epi32(hi, _mm_madd_epi16(_mm_unpackhi_epi16(x0, x1), _mm_loadu_si128(wh)));
    }
    if (init) {
      lo = _mm_add_epi32(lo, _mm_loadu_si128(reinterpret_cast<const __m128i*>(init + c)));
      hi = _mm_add_epi32(hi, _mm_loadu_si128(reinterpret_cast<const __m128i*>(init + c + 4)));
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + c), lo);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + c + 4), hi);
  }
  return c;
}
#endif

#if defined(__aarch64__) && defined(__ARM_NEON)
template <class Arch, bool Signed>
std::size_t run_neon(const std::uint8_t* const* taps, std::size_t tap_count, const std::int16_t* weights,
                     std::size_t channels, const std::int32_t* init, std::int32_t* out, std::size_t c) {
  const std::size_t pairs = (tap_count + 1) / 2, blocks = (channels + 7) / 8;
  for (; c + 8 <= channels; c += 8) {
    int32x4_t lo = vdupq_n_s32(0), hi = vdupq_n_s32(0);
    for (std::size_t p = 0; p < pairs; ++p) {
      const std::uint8_t *t0, *t1;
      pair_taps<Arch>(taps, tap_count, p, t0, t1);
      const int16x8_t x0 = Signed ? vmovl_s8(vld1_s8(reinterpret_cast<const std::int8_t*>(t0 + c)))
                                  : vreinterpretq_s16_u16(vmovl_u8(vld1_u8(t0 + c)));
      const int16x8_t x1 = Signed ? vmovl_s8(vld1_s8(reinterpret_cast<const std::int8_t*>(t1 + c)))
                                  : vreinterpretq_s16_u16(vmovl_u8(vld1_u8(t1 + c)));
      const int16x4x2_t wl = vld2_s16(half<Arch>(weights, blocks, p, 0, c / 8));
      const int16x4x2_t wh = vld2_s16(half<Arch>(weights, blocks, p, 1, c / 8));
      lo = vmlal_s16(vmlal_s16(lo, vget_low_s16(x0), wl.val[0]), vget_low_s16(x1), wl.val[1]);
      hi = vmlal_s16(vmlal_s16(hi, vget_high_s16(x0), wh.val[0]), vget_high_s16(x1), wh.val[1]);
    }
    if (init) {
      lo = vaddq_s32(lo, vld1q_s32(init + c));
      hi = vaddq_s32(hi, vld1q_s32(init + c + 4));
    }
    vst1q_s32(out + c, lo);
    vst1q_s32(out + c + 4, hi);
  }
  return c;
}
#endif

/// The vector bodies Arch has, widest first; returns how many leading channels they covered.
template <class Arch, bool Signed>
std::size_t run_simd(const std::uint8_t* const* taps, std::size_t tap_count, const std::int16_t* weights,
                     std::size_t channels, const std::int32_t* init, std::int32_t* out) {
  std::size_t c = 0;
  (void)taps, (void)tap_count, (void)weights, (void)channels, (void)init, (void)out;
  if constexpr (std::is_same_v<Arch, arch::avx512bw>) {
#if defined(__AVX512BW__) && defined(__AVX512VL__)
    c = run_zmm<Arch, Signed>(taps, tap_count, weights, channels, init, out, c);
    c = run_ymm<Arch, Signed>(taps, tap_count, weights, channels, init, out, c);
    c = run_xmm<Arch, Signed>(taps, tap_count, weights, channels, init, out, c);
#endif
  } else if constexpr (std::is_same_v<Arch, arch::avx2>) {
#if defined(__AVX2__)
    c = run_ymm<Arch, Signed>(taps, tap_count, weights, channels, init, out, c);
    c = run_xmm<Arch, Signed>(taps, tap_count, weights, channels, init, out, c);
#endif
  } else if constexpr (std::is_same_v<Arch, arch::sse41>) {
#if defined(__SSE4_1__)
    c = run_xmm<Arch, Signed>(taps, tap_count, weights, channels, init, out, c);
#endif
  } else if constexpr (std::is_same_v<Arch, arch::neon64>) {
#if defined(__aarch64__) && defined(__ARM_NEON)
    c = run_neon<Arch, Signed>(taps, tap_count, weights, channels, init, out, c);
#endif
  }
  return c;
}

}  // namespace detail_depthwise

template <class Arch>
void depthwise_kernel<Arch>::run(const std::uint8_t* const* taps, std::size_t tap_count, bool a_signed,
                                 const std::int16_t* weights, std::size_t channels, const std::int32_t* init,
                                 std::int32_t* out) noexcept {
  using namespace detail_depthwise;
  if (a_signed) {
    const std::size_t done = run_simd<Arch, true>(taps, tap_count, weights, channels, init, out);
    run_scalar<Arch, true>(taps, tap_count, weights, channels, init, out, done);
  } else {
    const std::size_t done = run_simd<Arch, false>(taps, tap_count, weights, channels, init, out);
    run_scalar<Arch, false>(taps, tap_count, weights, channels, init, out, done);
  }
}

}  // namespace squint::kernels

// SPDX-License-Identifier: Apache-2.0
// gemm/w4a8.hpp: W4A8 GEMM — int4 weights with a scale per output channel and group of depths,
// times int8 activations quantized per row (llama.cpp's Q4_0 x Q8_0 scheme, with one activation
// scale per row): an exact int32 dot product per group, then fp32 accumulation of the groups.
//
// Numeric contract, identical on every ISA:
//   isum[g] = sum over the group's depths of a[i][k] * w[j][k]          (exact int32)
//   total   = fma(float(isum[g]), w_scale[j][g], total), g = 0, 1, ...  (total starts at 0)
//   c[i][j] = total * a_scale[i] + bias[j], then max(0, .) with relu   (two roundings)
// float(isum) is exact (|isum| <= group * 128 * 8 < 2^24 for group <= w4a8_max_group).
//
// Packing: panels of 16 output channels; for each 8 consecutive depths a panel holds 64 bytes,
// byte 4c + t holding channel c's code at depth 8q + t (t < 4) in its low nibble and at depth
// 8q + 4 + t in its high nibble, each as code + 8 (so a nibble is an unsigned byte in [0, 15]).
// One 64-byte load and two masks give the weights of two 4-depth steps: a zmm of vpdpbusd's u8
// operand (AVX-512 VNNI), two ymm of vpmaddubsw's (AVX2; 2 * 15 * 128 < 32767 cannot
// saturate), or four q registers of sdot's (AArch64 with the dot product; baseline NEON widens
// the products to int16 instead). The products are then sum (w + 8) * a, and 8 * sum a per row
// and group (computed once per row) comes off each group's sum.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "squint/gemm/gemm.hpp"
#include "squint/gemm/int4.hpp"
#include "squint/kernels/quantize.hpp"
#include "squint/kernels/reduce.hpp"

#if defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#endif

namespace squint::kernels {

/// What one W4A8 product reads and writes.
struct w4a8_gemm_params {
  const std::int8_t* a = nullptr;  ///< m x k activation codes, row stride lda
  std::size_t m = 0, k = 0, lda = 0;
  const float* a_scales = nullptr;           ///< m
  const std::int32_t* a_group_sums = nullptr;  ///< m x groups: the sum of each row's codes per group
  const std::uint8_t* packed = nullptr;      ///< the first panel's bytes (n channels' panels follow)
  const float* scales = nullptr;             ///< the first panel's scales (groups x 16 per panel), or
  const std::uint16_t* half_scales = nullptr;  ///< the same as fp16 bits (used when set)
  std::size_t n = 0;                         ///< output channels (whole panels but the last)
  std::size_t group = 32;                    ///< depths per scale, a multiple of 16
  const float* bias = nullptr;               ///< n entries, or null
  bool relu = false;
  float* c = nullptr;  ///< m x n, row stride ldc
  std::size_t ldc = 0;
};

template <class Arch>
struct w4a8_gemm_kernel {
  static void run(const w4a8_gemm_params& p) noexcept;
};

namespace detail_w4a8 {

constexpr std::size_t width = 16, step_depths = 8, step_bytes = 64;

/// Bytes of one panel: 64 per 8 depths.
inline std::size_t panel_bytes(std::size_t k) { return (k + step_depths - 1) / step_depths * step_bytes; }

/// The code of channel c (< 16) at depth d of a panel.
template <class Arch>
inline int code_at(const std::uint8_t* panel, std::size_t c, std::size_t d) {
  const std::uint8_t byte = panel[d / step_depths * step_bytes + c * 4 + d % 4];
  return ((d % step_depths < 4 ? byte : byte >> 4) & 0xF) - 8;
}

/// The contract's last step for one output.
template <class Arch>
SQUINT_NO_FP_CONTRACT inline float finish(float total, float a_scale, const float* bias, bool relu) {
  const float scaled = total * a_scale;
  const float v = bias ? scaled + *bias : scaled;
  return relu && !(v > 0.0f) ? 0.0f : v;
}

/// Portable path: the contract written out, one panel and one row at a time.
template <class Arch>
void run_portable(const w4a8_gemm_params& p) {
  const std::size_t groups = (p.k + p.group - 1) / p.group, stride = panel_bytes(p.k);
  for (std::size_t j0 = 0; j0 < p.n; j0 += width) {
    const std::size_t cols = p.n - j0 < width ? p.n - j0 : width;
    const std::uint8_t* panel = p.packed + j0 / width * stride;
    const std::size_t first_scale = j0 / width * groups * width;
    for (std::size_t i = 0; i < p.m; ++i) {
      for (std::size_t j = 0; j < cols; ++j) {
        float total = 0.0f;
        for (std::size_t g = 0; g < groups; ++g) {
          const std::size_t end = (g + 1) * p.group < p.k ? (g + 1) * p.group : p.k;
          std::int32_t isum = 0;
          for (std::size_t d = g * p.group; d < end; ++d) isum += p.a[i * p.lda + d] * code_at<Arch>(panel, j, d);
          const float scale = detail_grouped::scale_at<Arch>(p.scales, p.half_scales, first_scale + g * width + j);
          total = std::fma(static_cast<float>(isum), scale, total);
        }
        p.c[i * p.ldc + j0 + j] = finish<Arch>(total, p.a_scales[i], p.bias ? p.bias + j0 + j : nullptr, p.relu);
      }
    }
  }
}

/// Four activation codes from depth d as one 32-bit word; codes past k read as zero.
template <class Arch>
inline std::int32_t quad_at(const std::int8_t* row, std::size_t d, std::size_t k) {
  std::int32_t word = 0;
  if (d + 4 <= k) {
    std::memcpy(&word, row + d, 4);
  } else if (d < k) {
    std::int8_t bytes[4] = {0, 0, 0, 0};
    for (std::size_t t = 0; d + t < k; ++t) bytes[t] = row[d + t];
    std::memcpy(&word, bytes, 4);
  }
  return word;
}

#if defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__) && defined(__FMA__)
/// finish() on 16 lanes.
template <class Arch>
SQUINT_NO_FP_CONTRACT inline __m512 finish_vector(__m512 total, float a_scale, bool has_bias, __m512 bias, bool relu) {
  __m512 v = _mm512_mul_ps(total, _mm512_set1_ps(a_scale));
  if (has_bias) v = _mm512_add_ps(v, bias);
  return relu ? _mm512_max_ps(v, _mm512_setzero_ps()) : v;
}

/// AVX-512 VNNI: R rows x P panels, one zmm (16 channels) per panel and row.
template <class Arch, std::size_t R, std::size_t P>
void vnni_block(const w4a8_gemm_params& p, std::size_t i, std::size_t panel0) {
  const std::size_t groups = (p.k + p.group - 1) / p.group, stride = panel_bytes(p.k);
  const __m512i nibble = _mm512_set1_epi8(0x0F);
  __m512 total[R][P];
  SQUINT_UNROLL
  for (std::size_t r = 0; r < R; ++r)
    SQUINT_UNROLL
    for (std::size_t q = 0; q < P; ++q) total[r][q] = _mm512_setzero_ps();
  for (std::size_t g = 0; g < groups; ++g) {
    __m512i acc[R][P];
    SQUINT_UNROLL
    for (std::size_t r = 0; r < R; ++r)
      SQUINT_UNROLL
      for (std::size_t q = 0; q < P; ++q) acc[r][q] = _mm512_setzero_si512();
    const std::size_t end = (g + 1) * p.group < p.k ? (g + 1) * p.group : p.k;
    for (std::size_t d = g * p.group; d < end; d += step_depths) {
      __m512i low[P], high[P];
      SQUINT_UNROLL
      for (std::size_t q = 0; q < P; ++q) {
        const __m512i v = _mm512_loadu_si512(p.packed + (panel0 + q) * stride + d / step_depths * step_bytes);
        low[q] = _mm512_and_si512(v, nibble);
        high[q] = _mm512_and_si512(_mm512_srli_epi16(v, 4), nibble);
      }
      SQUINT_UNROLL
      for (std::size_t r = 0; r < R; ++r) {
        const std::int8_t* row = p.a + (i + r) * p.lda;
        const __m512i a0 = _mm512_set1_epi32(quad_at<Arch>(row, d, end));
        const __m512i a1 = _mm512_set1_epi32(quad_at<Arch>(row, d + 4, end));
        SQUINT_UNROLL
        for (std::size_t q = 0; q < P; ++q) acc[r][q] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(acc[r][q], low[q], a0), high[q], a1);
      }
    }
    SQUINT_UNROLL
    for (std::size_t r = 0; r < R; ++r) {
      const __m512i offset = _mm512_set1_epi32(8 * p.a_group_sums[(i + r) * groups + g]);
      SQUINT_UNROLL
      for (std::size_t q = 0; q < P; ++q) {
        const __m512 s = detail_grouped::scales16<Arch>(p.scales, p.half_scales, ((panel0 + q) * groups + g) * width);
        total[r][q] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc[r][q], offset)), s, total[r][q]);
      }
    }
  }
  SQUINT_UNROLL
  for (std::size_t q = 0; q < P; ++q) {
    const std::size_t j0 = (panel0 + q) * width, cols = p.n - j0 < width ? p.n - j0 : width;
    const __mmask16 columns = static_cast<__mmask16>(cols == width ? 0xffffu : (1u << cols) - 1u);
    const __m512 bias = p.bias ? _mm512_maskz_loadu_ps(columns, p.bias + j0) : _mm512_setzero_ps();
    SQUINT_UNROLL
    for (std::size_t r = 0; r < R; ++r)
      _mm512_mask_storeu_ps(p.c + (i + r) * p.ldc + j0, columns,
                            finish_vector<Arch>(total[r][q], p.a_scales[i + r], p.bias != nullptr, bias, p.relu));
  }
}
#endif

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
/// AVX2: R rows x P panels, two ymm (8 channels each) per panel and row; vpmaddubsw on the
/// nibbles (u8) and the codes (s8), the two 4-depth steps of a load added as int16 (at most
/// 4 * 15 * 128 = 7680), then vpmaddwd into int32.
template <class Arch, std::size_t R, std::size_t P>
void avx2_block(const w4a8_gemm_params& p, std::size_t i, std::size_t panel0) {
  const std::size_t groups = (p.k + p.group - 1) / p.group, stride = panel_bytes(p.k);
  const __m256i nibble = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
  __m256 total[R][P][2];
  SQUINT_UNROLL
  for (std::size_t r = 0; r < R; ++r)
    SQUINT_UNROLL
    for (std::size_t q = 0; q < P; ++q) total[r][q][0] = total[r][q][1] = _mm256_setzero_ps();
  for (std::size_t g = 0; g < groups; ++g) {
    __m256i acc[R][P][2];
    SQUINT_UNROLL
    for (std::size_t r = 0; r < R; ++r)
      SQUINT_UNROLL
      for (std::size_t q = 0; q < P; ++q) acc[r][q][0] = acc[r][q][1] = _mm256_setzero_si256();
    const std::size_t end = (g + 1) * p.group < p.k ? (g + 1) * p.group : p.k;
    for (std::size_t d = g * p.group; d < end; d += step_depths) {
      __m256i a0[R], a1[R];
      SQUINT_UNROLL
      for (std::size_t r = 0; r < R; ++r) {
        const std::int8_t* row = p.a + (i + r) * p.lda;
        a0[r] = _mm256_set1_epi32(quad_at<Arch>(row, d, end));
        a1[r] = _mm256_set1_epi32(quad_at<Arch>(row, d + 4, end));
      }
      SQUINT_UNROLL
      for (std::size_t q = 0; q < P; ++q)
        SQUINT_UNROLL
        for (std::size_t h = 0; h < 2; ++h) {
          const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(
              p.packed + (panel0 + q) * stride + d / step_depths * step_bytes + h * 32));
          const __m256i low = _mm256_and_si256(v, nibble);
          const __m256i high = _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble);
          SQUINT_UNROLL
          for (std::size_t r = 0; r < R; ++r) {
            const __m256i pairs = _mm256_add_epi16(_mm256_maddubs_epi16(low, a0[r]), _mm256_maddubs_epi16(high, a1[r]));
            acc[r][q][h] = _mm256_add_epi32(acc[r][q][h], _mm256_madd_epi16(pairs, ones));
          }
        }
    }
    SQUINT_UNROLL
    for (std::size_t r = 0; r < R; ++r) {
      const __m256i offset = _mm256_set1_epi32(8 * p.a_group_sums[(i + r) * groups + g]);
      SQUINT_UNROLL
      for (std::size_t q = 0; q < P; ++q)
        SQUINT_UNROLL
        for (std::size_t h = 0; h < 2; ++h) {
          const __m256 s = detail_grouped::scales8<Arch>(p.scales, p.half_scales, ((panel0 + q) * groups + g) * width + h * 8);
          total[r][q][h] =
              _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(acc[r][q][h], offset)), s, total[r][q][h]);
        }
    }
  }
  alignas(32) float lanes[width];
  for (std::size_t q = 0; q < P; ++q) {
    const std::size_t j0 = (panel0 + q) * width, cols = p.n - j0 < width ? p.n - j0 : width;
    for (std::size_t r = 0; r < R; ++r) {
      _mm256_store_ps(lanes, total[r][q][0]);
      _mm256_store_ps(lanes + 8, total[r][q][1]);
      for (std::size_t j = 0; j < cols; ++j)
        p.c[(i + r) * p.ldc + j0 + j] = finish<Arch>(lanes[j], p.a_scales[i + r], p.bias ? p.bias + j0 + j : nullptr, p.relu);
    }
  }
}
#endif

#if defined(__aarch64__) && defined(__ARM_NEON)
/// NEON: R rows x P panels, four int32x4 (4 channels each) per panel and row. A 64-byte step
/// of a panel is four vectors of 4 channels x 4 depths (the packing's byte 4c + t), whose low
/// nibbles meet depths d..d+3 and high nibbles d+4..d+7 of the row's codes broadcast as 4-byte
/// words. With the dot product (sdot: 4 products per int32 lane) that is two instructions per
/// vector; the baseline multiplies into int16 (smull / smlal: |(w + 8) a| <= 15 * 128, two of
/// them 3840), adds neighbours (addp: 7680) and accumulates pairs into int32 (sadalp): 4 channels
/// x 8 depths in 6 instructions.
template <class Arch, std::size_t R, std::size_t P>
void neon_block(const w4a8_gemm_params& p, std::size_t i, std::size_t panel0) {
#if defined(__ARM_FEATURE_DOTPROD)
  constexpr bool dot = !std::is_same<Arch, arch::neon64>::value;
#else
  constexpr bool dot = false;
#endif
  const std::size_t groups = (p.k + p.group - 1) / p.group, stride = panel_bytes(p.k);
  const uint8x16_t nibble = vdupq_n_u8(0x0F);
  float32x4_t total[R][P][4];
  SQUINT_UNROLL
  for (std::size_t r = 0; r < R; ++r)
    SQUINT_UNROLL
    for (std::size_t q = 0; q < P; ++q)
      SQUINT_UNROLL
      for (std::size_t v = 0; v < 4; ++v) total[r][q][v] = vdupq_n_f32(0.0f);
  for (std::size_t g = 0; g < groups; ++g) {
    int32x4_t acc[R][P][4];
    SQUINT_UNROLL
    for (std::size_t r = 0; r < R; ++r)
      SQUINT_UNROLL
      for (std::size_t q = 0; q < P; ++q)
        SQUINT_UNROLL
        for (std::size_t v = 0; v < 4; ++v) acc[r][q][v] = vdupq_n_s32(0);
    const std::size_t end = (g + 1) * p.group < p.k ? (g + 1) * p.group : p.k;
    for (std::size_t d = g * p.group; d < end; d += step_depths) {
      int8x16_t a0[R], a1[R];
      SQUINT_UNROLL
      for (std::size_t r = 0; r < R; ++r) {
        const std::int8_t* row = p.a + (i + r) * p.lda;
        a0[r] = vreinterpretq_s8_s32(vdupq_n_s32(quad_at<Arch>(row, d, end)));
        a1[r] = vreinterpretq_s8_s32(vdupq_n_s32(quad_at<Arch>(row, d + 4, end)));
      }
      SQUINT_UNROLL
      for (std::size_t q = 0; q < P; ++q)
        SQUINT_UNROLL
        for (std::size_t v = 0; v < 4; ++v) {
          const uint8x16_t bytes = vld1q_u8(p.packed + (panel0 + q) * stride + d / step_depths * step_bytes + v * 16);
          const int8x16_t low = vreinterpretq_s8_u8(vandq_u8(bytes, nibble));
          const int8x16_t high = vreinterpretq_s8_u8(vshrq_n_u8(bytes, 4));
          SQUINT_UNROLL
          for (std::size_t r = 0; r < R; ++r) {
            if constexpr (dot) {
#if defined(__ARM_FEATURE_DOTPROD)
              acc[r][q][v] = vdotq_s32(vdotq_s32(acc[r][q][v], low, a0[r]), high, a1[r]);
#endif
            } else {
              const int16x8_t first =
                  vmlal_s8(vmull_s8(vget_low_s8(low), vget_low_s8(a0[r])), vget_low_s8(high), vget_low_s8(a1[r]));
              const int16x8_t second = vmlal_high_s8(vmull_high_s8(low, a0[r]), high, a1[r]);
              acc[r][q][v] = vpadalq_s16(acc[r][q][v], vpaddq_s16(first, second));
            }
          }
        }
    }
    SQUINT_UNROLL
    for (std::size_t r = 0; r < R; ++r) {
      const int32x4_t offset = vdupq_n_s32(8 * p.a_group_sums[(i + r) * groups + g]);
      SQUINT_UNROLL
      for (std::size_t q = 0; q < P; ++q)
        SQUINT_UNROLL
        for (std::size_t v = 0; v < 4; ++v) {
          const float32x4_t s =
              detail_grouped::scales4<Arch>(p.scales, p.half_scales, ((panel0 + q) * groups + g) * width + v * 4);
          total[r][q][v] = vfmaq_f32(total[r][q][v], vcvtq_f32_s32(vsubq_s32(acc[r][q][v], offset)), s);
        }
    }
  }
  float lanes[width];
  for (std::size_t q = 0; q < P; ++q) {
    const std::size_t j0 = (panel0 + q) * width, cols = p.n - j0 < width ? p.n - j0 : width;
    for (std::size_t r = 0; r < R; ++r) {
      SQUINT_UNROLL
      for (std::size_t v = 0; v < 4; ++v) vst1q_f32(lanes + v * 4, total[r][q][v]);
      for (std::size_t j = 0; j < cols; ++j)
        p.c[(i + r) * p.ldc + j0 + j] =
            finish<Arch>(lanes[j], p.a_scales[i + r], p.bias ? p.bias + j0 + j : nullptr, p.relu);
    }
  }
}
#endif

}  // namespace detail_w4a8

template <class Arch>
void w4a8_gemm_kernel<Arch>::run(const w4a8_gemm_params& p) noexcept {
#if defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__) && defined(__FMA__)
  if constexpr (std::is_same<Arch, arch::avx512_vnni>::value) {
    detail_panel::for_panel_groups<4, 4, 2>(p.m, p.n, [&](auto rows, auto panels, std::size_t i, std::size_t panel) {
      detail_w4a8::vnni_block<Arch, decltype(rows)::value, decltype(panels)::value>(p, i, panel);
    });
    return;
  }
#endif
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
  if constexpr (std::is_same<Arch, arch::avx512bw>::value || std::is_same<Arch, arch::avx2_vnni>::value ||
                std::is_same<Arch, arch::avx2>::value) {
    detail_panel::for_panel_groups<2, 4, 0>(p.m, p.n, [&](auto rows, auto panels, std::size_t i, std::size_t panel) {
      detail_w4a8::avx2_block<Arch, decltype(rows)::value, decltype(panels)::value>(p, i, panel);
    });
    return;
  }
#endif
#if defined(__aarch64__) && defined(__ARM_NEON)
  if constexpr (std::is_same<Arch, arch::neon64>::value || std::is_same<Arch, arch::neon64_dotprod>::value ||
                std::is_same<Arch, arch::neon64_i8mm>::value) {
    // 2 rows x 1 panel or 1 row x 2 panels: 8 accumulators, 8 totals, the split weights and the
    // broadcast codes fit the 32 registers.
    detail_panel::for_panel_groups<2, 2, 0>(p.m, p.n, [&](auto rows, auto panels, std::size_t i, std::size_t panel) {
      detail_w4a8::neon_block<Arch, decltype(rows)::value, decltype(panels)::value>(p, i, panel);
    });
    return;
  }
#endif
  detail_w4a8::run_portable<Arch>(p);
}

}  // namespace squint::kernels

SQUINT_NAMESPACE_BEGIN

/// Largest group the W4A8 kernels take: float(isum) stays exact (group * 128 * 8 < 2^24).
inline constexpr std::size_t w4a8_max_group = 8192;

/// INT4 weights with a scale per output channel and group of depths, packed for the W4A8 kernels
/// (see the top of this header): immutable, shareable.
class packed_w4a8_weights : public detail::grouped_weights {
 public:
  /// Packs codes w (n x k, row stride ldw >= k, each in [-8, 7]) with scales (n x groups,
  /// row-major; groups = ceil(k / group)): the weight of channel j at depth i is
  /// scale[j][i / group] * w[j][i]. With `format` fp16 each scale is kept rounded to fp16
  /// (nearest, ties to even), which must leave it finite and > 0.
  /// @throws squint::error on null data with elements, ldw < k, a group that is 0, not a
  ///         multiple of 16 or above w4a8_max_group, a wrong scale count, a scale not finite
  ///         and > 0 (in fp16 too, for fp16 scales), or a code outside [-8, 7].
  static packed_w4a8_weights from_int4(const std::int8_t* w, std::size_t n, std::size_t k, std::size_t ldw,
                                       std::size_t group, const std::vector<float>& scale,
                                       group_scale_format format = group_scale_format::fp32) {
    static_assert(panel_width == kernels::detail_w4a8::width, "W4A8 panels are 16 channels wide");
    packed_w4a8_weights p;
    p.init("packed_w4a8_weights::from_int4", w, n, k, ldw, 4, group, w4a8_max_group, scale, format);
    const std::size_t stride = kernels::detail_w4a8::panel_bytes(k);
    p.data_.assign(p.panels() * stride, 0x88);  // padding: code 0
    // Each byte once: depth i of a step of 8 in the low nibble, depth i + 4 in the high one.
    for (std::size_t j = 0; j < n; ++j) {
      std::uint8_t* out = p.data_.data() + j / panel_width * stride + j % panel_width * 4;
      const std::int8_t* row = w + j * ldw;
      std::size_t i = 0;
      for (; i + 8 <= k; i += 8, out += 64)
        for (std::size_t q = 0; q < 4; ++q)
          out[q] = static_cast<std::uint8_t>((row[i + q] + 8) | (row[i + 4 + q] + 8) << 4);
      for (std::size_t q = 0; i < k && q < 4; ++q)
        out[q] = static_cast<std::uint8_t>((i + q < k ? row[i + q] + 8 : 8) | (i + 4 + q < k ? row[i + 4 + q] + 8 : 8) << 4);
    }
    return p;
  }

  /// Round-to-nearest (RTN) codes and scales per channel and group, as packed_int4_weights's.
  /// @throws squint::error as from_int4.
  static packed_w4a8_weights from_float(const float* w, std::size_t n, std::size_t k, std::size_t ldw,
                                        std::size_t group = 32, group_scale_format format = group_scale_format::fp32) {
    const detail::group_codes q = detail::quantize_int4_groups("packed_w4a8_weights::from_float", w, n, k, ldw, group, format);
    return from_int4(q.codes.data(), n, k, k, group, q.scales, format);
  }

  const std::uint8_t* data() const { return data_.data(); }
  /// The code of channel j at depth i.
  int at(std::size_t j, std::size_t i) const {
    return kernels::detail_w4a8::code_at<arch::scalar>(
        data_.data() + j / panel_width * kernels::detail_w4a8::panel_bytes(k()), j % panel_width, i);
  }

 private:
  std::vector<std::uint8_t> data_;
};

/// The W4A8 kernel (w4a8_gemm_kernel::run).
using w4a8_gemm_fn = void (*)(const kernels::w4a8_gemm_params&) noexcept;

/// The kernels that quantize W4A8 activations: this translation unit's, or a backend's
/// dispatched ones (nn::backend's min_max and quantize_s8_channels).
struct w4a8_row_kernels {
  void (*min_max)(const float*, std::size_t, float*, float*, std::size_t*) noexcept =
      &kernels::reduce_kernel<arch::native>::min_max;
  void (*quantize)(const float*, std::int8_t*, std::size_t, std::size_t, std::size_t, const float*,
                   const std::int32_t*, bool) noexcept = &kernels::quantize_kernel<arch::native, std::int8_t>::per_channel;
};

/// The W4A8 kernels' activations: each row of a (m x k, row stride lda) as int8 codes (codes,
/// m x k dense), symmetric, scale amax / 127 of the row's finite values (scales[i]; 1 for a zero
/// row), round half to even, NaN to 0, infinities saturated.
inline void quantize_rows_s8(const float* a, std::size_t m, std::size_t lda, std::size_t k, std::int8_t* codes,
                             float* scales, const w4a8_row_kernels& kernels = {}) {
  const detail::nearest_rounding_scope rounding;
  const std::int32_t zero_point = 0;
  for (std::size_t i = 0; i < m; ++i) {
    const float* row = a + i * lda;
    float lo = HUGE_VALF, hi = -HUGE_VALF;
    std::size_t nonfinite = 0;
    kernels.min_max(row, k, &lo, &hi, &nonfinite);
    const float amax = lo <= hi ? std::fmax(-lo, hi) : 0.0f;
    scales[i] = amax > 0.0f ? amax / 127.0f : 1.0f;
    kernels.quantize(row, codes + i * k, 1, 1, k, &scales[i], &zero_point, false);
  }
}

/// C = A . W^T + bias (then max(0, .) with relu) with W the int4 weights times their group
/// scales and A float (m x k, row stride lda), quantized per row to int8 inside
/// (quantize_rows_s8, on `rows`); then the exact per-group products of the header's contract.
/// float C (m x n, row stride ldc); bias has n entries or is null. `kernel` is this translation
/// unit's own unless a dispatched one is passed (squint::runtime does).
/// @throws squint::error on null pointers with elements, lda < k or ldc < n.
inline void gemm_w4a8(const float* a, std::size_t m, std::size_t lda, const packed_w4a8_weights& b, const float* bias,
                      bool relu, float* c, std::size_t ldc, const parallelism& par = {},
                      w4a8_gemm_fn kernel = &kernels::w4a8_gemm_kernel<detail::gemm_native>::run,
                      const w4a8_row_kernels& rows = {}) {
  detail::check_panel_gemm("gemm_w4a8", a, m, lda, b.k(), b.n(), c, ldc);
  const std::size_t k = b.k(), groups = b.groups(), group = b.group(), w = packed_w4a8_weights::panel_width;
  std::vector<std::int8_t> codes(m * k);
  std::vector<float> scales(m);
  std::vector<std::int32_t> sums(m * groups);
  quantize_rows_s8(a, m, lda, k, codes.data(), scales.data(), rows);
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t g = 0; g < groups; ++g) {
      std::int32_t sum = 0;
      for (std::size_t d = g * group; d < k && d < (g + 1) * group; ++d) sum += codes[i * k + d];
      sums[i * groups + g] = sum;
    }
  const std::size_t stride = kernels::detail_w4a8::panel_bytes(k);
  detail::split_columns(par, m, b.n(), k, w, [&](std::size_t j0, std::size_t j1) {
    kernels::w4a8_gemm_params p;
    p.a = codes.data();
    p.m = m;
    p.k = k;
    p.lda = k;
    p.a_scales = scales.data();
    p.a_group_sums = sums.data();
    p.packed = b.data() + j0 / w * stride;
    p.scales = b.scale_data(j0);
    p.half_scales = b.half_scale_data(j0);
    p.n = j1 - j0;
    p.group = group;
    p.bias = bias ? bias + j0 : nullptr;
    p.relu = relu;
    p.c = c + j0;
    p.ldc = ldc;
    kernel(p);
  });
}

SQUINT_NAMESPACE_END

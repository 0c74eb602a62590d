// SPDX-License-Identifier: Apache-2.0
// gemm/int4.hpp: INT4 weight-only GEMM with per-group scales (W4A16 / W4F32) — weights stored as
// 4-bit codes, two per byte, with a scale (fp32 or fp16) per output channel and group of `group`
// consecutive depths (an eighth of float's bytes plus the scales), decoded to float in
// registers; activations and arithmetic in float. For batch-1 decoding of large layers, where
// the product is bound by reading the weights.
//
// Packing: panels of 16 output channels; for each depth a panel row is 8 bytes, byte b holding
// channel 2b in its low nibble and 2b + 1 in its high nibble, codes offset by 8 (nibble = code +
// 8, codes in [-8, 7]); each panel's scales are groups x 16 floats (or fp16 bits, widened per
// group in the kernel). The kernel sums each group in float, then adds group sum * scale to the
// output's accumulator (llama.cpp's block scheme), so a column's sum is in k order within a group
// and in group order across groups.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "squint/gemm/fp16.hpp"
#include "squint/gemm/pack.hpp"

#if defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#endif

namespace squint::kernels {

/// What one int4 product reads and writes (the kernel's dozen arguments, as ruy's params).
struct int4_gemm_params {
  const float* a = nullptr;        ///< m x k, row stride lda
  std::size_t m = 0, k = 0, lda = 0;
  const std::uint8_t* packed = nullptr;  ///< the first panel's codes (n channels' panels follow)
  const float* scales = nullptr;   ///< the first panel's scales (groups x 16 per panel), or
  const std::uint16_t* half_scales = nullptr;  ///< the same as fp16 bits (used when set)
  std::size_t n = 0;               ///< output channels (whole panels but the last)
  std::size_t group = 32;          ///< depths per scale
  const float* bias = nullptr;     ///< n entries, or null
  bool relu = false;
  float* c = nullptr;              ///< m x n, row stride ldc
  std::size_t ldc = 0;
};

template <class Arch>
struct int4_gemm_kernel {
  static void run(const int4_gemm_params& p) noexcept;
};

namespace detail_int4 {

constexpr std::size_t width = 16, row_bytes = 8;

template <class Arch>
inline int code_at(const std::uint8_t* row, std::size_t j) {
  return ((row[j / 2] >> (4 * (j % 2))) & 0xF) - 8;
}

/// The group scale at `i` of a panel's scales: fp16 bits (when the packing keeps them so) or float.
template <class Arch>
inline float scale_at(const float* scales, const std::uint16_t* half_scales, std::size_t i) {
  return half_scales ? reference::half_to_float(half_scales[i]) : scales[i];
}

// The group scales at `at` of a panel's scales as vectors, widened from fp16 bits when the
// packing keeps them so (the int4 and W4A8 kernels' loads).
#if defined(__AVX512F__)
template <class Arch>
inline __m512 scales16(const float* scales, const std::uint16_t* half_scales, std::size_t at) {
  return half_scales ? _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(half_scales + at)))
                     : _mm512_loadu_ps(scales + at);
}
#endif
#if defined(__AVX__) && defined(__F16C__)
template <class Arch>
inline __m256 scales8(const float* scales, const std::uint16_t* half_scales, std::size_t at) {
  return half_scales ? _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(half_scales + at)))
                     : _mm256_loadu_ps(scales + at);
}
#endif
#if defined(__aarch64__) && defined(__ARM_NEON)
template <class Arch>
inline float32x4_t scales4(const float* scales, const std::uint16_t* half_scales, std::size_t at) {
  return half_scales ? vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(half_scales + at))) : vld1q_f32(scales + at);
}
#endif

/// Portable path: one output channel panel and one row at a time.
template <class Arch>
void run_portable(const int4_gemm_params& p) {
  const std::size_t groups = (p.k + p.group - 1) / p.group;
  for (std::size_t j0 = 0; j0 < p.n; j0 += width) {
    const std::size_t cols = p.n - j0 < width ? p.n - j0 : width;
    const std::uint8_t* panel = p.packed + j0 / width * p.k * row_bytes;
    const std::size_t first_scale = j0 / width * groups * width;
    for (std::size_t i = 0; i < p.m; ++i) {
      float total[width] = {};
      for (std::size_t g = 0; g < groups; ++g) {
        float acc[width] = {};
        const std::size_t end = (g + 1) * p.group < p.k ? (g + 1) * p.group : p.k;
        for (std::size_t kk = g * p.group; kk < end; ++kk) {
          const float av = p.a[i * p.lda + kk];
          for (std::size_t j = 0; j < width; ++j)
            acc[j] += av * static_cast<float>(code_at<Arch>(panel + kk * row_bytes, j));
        }
        for (std::size_t j = 0; j < width; ++j)
          total[j] += acc[j] * scale_at<Arch>(p.scales, p.half_scales, first_scale + g * width + j);
      }
      for (std::size_t j = 0; j < cols; ++j) {
        const float v = total[j] + (p.bias ? p.bias[j0 + j] : 0.0f);
        p.c[i * p.ldc + j0 + j] = p.relu && !(v > 0.0f) ? 0.0f : v;
      }
    }
  }
}

#if XSIMD_WITH_AVX2
/// The codes of two consecutive panel rows (16 bytes) as int8 bytes in channel order: `first`
/// the row at `rows`, `second` the next one. One load and one nibble split serve 32 weights.
template <class Arch>
void unpack_rows(const std::uint8_t* rows, __m128i& first, __m128i& second) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows));
  const __m128i mask = _mm_set1_epi8(0x0F), offset = _mm_set1_epi8(8);
  const __m128i lo = _mm_sub_epi8(_mm_and_si128(v, mask), offset);
  const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(v, 4), mask), offset);
  first = _mm_unpacklo_epi8(lo, hi);
  second = _mm_unpackhi_epi8(lo, hi);
}
/// One row's codes (the odd last depth of a group).
template <class Arch>
__m128i unpack_row(const std::uint8_t* row) {
  const __m128i v = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(row));
  const __m128i lo = _mm_and_si128(v, _mm_set1_epi8(0x0F));
  const __m128i hi = _mm_and_si128(_mm_srli_epi16(v, 4), _mm_set1_epi8(0x0F));
  return _mm_sub_epi8(_mm_unpacklo_epi8(lo, hi), _mm_set1_epi8(8));
}
#endif

#if XSIMD_WITH_AVX512BW && XSIMD_WITH_AVX512DQ && defined(__AVX512VL__) && defined(__FMA__)
/// R rows x P panels: each group summed in R x P accumulators, then scaled into the totals.
template <class Arch, std::size_t R, std::size_t P>
void avx512_block(const int4_gemm_params& p, std::size_t i, std::size_t panel0) {
  const std::size_t groups = (p.k + p.group - 1) / p.group, stride = p.k * row_bytes;
  __m512 total[R][P];
  SQUINT_UNROLL
  for (std::size_t r = 0; r < R; ++r)
    SQUINT_UNROLL
    for (std::size_t q = 0; q < P; ++q) total[r][q] = _mm512_setzero_ps();
  for (std::size_t g = 0; g < groups; ++g) {
    __m512 acc[R][P];
    SQUINT_UNROLL
    for (std::size_t r = 0; r < R; ++r)
      SQUINT_UNROLL
      for (std::size_t q = 0; q < P; ++q) acc[r][q] = _mm512_setzero_ps();
    const std::size_t end = (g + 1) * p.group < p.k ? (g + 1) * p.group : p.k;
    std::size_t kk = g * p.group;
    for (; kk + 2 <= end; kk += 2) {
      __m512 b0[P], b1[P];
      SQUINT_UNROLL
      for (std::size_t q = 0; q < P; ++q) {
        __m128i first, second;
        unpack_rows<Arch>(p.packed + (panel0 + q) * stride + kk * row_bytes, first, second);
        b0[q] = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(first));
        b1[q] = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(second));
      }
      SQUINT_UNROLL
      for (std::size_t r = 0; r < R; ++r) {
        const __m512 a0 = _mm512_set1_ps(p.a[(i + r) * p.lda + kk]), a1 = _mm512_set1_ps(p.a[(i + r) * p.lda + kk + 1]);
        SQUINT_UNROLL
        for (std::size_t q = 0; q < P; ++q) acc[r][q] = _mm512_fmadd_ps(a1, b1[q], _mm512_fmadd_ps(a0, b0[q], acc[r][q]));
      }
    }
    if (kk < end) {
      __m512 b[P];
      SQUINT_UNROLL
      for (std::size_t q = 0; q < P; ++q)
        b[q] = _mm512_cvtepi32_ps(
            _mm512_cvtepi8_epi32(unpack_row<Arch>(p.packed + (panel0 + q) * stride + kk * row_bytes)));
      SQUINT_UNROLL
      for (std::size_t r = 0; r < R; ++r) {
        const __m512 av = _mm512_set1_ps(p.a[(i + r) * p.lda + kk]);
        SQUINT_UNROLL
        for (std::size_t q = 0; q < P; ++q) acc[r][q] = _mm512_fmadd_ps(av, b[q], acc[r][q]);
      }
    }
    SQUINT_UNROLL
    for (std::size_t q = 0; q < P; ++q) {
      const __m512 s = scales16<Arch>(p.scales, p.half_scales, ((panel0 + q) * groups + g) * width);
      SQUINT_UNROLL
      for (std::size_t r = 0; r < R; ++r) total[r][q] = _mm512_fmadd_ps(acc[r][q], s, total[r][q]);
    }
  }
  SQUINT_UNROLL
  for (std::size_t q = 0; q < P; ++q) {
    const std::size_t j0 = (panel0 + q) * width, cols = p.n - j0 < width ? p.n - j0 : width;
    const __mmask16 columns = static_cast<__mmask16>(cols == width ? 0xffffu : (1u << cols) - 1u);
    const __m512 bias = p.bias ? _mm512_maskz_loadu_ps(columns, p.bias + j0) : _mm512_setzero_ps();
    SQUINT_UNROLL
    for (std::size_t r = 0; r < R; ++r) {
      __m512 v = _mm512_add_ps(total[r][q], bias);
      if (p.relu) v = _mm512_max_ps(v, _mm512_setzero_ps());
      _mm512_mask_storeu_ps(p.c + (i + r) * p.ldc + j0, columns, v);
    }
  }
}
#endif

#if XSIMD_WITH_AVX2 && defined(__FMA__) && defined(__F16C__)
/// One depth of an avx2_block: the P panels' decoded codes times the R rows' activations.
template <class Arch, std::size_t R, std::size_t P>
void avx2_depth(const int4_gemm_params& p, std::size_t i, std::size_t kk, const __m128i* codes, __m256 (&acc)[R][P][2]) {
  __m256 b[P][2];
  SQUINT_UNROLL
  for (std::size_t q = 0; q < P; ++q) {
    b[q][0] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(codes[q]));
    b[q][1] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_unpackhi_epi64(codes[q], codes[q])));
  }
  SQUINT_UNROLL
  for (std::size_t r = 0; r < R; ++r) {
    const __m256 av = _mm256_set1_ps(p.a[(i + r) * p.lda + kk]);
    SQUINT_UNROLL
    for (std::size_t q = 0; q < P; ++q) {
      acc[r][q][0] = _mm256_fmadd_ps(av, b[q][0], acc[r][q][0]);
      acc[r][q][1] = _mm256_fmadd_ps(av, b[q][1], acc[r][q][1]);
    }
  }
}

/// R rows x P panels, as avx512_block on two 8-lane halves.
template <class Arch, std::size_t R, std::size_t P>
void avx2_block(const int4_gemm_params& p, std::size_t i, std::size_t panel0) {
  const std::size_t groups = (p.k + p.group - 1) / p.group, stride = p.k * row_bytes;
  __m256 total[R][P][2];
  SQUINT_UNROLL
  for (std::size_t r = 0; r < R; ++r)
    SQUINT_UNROLL
    for (std::size_t q = 0; q < P; ++q) total[r][q][0] = total[r][q][1] = _mm256_setzero_ps();
  for (std::size_t g = 0; g < groups; ++g) {
    __m256 acc[R][P][2];
    SQUINT_UNROLL
    for (std::size_t r = 0; r < R; ++r)
      SQUINT_UNROLL
      for (std::size_t q = 0; q < P; ++q) acc[r][q][0] = acc[r][q][1] = _mm256_setzero_ps();
    const std::size_t end = (g + 1) * p.group < p.k ? (g + 1) * p.group : p.k;
    std::size_t kk = g * p.group;
    // Two depths per load where the group has them (the products still add in k order).
    for (; kk + 2 <= end; kk += 2) {
      __m128i first[P], second[P];
      SQUINT_UNROLL
      for (std::size_t q = 0; q < P; ++q)
        unpack_rows<Arch>(p.packed + (panel0 + q) * stride + kk * row_bytes, first[q], second[q]);
      avx2_depth<Arch, R, P>(p, i, kk, first, acc);
      avx2_depth<Arch, R, P>(p, i, kk + 1, second, acc);
    }
    if (kk < end) {
      __m128i one[P];
      SQUINT_UNROLL
      for (std::size_t q = 0; q < P; ++q) one[q] = unpack_row<Arch>(p.packed + (panel0 + q) * stride + kk * row_bytes);
      avx2_depth<Arch, R, P>(p, i, kk, one, acc);
    }
    SQUINT_UNROLL
    for (std::size_t q = 0; q < P; ++q) {
      const std::size_t at = ((panel0 + q) * groups + g) * width;
      const __m256 s0 = scales8<Arch>(p.scales, p.half_scales, at), s1 = scales8<Arch>(p.scales, p.half_scales, at + 8);
      SQUINT_UNROLL
      for (std::size_t r = 0; r < R; ++r) {
        total[r][q][0] = _mm256_fmadd_ps(acc[r][q][0], s0, total[r][q][0]);
        total[r][q][1] = _mm256_fmadd_ps(acc[r][q][1], s1, total[r][q][1]);
      }
    }
  }
  alignas(32) float lanes[width];
  for (std::size_t q = 0; q < P; ++q) {
    const std::size_t j0 = (panel0 + q) * width, cols = p.n - j0 < width ? p.n - j0 : width;
    for (std::size_t r = 0; r < R; ++r) {
      _mm256_store_ps(lanes, total[r][q][0]);
      _mm256_store_ps(lanes + 8, total[r][q][1]);
      for (std::size_t j = 0; j < cols; ++j) {
        const float v = lanes[j] + (p.bias ? p.bias[j0 + j] : 0.0f);
        p.c[(i + r) * p.ldc + j0 + j] = p.relu && !(v > 0.0f) ? 0.0f : v;
      }
    }
  }
}
#endif

#if defined(__aarch64__) && defined(__ARM_NEON)
/// The 16 codes of one panel row as 4 float vectors in channel order (byte b: channels 2b, 2b + 1).
template <class Arch>
inline void decode_row(uint8x8_t row, float32x4_t (&out)[4]) {
  const uint8x8_t lo = vand_u8(row, vdup_n_u8(0x0F)), hi = vshr_n_u8(row, 4);
  const int8x16_t codes = vsubq_s8(vreinterpretq_s8_u8(vcombine_u8(vzip1_u8(lo, hi), vzip2_u8(lo, hi))), vdupq_n_s8(8));
  const int16x8_t first = vmovl_s8(vget_low_s8(codes)), second = vmovl_high_s8(codes);
  out[0] = vcvtq_f32_s32(vmovl_s16(vget_low_s16(first)));
  out[1] = vcvtq_f32_s32(vmovl_high_s16(first));
  out[2] = vcvtq_f32_s32(vmovl_s16(vget_low_s16(second)));
  out[3] = vcvtq_f32_s32(vmovl_high_s16(second));
}

/// NEON: R rows x P panels, as avx512_block on four 4-lane quarters per panel (fused
/// multiply-adds in k order within a group, then one per group into the totals).
template <class Arch, std::size_t R, std::size_t P>
void neon_block(const int4_gemm_params& p, std::size_t i, std::size_t panel0) {
  const std::size_t groups = (p.k + p.group - 1) / p.group, stride = p.k * row_bytes;
  float32x4_t total[R][P][4];
  SQUINT_UNROLL
  for (std::size_t r = 0; r < R; ++r)
    SQUINT_UNROLL
    for (std::size_t q = 0; q < P; ++q)
      SQUINT_UNROLL
      for (std::size_t v = 0; v < 4; ++v) total[r][q][v] = vdupq_n_f32(0.0f);
  for (std::size_t g = 0; g < groups; ++g) {
    float32x4_t acc[R][P][4];
    SQUINT_UNROLL
    for (std::size_t r = 0; r < R; ++r)
      SQUINT_UNROLL
      for (std::size_t q = 0; q < P; ++q)
        SQUINT_UNROLL
        for (std::size_t v = 0; v < 4; ++v) acc[r][q][v] = vdupq_n_f32(0.0f);
    const std::size_t end = (g + 1) * p.group < p.k ? (g + 1) * p.group : p.k;
    for (std::size_t kk = g * p.group; kk < end; ++kk) {
      SQUINT_UNROLL
      for (std::size_t q = 0; q < P; ++q) {
        float32x4_t b[4];
        decode_row<Arch>(vld1_u8(p.packed + (panel0 + q) * stride + kk * row_bytes), b);
        SQUINT_UNROLL
        for (std::size_t r = 0; r < R; ++r) {
          const float av = p.a[(i + r) * p.lda + kk];
          SQUINT_UNROLL
          for (std::size_t v = 0; v < 4; ++v) acc[r][q][v] = vfmaq_n_f32(acc[r][q][v], b[v], av);
        }
      }
    }
    SQUINT_UNROLL
    for (std::size_t q = 0; q < P; ++q)
      SQUINT_UNROLL
      for (std::size_t v = 0; v < 4; ++v) {
        const float32x4_t s = scales4<Arch>(p.scales, p.half_scales, ((panel0 + q) * groups + g) * width + v * 4);
        SQUINT_UNROLL
        for (std::size_t r = 0; r < R; ++r) total[r][q][v] = vfmaq_f32(total[r][q][v], acc[r][q][v], s);
      }
  }
  float lanes[width];
  for (std::size_t q = 0; q < P; ++q) {
    const std::size_t j0 = (panel0 + q) * width, cols = p.n - j0 < width ? p.n - j0 : width;
    for (std::size_t r = 0; r < R; ++r) {
      SQUINT_UNROLL
      for (std::size_t v = 0; v < 4; ++v) vst1q_f32(lanes + v * 4, total[r][q][v]);
      for (std::size_t j = 0; j < cols; ++j) {
        const float v = lanes[j] + (p.bias ? p.bias[j0 + j] : 0.0f);
        p.c[(i + r) * p.ldc + j0 + j] = p.relu && !(v > 0.0f) ? 0.0f : v;
      }
    }
  }
}
#endif

}  // namespace detail_int4

template <class Arch>
void int4_gemm_kernel<Arch>::run(const int4_gemm_params& p) noexcept {
#if XSIMD_WITH_AVX512BW && XSIMD_WITH_AVX512DQ && defined(__AVX512VL__) && defined(__FMA__)
  if constexpr (std::is_same<Arch, arch::avx512bw>::value) {
    detail_panel::for_panel_groups<4, 4, 0>(p.m, p.n, [&](auto rows, auto panels, std::size_t i, std::size_t panel) {
      detail_int4::avx512_block<Arch, decltype(rows)::value, decltype(panels)::value>(p, i, panel);
    });
    return;
  }
#endif
#if XSIMD_WITH_AVX2 && defined(__FMA__) && defined(__F16C__)
  if constexpr (std::is_same<Arch, arch::avx2>::value) {
    detail_panel::for_panel_groups<4, 4, 0>(p.m, p.n, [&](auto rows, auto panels, std::size_t i, std::size_t panel) {
      detail_int4::avx2_block<Arch, decltype(rows)::value, decltype(panels)::value>(p, i, panel);
    });
    return;
  }
#endif
#if defined(__aarch64__) && defined(__ARM_NEON)
  if constexpr (std::is_same<Arch, arch::neon64>::value) {
    // 2 rows x 1 panel or 1 row x 2 panels: 8 accumulators, 8 totals and the decoded rows fit
    // the 32 registers, and a GEMV keeps 8 FMA chains in flight.
    detail_panel::for_panel_groups<2, 2, 0>(p.m, p.n, [&](auto rows, auto panels, std::size_t i, std::size_t panel) {
      detail_int4::neon_block<Arch, decltype(rows)::value, decltype(panels)::value>(p, i, panel);
    });
    return;
  }
#endif
  detail_int4::run_portable<Arch>(p);
}

}  // namespace squint::kernels

SQUINT_NAMESPACE_BEGIN

namespace detail {

/// int4 codes (n x k, dense) and their scales (n x groups).
struct int4_codes {
  std::vector<std::int8_t> codes;
  std::vector<float> scales;
};

/// Round-to-nearest (RTN) quantization of float weights (n x k, row stride ldw) per channel and
/// group of `group` depths: symmetric, codes in [-7, 7], scale amax / 7 of the group's finite
/// values (1 for an all-zero group), stored as `format` keeps it (fp16: rounded to nearest, kept
/// within fp16's positive finite range), the codes computed with the stored scale. Every int4
/// weight form packs these codes.
/// @throws squint::error on null data with elements, ldw < k or a group that is 0 or not a
///         multiple of 16.
inline int4_codes quantize_int4_groups(const char* function, const float* w, std::size_t n, std::size_t k,
                                       std::size_t ldw, std::size_t group,
                                       group_scale_format format = group_scale_format::fp32) {
  require_matrix(function, "w", w, n, k, ldw);
  require(ldw >= k, function, ": ldw ", ldw, " is smaller than k ", k);
  require(group > 0 && group % 16 == 0, function, ": group ", group, " is not a positive multiple of 16");
  const std::size_t groups = (k + group - 1) / group;
  int4_codes q{std::vector<std::int8_t>(n * k), std::vector<float>(n * groups)};
  for (std::size_t j = 0; j < n; ++j)
    for (std::size_t g = 0; g < groups; ++g) {
      const std::size_t i0 = g * group, i1 = i0 + group < k ? i0 + group : k;
      float amax = 0.0f;
      for (std::size_t i = i0; i < i1; ++i)
        if (std::isfinite(w[j * ldw + i])) amax = std::fmax(amax, std::fabs(w[j * ldw + i]));
      const float s = stored_chosen_scale(amax > 0.0f ? amax / 7.0f : 1.0f, format);
      q.scales[j * groups + g] = s;
      for (std::size_t i = i0; i < i1; ++i)
        q.codes[j * k + i] = static_cast<std::int8_t>(reference::quantize_value(w[j * ldw + i], {s, 0}, {-7, 7}));
    }
  return q;
}

/// What every int4 per-group packing shares: its shape, its group, the scales in panel order
/// (groups x 16 per 16-channel panel) and from_int4's argument checks. Each packing adds its
/// own code layout.
class int4_grouped {
 public:
  static constexpr std::size_t panel_width = 16;

  std::size_t n() const { return n_; }
  std::size_t k() const { return k_; }
  std::size_t group() const { return group_; }
  std::size_t groups() const { return (k_ + group_ - 1) / group_; }
  std::size_t panels() const { return (n_ + panel_width - 1) / panel_width; }
  /// Bytes held: the codes at 4 bits and the scales.
  std::size_t bytes() const {
    return (n_ * k_ + 1) / 2 + n_ * groups() * (format_ == group_scale_format::fp16 ? 2 : sizeof(float));
  }
  group_scale_format scale_format() const { return format_; }
  /// The scales in panel order from the panel of channel j0 (a multiple of the panel width) on,
  /// as float (null when they are kept as fp16) or as fp16 bits (null when they are kept as float).
  const float* scale_data(std::size_t j0 = 0) const {
    return format_ == group_scale_format::fp32 ? scale_.data() + j0 / panel_width * groups() * panel_width : nullptr;
  }
  const std::uint16_t* half_scale_data(std::size_t j0 = 0) const {
    return format_ == group_scale_format::fp16 ? half_scale_.data() + j0 / panel_width * groups() * panel_width
                                               : nullptr;
  }
  /// The scale of channel j's group g.
  float scale(std::size_t j, std::size_t g) const {
    const std::size_t at = (j / panel_width * groups() + g) * panel_width + j % panel_width;
    return format_ == group_scale_format::fp16 ? reference::half_to_float(half_scale_[at]) : scale_[at];
  }

 protected:
  /// Checks codes w (n x k, row stride ldw >= k, each in [-8, 7]) and scales (n x groups, > 0
  /// and finite, also once rounded to fp16 when `format` keeps them so) for a group that is a
  /// multiple of 16 up to max_group, and keeps the scales.
  void init(const char* function, const std::int8_t* w, std::size_t n, std::size_t k, std::size_t ldw,
            std::size_t group, std::size_t max_group, const std::vector<float>& scale, group_scale_format format) {
    require_matrix(function, "w", w, n, k, ldw);
    require(ldw >= k, function, ": ldw ", ldw, " is smaller than k ", k);
    require(group > 0 && group % 16 == 0, function, ": group ", group, " is not a positive multiple of 16");
    require(group <= max_group, function, ": group ", group, " exceeds ", max_group);
    const std::size_t groups = (k + group - 1) / group;
    require(scale.size() == n * groups, function, ": ", scale.size(), " scales for ", n, " channels x ", groups,
            " groups");
    for (float s : scale) {
      require(std::isfinite(s) && s > 0.0f, function, ": scale must be finite and > 0, got ", s);
      const float stored = stored_scale(s, format);
      require(std::isfinite(stored) && stored > 0.0f, function, ": scale ", s, " is ", stored, " in fp16");
    }
    for (std::size_t j = 0; j < n; ++j) {
      // One branch-free scan per row; the element is looked up only to name it.
      unsigned outside = 0;
      for (std::size_t i = 0; i < k; ++i) outside |= static_cast<unsigned>(w[j * ldw + i] + 8) > 15u;
      for (std::size_t i = 0; outside && i < k; ++i)
        require(w[j * ldw + i] >= -8 && w[j * ldw + i] <= 7, function, ": code ", int{w[j * ldw + i]}, " at (", j,
                ", ", i, ") is outside [-8, 7]");
    }
    n_ = n;
    k_ = k;
    group_ = group;
    format_ = format;
    if (format == group_scale_format::fp16) half_scale_.assign(panels() * groups * panel_width, 0);
    else scale_.assign(panels() * groups * panel_width, 0.0f);
    for (std::size_t j = 0; j < n; ++j)
      for (std::size_t g = 0; g < groups; ++g) {
        const std::size_t at = (j / panel_width * groups + g) * panel_width + j % panel_width;
        if (format == group_scale_format::fp16) half_scale_[at] = reference::float_to_half(scale[j * groups + g]);
        else scale_[at] = scale[j * groups + g];
      }
  }

 private:
  std::vector<float> scale_;
  std::vector<std::uint16_t> half_scale_;
  group_scale_format format_ = group_scale_format::fp32;
  std::size_t n_ = 0, k_ = 0, group_ = 32;
};

}  // namespace detail

/// INT4 weights with a scale per output channel and group of depths, packed for the int4 kernel
/// (see the top of this header): immutable, shareable.
class packed_int4_weights : public detail::int4_grouped {
 public:
  /// Packs codes w (n x k, row stride ldw >= k, each in [-8, 7]) with scales (n x groups,
  /// row-major; groups = ceil(k / group)): the weight of channel j at depth i is
  /// scale[j][i / group] * w[j][i]. With `format` fp16 each scale is kept rounded to fp16
  /// (nearest, ties to even), which must leave it finite and > 0.
  /// @throws squint::error on null data with elements, ldw < k, a group that is 0 or not a
  ///         multiple of 16, a wrong scale count, a scale not finite and > 0 (in fp16 too, for
  ///         fp16 scales), or a code outside [-8, 7].
  static packed_int4_weights from_int4(const std::int8_t* w, std::size_t n, std::size_t k, std::size_t ldw,
                                       std::size_t group, const std::vector<float>& scale,
                                       group_scale_format format = group_scale_format::fp32) {
    static_assert(panel_width == kernels::detail_int4::width, "int4 panels are 16 channels wide");
    packed_int4_weights p;
    p.init("packed_int4_weights::from_int4", w, n, k, ldw, group, static_cast<std::size_t>(-1), scale, format);
    p.data_.assign(p.panels() * k * kernels::detail_int4::row_bytes, 0x88);  // padding channels: code 0
    // Each byte once: channel j in the low nibble, j + 1 (or padding) in the high one.
    for (std::size_t j = 0; j < n; j += 2) {
      std::uint8_t* out = p.data_.data() + j / panel_width * k * kernels::detail_int4::row_bytes + j % panel_width / 2;
      const std::int8_t* lo = w + j * ldw;
      const std::int8_t* hi = j + 1 < n ? lo + ldw : nullptr;
      for (std::size_t i = 0; i < k; ++i)
        out[i * kernels::detail_int4::row_bytes] =
            static_cast<std::uint8_t>((lo[i] + 8) | (hi ? hi[i] + 8 : 8) << 4);
    }
    return p;
  }

  /// Round-to-nearest (RTN) quantization of float weights per channel and group (see
  /// detail::quantize_int4_groups).
  /// @throws squint::error as from_int4.
  static packed_int4_weights from_float(const float* w, std::size_t n, std::size_t k, std::size_t ldw,
                                        std::size_t group = 32, group_scale_format format = group_scale_format::fp32) {
    const detail::int4_codes q = detail::quantize_int4_groups("packed_int4_weights::from_float", w, n, k, ldw, group, format);
    return from_int4(q.codes.data(), n, k, k, group, q.scales, format);
  }

  const std::uint8_t* data() const { return data_.data(); }
  /// The code of channel j at depth i.
  int at(std::size_t j, std::size_t i) const {
    return kernels::detail_int4::code_at<arch::scalar>(
        data_.data() + (j / panel_width * k() + i) * kernels::detail_int4::row_bytes, j % panel_width);
  }

 private:
  std::vector<std::uint8_t> data_;
};

/// The int4 kernel (int4_gemm_kernel::run).
using int4_gemm_fn = void (*)(const kernels::int4_gemm_params&) noexcept;

/// C = A . W^T + bias (then max(0, .) with relu) with W the int4 weights times their group
/// scales: float A (m x k, row stride lda), fp32 accumulation, float C (m x n, row stride ldc);
/// bias has n entries or is null. `kernel` is this translation unit's own unless a dispatched
/// one is passed (squint::runtime does).
/// @throws squint::error on null pointers with elements, lda < k or ldc < n.
inline void gemm_int4(const float* a, std::size_t m, std::size_t lda, const packed_int4_weights& b, const float* bias,
                      bool relu, float* c, std::size_t ldc, const parallelism& par = {},
                      int4_gemm_fn kernel = &kernels::int4_gemm_kernel<arch::native>::run) {
  detail::check_panel_gemm("gemm_int4", a, m, lda, b.k(), b.n(), c, ldc);
  const std::size_t k = b.k(), w = packed_int4_weights::panel_width;
  detail::split_columns(par, m, b.n(), k, w, [&](std::size_t j0, std::size_t j1) {
    kernels::int4_gemm_params p;
    p.a = a;
    p.m = m;
    p.k = k;
    p.lda = lda;
    p.packed = b.data() + j0 / w * k * kernels::detail_int4::row_bytes;
    p.scales = b.scale_data(j0);
    p.half_scales = b.half_scale_data(j0);
    p.n = j1 - j0;
    p.group = b.group();
    p.bias = bias ? bias + j0 : nullptr;
    p.relu = relu;
    p.c = c + j0;
    p.ldc = ldc;
    kernel(p);
  });
}

SQUINT_NAMESPACE_END

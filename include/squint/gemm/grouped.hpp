// SPDX-License-Identifier: Apache-2.0
// gemm/grouped.hpp: the weight-only GEMM on per-group weights — integer codes with a scale per
// output channel and group of `group` consecutive depths, decoded to float in registers;
// activations and arithmetic in float. For batch-1 decoding of large layers, where the product
// is bound by reading the weights. The code layouts are the formats' own (gemm/int4.hpp: two
// codes per byte; gemm/int8_grouped.hpp: one); the kernel, the scales and the packing's checks
// are shared here.
//
// Packing: panels of 16 output channels; for each depth a panel row of Rows::bytes bytes holding
// the 16 channels' codes; each panel's scales are groups x 16 floats (or fp16 bits, widened per
// group in the kernel). The kernel sums each group in float, then adds group sum * scale to the
// output's accumulator (llama.cpp's block scheme), so a column's sum is in k order within a group
// and in group order across groups.
//
// A Rows layout is a class template on Arch with: `bytes` (a panel row's size); `code(row, j)`
// (channel j's code, every target); on x86 with AVX2 `pair(rows, first, second)` (two
// consecutive rows as 16 int8 codes each, in channel order) and `one(row)`; on AArch64
// `decode(row, out)` (a row as 4 float vectors in channel order).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "squint/gemm/fp16.hpp"
#include "squint/gemm/pack.hpp"

#if defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#endif

namespace squint::kernels {

/// What one per-group weight-only product reads and writes (the kernel's dozen arguments, as
/// ruy's params).
struct grouped_gemm_params {
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

namespace detail_grouped {

constexpr std::size_t width = 16;

/// The group scale at `i` of a panel's scales: fp16 bits (when the packing keeps them so) or float.
template <class Arch>
inline float scale_at(const float* scales, const std::uint16_t* half_scales, std::size_t i) {
  return half_scales ? reference::half_to_float(half_scales[i]) : scales[i];
}

// The group scales at `at` of a panel's scales as vectors, widened from fp16 bits when the
// packing keeps them so (these kernels' and the W4A8 kernels' loads).
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

#if defined(__aarch64__) && defined(__ARM_NEON)
/// 16 int8 codes as 4 float vectors in channel order (the end of each layout's NEON decode).
template <class Arch>
inline void widen_codes(int8x16_t codes, float32x4_t (&out)[4]) {
  const int16x8_t first = vmovl_s8(vget_low_s8(codes)), second = vmovl_high_s8(codes);
  out[0] = vcvtq_f32_s32(vmovl_s16(vget_low_s16(first)));
  out[1] = vcvtq_f32_s32(vmovl_high_s16(first));
  out[2] = vcvtq_f32_s32(vmovl_s16(vget_low_s16(second)));
  out[3] = vcvtq_f32_s32(vmovl_high_s16(second));
}
#endif

/// Row i of C at columns j0 .. j0 + cols from a panel's 16 lanes: plus the bias, then ReLU.
template <class Arch>
inline void store_lanes(const grouped_gemm_params& p, const float* lanes, std::size_t i, std::size_t j0,
                        std::size_t cols) {
  for (std::size_t j = 0; j < cols; ++j) {
    const float v = lanes[j] + (p.bias ? p.bias[j0 + j] : 0.0f);
    p.c[i * p.ldc + j0 + j] = p.relu && !(v > 0.0f) ? 0.0f : v;
  }
}

/// Portable path: one output channel panel and one row at a time.
template <class Arch, template <class> class Rows>
void run_portable(const grouped_gemm_params& p) {
  const std::size_t groups = (p.k + p.group - 1) / p.group, stride = p.k * Rows<Arch>::bytes;
  for (std::size_t j0 = 0; j0 < p.n; j0 += width) {
    const std::size_t cols = p.n - j0 < width ? p.n - j0 : width;
    const std::uint8_t* panel = p.packed + j0 / width * stride;
    const std::size_t first_scale = j0 / width * groups * width;
    for (std::size_t i = 0; i < p.m; ++i) {
      float total[width] = {};
      for (std::size_t g = 0; g < groups; ++g) {
        float acc[width] = {};
        const std::size_t end = (g + 1) * p.group < p.k ? (g + 1) * p.group : p.k;
        for (std::size_t kk = g * p.group; kk < end; ++kk) {
          const float av = p.a[i * p.lda + kk];
          for (std::size_t j = 0; j < width; ++j)
            acc[j] += av * static_cast<float>(Rows<Arch>::code(panel + kk * Rows<Arch>::bytes, j));
        }
        for (std::size_t j = 0; j < width; ++j)
          total[j] += acc[j] * scale_at<Arch>(p.scales, p.half_scales, first_scale + g * width + j);
      }
      store_lanes<Arch>(p, total, i, j0, cols);
    }
  }
}

#if XSIMD_WITH_AVX512BW && XSIMD_WITH_AVX512DQ && defined(__AVX512VL__) && defined(__FMA__)
/// R rows x P panels: each group summed in R x P accumulators, then scaled into the totals.
template <class Arch, template <class> class Rows, std::size_t R, std::size_t P>
void avx512_block(const grouped_gemm_params& p, std::size_t i, std::size_t panel0) {
  using rows = Rows<Arch>;
  const std::size_t groups = (p.k + p.group - 1) / p.group, stride = p.k * rows::bytes;
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
        const auto* pair = p.packed + (panel0 + q) * stride + kk * rows::bytes;
        detail_gemm::prefetch_panel<Arch, P, rows::bytes>(pair, kk);
        __m128i first, second;
        rows::pair(pair, first, second);
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
        b[q] = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(rows::one(p.packed + (panel0 + q) * stride + kk * rows::bytes)));
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
/// One depth of an avx2_block: the P panels' codes (16 int8 each) times the R rows' activations.
template <class Arch, std::size_t R, std::size_t P>
void avx2_depth(const grouped_gemm_params& p, std::size_t i, std::size_t kk, const __m128i* codes,
                __m256 (&acc)[R][P][2]) {
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
template <class Arch, template <class> class Rows, std::size_t R, std::size_t P>
void avx2_block(const grouped_gemm_params& p, std::size_t i, std::size_t panel0) {
  using rows = Rows<Arch>;
  const std::size_t groups = (p.k + p.group - 1) / p.group, stride = p.k * rows::bytes;
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
    // Two depths per step where the group has them (the products still add in k order).
    for (; kk + 2 <= end; kk += 2) {
      __m128i first[P], second[P];
      SQUINT_UNROLL
      for (std::size_t q = 0; q < P; ++q) {
        const auto* pair = p.packed + (panel0 + q) * stride + kk * rows::bytes;
        detail_gemm::prefetch_panel<Arch, P, rows::bytes>(pair, kk);
        rows::pair(pair, first[q], second[q]);
      }
      avx2_depth<Arch, R, P>(p, i, kk, first, acc);
      avx2_depth<Arch, R, P>(p, i, kk + 1, second, acc);
    }
    if (kk < end) {
      __m128i one[P];
      SQUINT_UNROLL
      for (std::size_t q = 0; q < P; ++q) one[q] = rows::one(p.packed + (panel0 + q) * stride + kk * rows::bytes);
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
      store_lanes<Arch>(p, lanes, i + r, j0, cols);
    }
  }
}
#endif

#if defined(__aarch64__) && defined(__ARM_NEON)
/// NEON: R rows x P panels, as avx512_block on four 4-lane quarters per panel (fused
/// multiply-adds in k order within a group, then one per group into the totals).
template <class Arch, template <class> class Rows, std::size_t R, std::size_t P>
void neon_block(const grouped_gemm_params& p, std::size_t i, std::size_t panel0) {
  using rows = Rows<Arch>;
  const std::size_t groups = (p.k + p.group - 1) / p.group, stride = p.k * rows::bytes;
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
        rows::decode(p.packed + (panel0 + q) * stride + kk * rows::bytes, b);
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
      store_lanes<Arch>(p, lanes, i + r, j0, cols);
    }
  }
}
#endif

/// The product on Arch's blocks for the Rows layout.
template <class Arch, template <class> class Rows>
void run(const grouped_gemm_params& p) {
#if XSIMD_WITH_AVX512BW && XSIMD_WITH_AVX512DQ && defined(__AVX512VL__) && defined(__FMA__)
  if constexpr (std::is_same<Arch, arch::avx512bw>::value) {
    // Rows in blocks of 8 (8 accumulators and 8 totals per panel fit the 32 registers, and each
    // decoded panel row feeds 8 FMAs), then the rest as 4-row and single-row blocks.
    const std::size_t eights = p.m / 8 * 8;
    detail_panel::for_panel_groups<8, 4, 0>(eights, p.n, [&](auto rows, auto panels, std::size_t i, std::size_t panel) {
      avx512_block<Arch, Rows, decltype(rows)::value, decltype(panels)::value>(p, i, panel);
    });
    detail_panel::for_panel_groups<4, 4, 0>(p.m - eights, p.n, [&](auto rows, auto panels, std::size_t i, std::size_t panel) {
      avx512_block<Arch, Rows, decltype(rows)::value, decltype(panels)::value>(p, eights + i, panel);
    });
    return;
  }
#endif
#if XSIMD_WITH_AVX2 && defined(__FMA__) && defined(__F16C__)
  if constexpr (std::is_same<Arch, arch::avx2>::value) {
    detail_panel::for_panel_groups<4, 4, 0>(p.m, p.n, [&](auto rows, auto panels, std::size_t i, std::size_t panel) {
      avx2_block<Arch, Rows, decltype(rows)::value, decltype(panels)::value>(p, i, panel);
    });
    return;
  }
#endif
#if defined(__aarch64__) && defined(__ARM_NEON)
  if constexpr (std::is_same<Arch, arch::neon64>::value) {
    // 2 rows x 1 panel or 1 row x 2 panels: 8 accumulators, 8 totals and the decoded rows fit
    // the 32 registers, and a GEMV keeps 8 FMA chains in flight.
    detail_panel::for_panel_groups<2, 2, 0>(p.m, p.n, [&](auto rows, auto panels, std::size_t i, std::size_t panel) {
      neon_block<Arch, Rows, decltype(rows)::value, decltype(panels)::value>(p, i, panel);
    });
    return;
  }
#endif
  run_portable<Arch, Rows>(p);
}

}  // namespace detail_grouped

}  // namespace squint::kernels

SQUINT_NAMESPACE_BEGIN

/// A per-group weight-only kernel (int4_gemm_kernel::run, int8_group_gemm_kernel::run).
using grouped_gemm_fn = void (*)(const kernels::grouped_gemm_params&) noexcept;

namespace detail {

/// Integer codes (n x k, dense) and their scales (n x groups), before packing.
struct group_codes {
  std::vector<std::int8_t> codes;
  std::vector<float> scales;

  /// The weights as the products use them: code * its group's scale (rows of `in` inputs).
  std::vector<float> values(std::size_t in, std::size_t group) const {
    const std::size_t groups = (in + group - 1) / group;
    std::vector<float> w(codes.size());
    for (std::size_t e = 0; e < w.size(); ++e)
      w[e] = static_cast<float>(codes[e]) * scales[e / in * groups + e % in / group];
    return w;
  }
};

/// Round-to-nearest (RTN) quantization of float weights (n x k, row stride ldw) per channel and
/// group of `group` depths: symmetric, codes in [-qmax, qmax], scale amax / qmax of the group's
/// finite values (1 for an all-zero group), stored as `format` keeps it (fp16: rounded to
/// nearest, kept within fp16's positive finite range), the codes computed with the stored scale.
/// @throws squint::error on null data with elements, ldw < k or a group that is 0 or not a
///         multiple of 16.
inline group_codes quantize_groups(const char* function, const float* w, std::size_t n, std::size_t k,
                                   std::size_t ldw, std::size_t group, group_scale_format format, int qmax) {
  require_matrix(function, "w", w, n, k, ldw);
  require(ldw >= k, function, ": ldw ", ldw, " is smaller than k ", k);
  require(group > 0 && group % 16 == 0, function, ": group ", group, " is not a positive multiple of 16");
  const std::size_t groups = (k + group - 1) / group;
  group_codes q{std::vector<std::int8_t>(n * k), std::vector<float>(n * groups)};
  const float top = static_cast<float>(qmax);
  for (std::size_t j = 0; j < n; ++j)
    for (std::size_t g = 0; g < groups; ++g) {
      const std::size_t i0 = g * group, i1 = i0 + group < k ? i0 + group : k;
      float amax = 0.0f;
      for (std::size_t i = i0; i < i1; ++i)
        if (std::isfinite(w[j * ldw + i])) amax = std::fmax(amax, std::fabs(w[j * ldw + i]));
      const float s = stored_chosen_scale(amax > 0.0f ? amax / top : 1.0f, format);
      q.scales[j * groups + g] = s;
      for (std::size_t i = i0; i < i1; ++i)
        q.codes[j * k + i] =
            static_cast<std::int8_t>(reference::quantize_value(w[j * ldw + i], {s, 0}, {-qmax, qmax}));
    }
  return q;
}

/// What every per-group packing shares: its shape, its group, its code width, the scales in
/// panel order (groups x 16 per 16-channel panel) and the from_int* argument checks. Each
/// packing adds its own code layout.
class grouped_weights {
 public:
  static constexpr std::size_t panel_width = 16;

  std::size_t n() const { return n_; }
  std::size_t k() const { return k_; }
  std::size_t group() const { return group_; }
  std::size_t groups() const { return (k_ + group_ - 1) / group_; }
  std::size_t panels() const { return (n_ + panel_width - 1) / panel_width; }
  /// Bits per code (4 or 8).
  int bits() const { return bits_; }
  /// Bytes held: the codes at their width and the scales.
  std::size_t bytes() const {
    return (n_ * k_ * static_cast<std::size_t>(bits_) + 7) / 8 +
           n_ * groups() * (format_ == group_scale_format::fp16 ? 2 : sizeof(float));
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
  /// Checks codes w (n x k, row stride ldw >= k, each a signed `bits`-bit integer) and scales
  /// (n x groups, > 0 and finite, also once rounded to fp16 when `format` keeps them so) for a
  /// group that is a multiple of 16 up to max_group, and keeps the scales.
  void init(const char* function, const std::int8_t* w, std::size_t n, std::size_t k, std::size_t ldw, int bits,
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
    const int lo = -(1 << (bits - 1)), hi = (1 << (bits - 1)) - 1;
    if (bits < 8)
      for (std::size_t j = 0; j < n; ++j) {
        // One branch-free scan per row; the element is looked up only to name it.
        unsigned outside = 0;
        for (std::size_t i = 0; i < k; ++i) outside |= static_cast<unsigned>(w[j * ldw + i] - lo) > unsigned(hi - lo);
        for (std::size_t i = 0; outside && i < k; ++i)
          require(w[j * ldw + i] >= lo && w[j * ldw + i] <= hi, function, ": code ", int{w[j * ldw + i]}, " at (", j,
                  ", ", i, ") is outside [", lo, ", ", hi, "]");
      }
    n_ = n;
    k_ = k;
    bits_ = bits;
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
  int bits_ = 4;
};

/// C = A . W^T + bias (then max(0, .) with relu) on a per-group packing b (row_bytes per panel
/// row), the panels split over the threads.
template <class Packed>
void run_grouped(const char* function, const float* a, std::size_t m, std::size_t lda, const Packed& b,
                 std::size_t row_bytes, const float* bias, bool relu, float* c, std::size_t ldc,
                 const parallelism& par, grouped_gemm_fn kernel) {
  check_panel_gemm(function, a, m, lda, b.k(), b.n(), c, ldc);
  const std::size_t k = b.k(), w = grouped_weights::panel_width;
  split_columns(par, m, b.n(), k, w, [&](std::size_t j0, std::size_t j1) {
    kernels::grouped_gemm_params p;
    p.a = a;
    p.m = m;
    p.k = k;
    p.lda = lda;
    p.packed = b.data() + j0 / w * k * row_bytes;
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

}  // namespace detail

SQUINT_NAMESPACE_END

// SPDX-License-Identifier: Apache-2.0
// gemm/fp16.hpp: the FP16-weight fallback GEMM — C = A . B^T + bias with A and C float, B stored
// as IEEE fp16 (half the bytes of float, exact enough where INT8 costs accuracy or does not pay).
// The same float-compute panel kernel serves weight-only INT8 (gemm/weight_only.hpp).
//
// Layout: panels of 16 output channels, each K rows of 16 weights (fp16 or int8), channels past
// n zero. A row of a panel is converted to float once (F16C / AVX-512 vcvtph2ps, vpmovsxbd +
// vcvtdq2ps for int8, scalar conversion elsewhere) and reused for a block of A rows;
// accumulation is fp32 FMA in k order, and int8 sums are multiplied by the channel scale at the
// end.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "squint/arch/ops.hpp"
#include "squint/config.hpp"
#include "squint/error.hpp"
#include "squint/gemm/microkernels/common.hpp"
#include "squint/gemm/parallel.hpp"
#include "squint/reference/convert.hpp"

#if XSIMD_WITH_AVX2 && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#endif

namespace squint::kernels {

/// float A x fp16 panels -> float C, with optional bias (n entries) and ReLU.
template <class Arch>
struct half_gemm_kernel {
  static void run(const float* a, std::size_t m, std::size_t k, std::size_t lda, const std::uint16_t* packed,
                  std::size_t n, const float* bias, bool relu, float* c, std::size_t ldc) noexcept;
};

/// An FP8 E4M3FN weight code in a float panel (a distinct type, so the panel kernels decode it).
struct fp8_e4m3_code {
  std::uint8_t bits;
};

namespace detail_panel {

constexpr std::size_t width = 16;

/// E4M3FN codes (NaN excluded) decode to their value times 2^-8 (exact): the code's low 7 bits
/// shifted left by 7 are an fp16 with the same exponent field (E4M3's bias 7 against fp16's 15,
/// subnormals included) and the sign moves to bit 15. So the ISAs with fp16 conversion decode
/// with two shifts, and the packing folds 2^8 into each channel's scale.
constexpr float fp8_e4m3_decode_factor = 1.0f / 256.0f;

/// Weight element -> float: fp16 bits, an int8 code or a float. (Templated on Arch, as every
/// helper a per-ISA object compiles, so no two objects emit the same symbol with different code.)
template <class Arch>
float to_float(std::uint16_t h) { return reference::half_to_float(h); }
template <class Arch>
float to_float(std::int8_t q) { return static_cast<float>(q); }
template <class Arch>
float to_float(float w) { return w; }
template <class Arch>
float to_float(fp8_e4m3_code c) {
  return reference::half_to_float(static_cast<std::uint16_t>(((c.bits & 0x7F) << 7) | ((c.bits & 0x80) << 8)));
}

/// acc * scale[j] (when scaled) + bias[j], then max(0, .) with relu.
template <class Arch>
float finish(float acc, const float* scale, const float* bias, std::size_t j, bool relu) {
  const float v = (scale ? acc * scale[j] : acc) + (bias ? bias[j] : 0.0f);
  return relu && !(v > 0.0f) ? 0.0f : v;
}

/// Portable path: each panel row converted once per block of 8 A rows, stack buffers only (no
/// container code in a per-ISA object).
template <class Arch, class W>
void run_portable(const float* a, std::size_t m, std::size_t k, std::size_t lda, const W* packed, std::size_t n,
                  const float* scale, const float* bias, bool relu, float* c, std::size_t ldc) {
  constexpr std::size_t rows_per_block = 8;
  float row[width];
  float acc[rows_per_block][width];
  for (std::size_t p = 0; p * width < n; ++p) {
    const std::size_t cols = n - p * width < width ? n - p * width : width;
    for (std::size_t i0 = 0; i0 < m; i0 += rows_per_block) {
      const std::size_t rows = m - i0 < rows_per_block ? m - i0 : rows_per_block;
      for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t j = 0; j < width; ++j) acc[r][j] = 0.0f;
      for (std::size_t kk = 0; kk < k; ++kk) {
        const W* w = packed + (p * k + kk) * width;
        for (std::size_t j = 0; j < width; ++j) row[j] = to_float<Arch>(w[j]);
        for (std::size_t r = 0; r < rows; ++r) {
          const float av = a[(i0 + r) * lda + kk];
          for (std::size_t j = 0; j < width; ++j) acc[r][j] += av * row[j];
        }
      }
      for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t j = 0; j < cols; ++j)
          c[(i0 + r) * ldc + p * width + j] = finish<Arch>(acc[r][j], scale ? scale + p * width : nullptr,
                                                     bias ? bias + p * width : nullptr, j, relu);
    }
  }
}

/// The blocking both SIMD drivers use over `count` (<= group) panels. A complete group with W > 0
/// (the AVX-512 driver, whose 32 registers hold W x group accumulators) and at least 4 W rows:
/// W rows x all panels at a time, then W / 2 rows, so each broadcast of A feeds `group` FMAs and
/// each panel row `W` (fewer rows keep R x 1, where the W / 2 and single-row blocks would weigh
/// too much); otherwise R rows x 1 panel at a time. The rows left go one at a time against all `group`
/// panels at once (a GEMV keeps that many FMA chains in flight), or one panel at a time when the
/// group is incomplete. Calls block(rows, panels, i, q) with rows and panels as integral
/// constants.
template <std::size_t R, std::size_t group, std::size_t W, class Block>
void for_panel_blocks(std::size_t m, std::size_t count, Block block) {
  using one = std::integral_constant<std::size_t, 1>;
  using all = std::integral_constant<std::size_t, group>;
  std::size_t i = 0;
  if constexpr (W > 0) {
    if (count == group && m >= 4 * W) {
      for (; i + W <= m; i += W) block(std::integral_constant<std::size_t, W>{}, all{}, i, std::size_t{0});
      for (; i + W / 2 <= m; i += W / 2) block(std::integral_constant<std::size_t, W / 2>{}, all{}, i, std::size_t{0});
    }
  }
  for (; i + R <= m; i += R)
    for (std::size_t q = 0; q < count; ++q) block(std::integral_constant<std::size_t, R>{}, one{}, i, q);
  for (; i < m; ++i) {
    if (count == group) {
      block(one{}, std::integral_constant<std::size_t, group>{}, i, std::size_t{0});
    } else {
      for (std::size_t q = 0; q < count; ++q) block(one{}, one{}, i, q);
    }
  }
}

/// for_panel_blocks over all n channels' panels in groups of up to `group` (independent weight
/// streams for a GEMV): calls block(rows, panels, i, first panel) as for_panel_blocks does.
template <std::size_t R, std::size_t group, std::size_t W, class Block>
void for_panel_groups(std::size_t m, std::size_t n, Block block) {
  const std::size_t panels = (n + width - 1) / width;
  for (std::size_t p0 = 0; p0 < panels; p0 += group)
    for_panel_blocks<R, group, W>(m, panels - p0 < group ? panels - p0 : group,
                                  [&](auto rows, auto count, std::size_t i, std::size_t q) { block(rows, count, i, p0 + q); });
}

template <class Arch, class W>
void run_avx512(const float* a, std::size_t m, std::size_t k, std::size_t lda, const W* packed, std::size_t n,
                const float* scale, const float* bias, bool relu, float* c, std::size_t ldc);
template <class Arch, class W>
void run_avx2(const float* a, std::size_t m, std::size_t k, std::size_t lda, const W* packed, std::size_t n,
              const float* scale, const float* bias, bool relu, float* c, std::size_t ldc);

#if XSIMD_WITH_AVX2 && defined(__F16C__)
/// The fp16 bits of 16 E4M3FN codes (see fp8_e4m3_decode_factor): code << 8 puts the sign at
/// bit 15 and the other bits at 8..14; an arithmetic shift right by 1 moves those to 7..13 and
/// copies the sign into bit 14, which the mask clears.
template <class Arch>
__m256i fp8_e4m3_to_half_bits(const fp8_e4m3_code* w) {
  const __m256i b = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w)));
  return _mm256_and_si256(_mm256_srai_epi16(_mm256_slli_epi16(b, 8), 1), _mm256_set1_epi16(static_cast<short>(0xBFFF)));
}
#endif

#if XSIMD_WITH_AVX512BW && XSIMD_WITH_AVX512DQ && defined(__AVX512VL__) && defined(__F16C__) && defined(__FMA__)
template <class Arch>
__m512 load_row512(const std::uint16_t* w) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w)));
}
template <class Arch>
__m512 load_row512(const std::int8_t* w) {
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w))));
}
template <class Arch>
__m512 load_row512(const float* w) {
  return _mm512_loadu_ps(w);
}
template <class Arch>
__m512 load_row512(const fp8_e4m3_code* w) {
  return _mm512_cvtph_ps(fp8_e4m3_to_half_bits<Arch>(w));
}

/// R rows x P panels: R * P independent accumulators (P > 1 keeps FMA latency hidden when
/// there are fewer than 8 rows). Each column still sums in k order, so results do not depend
/// on the blocking.
template <class Arch, std::size_t R, std::size_t P, class W>
void avx512_block(const float* a, std::size_t lda, std::size_t k, const W* panel, std::size_t stride,
                  const __m512* scale, const __m512* bias, bool relu, float* c, std::size_t ldc,
                  const __mmask16* columns) {
  __m512 acc[R][P];
  SQUINT_UNROLL
  for (std::size_t r = 0; r < R; ++r)
    SQUINT_UNROLL
    for (std::size_t q = 0; q < P; ++q) acc[r][q] = _mm512_setzero_ps();
  for (std::size_t kk = 0; kk < k; ++kk) {
    __m512 b[P];
    SQUINT_UNROLL
    for (std::size_t q = 0; q < P; ++q) {
      const W* row = panel + q * stride + kk * width;
      detail_gemm::prefetch_panel<Arch, P, width * sizeof(W)>(row, kk);
      b[q] = load_row512<Arch>(row);
    }
    SQUINT_UNROLL
    for (std::size_t r = 0; r < R; ++r) {
      const __m512 av = _mm512_set1_ps(a[r * lda + kk]);
      SQUINT_UNROLL
      for (std::size_t q = 0; q < P; ++q) acc[r][q] = _mm512_fmadd_ps(av, b[q], acc[r][q]);
    }
  }
  SQUINT_UNROLL
  for (std::size_t r = 0; r < R; ++r)
    SQUINT_UNROLL
    for (std::size_t q = 0; q < P; ++q) {
      __m512 v = _mm512_fmadd_ps(acc[r][q], scale[q], bias[q]);
      if (relu) v = _mm512_max_ps(v, _mm512_setzero_ps());
      _mm512_mask_storeu_ps(c + r * ldc + q * width, columns[q], v);
    }
}

template <class Arch, class W>
void run_avx512(const float* a, std::size_t m, std::size_t k, std::size_t lda, const W* packed, std::size_t n,
                const float* scale, const float* bias, bool relu, float* c, std::size_t ldc) {
  constexpr std::size_t group = 4;
  const std::size_t panels = (n + width - 1) / width, stride = k * width;
  for (std::size_t p0 = 0; p0 < panels; p0 += group) {
    const std::size_t count = panels - p0 < group ? panels - p0 : group;
    __m512 s[group], b[group];
    __mmask16 columns[group];
    for (std::size_t q = 0; q < count; ++q) {
      const std::size_t j0 = (p0 + q) * width, cols = n - j0 < width ? n - j0 : width;
      columns[q] = static_cast<__mmask16>(cols == width ? 0xffffu : (1u << cols) - 1u);
      b[q] = bias ? _mm512_maskz_loadu_ps(columns[q], bias + j0) : _mm512_setzero_ps();
      s[q] = scale ? _mm512_maskz_loadu_ps(columns[q], scale + j0) : _mm512_set1_ps(1.0f);
    }
    const W* panel = packed + p0 * stride;
    float* out = c + p0 * width;
    for_panel_blocks<8, group, 6>(m, count, [&](auto rows, auto panels, std::size_t i, std::size_t q) {
      avx512_block<Arch, decltype(rows)::value, decltype(panels)::value>(
          a + i * lda, lda, k, panel + q * stride, stride, s + q, b + q, relu, out + i * ldc + q * width, ldc,
          columns + q);
    });
  }
}
#endif

#if XSIMD_WITH_AVX2 && defined(__FMA__) && defined(__F16C__)
template <class Arch>
void load_row256(const std::uint16_t* w, __m256& lo, __m256& hi) {
  lo = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w)));
  hi = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 8)));
}
template <class Arch>
void load_row256(const std::int8_t* w, __m256& lo, __m256& hi) {
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w));
  lo = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q));
  hi = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_unpackhi_epi64(q, q)));
}
template <class Arch>
void load_row256(const float* w, __m256& lo, __m256& hi) {
  lo = _mm256_loadu_ps(w);
  hi = _mm256_loadu_ps(w + 8);
}
template <class Arch>
void load_row256(const fp8_e4m3_code* w, __m256& lo, __m256& hi) {
  const __m256i h = fp8_e4m3_to_half_bits<Arch>(w);
  lo = _mm256_cvtph_ps(_mm256_castsi256_si128(h));
  hi = _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1));
}

/// R rows x P panels, as avx512_block.
template <class Arch, std::size_t R, std::size_t P, class W>
void avx2_block(const float* a, std::size_t lda, std::size_t k, const W* panel, std::size_t stride, const float* scale,
                const float* bias, bool relu, float* c, std::size_t ldc, std::size_t n) {
  __m256 acc[R][P][2];
  SQUINT_UNROLL
  for (std::size_t r = 0; r < R; ++r)
    SQUINT_UNROLL
    for (std::size_t q = 0; q < P; ++q) acc[r][q][0] = acc[r][q][1] = _mm256_setzero_ps();
  for (std::size_t kk = 0; kk < k; ++kk) {
    __m256 b[P][2];
    SQUINT_UNROLL
    for (std::size_t q = 0; q < P; ++q) {
      const W* row = panel + q * stride + kk * width;
      detail_gemm::prefetch_panel<Arch, P, width * sizeof(W)>(row, kk);
      load_row256<Arch>(row, b[q][0], b[q][1]);
    }
    SQUINT_UNROLL
    for (std::size_t r = 0; r < R; ++r) {
      const __m256 av = _mm256_set1_ps(a[r * lda + kk]);
      SQUINT_UNROLL
      for (std::size_t q = 0; q < P; ++q) {
        acc[r][q][0] = _mm256_fmadd_ps(av, b[q][0], acc[r][q][0]);
        acc[r][q][1] = _mm256_fmadd_ps(av, b[q][1], acc[r][q][1]);
      }
    }
  }
  alignas(32) float lanes[width];
  for (std::size_t r = 0; r < R; ++r)
    for (std::size_t q = 0; q < P; ++q) {
      _mm256_store_ps(lanes, acc[r][q][0]);
      _mm256_store_ps(lanes + 8, acc[r][q][1]);
      const std::size_t j0 = q * width, cols = n - j0 < width ? n - j0 : width;
      for (std::size_t j = 0; j < cols; ++j)
        c[r * ldc + j0 + j] = finish<Arch>(lanes[j], scale ? scale + j0 : nullptr, bias ? bias + j0 : nullptr, j, relu);
    }
}

template <class Arch, class W>
void run_avx2(const float* a, std::size_t m, std::size_t k, std::size_t lda, const W* packed, std::size_t n,
              const float* scale, const float* bias, bool relu, float* c, std::size_t ldc) {
  constexpr std::size_t group = 4;
  const std::size_t panels = (n + width - 1) / width, stride = k * width;
  for (std::size_t p0 = 0; p0 < panels; p0 += group) {
    const std::size_t count = panels - p0 < group ? panels - p0 : group, j0 = p0 * width;
    const float* b = bias ? bias + j0 : nullptr;
    const float* s = scale ? scale + j0 : nullptr;
    const W* panel = packed + p0 * stride;
    for_panel_blocks<4, group, 0>(m, count, [&](auto rows, auto panels, std::size_t i, std::size_t q) {
      avx2_block<Arch, decltype(rows)::value, decltype(panels)::value>(
          a + i * lda, lda, k, panel + q * stride, stride, s ? s + q * width : nullptr, b ? b + q * width : nullptr,
          relu, c + i * ldc + j0 + q * width, ldc, n - j0 - q * width);
    });
  }
}
#endif

/// The widest float-panel path Arch has.
template <class Arch, class W>
void run(const float* a, std::size_t m, std::size_t k, std::size_t lda, const W* packed, std::size_t n,
         const float* scale, const float* bias, bool relu, float* c, std::size_t ldc) {
  if constexpr (std::is_same<Arch, arch::avx512bw>::value)
    run_avx512<Arch>(a, m, k, lda, packed, n, scale, bias, relu, c, ldc);
  else if constexpr (std::is_same<Arch, arch::avx2>::value)
    run_avx2<Arch>(a, m, k, lda, packed, n, scale, bias, relu, c, ldc);
  else
    run_portable<Arch>(a, m, k, lda, packed, n, scale, bias, relu, c, ldc);
}

}  // namespace detail_panel

template <class Arch>
void half_gemm_kernel<Arch>::run(const float* a, std::size_t m, std::size_t k, std::size_t lda,
                                 const std::uint16_t* packed, std::size_t n, const float* bias, bool relu, float* c,
                                 std::size_t ldc) noexcept {
  detail_panel::run<Arch>(a, m, k, lda, packed, n, nullptr, bias, relu, c, ldc);
}

}  // namespace squint::kernels

SQUINT_NAMESPACE_BEGIN

namespace detail {

/// Float-panel order, shared by fp16 and weight-only packing: channel j, depth i of an n x k
/// weight matrix sits at panel_index(j, i, k) of panel_elements(n, k) (channels padded to whole
/// panels with zeros).
constexpr std::size_t panel_index(std::size_t j, std::size_t i, std::size_t k) {
  constexpr std::size_t width = kernels::detail_panel::width;
  return ((j / width) * k + i) * width + j % width;
}
constexpr std::size_t panel_elements(std::size_t n, std::size_t k) {
  constexpr std::size_t width = kernels::detail_panel::width;
  return (n + width - 1) / width * width * k;
}

}  // namespace detail

/// Float weights stored as fp16 for half_gemm: half the bytes of float, no calibration.
class packed_half_weights {
 public:
  static constexpr std::size_t panel_width = kernels::detail_panel::width;

  /// Converts w (n x k, row stride ldw >= k; round to nearest even) and packs it.
  /// @throws squint::error on null data with elements or ldw < k.
  static packed_half_weights from_float(const float* w, std::size_t n, std::size_t k, std::size_t ldw) {
    detail::require_matrix("packed_half_weights::from_float", "w", w, n, k, ldw);
    detail::require(ldw >= k, "packed_half_weights::from_float: ldw ", ldw, " is smaller than k ", k);
    packed_half_weights p(n, k);
    for (std::size_t j = 0; j < n; ++j)
      for (std::size_t i = 0; i < k; ++i) p.data_[p.offset(j, i)] = reference::float_to_half(w[j * ldw + i]);
    return p;
  }

  /// Packs fp16 bit patterns h (n x k, dense), as bits() returns them.
  /// @throws squint::error on null data with elements.
  static packed_half_weights from_bits(const std::uint16_t* h, std::size_t n, std::size_t k) {
    detail::require_matrix("packed_half_weights::from_bits", "h", h, n, k, k);
    packed_half_weights p(n, k);
    for (std::size_t j = 0; j < n; ++j)
      for (std::size_t i = 0; i < k; ++i) p.data_[p.offset(j, i)] = h[j * k + i];
    return p;
  }

  std::size_t n() const { return n_; }
  std::size_t k() const { return k_; }
  std::size_t bytes() const { return data_.size() * sizeof(std::uint16_t); }
  const std::uint16_t* data() const { return data_.data(); }
  /// The weight of channel j at depth i, as the GEMM sees it.
  float at(std::size_t j, std::size_t i) const { return reference::half_to_float(data_[offset(j, i)]); }
  /// The fp16 bit pattern of channel j at depth i.
  std::uint16_t bits(std::size_t j, std::size_t i) const { return data_[offset(j, i)]; }

 private:
  packed_half_weights(std::size_t n, std::size_t k) : data_(detail::panel_elements(n, k), 0), n_(n), k_(k) {}
  std::size_t offset(std::size_t j, std::size_t i) const { return detail::panel_index(j, i, k_); }
  std::vector<std::uint16_t> data_;
  std::size_t n_ = 0, k_ = 0;
};

namespace detail {

/// The argument checks of the float-panel GEMMs (gemm_half, gemm_weight_only).
inline void check_panel_gemm(const char* function, const float* a, std::size_t m, std::size_t lda, std::size_t k,
                             std::size_t n, const float* c, std::size_t ldc) {
  require_matrix(function, "a", a, m, k, lda);
  require_matrix(function, "c", c, m, n, ldc);
  require(m <= 1 || lda >= k, function, ": lda ", lda, " is smaller than k ", k);
  require(m <= 1 || ldc >= n, function, ": ldc ", ldc, " is smaller than n ", n);
}

/// Runs a float-panel kernel `run(a, m, k, lda, panels, n, bias, relu, c, ldc)` over column
/// blocks of whole panels, split between threads as `par` allows.
template <class W, class Run>
void run_panels(Run run, const float* a, std::size_t m, std::size_t k, std::size_t lda, const W* panels,
                std::size_t n, const float* bias, bool relu, float* c, std::size_t ldc, const parallelism& par) {
  constexpr std::size_t width = kernels::detail_panel::width;
  split_columns(par, m, n, k, width, [&](std::size_t j0, std::size_t j1) {
    run(a, m, k, lda, panels + j0 * k, j1 - j0, bias ? bias + j0 : nullptr, relu, c + j0, ldc);
  });
}

}  // namespace detail

/// C = A . B^T + bias (then max(0, .) with relu) with fp16 weights and fp32 accumulation.
/// A is m x k float (row stride lda), C m x n float (row stride ldc); bias has n entries or is null.
/// @throws squint::error on null pointers with elements, lda < k or ldc < n.
inline void gemm_half(const float* a, std::size_t m, std::size_t lda, const packed_half_weights& b, const float* bias,
                      bool relu, float* c, std::size_t ldc, const parallelism& par = {}) {
  detail::check_panel_gemm("gemm_half", a, m, lda, b.k(), b.n(), c, ldc);
  detail::run_panels(&kernels::half_gemm_kernel<arch::native>::run, a, m, b.k(), lda, b.data(), b.n(), bias, relu, c,
                     ldc, par);
}

SQUINT_NAMESPACE_END

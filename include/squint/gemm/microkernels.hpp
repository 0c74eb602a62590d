// SPDX-License-Identifier: Apache-2.0
// gemm/microkernels.hpp: exact int8 GEMM micro-kernels over packed weights, per ISA.
//
// Each computes c[i][j] = sum_k a[i][k] * b[j][k] with a uint8 or int8 (bytes + `a_signed`) and
// b the packed int8 weights, exactly in int32 (callers bound K: see squint::gemm_max_k).
//   avx512_vnni: vpdpbusd multiplies u8 x s8 and adds groups of 4 into int32 without any
//     intermediate saturation. int8 A is flipped to u8 (a + 128) and 128 * colsum subtracted.
//   avx2: vpmaddubsw saturates its int16 pair sums (255 * -128 * 2 does not fit), so A is made
//     signed (u8 a - 128) and multiplied through the sign trick: |a'| (<= 128, as u8) times
//     b * sign(a') (|b| <= 127 when the weights are narrow). A pair is then at most
//     2 * 128 * 127 = 32512 < 32767: exact, at close to the saturating sequence's speed.
//     Packed weights holding -128 run the scalar kernel instead.
//   scalar: the same sums in plain loops over the packed layout.
// Register blocking: up to 2 panels of 16 output channels times 8 rows on AVX-512 (16 zmm
// accumulators), 1 panel times 4 rows on AVX2; each 4-k group of weights is loaded once per
// block of rows and each A quadruple broadcast once, straight from memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "squint/arch/tags.hpp"
#include "squint/config.hpp"

#if defined(__AVX512VNNI__) && defined(__AVX512BW__) || (XSIMD_WITH_AVX2 && defined(__FMA__) && defined(__F16C__))
#include <immintrin.h>
#endif

namespace squint::kernels {

template <class Arch>
struct gemm_kernel {
  static void run(const std::uint8_t* a, std::size_t m, std::size_t k, std::size_t lda, bool a_signed,
                  const std::int8_t* packed, const std::int32_t* column_sums, std::size_t n, std::size_t k_groups,
                  std::int32_t* c, std::size_t ldc) noexcept;
};

namespace detail_gemm {

constexpr std::size_t panel_width = 16, k_group = 4;

/// Four A bytes starting at k as one 32-bit word; bytes past `k_end` are zero. Templated on the
/// arch so that each ISA's object carries its own copy (see tests/check_symbol_leaks.cmake).
template <class Arch>
inline std::uint32_t load_quad(const std::uint8_t* row, std::size_t k, std::size_t k_end) {
  std::uint32_t word = 0;
  if (k + k_group <= k_end) {
    std::memcpy(&word, row + k, k_group);
  } else {
    unsigned char bytes[k_group] = {0, 0, 0, 0};
    for (std::size_t i = 0; k + i < k_end; ++i) bytes[i] = row[k + i];
    std::memcpy(&word, bytes, k_group);
  }
  return word;
}

}  // namespace detail_gemm

namespace detail_gemm {

/// Portable kernel: plain loops over the packed layout.
template <class Arch>
void run_scalar(const std::uint8_t* a, std::size_t m, std::size_t k, std::size_t lda, bool a_signed,
                const std::int8_t* packed, std::size_t n, std::size_t k_groups, std::int32_t* c, std::size_t ldc) {
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      const std::int8_t* b = packed + (j / panel_width) * k_groups * panel_width * k_group + (j % panel_width) * k_group;
      std::int32_t acc = 0;
      for (std::size_t kk = 0; kk < k; ++kk) {
        const std::int32_t av = a_signed ? static_cast<std::int8_t>(a[i * lda + kk]) : a[i * lda + kk];
        acc += av * b[(kk / k_group) * panel_width * k_group + kk % k_group];
      }
      c[i * ldc + j] = acc;
    }
}

// Declared for every translation unit, defined only where the ISA is enabled (the arch's own).
template <class Arch>
void run_avx512_vnni(const std::uint8_t* a, std::size_t m, std::size_t k, std::size_t lda, bool a_signed,
                     const std::int8_t* packed, const std::int32_t* column_sums, std::size_t n, std::size_t k_groups,
                     std::int32_t* c, std::size_t ldc);
template <class Arch>
void run_avx2(const std::uint8_t* a, std::size_t m, std::size_t k, std::size_t lda, bool a_signed,
              const std::int8_t* packed, const std::int32_t* column_sums, std::size_t n, std::size_t k_groups,
              std::int32_t* c, std::size_t ldc);

}  // namespace detail_gemm

template <class Arch>
void gemm_kernel<Arch>::run(const std::uint8_t* a, std::size_t m, std::size_t k, std::size_t lda, bool a_signed,
                            const std::int8_t* packed, const std::int32_t* column_sums, std::size_t n,
                            std::size_t k_groups, std::int32_t* c, std::size_t ldc) noexcept {
  if constexpr (std::is_same<Arch, arch::avx512_vnni>::value)
    detail_gemm::run_avx512_vnni<Arch>(a, m, k, lda, a_signed, packed, column_sums, n, k_groups, c, ldc);
  else if constexpr (std::is_same<Arch, arch::avx2>::value)
    detail_gemm::run_avx2<Arch>(a, m, k, lda, a_signed, packed, column_sums, n, k_groups, c, ldc);
  else
    detail_gemm::run_scalar<Arch>(a, m, k, lda, a_signed, packed, n, k_groups, c, ldc);
}

#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
namespace detail_gemm {

/// R rows x P panels (16 channels each) of C: R x P accumulators; each 4-k group loads P weight
/// vectors once and broadcasts each A quadruple once, straight from memory.
template <class Arch, std::size_t R, std::size_t P, bool Signed>
void vnni_block(const std::uint8_t* a, std::size_t lda, std::size_t k, const std::int8_t* panel,
                std::size_t panel_stride, const __m512i* compensation, std::int32_t* c, std::size_t ldc,
                const __mmask16* columns) {
  // int8 A is flipped to uint8 (a + 128) for vpdpbusd; the compensation removes 128 * colsum.
  const __m512i flip = _mm512_set1_epi32(static_cast<int>(0x80808080u));
  __m512i acc[R][P];
  SQUINT_UNROLL
  for (std::size_t r = 0; r < R; ++r) {
    SQUINT_UNROLL
    for (std::size_t p = 0; p < P; ++p) acc[r][p] = _mm512_setzero_si512();
  }
  auto step = [&](std::size_t g, auto quad_of) {
    __m512i b[P];
    SQUINT_UNROLL
    for (std::size_t p = 0; p < P; ++p) b[p] = _mm512_loadu_si512(panel + p * panel_stride + g * 64);
    SQUINT_UNROLL
    for (std::size_t r = 0; r < R; ++r) {
      __m512i av = _mm512_set1_epi32(quad_of(r));
      if (Signed) av = _mm512_xor_si512(av, flip);
      SQUINT_UNROLL
      for (std::size_t p = 0; p < P; ++p) acc[r][p] = _mm512_dpbusd_epi32(acc[r][p], av, b[p]);
    }
  };
  const std::size_t full = k / k_group;
  for (std::size_t g = 0; g < full; ++g)
    step(g, [&](std::size_t r) {
      std::int32_t quad;
      std::memcpy(&quad, a + r * lda + g * k_group, k_group);
      return quad;
    });
  if (full * k_group < k)  // the partial last group: bytes past k read as zero
    step(full, [&](std::size_t r) { return static_cast<std::int32_t>(load_quad<Arch>(a + r * lda, full * k_group, k)); });
  SQUINT_UNROLL
  for (std::size_t r = 0; r < R; ++r) {
    SQUINT_UNROLL
    for (std::size_t p = 0; p < P; ++p)
      _mm512_mask_storeu_epi32(c + r * ldc + p * 16, columns[p], _mm512_add_epi32(acc[r][p], compensation[p]));
  }
}

template <class Arch, std::size_t P, bool Signed>
void vnni_rows(const std::uint8_t* a, std::size_t m, std::size_t lda, std::size_t k, const std::int8_t* panel,
               std::size_t panel_stride, const __m512i* compensation, std::int32_t* c, std::size_t ldc,
               const __mmask16* columns) {
  constexpr std::size_t mr = 8;
  std::size_t i = 0;
  for (; i + mr <= m; i += mr)
    vnni_block<Arch, mr, P, Signed>(a + i * lda, lda, k, panel, panel_stride, compensation, c + i * ldc, ldc, columns);
  const std::uint8_t* ar = a + i * lda;
  std::int32_t* cr = c + i * ldc;
  switch (m - i) {
    case 7: vnni_block<Arch, 7, P, Signed>(ar, lda, k, panel, panel_stride, compensation, cr, ldc, columns); break;
    case 6: vnni_block<Arch, 6, P, Signed>(ar, lda, k, panel, panel_stride, compensation, cr, ldc, columns); break;
    case 5: vnni_block<Arch, 5, P, Signed>(ar, lda, k, panel, panel_stride, compensation, cr, ldc, columns); break;
    case 4: vnni_block<Arch, 4, P, Signed>(ar, lda, k, panel, panel_stride, compensation, cr, ldc, columns); break;
    case 3: vnni_block<Arch, 3, P, Signed>(ar, lda, k, panel, panel_stride, compensation, cr, ldc, columns); break;
    case 2: vnni_block<Arch, 2, P, Signed>(ar, lda, k, panel, panel_stride, compensation, cr, ldc, columns); break;
    case 1: vnni_block<Arch, 1, P, Signed>(ar, lda, k, panel, panel_stride, compensation, cr, ldc, columns); break;
    default: break;
  }
}

template <class Arch, bool Signed>
void vnni_panels(const std::uint8_t* a, std::size_t m, std::size_t k, std::size_t lda, const std::int8_t* packed,
                 const std::int32_t* column_sums, std::size_t n, std::size_t k_groups, std::int32_t* c, std::size_t ldc) {
  const std::size_t panel_stride = k_groups * 64, panels = (n + 15) / 16;
  for (std::size_t p0 = 0; p0 < panels; p0 += 2) {
    const std::size_t count = panels - p0 >= 2 ? 2 : 1;
    __m512i compensation[2];
    __mmask16 columns[2];
    for (std::size_t p = 0; p < count; ++p) {
      const std::size_t first = (p0 + p) * 16, cols = n - first < 16 ? n - first : 16;
      columns[p] = static_cast<__mmask16>(cols == 16 ? 0xffffu : (1u << cols) - 1u);
      const __m512i sums = _mm512_loadu_si512(column_sums + first);
      compensation[p] = Signed ? _mm512_slli_epi32(_mm512_sub_epi32(_mm512_setzero_si512(), sums), 7)
                               : _mm512_setzero_si512();
    }
    const std::int8_t* panel = packed + p0 * panel_stride;
    if (count == 2)
      vnni_rows<Arch, 2, Signed>(a, m, lda, k, panel, panel_stride, compensation, c + p0 * 16, ldc, columns);
    else
      vnni_rows<Arch, 1, Signed>(a, m, lda, k, panel, panel_stride, compensation, c + p0 * 16, ldc, columns);
  }
}

template <class Arch>
void run_avx512_vnni(const std::uint8_t* a, std::size_t m, std::size_t k, std::size_t lda, bool a_signed,
                     const std::int8_t* packed, const std::int32_t* column_sums, std::size_t n, std::size_t k_groups,
                     std::int32_t* c, std::size_t ldc) {
  if (a_signed) vnni_panels<Arch, true>(a, m, k, lda, packed, column_sums, n, k_groups, c, ldc);
  else vnni_panels<Arch, false>(a, m, k, lda, packed, column_sums, n, k_groups, c, ldc);
}

}  // namespace detail_gemm
#endif

#if XSIMD_WITH_AVX2 && defined(__FMA__) && defined(__F16C__)
namespace detail_gemm {

template <class Arch, std::size_t R>
void avx2_block(const std::uint8_t* a, std::size_t lda, std::size_t k, const std::int8_t* panel,
                    std::size_t k_groups, __m256i flip, const __m256i compensation[2], std::int32_t* c,
                    std::size_t ldc, std::size_t cols) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i acc[R][2];
    SQUINT_UNROLL
    for (std::size_t r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
    for (std::size_t g = 0; g < k_groups; ++g) {
      const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panel + g * 64));
      const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panel + g * 64 + 32));
      SQUINT_UNROLL
      for (std::size_t r = 0; r < R; ++r) {
        const auto quad = static_cast<int>(detail_gemm::load_quad<Arch>(a + r * lda, g * 4, k));
        const __m256i as = _mm256_xor_si256(_mm256_set1_epi32(quad), flip);  // A as int8
        const __m256i magnitude = _mm256_abs_epi8(as);                       // |a'| <= 128 as u8
        const __m256i p0 = _mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(b0, as));
        const __m256i p1 = _mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(b1, as));
        acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(p0, ones));
        acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(p1, ones));
      }
    }
    alignas(32) std::int32_t lanes[16];
    SQUINT_UNROLL
    for (std::size_t r = 0; r < R; ++r) {
      const __m256i lo = _mm256_add_epi32(acc[r][0], compensation[0]);
      const __m256i hi = _mm256_add_epi32(acc[r][1], compensation[1]);
      if (cols == 16) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + r * ldc), lo);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + r * ldc + 8), hi);
      } else {
        _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), lo);
        _mm256_store_si256(reinterpret_cast<__m256i*>(lanes + 8), hi);
        for (std::size_t j = 0; j < cols; ++j) c[r * ldc + j] = lanes[j];
      }
    }
}

template <class Arch>
void run_avx2(const std::uint8_t* a, std::size_t m, std::size_t k, std::size_t lda, bool a_signed,
              const std::int8_t* packed, const std::int32_t* column_sums, std::size_t n, std::size_t k_groups,
              std::int32_t* c, std::size_t ldc) {
    constexpr std::size_t mr = 4;
    // u8 A becomes a - 128 (xor 0x80); the 128 * colsum it loses is added back.
    const __m256i flip = _mm256_set1_epi32(a_signed ? 0 : static_cast<int>(0x80808080u));
    for (std::size_t p = 0; p * 16 < n; ++p) {
      const std::size_t cols = n - p * 16 < 16 ? n - p * 16 : 16;
      const std::int8_t* panel = packed + p * k_groups * 64;
      __m256i compensation[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
      if (!a_signed)
        for (int h = 0; h < 2; ++h)
          compensation[h] = _mm256_slli_epi32(
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(column_sums + p * 16 + 8 * h)), 7);
      std::size_t i = 0;
      for (; i + mr <= m; i += mr) avx2_block<Arch, mr>(a + i * lda, lda, k, panel, k_groups, flip, compensation, c + i * ldc + p * 16, ldc, cols);
      switch (m - i) {
        case 3: avx2_block<Arch, 3>(a + i * lda, lda, k, panel, k_groups, flip, compensation, c + i * ldc + p * 16, ldc, cols); break;
        case 2: avx2_block<Arch, 2>(a + i * lda, lda, k, panel, k_groups, flip, compensation, c + i * ldc + p * 16, ldc, cols); break;
        case 1: avx2_block<Arch, 1>(a + i * lda, lda, k, panel, k_groups, flip, compensation, c + i * ldc + p * 16, ldc, cols); break;
        default: break;
      }
    }
}

}  // namespace detail_gemm
#endif

}  // namespace squint::kernels

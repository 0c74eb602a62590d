// SPDX-License-Identifier: Apache-2.0
// gemm/microkernels/neon.hpp: the AArch64 int8 GEMM micro-kernels (NEON, dot product, i8mm).
//
// All three read the packed layout as it is (a 16-byte vector = 4 channels x 4 k of one group):
//   neon64 (baseline): smull/smull2 make 8 int16 products (|a|, |b| <= 128: no overflow) and
//     sadalp adds pairs into int32 lanes, two per channel, folded by one addp at the end.
//     16 MACs in 4 instructions, exact for every code.
//   neon64_dotprod: sdot by lane adds 4 s8 x s8 products per int32 lane; one 16-byte load of A
//     serves 4 groups (one lane each). 16 MACs per instruction.
//   neon64_i8mm: smmla / usmmla multiply a 2 x 8 block of A by 8 k of two channels (zip1/zip2
//     of two groups make the pairs) into a 2 x 2 block of C: 32 MACs per instruction, and
//     usmmla takes u8 A as it is (no flip).
// Baseline and sdot want signed A: uint8 A is flipped (a ^ 0x80 = a - 128) and 128 * colsum
// added back. Register blocking: 2 rows (baseline), 4 rows (sdot, smmla) x one 16-channel panel.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "squint/gemm/microkernels/common.hpp"

#if defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#endif

namespace squint::kernels::detail_gemm {

/// The kernel of gemm_kernel<Arch> on AArch64 (declared everywhere, defined where NEON is).
template <class Arch>
void run_neon(const std::uint8_t* a, std::size_t m, std::size_t k, std::size_t lda, bool a_signed,
              const std::int8_t* packed, const std::int32_t* column_sums, const std::int32_t* column_offsets, std::size_t n, std::size_t k_groups,
              std::int32_t* c, std::size_t ldc);

#if defined(__aarch64__) && defined(__ARM_NEON)

/// C's lanes for `count` (<= 4) channels.
template <class Arch>
inline void store_lanes(std::int32_t* c, int32x4_t v, std::size_t count) {
  if (count >= 4) {
    vst1q_s32(c, v);
  } else {
    std::int32_t lanes[4];
    vst1q_s32(lanes, v);
    for (std::size_t j = 0; j < count; ++j) c[j] = lanes[j];
  }
}

/// Writes R rows x 16 channels (`cols` of them) of accumulators plus the per-channel terms.
template <class Arch, std::size_t R>
inline void store_block(const int32x4_t (*acc)[4], const int32x4_t (&terms)[4], std::int32_t* c, std::size_t ldc,
                        std::size_t cols) {
  SQUINT_UNROLL
  for (std::size_t r = 0; r < R; ++r) {
    SQUINT_UNROLL
    for (std::size_t v = 0; v < 4; ++v)
      if (v * 4 < cols) store_lanes<Arch>(c + r * ldc + v * 4, vaddq_s32(acc[r][v], terms[v]), cols - v * 4);
  }
}

/// Baseline NEON: R rows x 16 channels, widening multiplies.
template <class Arch, std::size_t R, bool Flip>
void neon_block(const std::uint8_t* a, std::size_t lda, std::size_t k, const std::int8_t* panel,
                const int32x4_t (&terms)[4], std::int32_t* c, std::size_t ldc, std::size_t cols) {
  int32x4_t lo[R][4], hi[R][4];  // per channel pair (k 0+1, k 2+3): lo for channels 0-1, hi for 2-3
  SQUINT_UNROLL
  for (std::size_t r = 0; r < R; ++r) {
    SQUINT_UNROLL
    for (std::size_t v = 0; v < 4; ++v) lo[r][v] = hi[r][v] = vdupq_n_s32(0);
  }
  const uint8x16_t flip = vdupq_n_u8(Flip ? 0x80 : 0);
  const std::size_t groups = (k + k_group - 1) / k_group;
  for (std::size_t g = 0; g < groups; ++g) {
    int8x16_t b[4];
    SQUINT_UNROLL
    for (std::size_t v = 0; v < 4; ++v) b[v] = vld1q_s8(panel + g * 64 + v * 16);
    SQUINT_UNROLL
    for (std::size_t r = 0; r < R; ++r) {
      const uint32x4_t quad = vdupq_n_u32(load_quad<Arch>(a + r * lda, g * k_group, k));
      const int8x16_t av = vreinterpretq_s8_u8(veorq_u8(vreinterpretq_u8_u32(quad), flip));
      SQUINT_UNROLL
      for (std::size_t v = 0; v < 4; ++v) {
        lo[r][v] = vpadalq_s16(lo[r][v], vmull_s8(vget_low_s8(av), vget_low_s8(b[v])));
        hi[r][v] = vpadalq_s16(hi[r][v], vmull_high_s8(av, b[v]));
      }
    }
  }
  int32x4_t acc[R][4];
  SQUINT_UNROLL
  for (std::size_t r = 0; r < R; ++r) {
    SQUINT_UNROLL
    for (std::size_t v = 0; v < 4; ++v) acc[r][v] = vpaddq_s32(lo[r][v], hi[r][v]);
  }
  store_block<Arch, R>(acc, terms, c, ldc, cols);
}

#if defined(__ARM_FEATURE_DOTPROD)
/// Dot product: R rows x 16 channels; each 16-byte load of a row feeds 4 groups by lane.
template <class Arch, std::size_t R, bool Flip>
void sdot_block(const std::uint8_t* a, std::size_t lda, std::size_t k, const std::int8_t* panel,
                const int32x4_t (&terms)[4], std::int32_t* c, std::size_t ldc, std::size_t cols) {
  int32x4_t acc[R][4];
  SQUINT_UNROLL
  for (std::size_t r = 0; r < R; ++r) {
    SQUINT_UNROLL
    for (std::size_t v = 0; v < 4; ++v) acc[r][v] = vdupq_n_s32(0);
  }
  const uint8x16_t flip = vdupq_n_u8(Flip ? 0x80 : 0);
  const std::size_t groups = (k + k_group - 1) / k_group;
  int8x16_t av[R];
  auto load_rows = [&](std::size_t g) {
    const std::size_t first = g * k_group;
    SQUINT_UNROLL
    for (std::size_t r = 0; r < R; ++r) {
      uint8x16_t bytes;
      if (first + 16 <= k) {
        bytes = vld1q_u8(a + r * lda + first);
      } else {
        unsigned char partial[16];
        load_partial<Arch>(partial, a + r * lda + first, k - first);
        bytes = vld1q_u8(partial);
      }
      av[r] = vreinterpretq_s8_u8(veorq_u8(bytes, flip));
    }
  };
  auto lane = [&](std::size_t g, auto l) {
    constexpr int L = decltype(l)::value;
    int8x16_t b[4];
    SQUINT_UNROLL
    for (std::size_t v = 0; v < 4; ++v) b[v] = vld1q_s8(panel + (g + L) * 64 + v * 16);
    SQUINT_UNROLL
    for (std::size_t r = 0; r < R; ++r) {
      SQUINT_UNROLL
      for (std::size_t v = 0; v < 4; ++v) acc[r][v] = vdotq_laneq_s32(acc[r][v], b[v], av[r], L);
    }
  };
  std::size_t g = 0;
  for (; g + 4 <= groups; g += 4) {
    load_rows(g);
    lane(g, std::integral_constant<int, 0>{});
    lane(g, std::integral_constant<int, 1>{});
    lane(g, std::integral_constant<int, 2>{});
    lane(g, std::integral_constant<int, 3>{});
  }
  if (g < groups) {  // 1 to 3 groups left
    load_rows(g);
    lane(g, std::integral_constant<int, 0>{});
    if (groups - g > 1) lane(g, std::integral_constant<int, 1>{});
    if (groups - g > 2) lane(g, std::integral_constant<int, 2>{});
  }
  store_block<Arch, R>(acc, terms, c, ldc, cols);
}
#endif

#if defined(__ARM_FEATURE_MATMUL_INT8)
/// i8mm: R rows (pairs of them) x 16 channels, 8 k per step.
template <class Arch, std::size_t R, bool Signed>
void mmla_block(const std::uint8_t* a, std::size_t lda, std::size_t k, const std::int8_t* panel,
                const int32x4_t (&terms)[4], std::int32_t* c, std::size_t ldc, std::size_t cols) {
  constexpr std::size_t pairs = (R + 1) / 2;
  // acc[p][q]: rows 2p, 2p+1 x channels 2q, 2q+1, as {r0c0, r0c1, r1c0, r1c1}.
  int32x4_t acc[pairs][8];
  SQUINT_UNROLL
  for (std::size_t p = 0; p < pairs; ++p) {
    SQUINT_UNROLL
    for (std::size_t q = 0; q < 8; ++q) acc[p][q] = vdupq_n_s32(0);
  }
  auto eight = [&](const std::uint8_t* row, std::size_t first) {
    if (first + 8 <= k) return vld1_u8(row + first);
    unsigned char partial[16];
    load_partial<Arch>(partial, row + first, k - first);
    return vld1_u8(partial);
  };
  const std::size_t groups = (k + k_group - 1) / k_group;
  auto step = [&](std::size_t g, bool second) {
    int8x16_t b[8];  // b[2v], b[2v+1]: channels 4v..4v+3 as pairs, each channel's 8 k together
    SQUINT_UNROLL
    for (std::size_t v = 0; v < 4; ++v) {
      const int32x4_t x = vld1q_s32(reinterpret_cast<const std::int32_t*>(panel + g * 64 + v * 16));
      const int32x4_t y =
          second ? vld1q_s32(reinterpret_cast<const std::int32_t*>(panel + (g + 1) * 64 + v * 16)) : vdupq_n_s32(0);
      b[2 * v] = vreinterpretq_s8_s32(vzip1q_s32(x, y));
      b[2 * v + 1] = vreinterpretq_s8_s32(vzip2q_s32(x, y));
    }
    SQUINT_UNROLL
    for (std::size_t p = 0; p < pairs; ++p) {
      const uint8x8_t top = eight(a + 2 * p * lda, g * k_group);
      const uint8x8_t bottom = 2 * p + 1 < R ? eight(a + (2 * p + 1) * lda, g * k_group) : vdup_n_u8(0);
      const uint8x16_t rows = vcombine_u8(top, bottom);
      SQUINT_UNROLL
      for (std::size_t q = 0; q < 8; ++q)
        acc[p][q] = Signed ? vmmlaq_s32(acc[p][q], vreinterpretq_s8_u8(rows), b[q]) : vusmmlaq_s32(acc[p][q], rows, b[q]);
    }
  };
  std::size_t g = 0;
  for (; g + 2 <= groups; g += 2) step(g, true);
  if (g < groups) step(g, false);
  int32x4_t out[2 * pairs][4];
  SQUINT_UNROLL
  for (std::size_t p = 0; p < pairs; ++p) {
    SQUINT_UNROLL
    for (std::size_t v = 0; v < 4; ++v) {
      const int64x2_t left = vreinterpretq_s64_s32(acc[p][2 * v]), right = vreinterpretq_s64_s32(acc[p][2 * v + 1]);
      out[2 * p][v] = vreinterpretq_s32_s64(vzip1q_s64(left, right));
      out[2 * p + 1][v] = vreinterpretq_s32_s64(vzip2q_s64(left, right));
    }
  }
  store_block<Arch, R>(out, terms, c, ldc, cols);
}
#endif

/// One 16-channel panel at a time, R-row blocks.
template <class Arch>
void run_neon(const std::uint8_t* a, std::size_t m, std::size_t k, std::size_t lda, bool a_signed,
              const std::int8_t* packed, const std::int32_t* column_sums, const std::int32_t* column_offsets, std::size_t n, std::size_t k_groups,
              std::int32_t* c, std::size_t ldc) {
  constexpr bool i8mm = std::is_same_v<Arch, arch::neon64_i8mm>;
  constexpr bool dotprod = std::is_same_v<Arch, arch::neon64_dotprod>;
  constexpr std::size_t rows = i8mm || dotprod ? 4 : 2;
  const bool flip = !i8mm && !a_signed;  // smmla/usmmla take either; the others want s8 A
  for (std::size_t p = 0; p * panel_width < n; ++p) {
    const std::size_t first = p * panel_width, cols = n - first < panel_width ? n - first : panel_width;
    const std::int8_t* panel = packed + p * k_groups * panel_width * k_group;
    int32x4_t terms[4];
    for (std::size_t v = 0; v < 4; ++v)
      terms[v] = vaddq_s32(flip ? vshlq_n_s32(vld1q_s32(column_sums + first + v * 4), 7) : vdupq_n_s32(0),
                           column_offsets ? vld1q_s32(column_offsets + first + v * 4) : vdupq_n_s32(0));
    for_row_blocks<rows>(m, [&](auto r, std::size_t i) {
      constexpr std::size_t R = decltype(r)::value;
      const std::uint8_t* ar = a + i * lda;
      std::int32_t* cr = c + i * ldc + first;
      if constexpr (i8mm) {
#if defined(__ARM_FEATURE_MATMUL_INT8)
        if (a_signed) mmla_block<Arch, R, true>(ar, lda, k, panel, terms, cr, ldc, cols);
        else mmla_block<Arch, R, false>(ar, lda, k, panel, terms, cr, ldc, cols);
#else
        static_assert(sizeof(Arch) == 0, "neon64_i8mm kernels need -march=armv8.6-a+i8mm");
#endif
      } else if constexpr (dotprod) {
#if defined(__ARM_FEATURE_DOTPROD)
        if (flip) sdot_block<Arch, R, true>(ar, lda, k, panel, terms, cr, ldc, cols);
        else sdot_block<Arch, R, false>(ar, lda, k, panel, terms, cr, ldc, cols);
#else
        static_assert(sizeof(Arch) == 0, "neon64_dotprod kernels need -march=armv8.2-a+dotprod");
#endif
      } else {
        if (flip) neon_block<Arch, R, true>(ar, lda, k, panel, terms, cr, ldc, cols);
        else neon_block<Arch, R, false>(ar, lda, k, panel, terms, cr, ldc, cols);
      }
    });
  }
}

#endif

}  // namespace squint::kernels::detail_gemm

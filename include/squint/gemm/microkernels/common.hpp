// SPDX-License-Identifier: Apache-2.0
// gemm/microkernels/common.hpp: what every int8 GEMM micro-kernel knows of the packed layout.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "squint/config.hpp"

namespace squint::kernels {

/// The float output stage a micro-kernel applies to its accumulators in registers (where
/// gemm_kernel_fuses_float<Arch>() holds), instead of storing int32:
///   y[i][j] = float(acc - row_zero_points[i] * column_sums[j]) * (a_scale * b_scales[j]) + bias[j],
/// then min(cap, max(0, y)) with relu: squint::detail::float_output's arithmetic, operation for
/// operation (no contraction), so both routes give the same bits. Callers set round-to-nearest.
/// With `codes`, y (a multiplier a_scale * b_scales[j] and nothing else: the bias is in the
/// accumulators) becomes a uint8 code instead, as the requantize kernel computes it:
/// round_half_even(min(max(y, code_lo - zero_point), code_hi - zero_point)) + zero_point.
struct gemm_float_epilogue {
  const float* a_scales;  ///< one per row of the call with per_row, else a_scales[0] for every row
  bool per_row;
  const float* b_scales;                ///< n, from the call's first channel
  const float* bias;                    ///< n, or null
  const std::int32_t* row_zero_points;  ///< one per row (subtracted modulo 2^32), or null
  const std::int32_t* column_sums;      ///< n, with row_zero_points
  bool relu;
  float cap;
  float* c;  ///< row 0, channel 0 of the call
  std::size_t ldc;
  std::uint8_t* codes = nullptr;  ///< row 0, channel 0 of the call (ldc), instead of c
  std::int32_t zero_point = 0, code_lo = 0, code_hi = 255;
};

/// One micro-kernel call: c[i][j] = sum_k a[i][k] * b[j][k] + column_offsets[j] for m rows of A
/// (bytes, signed with a_signed) and n channels of packed weights from a panel boundary, into
/// int32 c or, with `to_float`, through that float stage (then c is not used).
struct gemm_kernel_params {
  const std::uint8_t* a;
  std::size_t m, k, lda;
  bool a_signed;
  const std::int8_t* packed;
  const std::int32_t* column_sums;
  const std::int32_t* column_offsets;  ///< n, added modulo 2^32, or null
  std::size_t n, k_groups;
  std::int32_t* c;
  std::size_t ldc;
  const gemm_float_epilogue* to_float = nullptr;
};

}  // namespace squint::kernels

namespace squint::kernels::detail_gemm {

/// Channels per panel and consecutive k per 32-bit group (squint::packed_weights' layout:
/// byte [(k / 4) * 64 + channel * 4 + k % 4] of each 16-channel panel).
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

/// The first `count` (<= 16) bytes at p, zero after them: a vector's worth of A at the end of k.
template <class Arch>
inline void load_partial(unsigned char (&bytes)[16], const std::uint8_t* p, std::size_t count) {
  std::memset(bytes, 0, sizeof bytes);
  std::memcpy(bytes, p, count < 16 ? count : 16);
}

/// How far ahead of its loads a register block that walks a single weight panel asks for that
/// panel's cache lines. Such a block (R rows x 1 panel, each row of weights feeding R
/// multiply-adds) reads one slow stream, and the hardware prefetchers let it stall on memory:
/// asking 1 KiB ahead made Zen 4's M = 8 float-panel GEMMs 1.2-1.5x faster. Blocks that walk four
/// panels at once (a GEMV's single row, the INT8 kernels' row blocks) keep four streams in flight,
/// and prefetching there measured within the noise: they do not. 0 turns prefetching off.
#ifndef SQUINT_PREFETCH_BYTES
#define SQUINT_PREFETCH_BYTES 1024
#endif
constexpr std::size_t prefetch_bytes = SQUINT_PREFETCH_BYTES;

/// At depth kk of a block over `panels` weight panels with `row_bytes` per panel row: a hint to
/// bring the line prefetch_bytes past `row` into L1, once per line and only for a single panel
/// (see above). Prefetches never fault, so the address may lie past the buffer: it is formed as
/// an integer, never as a pointer past the array.
template <class Arch, std::size_t panels, std::size_t row_bytes>
SQUINT_ALWAYS_INLINE void prefetch_panel(const void* row, std::size_t kk) {
  static_assert(row_bytes <= 64 && 64 % row_bytes == 0, "panel rows tile a cache line");
#if defined(__GNUC__) || defined(__clang__)
  if (panels == 1 && prefetch_bytes != 0 && kk % (64 / row_bytes) == 0)
    __builtin_prefetch(reinterpret_cast<const void*>(reinterpret_cast<std::uintptr_t>(row) + prefetch_bytes));
#else
  (void)row;
  (void)kk;
#endif
}

template <std::size_t R, class F>
void row_tail(std::size_t rows, std::size_t i, F& block) {
  if constexpr (R > 0) {
    if (rows == R) block(std::integral_constant<std::size_t, R>{}, i);
    else row_tail<R - 1>(rows, i, block);
  }
}

/// Register blocking over rows: block(integral_constant<R>, i) for rows [i, i + R), Rmax rows at
/// a time and then one block of the m % Rmax left (each R its own fully unrolled instance).
template <std::size_t Rmax, class F>
void for_row_blocks(std::size_t m, F block) {
  std::size_t i = 0;
  for (; i + Rmax <= m; i += Rmax) block(std::integral_constant<std::size_t, Rmax>{}, i);
  row_tail<Rmax - 1>(m - i, i, block);
}

}  // namespace squint::kernels::detail_gemm

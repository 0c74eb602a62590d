// SPDX-License-Identifier: Apache-2.0
// gemm/microkernels/common.hpp: what every int8 GEMM micro-kernel knows of the packed layout.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "squint/config.hpp"

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

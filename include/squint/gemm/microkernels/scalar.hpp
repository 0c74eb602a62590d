// SPDX-License-Identifier: Apache-2.0
// gemm/microkernels/scalar.hpp: the portable int8 GEMM kernel, plain loops over the packed layout.
#pragma once

#include <cstddef>
#include <cstdint>

#include "squint/gemm/microkernels/common.hpp"

namespace squint::kernels::detail_gemm {

template <class Arch>
void run_scalar(const std::uint8_t* a, std::size_t m, std::size_t k, std::size_t lda, bool a_signed,
                const std::int8_t* packed, const std::int32_t* column_offsets, std::size_t n, std::size_t k_groups,
                std::int32_t* c, std::size_t ldc) {
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      const std::int8_t* b = packed + (j / panel_width) * k_groups * panel_width * k_group + (j % panel_width) * k_group;
      std::int32_t acc = 0;
      for (std::size_t kk = 0; kk < k; ++kk) {
        const std::int32_t av = a_signed ? static_cast<std::int8_t>(a[i * lda + kk]) : a[i * lda + kk];
        acc += av * b[(kk / k_group) * panel_width * k_group + kk % k_group];
      }
      // The offset is added in wrapping arithmetic, as the SIMD kernels' lanes do.
      c[i * ldc + j] = static_cast<std::int32_t>(static_cast<std::uint32_t>(acc) +
                                                 (column_offsets ? static_cast<std::uint32_t>(column_offsets[j]) : 0u));
    }
}

}  // namespace squint::kernels::detail_gemm

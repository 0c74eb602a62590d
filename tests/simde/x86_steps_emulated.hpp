// SPDX-License-Identifier: Apache-2.0
// x86_steps_emulated.hpp: the x86 GEMM micro-kernels built on SIMDe (see x86_steps_emulated.cpp),
// behind plain types. Callable on any CPU with AVX2.
#pragma once

#include <cstddef>
#include <cstdint>

namespace squint_test::emulated {

enum class step { avx512_vnni, avx512bw, avx2_vnni, avx2, avx512bw_u7, avx2_u7 };

/// squint::kernels::gemm_kernel<Arch>::run for the arch of `s`, its wider instructions emulated
/// (run_u7 for the _u7 steps, whose A must lie in [0, 127]).
void gemm_kernel(step s, const std::uint8_t* a, std::size_t m, std::size_t k, std::size_t lda, bool a_signed,
                 const std::int8_t* packed, const std::int32_t* column_sums, const std::int32_t* column_offsets, std::size_t n, std::size_t k_groups,
                 std::int32_t* c, std::size_t ldc);

}  // namespace squint_test::emulated

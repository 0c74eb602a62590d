// SPDX-License-Identifier: Apache-2.0
// x86_steps_emulated.hpp: the x86 GEMM micro-kernels built on SIMDe (see x86_steps_emulated.cpp),
// behind squint's plain kernel parameters. Callable on any CPU with AVX2.
#pragma once

#include <cstddef>
#include <cstdint>

#include "squint/gemm/microkernels/common.hpp"

namespace squint_test::emulated {

enum class step { avx512_vnni, avx512bw, avx2_vnni, avx2, avx512bw_u7, avx2_u7 };

/// squint::kernels::gemm_kernel<Arch>::run for the arch of `s`, its wider instructions emulated
/// (run_u7 for the _u7 steps, whose A must lie in [0, 127]), int32 or float output.
void gemm_kernel(step s, const squint::kernels::gemm_kernel_params& p);

}  // namespace squint_test::emulated

// SPDX-License-Identifier: Apache-2.0
// gemm/microkernels.hpp: exact int8 GEMM micro-kernels over packed weights, one per ISA.
//
// Each computes c[i][j] = sum_k a[i][k] * b[j][k] + column_offsets[j] with a uint8 or int8
// (bytes + `a_signed`) and b the packed int8 weights, exactly in int32 (callers bound K: see
// squint::gemm_max_k; the offsets, null for none, are added modulo 2^32), for `n` channels
// starting at `packed` (a panel boundary) and their `column_sums`. The offsets carry the
// zero-point terms that depend on the channel only, so they cost nothing in the epilogue:
//   microkernels/x86.hpp   AVX-512 VNNI, AVX-512BW, AVX-VNNI, AVX2 (vpmaddubsw exact by the
//                          sign trick: narrow weights only, see gemm_s32);
//   microkernels/neon.hpp  NEON, NEON dot product (sdot), NEON i8mm (smmla/usmmla);
//   microkernels/scalar.hpp the portable loops, for every other arch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "squint/arch/tags.hpp"
#include "squint/gemm/microkernels/neon.hpp"
#include "squint/gemm/microkernels/scalar.hpp"
#include "squint/gemm/microkernels/x86.hpp"

namespace squint::kernels {

template <class Arch>
struct gemm_kernel {
  /// p.to_float must be null unless gemm_kernel_fuses_float<Arch>().
  static void run(const gemm_kernel_params& p) noexcept;
  /// run() for A whose bytes all lie in [0, 127] (see has_u7_gemm_kernel); p.a_signed is moot.
  static void run_u7(const gemm_kernel_params& p) noexcept;
};

/// Whether Arch has a GEMM micro-kernel of its own (the others run the scalar one).
template <class Arch>
constexpr bool has_gemm_kernel() {
  return std::is_same_v<Arch, arch::avx512_vnni> || std::is_same_v<Arch, arch::avx512bw> ||
         std::is_same_v<Arch, arch::avx2_vnni> || std::is_same_v<Arch, arch::avx2> ||
         std::is_same_v<Arch, arch::neon64> || std::is_same_v<Arch, arch::neon64_dotprod> ||
         std::is_same_v<Arch, arch::neon64_i8mm>;
}

/// Output channels Arch's kernel covers per register block (the GEMM driver splits work in
/// multiples of it; x86.hpp checks it against the step's shape).
template <class Arch>
constexpr std::size_t gemm_kernel_width() {
  return std::is_same_v<Arch, arch::avx512bw> ? 64 : 32;
}

/// Whether Arch's kernel applies a float output stage (gemm_kernel_params::to_float) to its
/// accumulators in registers: the x86 ones; the others leave it to the driver's staged tiles.
template <class Arch>
constexpr bool gemm_kernel_fuses_float() {
  return has_gemm_kernel<Arch>() && !std::is_same_v<Arch, arch::neon64> && !std::is_same_v<Arch, arch::neon64_dotprod> &&
         !std::is_same_v<Arch, arch::neon64_i8mm>;
}

/// Whether Arch's kernel is exact only for narrow weights (no -128): the vpmaddubsw sign trick.
template <class Arch>
constexpr bool gemm_kernel_needs_narrow() {
  return std::is_same_v<Arch, arch::avx2> || std::is_same_v<Arch, arch::avx512bw>;
}

/// Whether Arch has a faster kernel for 7-bit A (codes in [0, 127], any weights): the sign-trick
/// archs, whose plain vpmaddubsw is exact there.
template <class Arch>
constexpr bool has_u7_gemm_kernel() {
  return gemm_kernel_needs_narrow<Arch>();
}

template <class Arch>
void gemm_kernel<Arch>::run(const gemm_kernel_params& p) noexcept {
  if constexpr (std::is_same_v<Arch, arch::neon64> || std::is_same_v<Arch, arch::neon64_dotprod> ||
                std::is_same_v<Arch, arch::neon64_i8mm>)
    detail_gemm::run_neon<Arch>(p.a, p.m, p.k, p.lda, p.a_signed, p.packed, p.column_sums, p.column_offsets, p.n,
                                p.k_groups, p.c, p.ldc);
  else if constexpr (has_gemm_kernel<Arch>()) {
    using step = detail_gemm::x86_step<Arch>;
    static_assert(step::vectors * step::lanes == gemm_kernel_width<Arch>(), "gemm_kernel_width is out of date");
    detail_gemm::run_x86<Arch>(p);
  } else
    detail_gemm::run_scalar<Arch>(p.a, p.m, p.k, p.lda, p.a_signed, p.packed, p.column_offsets, p.n, p.k_groups, p.c,
                                  p.ldc);
}

template <class Arch>
void gemm_kernel<Arch>::run_u7(const gemm_kernel_params& p) noexcept {
  if constexpr (has_u7_gemm_kernel<Arch>())
    detail_gemm::run_x86_u7<Arch>(p);
  else
    run(p);
}

}  // namespace squint::kernels

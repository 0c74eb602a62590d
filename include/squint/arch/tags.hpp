// SPDX-License-Identifier: Apache-2.0
// arch/tags.hpp: squint's instruction-set tags, their kernel families and the static choice.
//
// squint names its own tags instead of using xsimd's: xsimd has no tag for AVX-512 VNNI,
// AVX-VNNI, NEON dot product or i8mm before 13 (and 13/14 map unknown tags to their base,
// which crashed), and its names moved between 8.1 and 14. Each tag says which xsimd arch its
// float code uses (`simd`) and which tag's kernels it reuses where it adds nothing (`family`):
// quantize kernels gain nothing from VNNI, so avx512_vnni runs the avx512bw instantiation and
// no translation unit compiles the same xsimd code under two flag sets.
#pragma once

#include <xsimd/xsimd.hpp>

namespace squint::arch {

/// Plain C++ loops; available everywhere.
struct scalar {
  using family = scalar;
  static constexpr const char* name() { return "scalar"; }
};

struct sse2 {
  using family = sse2;
  using simd = xsimd::sse2;
  static constexpr const char* name() { return "sse2"; }
};
struct sse41 {
  using family = sse41;
  using simd = xsimd::sse4_1;
  static constexpr const char* name() { return "sse41"; }
};
/// AVX2 with FMA and F16C (every AVX2 CPU since Haswell and Zen has all three).
struct avx2 {
  using family = avx2;
  using simd = xsimd::fma3<xsimd::avx2>;
  static constexpr const char* name() { return "avx2"; }
};
/// AVX2 plus AVX-VNNI (vpdpbusd on ymm: Alder Lake, Zen 5).
struct avx2_vnni {
  using family = avx2;
  using simd = avx2::simd;
  static constexpr const char* name() { return "avx2_vnni"; }
};
/// AVX-512 F/CD/BW/DQ/VL (Skylake-SP, Zen 4).
struct avx512bw {
  using family = avx512bw;
  using simd = xsimd::avx512bw;
  static constexpr const char* name() { return "avx512bw"; }
};
/// AVX-512BW plus VNNI (Cascade Lake, Ice Lake, Zen 4).
struct avx512_vnni {
  using family = avx512bw;
  using simd = avx512bw::simd;
  static constexpr const char* name() { return "avx512_vnni"; }
};
/// AArch64 Advanced SIMD, the aarch64 baseline.
struct neon64 {
  using family = neon64;
  using simd = xsimd::neon64;
  static constexpr const char* name() { return "neon64"; }
};
/// NEON with the dot product extension (sdot/udot: Cortex-A55/A76, Neoverse N1).
struct neon64_dotprod {
  using family = neon64;
  using simd = neon64::simd;
  static constexpr const char* name() { return "neon64_dotprod"; }
};
/// NEON with the int8 matrix multiply extension (smmla/usdot: Neoverse V1/N2, Apple M2).
struct neon64_i8mm {
  using family = neon64;
  using simd = neon64::simd;
  static constexpr const char* name() { return "neon64_i8mm"; }
};

template <class Arch>
using family_t = typename Arch::family;

/// The best family this translation unit's compile flags allow: what static dispatch uses.
#if XSIMD_WITH_AVX512BW && XSIMD_WITH_AVX512DQ && defined(__AVX512VL__) && defined(__F16C__) && defined(__FMA__)
using native = avx512bw;
#elif XSIMD_WITH_AVX2 && XSIMD_WITH_FMA3_AVX2 && defined(__F16C__)
using native = avx2;
#elif XSIMD_WITH_SSE4_1
using native = sse41;
#elif XSIMD_WITH_SSE2
using native = sse2;
#elif XSIMD_WITH_NEON64
using native = neon64;
#else
using native = scalar;
#endif

}  // namespace squint::arch

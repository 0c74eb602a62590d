// SPDX-License-Identifier: Apache-2.0
// arch/cpu.hpp: squint's own CPU feature detection and the availability of each arch tag.
//
// Own detection rather than xsimd's: xsimd 8.1 reports AVX on this Zen 3 from cpuid alone and
// skips the XGETBV check that the OS saves the wider registers, and it has no VNNI, dot product
// or i8mm bits. x86 uses cpuid + xgetbv; aarch64 Linux uses getauxval.
#pragma once

#include <cstdint>
#include <type_traits>

#include "squint/arch/tags.hpp"
#include "squint/config.hpp"

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#define SQUINT_X86 1
#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
#else
#include <cpuid.h>
#endif
#elif defined(__aarch64__) && defined(__linux__)
#define SQUINT_AARCH64_LINUX 1
#include <sys/auxv.h>
#endif

SQUINT_NAMESPACE_BEGIN

/// What the CPU and the operating system support.
struct cpu_features {
  bool sse2 = false, sse41 = false, avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512cd = false, avx512bw = false, avx512dq = false, avx512vl = false;
  bool avx512_vnni = false, avx_vnni = false;
  bool neon = false, dotprod = false, i8mm = false;
};

namespace detail {

#if defined(SQUINT_X86)
inline void cpuid(unsigned leaf, unsigned sub, unsigned regs[4]) {
#if defined(_MSC_VER) && !defined(__clang__)
  int r[4];
  __cpuidex(r, static_cast<int>(leaf), static_cast<int>(sub));
  for (int i = 0; i < 4; ++i) regs[i] = static_cast<unsigned>(r[i]);
#else
  __cpuid_count(leaf, sub, regs[0], regs[1], regs[2], regs[3]);
#endif
}

inline std::uint64_t xgetbv0() {
#if defined(_MSC_VER) && !defined(__clang__)
  return _xgetbv(0);
#else
  std::uint32_t lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<std::uint64_t>(hi) << 32) | lo;
#endif
}
#endif

inline cpu_features detect_cpu() {
  cpu_features f;
#if defined(SQUINT_X86)
  unsigned r[4] = {0, 0, 0, 0};
  cpuid(0, 0, r);
  const unsigned max_leaf = r[0];
  cpuid(1, 0, r);
  const unsigned ecx1 = r[2], edx1 = r[3];
  f.sse2 = (edx1 >> 26) & 1;
  f.sse41 = (ecx1 >> 19) & 1;
  const bool osxsave = (ecx1 >> 27) & 1;
  const std::uint64_t xcr0 = osxsave ? xgetbv0() : 0;
  const bool os_avx = (xcr0 & 0x6) == 0x6;             // XMM and YMM state saved
  const bool os_avx512 = os_avx && (xcr0 & 0xe0) == 0xe0;  // opmask, ZMM_Hi256, Hi16_ZMM
  const bool avx = os_avx && ((ecx1 >> 28) & 1);
  f.fma = avx && ((ecx1 >> 12) & 1);
  f.f16c = avx && ((ecx1 >> 29) & 1);
  if (max_leaf >= 7) {
    cpuid(7, 0, r);
    const unsigned ebx7 = r[1], ecx7 = r[2], max_sub = r[0];
    f.avx2 = avx && ((ebx7 >> 5) & 1);
    f.avx512f = os_avx512 && ((ebx7 >> 16) & 1);
    f.avx512dq = f.avx512f && ((ebx7 >> 17) & 1);
    f.avx512cd = f.avx512f && ((ebx7 >> 28) & 1);
    f.avx512bw = f.avx512f && ((ebx7 >> 30) & 1);
    f.avx512vl = f.avx512f && ((ebx7 >> 31) & 1);
    f.avx512_vnni = f.avx512f && ((ecx7 >> 11) & 1);
    if (max_sub >= 1) {
      cpuid(7, 1, r);
      f.avx_vnni = f.avx2 && ((r[0] >> 4) & 1);
    }
  }
#elif defined(SQUINT_AARCH64_LINUX)
  const unsigned long hwcap = getauxval(AT_HWCAP);
  const unsigned long hwcap2 = getauxval(AT_HWCAP2);
  f.neon = (hwcap >> 1) & 1;                  // HWCAP_ASIMD
  f.dotprod = f.neon && ((hwcap >> 20) & 1);  // HWCAP_ASIMDDP
  f.i8mm = f.neon && ((hwcap2 >> 13) & 1);    // HWCAP2_I8MM
#elif defined(__aarch64__)
  f.neon = true;  // architectural on AArch64; extensions need an OS query we do not have here
#endif
  return f;
}

}  // namespace detail

/// The running CPU's features, detected once.
inline const cpu_features& cpu() {
  static const cpu_features features = detail::detect_cpu();
  return features;
}

/// Whether the running CPU (and OS) can execute code built for `Arch`.
template <class Arch>
bool is_available() {
  const cpu_features& f = cpu();
  if constexpr (std::is_same_v<Arch, arch::scalar>) return true;
  else if constexpr (std::is_same_v<Arch, arch::sse2>) return f.sse2;
  else if constexpr (std::is_same_v<Arch, arch::sse41>) return f.sse2 && f.sse41;
  else if constexpr (std::is_same_v<Arch, arch::avx2>) return f.avx2 && f.fma && f.f16c;
  else if constexpr (std::is_same_v<Arch, arch::avx2_vnni>) return f.avx2 && f.fma && f.f16c && f.avx_vnni;
  else if constexpr (std::is_same_v<Arch, arch::avx512bw>)
    return f.avx512f && f.avx512cd && f.avx512bw && f.avx512dq && f.avx512vl && f.fma && f.f16c;
  else if constexpr (std::is_same_v<Arch, arch::avx512_vnni>)
    return is_available<arch::avx512bw>() && f.avx512_vnni;
  else if constexpr (std::is_same_v<Arch, arch::neon64>) return f.neon;
  else if constexpr (std::is_same_v<Arch, arch::neon64_dotprod>) return f.neon && f.dotprod;
  else if constexpr (std::is_same_v<Arch, arch::neon64_i8mm>) return f.neon && f.dotprod && f.i8mm;
  else static_assert(sizeof(Arch) == 0, "unknown squint arch tag");
}

SQUINT_NAMESPACE_END

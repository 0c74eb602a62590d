// SPDX-License-Identifier: Apache-2.0
// config.hpp: version, ABI namespace and exception configuration.
#pragma once

#define SQUINT_VERSION_MAJOR 0
#define SQUINT_VERSION_MINOR 1
#define SQUINT_VERSION_PATCH 0

// The public API lives in an inline namespace named after the ABI version and the instruction
// set the translation unit is compiled for (squint::v0_avx2, squint::v0 for the baseline).
// Header-only code compiled under different -m flags must never be merged by the linker: an
// inline function from an AVX2 translation unit, picked for a baseline caller, dies with SIGILL
// on a CPU without AVX2. Distinct namespaces make every such symbol distinct. SIMD kernels are
// the exception: they live in squint::kernels, are templated on their arch tag and take only
// plain types, so that one translation unit per ISA can instantiate them for all others.
#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
#define SQUINT_ABI_NAMESPACE v0_avx512vnni
#elif defined(__AVX512BW__)
#define SQUINT_ABI_NAMESPACE v0_avx512bw
#elif defined(__AVX512F__)
#define SQUINT_ABI_NAMESPACE v0_avx512f
#elif defined(__AVXVNNI__)
#define SQUINT_ABI_NAMESPACE v0_avx2vnni
#elif defined(__AVX2__)
#define SQUINT_ABI_NAMESPACE v0_avx2
#elif defined(__AVX__)
#define SQUINT_ABI_NAMESPACE v0_avx
#elif defined(__SSE4_1__)
#define SQUINT_ABI_NAMESPACE v0_sse41
#elif defined(__ARM_FEATURE_MATMUL_INT8)
#define SQUINT_ABI_NAMESPACE v0_i8mm
#elif defined(__ARM_FEATURE_DOTPROD)
#define SQUINT_ABI_NAMESPACE v0_dotprod
#else
#define SQUINT_ABI_NAMESPACE v0
#endif

#define SQUINT_NAMESPACE_BEGIN \
  namespace squint {           \
  inline namespace SQUINT_ABI_NAMESPACE {
#define SQUINT_NAMESPACE_END \
  }                          \
  }

#ifndef SQUINT_USE_EXCEPTIONS
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS) || defined(_CPPUNWIND)
#define SQUINT_USE_EXCEPTIONS 1
#else
#define SQUINT_USE_EXCEPTIONS 0
#endif
#endif

// Fully unrolls the loop that follows. Register-blocked micro-kernels need it: their accumulators
// are arrays indexed by the loop variable, and GCC -O2 would keep them on the stack otherwise.
#if defined(__GNUC__)
#define SQUINT_UNROLL _Pragma("GCC unroll 16")
#else
#define SQUINT_UNROLL
#endif

// For per-vector helpers that take and return SIMD batches: out of line, GCC passes 512-bit
// batches through memory and rebuilds the helper's constants on every call.
#if defined(__GNUC__)
#define SQUINT_ALWAYS_INLINE inline __attribute__((always_inline))
#elif defined(_MSC_VER)
#define SQUINT_ALWAYS_INLINE __forceinline
#else
#define SQUINT_ALWAYS_INLINE inline
#endif

// Keeps a function's separate float multiply and add rounding twice wherever it is compiled or
// inlined: GCC fuses them into an FMA under its default -ffp-contract=fast (on AArch64, where
// FMA is baseline, even in code the kernel objects' -ffp-contract=off never sees), and GCC does
// not inline a function with other optimization settings into its caller. Clang's default
// (contract "on") fuses only within one expression, which the code so marked never writes.
#if defined(__GNUC__) && !defined(__clang__)
#define SQUINT_NO_FP_CONTRACT __attribute__((optimize("fp-contract=off")))
#else
#define SQUINT_NO_FP_CONTRACT
#endif

// SPDX-License-Identifier: Apache-2.0
// arch/ops.hpp: the primitives xsimd lacks, one specialization of `ops` per kernel family.
//
// Each specialization provides, on xsimd batches of its family:
//   div(a, b)            IEEE division, correctly rounded (xsimd 8.1's NEON division is not)
//   round_even(v)        nearest, ties to even, by an explicit instruction mode (never MXCSR)
//   to_int(v)            truncating float -> int32, for integral v in int32 range
//   store_narrow<T>(...) four int32 batches already inside T's range -> 4 * lanes codes
//   load_widen<T>(...)   4 * lanes int8/uint8 codes -> four int32 batches
//   store_half / load_half  float <-> IEEE fp16 (where the ISA converts in hardware)
//   load_widen_double    lanes / 2 floats -> doubles; store_truncated: doubles -> int32
//   stream_narrow<T>     store_narrow with a non-temporal store to an aligned address, and
//   stream_fence()       the fence that orders those stores (where has_stream)
// Saturation is never needed in the narrowing: kernels clamp in float first, which also
// sidesteps x86 turning NaN and overflow into INT_MIN and NEON saturating them differently.
// The specializations' members are named after their arch tag, so per-ISA objects export no
// symbol another ISA's object could also define (tests/check_symbol_leaks.cmake checks this).
#pragma once

#include <cstddef>
#include <cstdint>

#include "squint/arch/tags.hpp"

namespace squint::kernels {

template <class Family>
struct ops;  // defined per ISA below, only when the translation unit's flags enable it

}  // namespace squint::kernels

#include "squint/arch/arm_neon.hpp"
#include "squint/arch/x86_avx2.hpp"
#include "squint/arch/x86_avx512.hpp"
#include "squint/arch/x86_sse.hpp"

// SPDX-License-Identifier: Apache-2.0
// arch/arm_neon.hpp: AArch64 NEON primitives (4 float lanes).
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "squint/arch/tags.hpp"

#if XSIMD_WITH_NEON64
#include <arm_neon.h>

namespace squint::kernels {

template <>
struct ops<arch::neon64> {
  using simd = arch::neon64::simd;
  using vf = xsimd::batch<float, simd>;
  using vi = xsimd::batch<std::int32_t, simd>;
  static constexpr std::size_t lanes = 4;
  // fcvtn rounds by FPCR, so float -> fp16 takes the integer path; fp16 -> float is exact.
  static constexpr bool has_half = false;
  static constexpr bool has_stream = false;

  /// IEEE division (FDIV). xsimd 8.1 divides float batches on neon64 with a reciprocal estimate
  /// and two Newton steps, which is not correctly rounded and moves near-tie quotients.
  static vf div(vf a, vf b) { return vdivq_f32(a, b); }
  using vd = xsimd::batch<double, simd>;
  /// lanes / 2 floats widened to doubles (exact).
  static vd load_widen_double(const float* src) { return vcvt_f64_f32(vld1_f32(src)); }
  /// Truncating double -> int32 for lanes / 2 values in int32 range.
  static void store_truncated(std::int32_t* dst, vd v) { vst1_s32(dst, vmovn_s64(vcvtq_s64_f64(v))); }
  static vf round_even(vf v) { return vrndnq_f32(v); }  // FRINTN: ties to even, ignores FPCR
  static vi to_int(vf v) { return vcvtq_s32_f32(v); }   // FCVTZS: truncation
  static vf to_float(vi v) { return vcvtq_f32_s32(v); }

  template <class T>
  static void store_narrow(T* dst, vi a, vi b, vi c, vi d) {
    const int16x8_t ab = vcombine_s16(vmovn_s32(a), vmovn_s32(b));
    const int16x8_t cd = vcombine_s16(vmovn_s32(c), vmovn_s32(d));
    if (std::is_same<T, std::int8_t>::value) {
      vst1q_s8(reinterpret_cast<std::int8_t*>(dst), vcombine_s8(vmovn_s16(ab), vmovn_s16(cd)));
    } else {
      vst1q_u8(reinterpret_cast<std::uint8_t*>(dst), vcombine_u8(vqmovun_s16(ab), vqmovun_s16(cd)));
    }
  }

  template <class T>
  static void load_widen(const T* src, vi out[4]) {
    int16x8_t lo, hi;
    if (std::is_same<T, std::int8_t>::value) {
      const int8x16_t v = vld1q_s8(reinterpret_cast<const std::int8_t*>(src));
      lo = vmovl_s8(vget_low_s8(v));
      hi = vmovl_s8(vget_high_s8(v));
    } else {
      const uint8x16_t v = vld1q_u8(reinterpret_cast<const std::uint8_t*>(src));
      lo = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(v)));
      hi = vreinterpretq_s16_u16(vmovl_u8(vget_high_u8(v)));
    }
    out[0] = vmovl_s16(vget_low_s16(lo));
    out[1] = vmovl_s16(vget_high_s16(lo));
    out[2] = vmovl_s16(vget_low_s16(hi));
    out[3] = vmovl_s16(vget_high_s16(hi));
  }
};

}  // namespace squint::kernels
#endif

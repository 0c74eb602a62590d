// SPDX-License-Identifier: Apache-2.0
// kernels/convert.hpp: float <-> fp16 and float <-> bfloat16 arrays.
//
// Hardware conversion where it is exact and mode-independent (F16C and AVX-512 with an explicit
// rounding immediate); elsewhere the reference's integer-only conversion per element. NEON's
// fcvtn would round by FPCR, so it is not used for float -> fp16. bfloat16 is integer-only
// everywhere. Results equal squint::reference::float_to_half & co. bit for bit.
#pragma once

#include <cstddef>
#include <cstdint>

#include "squint/arch/ops.hpp"
#include "squint/reference/convert.hpp"

namespace squint::kernels {

template <class Arch>
struct convert_kernel {
  static void float_to_half(const float* x, std::uint16_t* h, std::size_t n) noexcept;
  static void half_to_float(const std::uint16_t* h, float* x, std::size_t n) noexcept;
  static void float_to_bfloat16(const float* x, std::uint16_t* b, std::size_t n) noexcept;
  static void bfloat16_to_float(const std::uint16_t* b, float* x, std::size_t n) noexcept;
};

namespace detail_convert {

template <class Arch>
constexpr bool hardware_half() {
  if constexpr (std::is_same<Arch, arch::scalar>::value) return false;
  else return ops<Arch>::has_half;
}

}  // namespace detail_convert

template <class Arch>
void convert_kernel<Arch>::float_to_half(const float* x, std::uint16_t* h, std::size_t n) noexcept {
  if constexpr (detail_convert::hardware_half<Arch>()) {
    using O = ops<Arch>;
    constexpr std::size_t L = O::lanes;
    std::size_t i = 0;
    for (; i + L <= n; i += L) O::store_half(h + i, O::vf::load_unaligned(x + i));
    if (i == n) return;
    float in[L] = {};
    std::uint16_t out[L];
    for (std::size_t k = 0; i + k < n; ++k) in[k] = x[i + k];
    O::store_half(out, O::vf::load_unaligned(in));
    for (std::size_t k = 0; i + k < n; ++k) h[i + k] = out[k];
  } else {
    for (std::size_t i = 0; i < n; ++i) h[i] = reference::float_to_half(x[i]);
  }
}

template <class Arch>
void convert_kernel<Arch>::half_to_float(const std::uint16_t* h, float* x, std::size_t n) noexcept {
  if constexpr (detail_convert::hardware_half<Arch>()) {
    using O = ops<Arch>;
    constexpr std::size_t L = O::lanes;
    std::size_t i = 0;
    for (; i + L <= n; i += L) O::load_half(h + i).store_unaligned(x + i);
    if (i == n) return;
    std::uint16_t in[L] = {};
    float out[L];
    for (std::size_t k = 0; i + k < n; ++k) in[k] = h[i + k];
    O::load_half(in).store_unaligned(out);
    for (std::size_t k = 0; i + k < n; ++k) x[i + k] = out[k];
  } else {
    for (std::size_t i = 0; i < n; ++i) x[i] = reference::half_to_float(h[i]);
  }
}

template <class Arch>
void convert_kernel<Arch>::float_to_bfloat16(const float* x, std::uint16_t* b, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) b[i] = reference::float_to_bfloat16(x[i]);
}

template <class Arch>
void convert_kernel<Arch>::bfloat16_to_float(const std::uint16_t* b, float* x, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) x[i] = reference::bfloat16_to_float(b[i]);
}

}  // namespace squint::kernels

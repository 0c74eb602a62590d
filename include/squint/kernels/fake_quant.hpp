// SPDX-License-Identifier: Apache-2.0
// kernels/fake_quant.hpp: fake quantization forward and backward in one pass (QAT).
//
// One kernel computes whatever its params ask for: the forward y (as quantize_kernel::fake),
// the straight-through gradient dx, and the sums of the LSQ scale and zero-point gradients
// (reference/fake_quant.hpp states them), reading x and dy once. y and dx equal the scalar
// reference bit for bit; the sums add the same float terms in another order (float lanes,
// flushed into double every `flush` vectors). Unchecked and noexcept, under round-to-nearest:
// squint::qat's entry points validate first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "squint/arch/ops.hpp"
#include "squint/reference/fake_quant.hpp"

namespace squint::kernels {

/// What one fake_quant_kernel::run call reads and writes: n elements with one scale and zero
/// point, codes in [qmin, qmax] (|qmin - zp| and |qmax - zp| at most 2^24).
struct fake_quant_params {
  const float* x = nullptr;
  const float* dy = nullptr;  ///< the output's gradient: backward when non-null
  float* y = nullptr;         ///< the forward output, or null
  float* dx = nullptr;        ///< the straight-through gradient, or null (needs dy)
  std::size_t n = 0;
  float scale = 1.0f;
  std::int32_t zero_point = 0;
  std::int32_t qmin = 0, qmax = 255;
  bool reciprocal = true;  ///< x * (1 / scale) (PyTorch) instead of x / scale (ONNX)
};

template <class Arch>
struct fake_quant_kernel {
  /// Runs p; returns the gradient sums (zero without dy).
  static reference::fake_quant_sums run(const fake_quant_params& p) noexcept;
};

namespace detail_fake_quant {
/// The SIMD body (a free template, so that the scalar family's explicit instantiation leaves it out).
template <class Arch>
reference::fake_quant_sums run(const fake_quant_params& p) noexcept;
}  // namespace detail_fake_quant

template <class Arch>
reference::fake_quant_sums fake_quant_kernel<Arch>::run(const fake_quant_params& p) noexcept {
  if constexpr (std::is_same<Arch, arch::scalar>::value) {  // the scalar family: the reference loops
    const qparams q{p.scale, p.zero_point};
    const quant_range range{p.qmin, p.qmax};
    const quantize_mode mode = p.reciprocal ? quantize_mode::reciprocal : quantize_mode::divide;
    if (p.y) reference::fake_quantize(p.x, p.y, p.n, q, range, mode);
    if (!p.dy) return {};
    return reference::fake_quantize_backward(p.x, p.dy, p.dx, p.n, q, range, mode);
  } else {
    return detail_fake_quant::run<Arch>(p);
  }
}

template <class Arch>
reference::fake_quant_sums detail_fake_quant::run(const fake_quant_params& p) noexcept {
  using O = ops<Arch>;
  using vf = typename O::vf;
  constexpr std::size_t L = O::lanes;
  constexpr std::size_t flush = 256;  // vectors summed in float before joining the double sums
  const vf factor(p.reciprocal ? 1.0f / p.scale : p.scale), s(p.scale), minus_s(-p.scale), zero(0.0f);
  const vf lo(static_cast<float>(static_cast<std::int64_t>(p.qmin) - p.zero_point));
  const vf hi(static_cast<float>(static_cast<std::int64_t>(p.qmax) - p.zero_point));
  const bool backward = p.dy != nullptr;
  vf sum_s(0.0f), sum_z(0.0f);
  reference::fake_quant_sums sums;
  auto drain = [&]() {
    alignas(64) float a[L], b[L];
    sum_s.store_aligned(a);
    sum_z.store_aligned(b);
    for (std::size_t j = 0; j < L; ++j) sums.scale += static_cast<double>(a[j]), sums.zero_point += static_cast<double>(b[j]);
    sum_s = sum_z = zero;
  };
  // One vector per iteration; the tail runs the same body on zero-padded buffers (x = 0 and
  // dy = 0 add nothing to the sums). No lambda: GCC would not inline it into the loop.
  alignas(64) float x_tail[L] = {}, dy_tail[L] = {}, y_tail[L], dx_tail[L];
  const float* const X = p.x;
  const float* const DY = p.dy;
  float* const Y = p.y;
  float* const DX = p.dx;
  const std::size_t n = p.n;
  const bool reciprocal = p.reciprocal;
  std::size_t since_flush = 0;
  for (std::size_t i = 0; i < n; i += L) {
    const bool tail = i + L > n;
    const std::size_t count = tail ? n - i : L;
    if (tail)
      for (std::size_t k = 0; k < count; ++k) x_tail[k] = X[i + k], dy_tail[k] = backward ? DY[i + k] : 0.0f;
    const vf x0 = vf::load_unaligned(tail ? x_tail : X + i);
    const vf v = reciprocal ? x0 * factor : O::div(x0, factor);
    if (Y) {
      // As quantize_kernel::fake: NaN -> 0, clamp, round; + 0 turns -0 into +0.
      const vf c = xsimd::min(xsimd::max(xsimd::select(v == v, v, zero), lo), hi);
      ((O::round_even(c) + zero) * s).store_unaligned(tail ? y_tail : Y + i);
    }
    if (backward) {
      const vf g = vf::load_unaligned(tail ? dy_tail : DY + i);
      // NaN contributes nothing; it is masked out, not rounded (SSE2's rounding turns NaN into -2^31).
      const auto number = v == v;
      const vf r = O::round_even(xsimd::select(number, v, zero));
      const auto below = number & (r < lo), above = number & (r > hi), inside = number & (r >= lo) & (r <= hi);
      if (DX) xsimd::select(inside, g, zero).store_unaligned(tail ? dx_tail : DX + i);
      // Selected after the product: a NaN lane's dy (NaN or inf) must not reach the sums.
      sum_s = sum_s + xsimd::select(number, xsimd::select(inside, r - v, xsimd::select(below, lo, hi)) * g, zero);
      sum_z = sum_z + xsimd::select(below | above, minus_s * g, zero);
      if (++since_flush == flush) drain(), since_flush = 0;
    }
    if (tail)
      for (std::size_t k = 0; k < count; ++k) {
        if (Y) Y[i + k] = y_tail[k];
        if (DX) DX[i + k] = dx_tail[k];
      }
  }
  drain();
  return sums;
}

}  // namespace squint::kernels

SQUINT_NAMESPACE_BEGIN
namespace detail {
/// fake_quant_kernel::run, as the backends hold it.
using fake_quant_fn = reference::fake_quant_sums (*)(const kernels::fake_quant_params&) noexcept;
}  // namespace detail
SQUINT_NAMESPACE_END

// SPDX-License-Identifier: Apache-2.0
// reference/fake_quant.hpp: scalar oracle for the gradients of fake quantization (QAT).
//
// y = (clamp(round(x / s) + zp, qmin, qmax) - zp) * s, forward as reference::fake_quantize.
// Backward, with r = round_half_even(v), v = x / s (or x * (1 / s)) and the unclamped code r + zp:
//   inside  (qmin <= r + zp <= qmax): dx = dy, ds += dy * (r - v),          dzp += 0
//   below   (r + zp < qmin):          dx = 0,  ds += dy * (qmin - zp),      dzp += -s * dy
//   above   (r + zp > qmax):          dx = 0,  ds += dy * (qmax - zp),      dzp += -s * dy
//   v NaN:                            dx = 0,  nothing (the forward gave 0, a constant)
// dx is the straight-through estimator of PyTorch's fake_quantize_per_*_affine backward; ds and
// dzp are LSQ / LSQ+ (Esser et al. 2020; Bhalgat et al. 2020) as PyTorch's learnable fake
// quantize computes them, except that r - v is exact here where PyTorch rounds (x_fq - x) / s,
// and that NaN inputs contribute nothing (PyTorch's propagate NaN into ds). The sums are raw:
// LSQ's gradient scale (qat::lsq_grad_scale) is the caller's to apply. Sums are in double.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "squint/qparams.hpp"
#include "squint/reference/quantize.hpp"

SQUINT_NAMESPACE_BEGIN
namespace reference {

/// Sums of the scale and zero-point gradients over the elements of one tensor or channel.
struct fake_quant_sums {
  double scale = 0.0;
  double zero_point = 0.0;
};

/// One element's backward: returns dx and adds its scale and zero-point terms to `sums`.
inline float fake_quantize_grad(float x, float dy, qparams p, quant_range range, quantize_mode mode,
                                fake_quant_sums& sums) {
  const float v = mode == quantize_mode::divide ? x / p.scale : x * (1.0f / p.scale);
  if (std::isnan(v)) return 0.0f;
  const double code = std::isinf(v) ? v : detail::round_half_even(v) + p.zero_point;
  if (code < range.qmin || code > range.qmax) {
    const std::int64_t bound = code < range.qmin ? range.qmin : range.qmax;
    sums.scale += static_cast<double>(dy * static_cast<float>(bound - p.zero_point));
    sums.zero_point += static_cast<double>(-p.scale * dy);
    return 0.0f;
  }
  sums.scale += static_cast<double>(dy * (static_cast<float>(detail::round_half_even(v)) - v));
  return dy;
}

/// dx[i] = the straight-through gradient of y = fake_quantize(x) given dy (dx may be null), and
/// the sums of the scale and zero-point terms, over n elements with one qparams.
inline fake_quant_sums fake_quantize_backward(const float* x, const float* dy, float* dx, std::size_t n, qparams p,
                                              quant_range range, quantize_mode mode = quantize_mode::reciprocal) {
  fake_quant_sums sums;
  for (std::size_t i = 0; i < n; ++i) {
    const float g = fake_quantize_grad(x[i], dy[i], p, range, mode, sums);
    if (dx) dx[i] = g;
  }
  return sums;
}

}  // namespace reference
SQUINT_NAMESPACE_END

// SPDX-License-Identifier: Apache-2.0
// qat/fake_quant.hpp: fake quantization with gradients, the operator quantization-aware
// training inserts for weights and activations.
//
// Forward: squint::fake_quantize (y = dequantize(quantize(x)), codes clamped to the range).
// Backward (reference/fake_quant.hpp states it exactly): the straight-through estimator for x
// (the gradient passes where the unclamped code lies inside [qmin, qmax], zero outside and for
// NaN, as PyTorch's fake_quantize_per_*_affine backward), and the LSQ / LSQ+ gradients of the
// scale and the zero point (Esser et al. 2020, Bhalgat et al. 2020), summed over each tensor or
// channel and left unscaled: multiply by lsq_grad_scale() for LSQ's 1 / sqrt(N * qmax). Per
// group is per channel on a view whose last axis is the group: weights (rows x cols) with groups
// of g along cols are the shape {rows, cols / g, g} with axis 1.
//
// The kernel (kernels/fake_quant.hpp) reads x and dy once and can write the forward output in
// the same pass; `kernel` is this translation unit's own unless a dispatched one is passed
// (squint::runtime::backend().fake_quant).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "squint/kernels/fake_quant.hpp"
#include "squint/quantize.hpp"

SQUINT_NAMESPACE_BEGIN
namespace qat {

/// The summed gradients of the scale and the zero point (per tensor, or of one channel).
using fake_quant_sums = reference::fake_quant_sums;

/// LSQ's gradient scale 1 / sqrt(n * qmax) for a quantizer over n elements per step (qmax: the
/// largest positive code, at least 1).
inline float lsq_grad_scale(std::size_t n, std::int32_t qmax) {
  const double q = qmax > 0 ? static_cast<double>(qmax) : 1.0;
  return n == 0 ? 0.0f : static_cast<float>(1.0 / std::sqrt(static_cast<double>(n) * q));
}

namespace detail {

/// The checks fake_quantize makes, plus the bound the kernel compares codes in float against.
inline void check_range(const char* function, qparams p, quant_range range) {
  squint::detail::require(range.qmin < range.qmax, function, ": range [", range.qmin, ", ", range.qmax, "] is empty");
  validate(p, range, function);
  constexpr std::int64_t limit = std::int64_t{1} << 24;
  const std::int64_t lo = static_cast<std::int64_t>(range.qmin) - p.zero_point;
  const std::int64_t hi = static_cast<std::int64_t>(range.qmax) - p.zero_point;
  squint::detail::require(lo >= -limit && hi <= limit, function, ": range [", range.qmin, ", ", range.qmax,
                          "] reaches more than 2^24 codes from zero_point ", p.zero_point);
}

inline void check_backward(const char* function, const tensor_view<const float>& x, const tensor_view<const float>& dy,
                           const tensor_view<float>& dx) {
  squint::detail::require_same_shape(function, x, dy);
  squint::detail::require_same_shape(function, x, dx);
}

}  // namespace detail

/// dx = the straight-through gradient of fake_quantize(x, p, range, mode) given its output's
/// gradient dy; returns the scale and zero-point gradient sums. dx may alias x or dy.
/// @throws squint::error on shape or pointer errors, an empty range, invalid qparams, or a range
///         more than 2^24 codes from the zero point.
inline fake_quant_sums fake_quantize_backward(tensor_view<const float> x, tensor_view<const float> dy,
                                              tensor_view<float> dx, qparams p, quant_range range,
                                              quantize_mode mode = quantize_mode::reciprocal,
                                              squint::detail::fake_quant_fn kernel =
                                                  &kernels::fake_quant_kernel<arch::native>::run) {
  detail::check_backward("qat::fake_quantize_backward", x, dy, dx);
  detail::check_range("qat::fake_quantize_backward", p, range);
  const squint::detail::nearest_rounding_scope rounding;
  kernels::fake_quant_params k;
  k.x = x.data();
  k.dy = dy.data();
  k.dx = dx.data();
  k.n = x.size();
  k.scale = p.scale;
  k.zero_point = p.zero_point;
  k.qmin = range.qmin;
  k.qmax = range.qmax;
  k.reciprocal = mode == quantize_mode::reciprocal;
  return kernel(k);
}

/// Per-channel backward along p.axis: one gradient sum per channel.
/// @throws squint::error as the per-tensor form, or on qparams that do not match the axis.
inline std::vector<fake_quant_sums> fake_quantize_backward(tensor_view<const float> x, tensor_view<const float> dy,
                                                           tensor_view<float> dx, const per_channel_qparams& p,
                                                           quant_range range,
                                                           quantize_mode mode = quantize_mode::reciprocal,
                                                           squint::detail::fake_quant_fn kernel =
                                                               &kernels::fake_quant_kernel<arch::native>::run) {
  detail::check_backward("qat::fake_quantize_backward", x, dy, dx);
  const axis_split s = squint::detail::require_per_channel("qat::fake_quantize_backward", x.extents(), p, range);
  squint::detail::require(range.qmin < range.qmax, "qat::fake_quantize_backward: range [", range.qmin, ", ",
                          range.qmax, "] is empty");
  for (std::size_t c = 0; c < s.channels; ++c) detail::check_range("qat::fake_quantize_backward", p[c], range);
  const squint::detail::nearest_rounding_scope rounding;
  std::vector<fake_quant_sums> sums(s.channels);
  kernels::fake_quant_params k;
  k.n = s.inner;
  k.qmin = range.qmin;
  k.qmax = range.qmax;
  k.reciprocal = mode == quantize_mode::reciprocal;
  for (std::size_t o = 0; o < s.outer; ++o)
    for (std::size_t c = 0; c < s.channels; ++c) {
      const std::size_t offset = (o * s.channels + c) * s.inner;
      k.x = x.data() + offset;
      k.dy = dy.data() + offset;
      k.dx = dx.data() + offset;
      k.scale = p.scale[c];
      k.zero_point = p.zero_point[c];
      const fake_quant_sums part = kernel(k);
      sums[c].scale += part.scale;
      sums[c].zero_point += part.zero_point;
    }
  return sums;
}

}  // namespace qat
SQUINT_NAMESPACE_END

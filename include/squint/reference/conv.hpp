// SPDX-License-Identifier: Apache-2.0
// reference/conv.hpp: scalar oracle for the integer 2-D convolution with zero points (ONNX
// ConvInteger), NHWC activations and OHWI filters.
#pragma once

#include <cstddef>
#include <cstdint>

#include "squint/conv/geometry.hpp"

SQUINT_NAMESPACE_BEGIN
namespace reference {

/// Calls visit(output index, o, pixel, tap) for every output element and every in-image tap
/// of its window: `pixel` indexes the input pixel's channel 0 (NHWC), `tap` the filter's
/// channel 0 at that tap for output channel o (OHWI), both already offset to o's group.
template <class Visit>
void for_each_window_tap(const conv2d_geometry& g, Visit visit) {
  const conv2d_params& p = g.params;
  const std::size_t cg = g.filter.group_channels, ocg = g.group_out_channels();
  std::size_t out = 0;
  for (std::size_t n = 0; n < g.out.batch; ++n)
    for (std::size_t oy = 0; oy < g.out.height; ++oy)
      for (std::size_t ox = 0; ox < g.out.width; ++ox)
        for (std::size_t o = 0; o < g.out.channels; ++o, ++out)
          for (std::size_t ky = 0; ky < g.filter.kernel_h; ++ky)
            for (std::size_t kx = 0; kx < g.filter.kernel_w; ++kx) {
              // Signed positions: the window may start in the padding.
              const auto iy = static_cast<std::ptrdiff_t>(oy * p.stride_h + ky * p.dilation_h) -
                              static_cast<std::ptrdiff_t>(p.pad_top);
              const auto ix = static_cast<std::ptrdiff_t>(ox * p.stride_w + kx * p.dilation_w) -
                              static_cast<std::ptrdiff_t>(p.pad_left);
              if (iy < 0 || ix < 0 || iy >= static_cast<std::ptrdiff_t>(g.in.height) ||
                  ix >= static_cast<std::ptrdiff_t>(g.in.width))
                continue;
              const std::size_t pixel =
                  ((n * g.in.height + static_cast<std::size_t>(iy)) * g.in.width + static_cast<std::size_t>(ix)) *
                      g.in.channels + o / ocg * cg;
              visit(out, o, pixel, ((o * g.filter.kernel_h + ky) * g.filter.kernel_w + kx) * cg);
            }
}

/// y[n][oy][ox][o] = sum over the window and the group's channels of (x - x_zero_point) *
/// (w[o] - w_zero_point[o]), in int64 so it is exact for any size. Taps outside the image read
/// x_zero_point (they add nothing), as ONNX pads. `w` is OHWI (out_channels x kernel_h x
/// kernel_w x group_channels); `w_zero_point` holds one zero point per output channel or one for
/// all (`w_zero_point_count`), or is null for zero. `g` comes from squint::resolve.
template <class TX, class TW>
void conv2d(const TX* x, const conv2d_geometry& g, std::int32_t x_zero_point, const TW* w,
            const std::int32_t* w_zero_point, std::size_t w_zero_point_count, std::int64_t* y) {
  for (std::size_t i = 0; i < g.out.size(); ++i) y[i] = 0;
  const std::size_t cg = g.filter.group_channels;
  for_each_window_tap(g, [&](std::size_t out, std::size_t o, std::size_t pixel, std::size_t tap) {
    const std::int64_t wz = w_zero_point == nullptr ? 0 : w_zero_point[w_zero_point_count == 1 ? 0 : o];
    for (std::size_t c = 0; c < cg; ++c)
      y[out] += (static_cast<std::int64_t>(x[pixel + c]) - x_zero_point) * (static_cast<std::int64_t>(w[tap + c]) - wz);
  });
}

/// The float convolution the FP32, FP16 and weight-only paths are compared with: the same sum
/// over float x and w (OHWI) in double, plus bias[o] (may be null); padding reads zero.
inline void conv2d_float(const float* x, const conv2d_geometry& g, const float* w, const float* bias, double* y) {
  for (std::size_t i = 0; i < g.out.size(); ++i) y[i] = bias ? bias[i % g.out.channels] : 0.0;
  const std::size_t cg = g.filter.group_channels;
  for_each_window_tap(g, [&](std::size_t out, std::size_t, std::size_t pixel, std::size_t tap) {
    for (std::size_t c = 0; c < cg; ++c) y[out] += static_cast<double>(x[pixel + c]) * w[tap + c];
  });
}

}  // namespace reference
SQUINT_NAMESPACE_END

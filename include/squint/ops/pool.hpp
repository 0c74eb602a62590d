// SPDX-License-Identifier: Apache-2.0
// ops/pool.hpp: pooling on quantized NHWC images, for full-integer pipelines (activations stay
// uint8/int8 between layers).
//
// Float versions of each (max_pool2d is one template) serve float-boundary models.
//   max_pool2d: on the codes themselves (the order of codes is the order of the values; the
//     output keeps the input's qparams); padding never wins (ONNX pads MaxPool with -inf).
//   avg_pool2d, global_avg_pool: the exact int32 sum of x - x_zero_point over the window, then one
//     rounding into the output's qparams: y = clamp(round_half_even(float(sum) * (x.scale /
//     y.scale / count)) + y.zero_point), count the taps in the image (or all taps with
//     count_include_pad, as ONNX's attribute).
// Windows are the convolution's (conv/geometry.hpp: kernel, stride, padding, dilation).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "squint/conv/im2col.hpp"
#include "squint/qparams.hpp"

SQUINT_NAMESPACE_BEGIN

/// A pooling window: its size and the convolution parameters it moves with (groups unused).
struct pool2d_params {
  std::size_t kernel_h = 2, kernel_w = 2;
  conv2d_params window{2, 2};  ///< stride 2 x 2 by default, no padding
  bool count_include_pad = false;
};

namespace detail {

/// The geometry of a pooling window over `in` (one group per channel).
inline conv2d_geometry pool_geometry(const char* function, const image_shape& in, const pool2d_params& p) {
  require(in.channels > 0, function, ": the input has no channels");
  conv2d_params params = p.window;
  params.groups = in.channels;
  return resolve(function, in, {in.channels, 1, p.kernel_h, p.kernel_w}, params);
}

/// Runs body(pixel, taps, in_image_taps) over every output pixel with the window's tap pointers
/// (padding taps point at `pad`, a row of `pad_value`).
template <class T, class Body>
void for_each_window(const T* x, const conv2d_geometry& g, T pad_value, Body body) {
  const std::vector<T> pad(g.in.channels, pad_value);
  std::vector<const T*> taps(g.filter.taps());
  const std::size_t m = g.out.pixels();
  if (m == 0) return;
  window_walker<T> walk(x, g, pad.data(), 0, taps.data());
  for (std::size_t pixel = 0; pixel < m; ++pixel) {
    if (pixel > 0) walk.next();
    std::size_t inside = 0;
    for (const T* t : taps) inside += t != pad.data();
    body(pixel, taps.data(), inside);
  }
}

template <class T>
void check_pool_call(const char* function, const T* x, const conv2d_geometry& g, const T* y) {
  require_matrix(function, "x", x, g.in.pixels(), g.in.channels);
  require_matrix(function, "y", y, g.out.pixels(), g.out.channels);
}

}  // namespace detail

/// y = the maximum over each window: codes (uint8 or int8, NHWC; y has the input's qparams) or
/// floats.
/// @throws squint::error on a window that does not fit `in` or null pointers with elements.
template <class T>
void max_pool2d(const T* x, const image_shape& in, const pool2d_params& p, T* y) {
  const conv2d_geometry g = detail::pool_geometry("max_pool2d", in, p);
  detail::check_pool_call("max_pool2d", x, g, y);
  const std::size_t c = in.channels;
  const conv2d_params& w = g.params;
  if (w.pad_top == 0 && w.pad_left == 0 && w.pad_bottom == 0 && w.pad_right == 0) {
    // Every window lies in the image: its taps are fixed offsets from its corner. Channels go in
    // blocks of a fixed 16 through a local array (which y cannot alias) that the compiler keeps
    // in a vector register.
    constexpr std::size_t block = 16;
    std::vector<std::size_t> offset;
    for (std::size_t ky = 0; ky < p.kernel_h; ++ky)
      for (std::size_t kx = 0; kx < p.kernel_w; ++kx)
        offset.push_back((ky * w.dilation_h * in.width + kx * w.dilation_w) * c);
    const std::size_t taps = offset.size();
    for (std::size_t n = 0; n < in.batch; ++n)
      for (std::size_t oy = 0; oy < g.out.height; ++oy)
        for (std::size_t ox = 0; ox < g.out.width; ++ox) {
          const T* corner = x + ((n * in.height + oy * w.stride_h) * in.width + ox * w.stride_w) * c;
          T* out = y + ((n * g.out.height + oy) * g.out.width + ox) * c;
          std::size_t j0 = 0;
          for (; j0 + block <= c; j0 += block) {
            T best[block];
            for (std::size_t j = 0; j < block; ++j) best[j] = corner[j0 + j];
            for (std::size_t t = 1; t < taps; ++t) {
              const T* tap = corner + offset[t] + j0;
              for (std::size_t j = 0; j < block; ++j) {
                const T v = tap[j];  // by value: std::max's references would stop the vectorizer
                best[j] = best[j] < v ? v : best[j];
              }
            }
            for (std::size_t j = 0; j < block; ++j) out[j0 + j] = best[j];
          }
          for (; j0 < c; ++j0) {
            T best = corner[j0];
            for (std::size_t t = 1; t < taps; ++t) best = std::max(best, corner[offset[t] + j0]);
            out[j0] = best;
          }
        }
    return;
  }
  detail::for_each_window(x, g, std::numeric_limits<T>::lowest(), [&](std::size_t pixel, const T* const* taps, std::size_t) {
    T* out = y + pixel * c;
    std::copy(taps[0], taps[0] + c, out);
    for (std::size_t t = 1; t < g.filter.taps(); ++t)
      for (std::size_t j = 0; j < c; ++j) out[j] = std::max(out[j], taps[t][j]);
  });
}

/// Requantized average over each window (see the header), from x_params to y_params.
/// @throws squint::error as max_pool2d, or on qparams outside T's range.
template <class T>
void avg_pool2d(const T* x, const image_shape& in, qparams x_params, const pool2d_params& p, qparams y_params, T* y) {
  const conv2d_geometry g = detail::pool_geometry("avg_pool2d", in, p);
  detail::check_pool_call("avg_pool2d", x, g, y);
  validate(x_params, full_range(dtype_of<T>()), "avg_pool2d: x_params");
  validate(y_params, full_range(dtype_of<T>()), "avg_pool2d: y_params");
  const std::size_t c = in.channels, taps = g.filter.taps();
  std::vector<std::int32_t> sum(c);
  // Padding taps read the zero point: they add nothing to the sum of x - x_zero_point.
  detail::for_each_window(x, g, static_cast<T>(x_params.zero_point),
                          [&](std::size_t pixel, const T* const* tap, std::size_t inside) {
    std::fill(sum.begin(), sum.end(), -static_cast<std::int32_t>(taps) * x_params.zero_point);
    for (std::size_t t = 0; t < taps; ++t)
      for (std::size_t j = 0; j < c; ++j) sum[j] += tap[t][j];
    // A window of padding only (count 0 without count_include_pad) averages nothing: 0.
    const std::size_t count = p.count_include_pad ? taps : std::max<std::size_t>(inside, 1);
    const float multiplier = x_params.scale / y_params.scale / static_cast<float>(count);
    for (std::size_t j = 0; j < c; ++j)
      y[pixel * c + j] = detail::round_to_code<T>(static_cast<float>(sum[j]) * multiplier, y_params.zero_point,
                                                  std::numeric_limits<T>::min());
  });
}

/// Requantized average over each image's pixels: y is batch x 1 x 1 x channels.
/// @throws squint::error on an empty image, null pointers with elements, or bad qparams.
template <class T>
void global_avg_pool(const T* x, const image_shape& in, qparams x_params, qparams y_params, T* y) {
  detail::require(in.height > 0 && in.width > 0 && in.channels > 0, "global_avg_pool: empty image ", in.height, " x ",
                  in.width, " x ", in.channels);
  detail::require_matrix("global_avg_pool", "x", x, in.pixels(), in.channels);
  detail::require_matrix("global_avg_pool", "y", y, in.batch, in.channels);
  validate(x_params, full_range(dtype_of<T>()), "global_avg_pool: x_params");
  validate(y_params, full_range(dtype_of<T>()), "global_avg_pool: y_params");
  const std::size_t area = in.height * in.width, c = in.channels;
  const float multiplier = x_params.scale / y_params.scale / static_cast<float>(area);
  std::vector<std::int64_t> sum(c);
  for (std::size_t n = 0; n < in.batch; ++n) {
    std::fill(sum.begin(), sum.end(), -static_cast<std::int64_t>(area) * x_params.zero_point);
    for (std::size_t i = 0; i < area; ++i)
      for (std::size_t j = 0; j < c; ++j) sum[j] += x[(n * area + i) * c + j];
    for (std::size_t j = 0; j < c; ++j)
      y[n * c + j] = detail::round_to_code<T>(static_cast<float>(sum[j]) * multiplier, y_params.zero_point,
                                              std::numeric_limits<T>::min());
  }
}

/// Float average over each window (the count as in the quantized avg_pool2d).
/// @throws squint::error as max_pool2d.
inline void avg_pool2d(const float* x, const image_shape& in, const pool2d_params& p, float* y) {
  const conv2d_geometry g = detail::pool_geometry("avg_pool2d", in, p);
  detail::check_pool_call("avg_pool2d", x, g, y);
  const std::size_t c = in.channels, taps = g.filter.taps();
  detail::for_each_window(x, g, 0.0f, [&](std::size_t pixel, const float* const* tap, std::size_t inside) {
    float* out = y + pixel * c;
    std::fill(out, out + c, 0.0f);
    for (std::size_t t = 0; t < taps; ++t)
      for (std::size_t j = 0; j < c; ++j) out[j] += tap[t][j];
    const float count = static_cast<float>(p.count_include_pad ? taps : std::max<std::size_t>(inside, 1));
    for (std::size_t j = 0; j < c; ++j) out[j] /= count;
  });
}

/// Float average over each image's pixels: y is batch x 1 x 1 x channels.
/// @throws squint::error on an empty image or null pointers with elements.
inline void global_avg_pool(const float* x, const image_shape& in, float* y) {
  detail::require(in.height > 0 && in.width > 0 && in.channels > 0, "global_avg_pool: empty image ", in.height, " x ",
                  in.width, " x ", in.channels);
  detail::require_matrix("global_avg_pool", "x", x, in.pixels(), in.channels);
  detail::require_matrix("global_avg_pool", "y", y, in.batch, in.channels);
  const std::size_t area = in.height * in.width, c = in.channels;
  std::vector<double> sum(c);
  for (std::size_t n = 0; n < in.batch; ++n) {
    std::fill(sum.begin(), sum.end(), 0.0);
    for (std::size_t i = 0; i < area; ++i)
      for (std::size_t j = 0; j < c; ++j) sum[j] += x[(n * area + i) * c + j];
    for (std::size_t j = 0; j < c; ++j) y[n * c + j] = static_cast<float>(sum[j] / static_cast<double>(area));
  }
}

SQUINT_NAMESPACE_END

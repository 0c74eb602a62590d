// SPDX-License-Identifier: Apache-2.0
// conv/float_conv.hpp: float convolutions with FP32, FP16 or int8 weight-only filters — the
// comparison and fallback paths of the INT8 convolution.
//
// The same im2col tiles as the INT8 convolution (conv/im2col.hpp, float pixels, padding 0.0f),
// each run through the float GEMM of its filter form per group: gemm_float (float panels),
// gemm_half (fp16 weights, fp32 accumulation) or gemm_weight_only (int8 codes times per-channel
// scales). 1x1 filters at stride 1 without padding run on the image as it is. Depthwise filters
// run a direct loop over tap pointers with the weights as their GEMM would see them.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "squint/conv/im2col.hpp"
#include "squint/conv/pack.hpp"
#include "squint/gemm/fp16.hpp"
#include "squint/gemm/fp32.hpp"
#include "squint/gemm/weight_only.hpp"

SQUINT_NAMESPACE_BEGIN

namespace detail {

/// The weight of channel j at depth i as each form's GEMM multiplies by it.
inline float weight_value(const packed_float_weights& b, std::size_t j, std::size_t i) { return b.at(j, i); }
inline float weight_value(const packed_half_weights& b, std::size_t j, std::size_t i) { return b.at(j, i); }
inline float weight_value(const packed_weight_only& b, std::size_t j, std::size_t i) {
  return static_cast<float>(b.at(j, i)) * b.scales()[j];
}

}  // namespace detail

/// A float filter packed per group for one float GEMM: `Packed` is packed_float_weights,
/// packed_half_weights or packed_weight_only. Immutable, shareable between threads.
template <class Packed>
class packed_float_conv {
 public:
  /// Packs a float filter (each group an out_channels / groups x taps * group_channels matrix).
  /// @throws squint::error on null data or bad sizes or parameters (see squint::resolve).
  static packed_float_conv from_float(const float* w, const filter_shape& f, filter_layout layout,
                                      const conv2d_params& params) {
    const char* function = "packed_float_conv::from_float";
    detail::check_filter(function, f, params);
    detail::require_matrix(function, "w", w, f.out_channels, detail::checked_mul(f.taps(), f.group_channels, function, "w"));
    const std::vector<float> ohwi = detail::to_ohwi(w, f, layout);
    const std::size_t ocg = f.out_channels / params.groups, depth = f.taps() * f.group_channels;
    packed_float_conv p;
    p.filter_ = f;
    p.params_ = params;
    for (std::size_t g = 0; g < params.groups; ++g)
      p.groups_.push_back(Packed::from_float(ohwi.data() + g * ocg * depth, ocg, depth, depth));
    if (params.groups > 1 && f.group_channels == 1 && f.out_channels == params.groups) {
      // Depthwise: a GEMM with one output per group is the wrong shape; keep the weights as
      // the GEMM would see them, tap-major, for the direct loop.
      const std::size_t channels = f.out_channels, taps = f.taps();
      p.depthwise_.resize(taps * channels);
      for (std::size_t c = 0; c < channels; ++c)
        for (std::size_t t = 0; t < taps; ++t) p.depthwise_[t * channels + c] = detail::weight_value(p.groups_[c], 0, t);
    }
    return p;
  }

  const filter_shape& filter() const { return filter_; }
  const conv2d_params& params() const { return params_; }
  /// The geometry over inputs of shape `in`. @throws squint::error as squint::resolve.
  conv2d_geometry geometry(const image_shape& in) const { return resolve("conv2d", in, filter_, params_); }
  const Packed& group(std::size_t g) const { return groups_[g]; }
  /// Depthwise filters: their weights as float, taps x channels (empty otherwise).
  const std::vector<float>& depthwise_weights() const { return depthwise_; }
  std::size_t bytes() const {
    std::size_t total = depthwise_.size() * sizeof(float);
    for (const Packed& g : groups_) total += g.bytes();
    return total;
  }

 private:
  filter_shape filter_;
  conv2d_params params_;
  std::vector<Packed> groups_;
  std::vector<float> depthwise_;
};

using packed_conv_fp32 = packed_float_conv<packed_float_weights>;
using packed_conv_half = packed_float_conv<packed_half_weights>;
using packed_conv_weight_only = packed_float_conv<packed_weight_only>;

namespace detail {

/// Unchecked float convolution: `gemm(a, rows, lda, group, c, ldc)` writes `rows` x
/// group_out_channels outputs of group `group` (bias and ReLU applied) from rows of im2col A;
/// ReLU6's upper clamp (`cap`) follows on each block while it is in cache.
template <class Gemm>
void conv_float(const float* x, const conv2d_geometry& g, Gemm gemm, float cap, float* y, const parallelism& par) {
  const std::size_t oc = g.out.channels, ocg = g.group_out_channels();
  for_each_tile(x, g, 0.0f, par,
                [&](const float* a, std::size_t rows, std::size_t lda, std::size_t r0, std::size_t k) {
                  float* c = y + r0 * oc + k * ocg;
                  gemm(a, rows, lda, k, c, oc);
                  if (cap < HUGE_VALF)
                    for (std::size_t i = 0; i < rows; ++i)
                      for (std::size_t j = 0; j < ocg; ++j) c[i * oc + j] = std::min(c[i * oc + j], cap);
                });
}

/// Depthwise float convolution: per output pixel and channel, bias + sum over taps of x * w
/// (w taps x channels), then ReLU / ReLU6; threads split the output pixels.
inline void depthwise_float(const float* x, const conv2d_geometry& g, const float* w, const float* bias, bool relu,
                            float cap, float* y, const parallelism& par) {
  const std::size_t m = g.out.pixels(), c = g.out.channels, taps = g.filter.taps();
  if (m == 0) return;
  const std::vector<float> pad_row(c, 0.0f);
  const std::size_t tasks = task_count(par, m, m, c * 16, taps);  // weighed as the INT8 depthwise
  run_tasks(par, tasks, [&](std::size_t t) {
    const std::size_t i0 = m * t / tasks, i1 = m * (t + 1) / tasks;
    if (i0 == i1) return;
    std::vector<const float*> tap(taps);
    window_walker<float> walk(x, g, pad_row.data(), i0, tap.data());
    for (std::size_t pixel = i0; pixel < i1; ++pixel) {
      if (pixel > i0) walk.next();
      float* out = y + pixel * c;
      for (std::size_t j = 0; j < c; ++j) out[j] = bias ? bias[j] : 0.0f;
      for (std::size_t k = 0; k < taps; ++k)
        for (std::size_t j = 0; j < c; ++j) out[j] += tap[k][j] * w[k * c + j];
      if (relu)
        for (std::size_t j = 0; j < c; ++j) out[j] = !(out[j] > 0.0f) ? 0.0f : std::min(out[j], cap);
    }
  });
}

/// The checks of a float convolution call, then conv_float with `group_gemm(packed group, a,
/// rows, lda, bias, relu, c, ldc)` as each group's GEMM.
template <class Packed, class GroupGemm>
void conv_float_checked(const float* x, const image_shape& in, const packed_float_conv<Packed>& w, const float* bias,
                        activation act, float* y, const parallelism& par, GroupGemm group_gemm) {
  const conv2d_geometry g = w.geometry(in);
  require_matrix("conv2d", "x", x, g.in.pixels(), g.in.channels);
  require_matrix("conv2d", "y", y, g.out.pixels(), g.out.channels);
  const std::size_t ocg = g.group_out_channels();
  const bool relu = act != activation::none;
  const float cap = activation_cap(act);
  if (!w.depthwise_weights().empty()) {
    depthwise_float(x, g, w.depthwise_weights().data(), bias, relu, cap, y, par);
    return;
  }
  conv_float(
      x, g,
      [&](const float* a, std::size_t rows, std::size_t lda, std::size_t k, float* c, std::size_t ldc) {
        group_gemm(w.group(k), a, rows, lda, bias ? bias + k * ocg : nullptr, relu, c, ldc);
      },
      cap, y, par);
}

/// Each filter form's GEMM (static dispatch).
struct static_float_gemm {
  void operator()(const packed_float_weights& b, const float* a, std::size_t m, std::size_t lda, const float* bias,
                  bool relu, float* c, std::size_t ldc) const {
    gemm_float(a, m, lda, b, bias, relu, c, ldc);
  }
  void operator()(const packed_half_weights& b, const float* a, std::size_t m, std::size_t lda, const float* bias,
                  bool relu, float* c, std::size_t ldc) const {
    gemm_half(a, m, lda, b, bias, relu, c, ldc);
  }
  void operator()(const packed_weight_only& b, const float* a, std::size_t m, std::size_t lda, const float* bias,
                  bool relu, float* c, std::size_t ldc) const {
    gemm_weight_only(a, m, lda, b, bias, relu, c, ldc);
  }
};

}  // namespace detail

/// y = conv2d(x, w) + bias, then `act`, all float (NHWC x of shape `in`, NHWC y of
/// w.geometry(in).out): FP32, FP16 or int8 weight-only filters. Static dispatch.
/// @throws squint::error on a shape that does not fit the filter or null pointers with elements.
template <class Packed>
void conv2d(const float* x, const image_shape& in, const packed_float_conv<Packed>& w, const float* bias,
            activation act, float* y, const parallelism& par = {}) {
  detail::conv_float_checked(x, in, w, bias, act, y, par, detail::static_float_gemm{});
}

SQUINT_NAMESPACE_END

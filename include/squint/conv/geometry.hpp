// SPDX-License-Identifier: Apache-2.0
// conv/geometry.hpp: the shapes of a 2-D convolution — NHWC images, filters, stride, padding,
// dilation, groups — and the output size they give.
//
// Activations are NHWC (channels last, dense): pixel (n, y, x) starts at ((n * H + y) * W + x) * C,
// so one pixel's channels are contiguous and a 1x1 convolution is a GEMM over the pixels.
// Padding follows ONNX: explicit begin/end pads, or auto_pad SAME_UPPER / SAME_LOWER (output
// ceil(in / stride), the odd pad at the end / at the beginning).
#pragma once

#include <cmath>
#include <cstddef>
#include <limits>

#include "squint/error.hpp"

SQUINT_NAMESPACE_BEGIN

/// A batch of NHWC images.
struct image_shape {
  std::size_t batch = 1, height = 0, width = 0, channels = 0;

  std::size_t pixels() const { return batch * height * width; }
  std::size_t size() const { return pixels() * channels; }
};

/// A filter: out_channels x kernel_h x kernel_w x group_channels (input channels per group).
struct filter_shape {
  std::size_t out_channels = 0, group_channels = 0, kernel_h = 1, kernel_w = 1;

  std::size_t taps() const { return kernel_h * kernel_w; }
};

/// How a filter is laid out in memory: PyTorch / ONNX's OIHW, or TFLite / channels-last OHWI.
enum class filter_layout { oihw, ohwi };

/// ONNX auto_pad: explicit pads, or SAME with the odd pad at the end (upper) or the beginning.
enum class padding_mode { explicit_pads, same_upper, same_lower };

/// The activation fused into a convolution's output stage.
enum class activation { none, relu, relu6 };

/// Everything about a convolution but its filter values and its input size.
struct conv2d_params {
  std::size_t stride_h = 1, stride_w = 1;
  std::size_t dilation_h = 1, dilation_w = 1;
  std::size_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  std::size_t groups = 1;
  padding_mode padding = padding_mode::explicit_pads;
};

/// A convolution resolved for one input size: pads as numbers and the output image.
struct conv2d_geometry {
  image_shape in, out;
  filter_shape filter;
  conv2d_params params;  ///< padding resolved to explicit pads

  std::size_t groups() const { return params.groups; }
  std::size_t group_out_channels() const { return filter.out_channels / params.groups; }
  /// The GEMM depth of one group: taps x input channels per group.
  std::size_t depth() const { return filter.taps() * filter.group_channels; }
  /// One output channel per input channel, one group each (MobileNet's depthwise layers).
  bool depthwise() const { return params.groups > 1 && params.groups == in.channels && filter.out_channels == in.channels; }
  /// A 1x1 filter at stride 1 with no padding: the convolution is a GEMM over the input as it is.
  bool pointwise() const {
    return filter.taps() == 1 && params.groups == 1 && params.stride_h == 1 && params.stride_w == 1 &&
           params.pad_top == 0 && params.pad_left == 0 && params.pad_bottom == 0 && params.pad_right == 0;
  }
};

namespace detail {

/// The upper clamp of a float output stage for `act` (applied with ReLU).
inline float activation_cap(activation act) { return act == activation::relu6 ? 6.0f : HUGE_VALF; }

/// Checks the filter against the parameters (independent of the input size).
inline void check_filter(const char* function, const filter_shape& f, const conv2d_params& p) {
  require(f.out_channels > 0 && f.group_channels > 0 && f.kernel_h > 0 && f.kernel_w > 0, function,
          ": filter sizes must be positive, got ", f.out_channels, " x ", f.kernel_h, " x ", f.kernel_w, " x ",
          f.group_channels);
  require(p.stride_h > 0 && p.stride_w > 0, function, ": stride must be positive, got ", p.stride_h, " x ",
          p.stride_w);
  require(p.dilation_h > 0 && p.dilation_w > 0, function, ": dilation must be positive, got ", p.dilation_h,
          " x ", p.dilation_w);
  require(p.groups > 0 && f.out_channels % p.groups == 0, function, ": groups ", p.groups,
          " does not divide the ", f.out_channels, " output channels");
  const std::size_t elements = checked_mul(checked_mul(f.out_channels, f.group_channels, function, "filter"),
                                           checked_mul(f.kernel_h, f.kernel_w, function, "filter"), function,
                                           "filter");
  (void)elements;
  (void)checked_mul(f.group_channels, p.groups, function, "filter channels");
}

/// One spatial axis: output size and begin pad.
inline void resolve_axis(const char* function, const char* axis, std::size_t in, std::size_t kernel,
                         std::size_t stride, std::size_t dilation, padding_mode mode, std::size_t& pad_begin,
                         std::size_t& pad_end, std::size_t& out) {
  const std::size_t span = checked_mul(kernel - 1, dilation, function, "dilated kernel") + 1;
  if (mode != padding_mode::explicit_pads) {
    out = (in + stride - 1) / stride;
    const std::size_t needed = out == 0 ? 0 : checked_mul(out - 1, stride, function, "padding") + span;
    const std::size_t total = needed > in ? needed - in : 0;
    pad_begin = mode == padding_mode::same_upper ? total / 2 : total - total / 2;
    pad_end = total - pad_begin;
    return;
  }
  constexpr std::size_t most = std::numeric_limits<std::size_t>::max();
  require(pad_begin <= most - in && pad_end <= most - in - pad_begin, function, ": ", axis, " padding ", pad_begin,
          " + ", pad_end, " overflows size_t");
  const std::size_t padded = in + pad_begin + pad_end;
  require(padded >= span, function, ": ", axis, " input ", in, " plus padding is smaller than the dilated kernel ",
          span);
  out = (padded - span) / stride + 1;
}

}  // namespace detail

/// The geometry of a convolution of `filter` with `params` over images of shape `in`.
/// Windows of padding only are allowed (they see the zero point: ONNX's semantics).
/// @throws squint::error when the input's channels are not groups x the filter's, a size is
///         zero or overflows, or the padded input is smaller than the dilated kernel.
inline conv2d_geometry resolve(const char* function, const image_shape& in, const filter_shape& filter,
                               const conv2d_params& params) {
  detail::check_filter(function, filter, params);
  detail::require(in.channels == filter.group_channels * params.groups, function, ": input has ", in.channels,
                  " channels, the filter takes ", filter.group_channels, " x ", params.groups, " groups");
  detail::require(in.height > 0 && in.width > 0, function, ": input height and width must be positive, got ",
                  in.height, " x ", in.width);
  (void)detail::checked_mul(detail::checked_mul(in.batch, in.height, function, "input"),
                            detail::checked_mul(in.width, in.channels, function, "input"), function, "input");
  conv2d_geometry g;
  g.in = in;
  g.filter = filter;
  g.params = params;
  detail::resolve_axis(function, "height", in.height, filter.kernel_h, params.stride_h, params.dilation_h,
                       params.padding, g.params.pad_top, g.params.pad_bottom, g.out.height);
  detail::resolve_axis(function, "width", in.width, filter.kernel_w, params.stride_w, params.dilation_w,
                       params.padding, g.params.pad_left, g.params.pad_right, g.out.width);
  g.params.padding = padding_mode::explicit_pads;
  g.out.batch = in.batch;
  g.out.channels = filter.out_channels;
  (void)detail::checked_mul(detail::checked_mul(g.out.batch, g.out.height, function, "output"),
                            detail::checked_mul(g.out.width, g.out.channels, function, "output"), function,
                            "output");
  return g;
}

SQUINT_NAMESPACE_END

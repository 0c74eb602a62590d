// SPDX-License-Identifier: Apache-2.0
// conv/pack.hpp: int8 convolution filters packed once, with their stride, padding and groups.
//
// A filter is reordered to OHWI, so that one output channel's weights over (ky, kx, c) are one
// row of a GEMM whose depth is taps x group channels, in the order the im2col rows of an NHWC
// image read them. Each group is then a squint::packed_weights (the GEMM micro-kernels' layout,
// the same for every ISA). Depthwise filters (one input and one output channel per group) are
// instead packed for conv/depthwise.hpp's kernels: int16 w - w_zero_point, taps in pairs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "squint/conv/depthwise.hpp"
#include "squint/conv/geometry.hpp"
#include "squint/gemm/pack.hpp"

SQUINT_NAMESPACE_BEGIN

namespace detail {

/// The filter w (layout `layout`) as OHWI.
template <class T>
std::vector<T> to_ohwi(const T* w, const filter_shape& f, filter_layout layout) {
  const std::size_t taps = f.taps(), cg = f.group_channels;
  std::vector<T> ohwi(f.out_channels * taps * cg);
  if (layout == filter_layout::ohwi) {
    for (std::size_t i = 0; i < ohwi.size(); ++i) ohwi[i] = w[i];
    return ohwi;
  }
  for (std::size_t o = 0; o < f.out_channels; ++o)
    for (std::size_t c = 0; c < cg; ++c)
      for (std::size_t t = 0; t < taps; ++t) ohwi[(o * taps + t) * cg + c] = w[(o * cg + c) * taps + t];
  return ohwi;
}

}  // namespace detail

/// Immutable packed convolution filter: safe to share between threads.
class packed_conv {
 public:
  /// Packs int8 filter codes with one scale and zero point per output channel (or one for all).
  /// @throws squint::error on null data, bad sizes or parameters (see squint::resolve), wrong
  ///         parameter counts, scales not finite and > 0, or zero points outside [-128, 127].
  static packed_conv from_int8(const std::int8_t* w, const filter_shape& f, filter_layout layout,
                               const conv2d_params& params, const std::vector<float>& scale,
                               const std::vector<std::int32_t>& zero_point) {
    check("packed_conv::from_int8", w, f, params);
    return pack(detail::to_ohwi(w, f, layout), f, params, scale, zero_point, "packed_conv::from_int8");
  }

  /// Packs uint8 filter codes (ONNX ConvInteger / QLinearConv with a uint8 W) with zero points in
  /// [0, 255]: codes and zero points shift by -128, which changes no difference w - w_zp.
  /// @throws squint::error as from_int8, or on zero points outside [0, 255].
  static packed_conv from_uint8(const std::uint8_t* w, const filter_shape& f, filter_layout layout,
                                const conv2d_params& params, const std::vector<float>& scale,
                                const std::vector<std::int32_t>& zero_point) {
    check("packed_conv::from_uint8", w, f, params);
    std::vector<std::int32_t> shifted(zero_point.size());
    for (std::size_t j = 0; j < zero_point.size(); ++j) {
      detail::require(zero_point[j] >= 0 && zero_point[j] <= 255, "packed_conv::from_uint8: zero_point ",
                      zero_point[j], " is outside [0, 255]");
      shifted[j] = zero_point[j] - 128;
    }
    std::vector<std::uint8_t> ohwi = detail::to_ohwi(w, f, layout);
    std::vector<std::int8_t> codes(ohwi.size());
    for (std::size_t i = 0; i < ohwi.size(); ++i) codes[i] = static_cast<std::int8_t>(ohwi[i] - 128);
    return pack(std::move(codes), f, params, scale, shifted, "packed_conv::from_uint8");
  }

  /// Quantizes a float filter per output channel (symmetric int8, zero point 0; narrow range
  /// [-127, 127] by default, which keeps AVX2's fast GEMM path exact) and packs it.
  /// @throws squint::error as from_int8, or on a spec that is not symmetric int8.
  static packed_conv from_float(const float* w, const filter_shape& f, filter_layout layout,
                                const conv2d_params& params,
                                quant_spec spec = {dtype::int8, qscheme::symmetric, false, true}) {
    check("packed_conv::from_float", w, f, params);
    detail::require(spec.type == dtype::int8 && spec.scheme == qscheme::symmetric,
                    "packed_conv::from_float: weights are quantized symmetric int8");
    const std::vector<float> ohwi = detail::to_ohwi(w, f, layout);
    const std::size_t depth = f.taps() * f.group_channels;
    std::vector<std::int8_t> codes(ohwi.size());
    std::vector<float> scale(f.out_channels);
    detail::quantize_rows_symmetric(ohwi.data(), f.out_channels, depth, depth, codes.data(), scale.data(), spec);
    return pack(std::move(codes), f, params, scale, {0}, "packed_conv::from_float");
  }

  const filter_shape& filter() const { return filter_; }
  const conv2d_params& params() const { return params_; }
  /// The geometry over inputs of shape `in` (output size, resolved padding).
  /// @throws squint::error as squint::resolve.
  conv2d_geometry geometry(const image_shape& in) const { return resolve("conv2d", in, filter_, params_); }
  /// One group per channel with one output each: the depthwise kernels run it.
  bool depthwise() const { return depthwise_.size() > 0; }
  /// The GEMM-packed weights of group g (not for depthwise filters).
  const packed_weights& group(std::size_t g) const { return groups_[g]; }
  /// The depthwise packing (see conv/depthwise.hpp).
  const std::int16_t* depthwise_weights() const { return depthwise_.data(); }
  /// Per channel, the sum over taps of w - w_zero_point (the input zero point's term).
  const std::int32_t* depthwise_sums() const { return depthwise_sum_.data(); }
  const std::vector<float>& scales() const { return scale_; }
  const std::vector<std::int32_t>& zero_points() const { return zero_point_; }
  /// The code of output channel o at tap t (ky * kernel_w + kx) and group channel c (int8;
  /// uint8 filters read back shifted by -128).
  std::int8_t code(std::size_t o, std::size_t t, std::size_t c) const {
    if (!depthwise()) {
      const std::size_t ocg = filter_.out_channels / params_.groups;
      return groups_[o / ocg].at(o % ocg, t * filter_.group_channels + c);
    }
    return static_cast<std::int8_t>(depthwise_[kernels::depthwise_index(t, o, filter_.out_channels)] +
                                    zero_point_[o]);
  }
  /// Bytes held by the packed filter and its per-channel terms.
  std::size_t bytes() const {
    std::size_t total = depthwise_.size() * sizeof(std::int16_t) + depthwise_sum_.size() * sizeof(std::int32_t) +
                        scale_.size() * sizeof(float) +
                        zero_point_.size() * sizeof(std::int32_t);
    for (const packed_weights& g : groups_) total += g.bytes();
    return total;
  }

 private:
  template <class T>
  static void check(const char* function, const T* w, const filter_shape& f, const conv2d_params& p) {
    detail::check_filter(function, f, p);
    detail::require_matrix(function, "w", w, f.out_channels, detail::checked_mul(f.taps(), f.group_channels, function, "w"));
    detail::require(f.taps() * f.group_channels <= 2147483647u / (255u * 255u), function, ": filter depth ",
                    f.taps() * f.group_channels, " exceeds the largest depth int32 accumulation is exact for");
  }

  static packed_conv pack(std::vector<std::int8_t> codes, const filter_shape& f, const conv2d_params& params,
                          const std::vector<float>& scale, const std::vector<std::int32_t>& zero_point,
                          const char* function) {
    detail::check_channel_scales(function, scale, f.out_channels);
    detail::require(zero_point.size() == f.out_channels || zero_point.size() == 1, function, ": ",
                    zero_point.size(), " zero points for ", f.out_channels, " channels");
    for (std::int32_t z : zero_point)
      detail::require(z >= -128 && z <= 127, function, ": zero_point ", z, " is outside [-128, 127]");
    packed_conv p;
    p.filter_ = f;
    p.params_ = params;
    for (std::size_t o = 0; o < f.out_channels; ++o) {
      p.scale_.push_back(scale.size() == 1 ? scale[0] : scale[o]);
      p.zero_point_.push_back(zero_point.size() == 1 ? zero_point[0] : zero_point[o]);
    }
    const std::size_t taps = f.taps(), depth = taps * f.group_channels;
    if (params.groups > 1 && f.group_channels == 1 && f.out_channels == params.groups) {
      const std::size_t channels = f.out_channels;
      p.depthwise_.assign(kernels::depthwise_packed_size(taps, channels), 0);
      p.depthwise_sum_.assign(channels, 0);
      for (std::size_t o = 0; o < channels; ++o)
        for (std::size_t t = 0; t < taps; ++t) {
          const auto w = static_cast<std::int16_t>(codes[o * taps + t] - p.zero_point_[o]);
          p.depthwise_[kernels::depthwise_index(t, o, channels)] = w;
          p.depthwise_sum_[o] += w;
        }
      return p;
    }
    const std::size_t ocg = f.out_channels / params.groups;
    for (std::size_t g = 0; g < params.groups; ++g) {
      const std::vector<float> s(p.scale_.begin() + g * ocg, p.scale_.begin() + (g + 1) * ocg);
      const std::vector<std::int32_t> z(p.zero_point_.begin() + g * ocg, p.zero_point_.begin() + (g + 1) * ocg);
      p.groups_.push_back(packed_weights::from_int8(codes.data() + g * ocg * depth, ocg, depth, depth, s, z));
    }
    return p;
  }

  filter_shape filter_;
  conv2d_params params_;
  std::vector<packed_weights> groups_;
  std::vector<std::int16_t> depthwise_;
  std::vector<std::int32_t> depthwise_sum_;
  std::vector<float> scale_;
  std::vector<std::int32_t> zero_point_;
};

SQUINT_NAMESPACE_END

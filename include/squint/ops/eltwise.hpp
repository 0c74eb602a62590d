// SPDX-License-Identifier: Apache-2.0
// ops/eltwise.hpp: element-wise ops between quantized tensors of different qparams, for
// full-integer pipelines: the residual add (ONNX QLinearAdd) and the channel concat.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "squint/qparams.hpp"
#include "squint/quantize.hpp"

SQUINT_NAMESPACE_BEGIN

/// y = clamp(round_half_even((a - a.zp) * (a.scale / y.scale) + (b - b.zp) * (b.scale / y.scale))
/// + y.zp) over n elements, in float32 as ONNX Runtime's QLinearAdd; with `relu`, at least
/// y.zp. a, b and y may alias.
/// @throws squint::error on null pointers with elements or qparams outside T's range.
template <class T>
void add(const T* a, qparams a_params, const T* b, qparams b_params, qparams y_params, bool relu, T* y, std::size_t n) {
  detail::require(n == 0 || (a && b && y), "add: null data with ", n, " elements");
  const quant_range r = full_range(dtype_of<T>());
  validate(a_params, r, "add: a_params");
  validate(b_params, r, "add: b_params");
  validate(y_params, r, "add: y_params");
  const float ra = a_params.scale / y_params.scale, rb = b_params.scale / y_params.scale;
  const std::int32_t lo = relu ? y_params.zero_point : r.qmin;
  const auto value = [&](std::size_t i) {
    return static_cast<float>(a[i] - a_params.zero_point) * ra + static_cast<float>(b[i] - b_params.zero_point) * rb;
  };
  const detail::nearest_rounding_scope rounding;
  // With these ratios |v| < 2^22, so adding and subtracting 1.5 * 2^23 rounds it half to even
  // (in the scope's round-to-nearest) and the clamp can be on integers: a loop without float
  // branches, which the compiler vectorizes.
  if (ra + rb < 16384.0f) {
    constexpr float magic = 12582912.0f;
    for (std::size_t i = 0; i < n; ++i) {
      const std::int32_t q = static_cast<std::int32_t>((value(i) + magic) - magic) + y_params.zero_point;
      y[i] = static_cast<T>(q < lo ? lo : (q > r.qmax ? r.qmax : q));
    }
    return;
  }
  for (std::size_t i = 0; i < n; ++i) y[i] = detail::round_to_code<T>(value(i), y_params.zero_point, lo);
}

/// One input of concat_channels: `pixels` x `channels` codes (NHWC) and their qparams.
template <class T>
struct quantized_channels {
  const T* data;
  std::size_t channels;
  qparams params;
};

/// y (pixels x the inputs' channels together, NHWC) = the inputs side by side along channels,
/// each requantized into y_params: clamp(round_half_even((x - x.zp) * (x.scale / y.scale)) +
/// y.zp), or copied when its qparams are y's.
/// @throws squint::error on null pointers with elements or qparams outside T's range.
template <class T>
void concat_channels(const std::vector<quantized_channels<T>>& inputs, std::size_t pixels, qparams y_params, T* y) {
  const quant_range r = full_range(dtype_of<T>());
  validate(y_params, r, "concat_channels: y_params");
  std::size_t total = 0;
  for (const quantized_channels<T>& in : inputs) {
    detail::require_matrix("concat_channels", "input", in.data, pixels, in.channels);
    validate(in.params, r, "concat_channels: an input's params");
    total += in.channels;
  }
  detail::require_matrix("concat_channels", "y", y, pixels, total);
  std::size_t offset = 0;
  for (const quantized_channels<T>& in : inputs) {
    const bool same = in.params.scale == y_params.scale && in.params.zero_point == y_params.zero_point;
    const float ratio = in.params.scale / y_params.scale;
    for (std::size_t p = 0; p < pixels; ++p) {
      const T* src = in.data + p * in.channels;
      T* dst = y + p * total + offset;
      if (same) {
        std::copy(src, src + in.channels, dst);
        continue;
      }
      for (std::size_t c = 0; c < in.channels; ++c)
        dst[c] = detail::round_to_code<T>(static_cast<float>(src[c] - in.params.zero_point) * ratio, y_params.zero_point,
                                          r.qmin);
    }
    offset += in.channels;
  }
}

SQUINT_NAMESPACE_END

// SPDX-License-Identifier: Apache-2.0
// block_quantize.hpp: block (per-group) quantization — ONNX opset 21 QuantizeLinear /
// DequantizeLinear with `block_size`: along one axis, every `block_size` consecutive elements
// share a scale and zero point (the last block may be shorter), so the parameters have the
// tensor's shape with ceil(dim / block_size) along that axis. With a code range such as [-8, 7]
// or [0, 15] this is int4 / uint4 quantization; pack_int4 stores such codes two per byte, low
// nibble first, as ONNX does. The same numeric contract as squint::quantize (division by the
// scale, round half to even, saturate; NaN -> zero point) on the same kernels. Scales may be
// kept as fp16 (an fp16 ONNX model's scale tensor, llama.cpp's and ORT's 4-bit blocks): each is
// then an fp16 value used as the float it widens to, as ONNX Runtime's CPU kernels use it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "squint/quantize.hpp"

SQUINT_NAMESPACE_BEGIN

/// Per-block quantization parameters along `axis` (see the top of this header): scale and
/// zero_point hold the parameter tensor row-major (outer x blocks x inner). With scale_format
/// fp16 every scale must be an fp16 value (half_scales gives the 2-byte tensor).
struct block_qparams {
  std::vector<float> scale;
  std::vector<std::int32_t> zero_point;
  int axis = -1;
  std::size_t block_size = 32;
  group_scale_format scale_format = group_scale_format::fp32;
};

namespace detail {

struct block_split {
  axis_split split;
  std::size_t blocks;
};

/// Checks p against a tensor of shape s and the code range; returns the split and block count.
inline block_split check_blocks(const char* function, const shape& s, const block_qparams& p, quant_range range) {
  require(p.block_size > 0, function, ": block_size must be positive");
  const axis_split split = split_at(s, p.axis);
  const std::size_t blocks = (split.channels + p.block_size - 1) / p.block_size;
  const std::size_t count = split.outer * blocks * split.inner;
  require(p.scale.size() == count && p.zero_point.size() == count, function, ": ", p.scale.size(), " scales and ",
          p.zero_point.size(), " zero points for ", count, " blocks (axis ", p.axis, " of shape ", s,
          " in blocks of ", p.block_size, ")");
  for (std::size_t b = 0; b < count; ++b) {
    validate({p.scale[b], p.zero_point[b]}, range, function);
    require(stored_scale(p.scale[b], p.scale_format) == p.scale[b], function, ": scale ", b, " (", p.scale[b],
            ") is not an fp16 value, as scale_format fp16 requires");
  }
  return {split, blocks};
}

inline void check_block_range(const char* function, quant_range range, quant_range full) {
  require(range.qmin < range.qmax && range.qmin >= full.qmin && range.qmax <= full.qmax, function, ": range [",
          range.qmin, ", ", range.qmax, "] must satisfy qmin < qmax within [", full.qmin, ", ", full.qmax, "]");
}

}  // namespace detail

/// Min-max block parameters of x chosen with `spec` (for int4: spec.custom_range = {-8, 7}),
/// each scale stored as `format` keeps it (fp16: rounded to nearest within [2^-24, 65504]; the
/// zero point stays the fp32 choice's, so zero stays exact and a block's extremes may saturate
/// by one code).
/// @throws squint::error on an empty tensor view with elements, a bad axis, block_size 0, or
///         as choose_qparams.
inline block_qparams choose_block_qparams(tensor_view<const float> x, int axis, std::size_t block_size,
                                          const quant_spec& spec = {},
                                          group_scale_format format = group_scale_format::fp32) {
  detail::require_data("choose_block_qparams", "x", x);
  detail::require(block_size > 0, "choose_block_qparams: block_size must be positive");
  const axis_split s = split_at(x.extents(), axis);
  const std::size_t blocks = (s.channels + block_size - 1) / block_size;
  block_qparams p;
  p.axis = axis;
  p.block_size = block_size;
  p.scale_format = format;
  for (std::size_t o = 0; o < s.outer; ++o)
    for (std::size_t b = 0; b < blocks; ++b)
      for (std::size_t r = 0; r < s.inner; ++r) {
        float lo = 0.0f, hi = 0.0f;
        for (std::size_t i = b * block_size; i < std::min(s.channels, (b + 1) * block_size); ++i) {
          const float v = x.data()[(o * s.channels + i) * s.inner + r];
          if (!std::isfinite(v)) continue;
          lo = std::min(lo, v);
          hi = std::max(hi, v);
        }
        const qparams q = choose_qparams(lo, hi, spec);
        p.scale.push_back(detail::stored_chosen_scale(q.scale, format));
        p.zero_point.push_back(q.zero_point);
      }
  return p;
}

/// The fp16 bits of p's scales (p.scale_format must be fp16): the scale tensor of an fp16 model.
/// @throws squint::error if p's scales are fp32.
inline std::vector<std::uint16_t> half_scales(const block_qparams& p) {
  detail::require(p.scale_format == group_scale_format::fp16, "half_scales: p.scale_format is fp32");
  std::vector<std::uint16_t> h(p.scale.size());
  for (std::size_t b = 0; b < h.size(); ++b) h[b] = reference::float_to_half(p.scale[b]);
  return h;
}

/// Block parameters from fp16 scale bits (e.g. an fp16 ONNX model's scale tensor).
/// @throws squint::error if a scale is not finite and positive, or the lengths differ; the
///         blocks are checked against a tensor when the parameters are used.
inline block_qparams block_qparams_from_half(const std::vector<std::uint16_t>& scale,
                                             std::vector<std::int32_t> zero_point, int axis, std::size_t block_size) {
  detail::require(scale.size() == zero_point.size(), "block_qparams_from_half: ", scale.size(), " scales and ",
                  zero_point.size(), " zero points");
  block_qparams p{{}, std::move(zero_point), axis, block_size, group_scale_format::fp16};
  p.scale.reserve(scale.size());
  for (std::size_t b = 0; b < scale.size(); ++b) {
    const float s = reference::half_to_float(scale[b]);
    detail::require(std::isfinite(s) && s > 0.0f, "block_qparams_from_half: scale ", b, " is ", s, " (fp16 bits ",
                    scale[b], "); scales must be finite and > 0");
    p.scale.push_back(s);
  }
  return p;
}

/// q = clamp(round_half_even(x / scale_block) + zero_point_block, range) per block.
/// @throws squint::error on shape or pointer errors, a range outside T's, or parameters that do
///         not match the blocks or are invalid for the range. Nothing is written then.
template <class T>
void quantize_blocked(tensor_view<const float> x, tensor_view<T> q, const block_qparams& p,
                      quant_range range = full_range(dtype_of<T>()), quantize_mode mode = quantize_mode::divide) {
  detail::require_same_shape("quantize_blocked", x, q);
  detail::check_block_range("quantize_blocked", range, full_range(dtype_of<T>()));
  const detail::block_split bs = detail::check_blocks("quantize_blocked", x.extents(), p, range);
  const axis_split& s = bs.split;
  const bool reciprocal = mode == quantize_mode::reciprocal;
  const detail::nearest_rounding_scope rounding;
  for (std::size_t o = 0; o < s.outer; ++o)
    for (std::size_t i = 0; i < s.channels; ++i) {
      const std::size_t offset = (o * s.channels + i) * s.inner, param = (o * bs.blocks + i / p.block_size) * s.inner;
      if (s.inner == 1 && i % p.block_size == 0) {  // a contiguous block: one scale
        const std::size_t len = std::min(p.block_size, s.channels - i);
        kernels::quantize_kernel<arch::native, T>::per_tensor(x.data() + offset, q.data() + offset, len, p.scale[param],
                                                              p.zero_point[param], reciprocal);
      } else if (s.inner > 1) {  // a row of inner elements, each with its own block's parameters
        kernels::quantize_kernel<arch::native, T>::per_channel(x.data() + offset, q.data() + offset, 1, s.inner, 1,
                                                               p.scale.data() + param, p.zero_point.data() + param,
                                                               reciprocal);
      }
    }
  // Clamping after rounding is clamping before: narrower ranges (int4) saturate here.
  const quant_range full = full_range(dtype_of<T>());
  if (range.qmin > full.qmin || range.qmax < full.qmax)
    for (std::size_t e = 0; e < q.size(); ++e)
      q.data()[e] = static_cast<T>(std::min<std::int32_t>(std::max<std::int32_t>(q.data()[e], range.qmin), range.qmax));
}

/// x = (q - zero_point_block) * scale_block per block (float32 product, exact difference).
/// @throws squint::error on shape or pointer errors or parameters that do not match the blocks.
template <class T>
void dequantize_blocked(tensor_view<const T> q, tensor_view<float> x, const block_qparams& p) {
  detail::require_same_shape("dequantize_blocked", q, x);
  const detail::block_split bs = detail::check_blocks("dequantize_blocked", q.extents(), p, full_range(dtype_of<T>()));
  const axis_split& s = bs.split;
  const detail::nearest_rounding_scope rounding;
  for (std::size_t o = 0; o < s.outer; ++o)
    for (std::size_t i = 0; i < s.channels; ++i) {
      const std::size_t offset = (o * s.channels + i) * s.inner, param = (o * bs.blocks + i / p.block_size) * s.inner;
      if (s.inner == 1 && i % p.block_size == 0) {
        const std::size_t len = std::min(p.block_size, s.channels - i);
        kernels::dequantize_kernel<arch::native, T>::per_tensor(q.data() + offset, x.data() + offset, len,
                                                                p.scale[param], p.zero_point[param]);
      } else if (s.inner > 1) {
        kernels::dequantize_kernel<arch::native, T>::per_channel(q.data() + offset, x.data() + offset, 1, s.inner, 1,
                                                                 p.scale.data() + param, p.zero_point.data() + param);
      }
    }
}

/// 4-bit codes (int8 in [-8, 7] or uint8 in [0, 15]) two per byte, low nibble first (ONNX's
/// int4 / uint4 layout); an odd count leaves the last high nibble 0.
/// @throws squint::error on a code outside the 4-bit range.
template <class T>
std::vector<std::uint8_t> pack_int4(tensor_view<const T> codes) {
  detail::require_data("pack_int4", "codes", codes);
  const int lo = std::is_signed<T>::value ? -8 : 0, hi = lo + 15;
  std::vector<std::uint8_t> packed((codes.size() + 1) / 2, 0);
  for (std::size_t e = 0; e < codes.size(); ++e) {
    const int c = codes.data()[e];
    detail::require(c >= lo && c <= hi, "pack_int4: code ", c, " at ", e, " is outside [", lo, ", ", hi, "]");
    packed[e / 2] = static_cast<std::uint8_t>(packed[e / 2] | ((static_cast<unsigned>(c) & 0xFu) << (4 * (e % 2))));
  }
  return packed;
}

/// The n codes pack_int4 packed (sign-extended for int8_t).
/// @throws squint::error if `packed` holds fewer than (n + 1) / 2 bytes.
template <class T>
void unpack_int4(const std::vector<std::uint8_t>& packed, tensor_view<T> codes) {
  detail::require_data("unpack_int4", "codes", codes);
  detail::require(packed.size() >= (codes.size() + 1) / 2, "unpack_int4: ", packed.size(), " bytes for ", codes.size(),
                  " codes");
  for (std::size_t e = 0; e < codes.size(); ++e) {
    const int nibble = (packed[e / 2] >> (4 * (e % 2))) & 0xF;
    codes.data()[e] = static_cast<T>(std::is_signed<T>::value && nibble > 7 ? nibble - 16 : nibble);
  }
}

SQUINT_NAMESPACE_END

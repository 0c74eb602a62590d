// SPDX-License-Identifier: Apache-2.0
// nn/weights/int4_codes.hpp: the payload every int4-per-group form shares in a model file: the
// group size (u32; a multiple of 16, so its low 4 bits are free: bit 0 set means fp16 scales),
// out x groups scales (f32, or fp16 bits as u16 with bit 0), then the out x in codes two per
// byte, row by row, low nibble first (ONNX's int4 order), each code + 8. Files without fp16
// scales are byte for byte what earlier versions wrote; earlier readers refuse the flag (not a
// multiple of 16).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "squint/qparams.hpp"
#include "squint/nn/format.hpp"
#include "squint/reference/convert.hpp"

SQUINT_NAMESPACE_BEGIN
namespace nn {
namespace detail {

/// Writes the payload of a packing with n(), k(), group(), groups(), at(j, i) and scale(j, g).
template <class Packed>
void save_int4_codes(const Packed& p, writer& w) {
  const bool half = p.scale_format() == group_scale_format::fp16;
  w.uint(static_cast<std::uint32_t>(p.group() | (half ? 1u : 0u)));
  for (std::size_t j = 0; j < p.n(); ++j)
    for (std::size_t g = 0; g < p.groups(); ++g) {
      if (half) w.uint(reference::float_to_half(p.scale(j, g)));
      else w.f32(p.scale(j, g));
    }
  std::uint8_t byte = 0;
  const std::size_t count = p.n() * p.k();
  for (std::size_t e = 0; e < count; ++e) {
    const auto nibble = static_cast<std::uint8_t>(p.at(e / p.k(), e % p.k()) + 8);
    if (e % 2 == 0) byte = nibble;
    else w.uint(static_cast<std::uint8_t>(byte | nibble << 4));
  }
  if (count % 2 == 1) w.uint(byte);
}

/// W as the product uses it: code * group scale (out x in, row-major).
template <class Packed>
std::vector<float> int4_values(const Packed& p) {
  std::vector<float> w(p.n() * p.k());
  for (std::size_t j = 0; j < p.n(); ++j)
    for (std::size_t i = 0; i < p.k(); ++i)
      w[j * p.k() + i] = static_cast<float>(p.at(j, i)) * p.scale(j, i / p.group());
  return w;
}

/// What save_int4_codes wrote, checked; Packed::from_int4 checks the codes' other limits.
template <class Packed>
Packed read_int4_codes(reader& r, std::size_t out, std::size_t in) {
  const auto field = r.uint<std::uint32_t>("int4 group");
  const std::uint32_t group = field & ~15u, flags = field & 15u;
  squint::detail::require(flags <= 1, "nn::load: int4 group field ", field, " has unknown flags ", flags);
  squint::detail::require(group > 0, "nn::load: int4 group ", group, " is not a positive multiple of 16");
  const bool half = flags == 1;
  const std::size_t groups = (in + group - 1) / group, size = half ? 2 : 4;
  squint::detail::require(out * groups <= r.remaining() / size, "nn::load: file is truncated (", out * groups,
                          " int4 scales)");
  std::vector<float> scale(out * groups);
  for (float& v : scale) v = half ? reference::half_to_float(r.uint<std::uint16_t>("scales")) : r.f32("scales");
  const std::uint8_t* bytes = r.take((out * in + 1) / 2, "weights");
  std::vector<std::int8_t> codes(out * in);
  for (std::size_t e = 0; e < codes.size(); ++e)
    codes[e] = static_cast<std::int8_t>(((bytes[e / 2] >> (4 * (e % 2))) & 0xF) - 8);
  return Packed::from_int4(codes.data(), out, in, in, group, scale,
                           half ? group_scale_format::fp16 : group_scale_format::fp32);
}

}  // namespace detail
}  // namespace nn
SQUINT_NAMESPACE_END

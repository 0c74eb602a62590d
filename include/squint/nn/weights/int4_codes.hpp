// SPDX-License-Identifier: Apache-2.0
// nn/weights/int4_codes.hpp: the payload every int4-per-group form shares in a model file: the
// group size (u32), out x groups f32 scales, then the out x in codes two per byte, row by row,
// low nibble first (ONNX's int4 order), each code + 8.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "squint/nn/format.hpp"

SQUINT_NAMESPACE_BEGIN
namespace nn {
namespace detail {

/// Writes the payload of a packing with n(), k(), group(), groups(), at(j, i) and scale(j, g).
template <class Packed>
void save_int4_codes(const Packed& p, writer& w) {
  w.uint(static_cast<std::uint32_t>(p.group()));
  for (std::size_t j = 0; j < p.n(); ++j)
    for (std::size_t g = 0; g < p.groups(); ++g) w.f32(p.scale(j, g));
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
  const auto group = r.uint<std::uint32_t>("int4 group");
  squint::detail::require(group > 0 && group % 16 == 0, "nn::load: int4 group ", group,
                          " is not a positive multiple of 16");
  const std::size_t groups = (in + group - 1) / group;
  squint::detail::require(out * groups <= r.remaining() / 4, "nn::load: file is truncated (", out * groups,
                          " int4 scales)");
  std::vector<float> scale(out * groups);
  for (float& v : scale) v = r.f32("scales");
  const std::uint8_t* bytes = r.take((out * in + 1) / 2, "weights");
  std::vector<std::int8_t> codes(out * in);
  for (std::size_t e = 0; e < codes.size(); ++e)
    codes[e] = static_cast<std::int8_t>(((bytes[e / 2] >> (4 * (e % 2))) & 0xF) - 8);
  return Packed::from_int4(codes.data(), out, in, in, group, scale);
}

}  // namespace detail
}  // namespace nn
SQUINT_NAMESPACE_END

// SPDX-License-Identifier: Apache-2.0
// nn/weights/int8_codes.hpp: the payload every int8-per-channel form shares in a model file:
// `out` f32 scales, then out x in int8 codes row by row.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "squint/nn/format.hpp"

SQUINT_NAMESPACE_BEGIN
namespace nn {
namespace detail {

/// Writes the scales and codes of a packing with n(), k() and at(j, i).
template <class Packed>
void save_int8_codes(const Packed& p, const float* scale, writer& w) {
  for (std::size_t j = 0; j < p.n(); ++j) w.f32(scale[j]);
  for (std::size_t j = 0; j < p.n(); ++j)
    for (std::size_t i = 0; i < p.k(); ++i) w.uint(static_cast<std::uint8_t>(p.at(j, i)));
}

/// W as the product uses it: code * channel scale (out x in, row-major).
template <class Packed>
std::vector<float> int8_values(const Packed& p, const float* scale) {
  std::vector<float> w(p.n() * p.k());
  for (std::size_t j = 0; j < p.n(); ++j)
    for (std::size_t i = 0; i < p.k(); ++i) w[j * p.k() + i] = static_cast<float>(p.at(j, i)) * scale[j];
  return w;
}

/// Reads what save_int8_codes wrote: the scales, and the codes in place in the file's bytes.
struct int8_codes {
  std::vector<float> scale;
  const std::int8_t* codes;
};
inline int8_codes read_int8_codes(reader& r, std::size_t out, std::size_t in) {
  int8_codes c{std::vector<float>(out), nullptr};
  for (float& v : c.scale) v = r.f32("scales");
  c.codes = reinterpret_cast<const std::int8_t*>(r.take(out * in, "weights"));
  return c;
}

}  // namespace detail
}  // namespace nn
SQUINT_NAMESPACE_END

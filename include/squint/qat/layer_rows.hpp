// SPDX-License-Identifier: Apache-2.0
// qat/layer_rows.hpp: a layer's calibration rows, the inputs its weight matrix multiplies — a
// linear layer's input pixels, a convolution's im2col rows (one output pixel's window, taps x
// group channels in OHWI order, padding as zeros) — sampled for the searches that fit weights
// to data (GPTQ, AWQ).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "squint/conv/geometry.hpp"
#include "squint/conv/im2col.hpp"

SQUINT_NAMESPACE_BEGIN
namespace qat {
namespace detail {

/// `count` of `total` rows drawn without replacement, in increasing order (all of them when
/// count >= total). Drawn, not evenly spaced: a stride would alias with the image width (every
/// 196th pixel of 28-wide images is in column 0, where the left taps read only padding).
/// Deterministic on every platform: a partial Fisher-Yates shuffle driven by splitmix64.
inline std::vector<std::size_t> sample_rows(std::size_t total, std::size_t count) {
  std::vector<std::size_t> rows(total);
  for (std::size_t r = 0; r < total; ++r) rows[r] = r;
  if (count >= total) return rows;
  std::uint64_t state = 0x5EED5EED5EED5EEDull;
  for (std::size_t r = 0; r < count; ++r) {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    std::swap(rows[r], rows[r + static_cast<std::size_t>(z % (total - r))]);
  }
  rows.resize(count);
  std::sort(rows.begin(), rows.end());
  return rows;
}

/// Group k's im2col rows (g.depth() floats each) of the convolution input a at the output pixels
/// `pixels`, padding as 0.
inline std::vector<float> im2col_rows(const float* a, const conv2d_geometry& g, std::size_t k,
                                      const std::vector<std::size_t>& pixels) {
  const std::vector<float> pad(g.in.channels, 0.0f);
  std::vector<const float*> taps(g.filter.taps());
  std::vector<float> rows(pixels.size() * g.depth());
  for (std::size_t r = 0; r < pixels.size(); ++r)
    squint::detail::im2col(a, g, k, pad.data(), pixels[r], 1, taps.data(), rows.data() + r * g.depth());
  return rows;
}

/// The rows `pixels` of a linear layer's input a (`in` floats per pixel).
inline std::vector<float> pixel_rows(const float* a, std::size_t in, const std::vector<std::size_t>& pixels) {
  std::vector<float> rows(pixels.size() * in);
  for (std::size_t r = 0; r < pixels.size(); ++r) std::copy(a + pixels[r] * in, a + (pixels[r] + 1) * in, rows.data() + r * in);
  return rows;
}

}  // namespace detail
}  // namespace qat
SQUINT_NAMESPACE_END

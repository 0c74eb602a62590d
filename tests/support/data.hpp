// SPDX-License-Identifier: Apache-2.0
// data.hpp: seeded inputs and the awkward values every numeric test runs through.
#pragma once

#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace squint_test {

/// Deterministic normal(mean, stddev) floats.
inline std::vector<float> normal(std::size_t n, float mean = 0.0f, float stddev = 1.0f, unsigned seed = 42) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(mean, stddev);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

/// Deterministic uniform integers in [lo, hi].
template <class T>
std::vector<T> uniform_ints(std::size_t n, int lo, int hi, unsigned seed = 7) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(lo, hi);
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(dist(rng));
  return v;
}

/// Values that break sloppy quantizers: signed zeros, exact ties at scale 1, saturation bounds,
/// infinities, NaN, denormals and the float extremes.
inline std::vector<float> edge_values() {
  const float inf = std::numeric_limits<float>::infinity();
  return {0.0f,   -0.0f,  0.5f,   -0.5f,  1.5f,   -1.5f,  2.5f,  -2.5f,   126.5f, 127.5f, -127.5f,
          -128.5f, 254.5f, 255.5f, 127.0f, 128.0f, -128.0f, -129.0f, 255.0f, 256.0f, 1e9f, -1e9f,
          inf,    -inf,   std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::denorm_min(),
          std::numeric_limits<float>::max(), std::numeric_limits<float>::lowest()};
}

}  // namespace squint_test

// SPDX-License-Identifier: Apache-2.0
// observers/numpy.hpp: numpy's float32 arithmetic where calibration results depend on it, ported
// to the bit: its pairwise sum and mean (ONNX Runtime's nanmean, scipy's normalisations) and its
// uniform-bin histogram (np.histogram, which ONNX Runtime's calibrators call).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "squint/observers/granularity.hpp"

SQUINT_NAMESPACE_BEGIN
namespace detail {

/// numpy's float32 sum (pairwise: 8 interleaved partial sums per block of up to 128 values,
/// halves above that), so that a mean taken here equals numpy's to the bit.
inline float numpy_pairwise_sum(const float* a, std::size_t n) {
  if (n < 8) {
    float sum = 0.0f;
    for (std::size_t i = 0; i < n; ++i) sum = rounded(sum + a[i]);
    return sum;
  }
  if (n <= 128) {
    float r[8];
    for (std::size_t j = 0; j < 8; ++j) r[j] = a[j];
    std::size_t i = 8;
    for (; i < n - n % 8; i += 8)
      for (std::size_t j = 0; j < 8; ++j) r[j] = rounded(r[j] + a[i + j]);
    float sum = rounded(rounded(rounded(r[0] + r[1]) + rounded(r[2] + r[3])) +
                        rounded(rounded(r[4] + r[5]) + rounded(r[6] + r[7])));
    for (; i < n; ++i) sum = rounded(sum + a[i]);
    return sum;
  }
  std::size_t half = n / 2;
  half -= half % 8;
  return rounded(numpy_pairwise_sum(a, half) + numpy_pairwise_sum(a + half, n - half));
}

/// numpy.nanmean of float32 values: the pairwise sum divided by the count in float64, rounded.
inline float numpy_mean(const std::vector<float>& v) {
  return static_cast<float>(static_cast<double>(numpy_pairwise_sum(v.data(), v.size())) / static_cast<double>(v.size()));
}

/// np.histogram(x, bins, range=(first, last)) on float32 data: counts and float32 edges.
struct numpy_histogram {
  std::vector<std::int64_t> counts;
  std::vector<float> edges;

  numpy_histogram(const std::vector<float>& x, std::size_t bins, float first, float last) : counts(bins, 0) {
    if (first == last) {  // _get_outer_edges widens an empty range by half a unit each side
      first = first - 0.5f;
      last = last + 0.5f;
    }
    // linspace in float64, cast to float32, the last edge exactly `last`.
    edges.resize(bins + 1);
    const double delta = static_cast<double>(last) - static_cast<double>(first);
    const double step = delta / static_cast<double>(bins);
    for (std::size_t i = 0; i < bins; ++i)
      edges[i] = static_cast<float>(rounded(static_cast<double>(i) * step) + static_cast<double>(first));
    edges[bins] = last;
    const auto n = static_cast<float>(bins);
    const float norm = n / (last - first);  // numpy: (v - first) * (bins / (last - first))
    for (float v : x) {
      if (!(v >= first && v <= last)) continue;
      const float f = (v - first) * norm;
      // A range too narrow to widen (a huge constant's |x|: last - first is 0) or too wide for float32
      // makes f NaN or out of range, where numpy indexes out of bounds; squint clamps.
      auto index = f >= 0.0f && f <= n ? static_cast<std::ptrdiff_t>(f) : f > n ? static_cast<std::ptrdiff_t>(bins) : 0;
      if (index == static_cast<std::ptrdiff_t>(bins)) --index;
      if (index > 0 && v < edges[static_cast<std::size_t>(index)]) --index;
      if (v >= edges[static_cast<std::size_t>(index) + 1] && index != static_cast<std::ptrdiff_t>(bins) - 1) ++index;
      ++counts[static_cast<std::size_t>(index)];
    }
  }
};

}  // namespace detail
SQUINT_NAMESPACE_END

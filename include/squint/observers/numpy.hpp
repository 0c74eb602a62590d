// SPDX-License-Identifier: Apache-2.0
// observers/numpy.hpp: numpy's float32 arithmetic where calibration results depend on it, ported
// to the bit: its pairwise sum and mean (ONNX Runtime's nanmean, scipy's normalisations) and its
// uniform-bin histogram (np.histogram, which ONNX Runtime's calibrators call).
#pragma once

#include <algorithm>
#include <cmath>
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

/// np.histogram(x, bins, range=(lo, hi)) on float32 data: counts and float32 edges. The range's
/// ends are numpy scalars: float32 ones (`float32_range`, a float32 tensor's min or max) or
/// float64 ones (arithmetic on them with Python numbers), which decides the type its width is
/// computed in.
struct numpy_histogram {
  std::vector<std::int64_t> counts;
  std::vector<float> edges;

  numpy_histogram(const std::vector<float>& x, std::size_t bins, double lo, double hi, bool float32_range = true)
      : counts(bins, 0) {
    // _get_outer_edges widens an empty range by half a unit each side, in float64 (numpy's scalar
    // arithmetic promotes float32 - 0.5 to float64).
    const bool widen = lo == hi;
    const double first_edge = widen ? lo - 0.5 : lo;
    const double last_edge = widen ? hi + 0.5 : hi;
    // linspace in float64, cast to float32, the last edge exactly `last`.
    edges.resize(bins + 1);
    const double step = (last_edge - first_edge) / static_cast<double>(bins);
    for (std::size_t i = 0; i < bins; ++i)
      edges[i] = static_cast<float>(rounded(static_cast<double>(i) * step) + first_edge);
    edges[bins] = static_cast<float>(last_edge);
    // The binning runs on the float32 data, the float64 scalars cast to it:
    // (v - first) * (bins / (last - first)), the width in the edges' own type.
    const auto first = static_cast<float>(first_edge), last = static_cast<float>(last_edge);
    const auto n = static_cast<float>(bins);
    const double width = widen || !float32_range
                             ? last_edge - first_edge
                             : static_cast<double>(rounded(static_cast<float>(hi) - static_cast<float>(lo)));
    const auto norm = static_cast<float>(static_cast<double>(bins) / width);
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

/// np.histogram(x, bins=edges) with explicit ascending edges: bin i counts edges[i] <= v <
/// edges[i + 1] (the last bin closed), compared in float64; values outside are not counted.
inline std::vector<std::int64_t> numpy_histogram_on_edges(const std::vector<float>& x, const std::vector<double>& edges) {
  std::vector<std::int64_t> counts(edges.size() - 1, 0);
  for (float f : x) {
    const auto v = static_cast<double>(f);
    if (!(v >= edges.front() && v <= edges.back())) continue;
    const auto above = static_cast<std::size_t>(std::upper_bound(edges.begin(), edges.end(), v) - edges.begin());
    ++counts[std::min(above - 1, counts.size() - 1)];
  }
  return counts;
}

/// np.arange(start, stop, step) on numpy scalars of type T (float32 or float64): the length
/// ceil((stop - start) / step) and the second point start + step in T's arithmetic, the rest
/// start + i * (second - start) in float64, as numpy fills an arange.
template <class T>
std::vector<double> numpy_arange(T start, T stop, T step) {
  const T span = static_cast<T>(rounded(static_cast<T>(stop - start)) / step);
  const double length = std::ceil(static_cast<double>(rounded(span)));
  if (!(length > 0.0)) return {};
  std::vector<double> out(static_cast<std::size_t>(length));
  out[0] = static_cast<double>(start);
  if (out.size() > 1) out[1] = static_cast<double>(rounded(static_cast<T>(start + step)));
  const double delta = out.size() > 1 ? out[1] - out[0] : 0.0;
  for (std::size_t i = 2; i < out.size(); ++i) out[i] = out[0] + rounded(static_cast<double>(i) * delta);
  return out;
}

/// The most bins a growing profile histogram may reach: 2^16, 32 times the usual 2048, where the
/// searches still take milliseconds. pytorch-quantization and ONNX Runtime keep their first bin
/// width without bound, so a first batch with a tiny range followed by a wide one asks them for
/// billions of bins (and searches quadratic in them); squint refuses that with squint::error.
inline constexpr double max_grown_bins = 65536.0;

/// squint::error naming `function` unless a histogram grown to `bins` stays within `limit`.
inline void require_growth(const char* function, double bins, double limit = max_grown_bins) {
  require(bins <= limit, function, ": the batch's range would grow the profile's histogram to ", bins,
          " bins of its first batch's width (at most ", limit, "); start calibration with a batch that spans the range");
}

/// numpy's floor division of float64 scalars (npy_divmod: (a - fmod(a, b)) / b, floored and
/// nudged up when that quotient sits more than half below the next integer).
inline double numpy_floor_divide(double a, double b) {
  const double mod = std::fmod(a, b);
  double div = (a - mod) / b;
  if (mod != 0.0 && ((b < 0.0) != (mod < 0.0))) div -= 1.0;
  double floor_div = std::floor(div);
  if (div - floor_div > 0.5) floor_div += 1.0;
  return floor_div;
}

/// A histogram of magnitudes grown by appending bins of its first width, as pytorch-quantization's
/// numpy path (torch_hist=False) and ONNX Runtime's collect_absolute_value keep it: the first
/// batch's np.histogram over [min, max] of its values (so it need not start at 0); a larger
/// maximum appends the edges np.arange(last + width, max + width, width), in float32 arithmetic
/// while the edges are the first float32 ones and in float64 once they have grown (np.hstack
/// makes them float64); each batch is binned on the edges, values below the first one lost.
class numpy_appending_histogram {
 public:
  explicit numpy_appending_histogram(std::size_t bins = 2048) : bins_(bins) {}

  bool empty() const { return counts_.empty(); }
  const std::vector<std::int64_t>& counts() const { return counts_; }
  const std::vector<double>& edges() const { return edges_; }
  /// The edges as the calibrators hand them on, rounded to float32.
  std::vector<float> float_edges() const { return {edges_.begin(), edges_.end()}; }

  /// The bins a batch whose largest magnitude is `top` grows the histogram to (about).
  /// (Infinite when top + width overflows float32: np.arange's length is then infinite.)
  double bins_after(float top) const {
    if (empty() || !(top > edges_.back())) return static_cast<double>(counts_.size());
    const double width = edges_[1] - edges_[0];
    if (!std::isfinite(rounded(top + static_cast<float>(width)))) return HUGE_VAL;
    return static_cast<double>(counts_.size()) + (static_cast<double>(top) - edges_.back()) / width;
  }

  /// Adds a batch of magnitudes (finite, >= 0); see bins_after and require_growth.
  void collect(const std::vector<float>& m) {
    if (m.empty()) return;
    const auto [lo, hi] = std::minmax_element(m.begin(), m.end());
    if (empty()) {
      const numpy_histogram h(m, bins_, *lo, *hi);
      counts_ = h.counts;
      edges_.assign(h.edges.begin(), h.edges.end());
      return;
    }
    if (*hi > edges_.back()) {
      std::vector<double> more;
      if (grown_) {
        const double width = edges_[1] - edges_[0];
        more = numpy_arange<double>(rounded(edges_.back() + width), rounded(static_cast<double>(*hi) + width), width);
      } else {
        const float width = rounded(static_cast<float>(edges_[1]) - static_cast<float>(edges_[0]));
        more = numpy_arange<float>(rounded(static_cast<float>(edges_.back()) + width), rounded(*hi + width), width);
      }
      edges_.insert(edges_.end(), more.begin(), more.end());
      grown_ = true;
    }
    std::vector<std::int64_t> h = numpy_histogram_on_edges(m, edges_);
    for (std::size_t j = 0; j < counts_.size(); ++j) h[j] += counts_[j];
    counts_.swap(h);
  }

 private:
  std::size_t bins_;
  std::vector<std::int64_t> counts_;
  std::vector<double> edges_;
  bool grown_ = false;
};

}  // namespace detail
SQUINT_NAMESPACE_END

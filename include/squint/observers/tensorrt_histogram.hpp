// SPDX-License-Identifier: Apache-2.0
// observers/tensorrt_histogram.hpp: the histogram of NVIDIA pytorch-quantization's
// HistogramCalibrator (TensorRT's toolkit, torch_hist=True) and its three amax searches, which
// histogram_observer runs under calibration_profile::tensorrt, so that its amax is that
// calibrator's to the bit.
//
//   first batch   histc(|x|, bins, 0, max |x|) (float32 binning) with edges
//                 linspace(0, max |x|, bins + 1)
//   larger max    the first bin width kept: bins = ceil(max / width) and edges
//                 arange(0, max + width, width) (which can hold one edge more than bins + 1);
//                 the batch binned on [0, last edge] and the old counts added to the first bins
//   entropy       _compute_amax_entropy: bin 0 takes bin 1's count, edges from 128 on (whatever
//                 the levels), 2^(bits - 1 + unsigned) groups, the last least KL divergence;
//                 amax = edges[i]
//   percentile    edges[searchsorted(cumsum(counts / total), p / 100)]
//   mse           _compute_amax_mse: centres (edges[k] + edges[k + 1]) / 2 from 128 on, each
//                 fake-quantized in float32 with amax = a centre (narrow range, round half to
//                 even); the first least mean of counts * error^2 (summed here in float64 from
//                 float32 terms where torch sums float32, and compared in float32)
// Per channel, pytorch-quantization histograms weights once (calibrate_weights): np.histogram
// of |w_c| on [0, max |w_c|]; squint keeps a channel's values and does the same when asked.
// The calibrator's numpy path (torch_hist=False) is detail::numpy_appending_histogram.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "squint/observers/calibration.hpp"
#include "squint/observers/numpy.hpp"
#include "squint/observers/torch.hpp"
#include "squint/qparams.hpp"

SQUINT_NAMESPACE_BEGIN
namespace calibration {

/// What the amax searches of pytorch-quantization need to know of the quantizer.
struct tensorrt_search {
  std::size_t levels = 128;  ///< entropy groups, 2^(bits - 1 + unsigned)
  float max_bound = 127.0f;  ///< largest code, levels - 1
  bool unsigned_codes = false;
  double percentile = 99.99;
};

/// pytorch-quantization's fake quantization of v with amax (tensor_quant.py's _tensor_quant, then
/// divided by the scale), in float32.
inline float tensorrt_fake_quant(float v, float amax, const tensorrt_search& s) {
  const float epsilon = 1.0f / static_cast<float>(1 << 24);
  if (amax <= epsilon) return 0.0f;  // scale 0 quantizes everything to 0, then divides by 1
  const float scale = squint::detail::rounded(s.max_bound / amax);
  const float lo = s.unsigned_codes ? 0.0f : -s.max_bound;
  const float q = std::clamp(std::nearbyint(squint::detail::rounded(v * scale)), lo, s.max_bound);
  return squint::detail::rounded(q / scale);
}

/// _compute_amax_mse on counts and float32 edges.
inline float tensorrt_mse_amax(const std::vector<std::int64_t>& counts, const std::vector<float>& edges,
                               const tensorrt_search& s) {
  const std::size_t n = std::min(counts.size(), edges.size() - 1);
  std::vector<float> centres(n);
  for (std::size_t k = 0; k < n; ++k)
    centres[k] = squint::detail::rounded(squint::detail::rounded(edges[k] + edges[k + 1]) / 2.0f);
  float best = std::numeric_limits<float>::infinity();
  std::size_t best_i = std::min<std::size_t>(128, n - 1);
  for (std::size_t i = 128; i < n; ++i) {
    double sum = 0.0;
    for (std::size_t k = 0; k < n; ++k) {
      if (counts[k] == 0) continue;
      const float e = squint::detail::rounded(tensorrt_fake_quant(centres[k], centres[i], s) - centres[k]);
      const float square = squint::detail::rounded(e * e);
      sum += static_cast<double>(squint::detail::rounded(square * static_cast<float>(counts[k])));
    }
    const auto mse = static_cast<float>(sum / static_cast<double>(n));
    if (mse < best) {
      best = mse;
      best_i = i;
    }
  }
  return centres[best_i];
}

/// The amax pytorch-quantization's `method` computes from counts and float32 edges.
inline float tensorrt_amax(calibration_method method, const std::vector<std::int64_t>& counts,
                           const std::vector<float>& edges, const tensorrt_search& s) {
  switch (method) {
    case calibration_method::entropy: {
      // scipy's entropy is NaN for an edge with no data below it (the quantized side sums to 0),
      // and np.argmin returns a NaN before any number: so when the first occupied bin (bin 0
      // taking bin 1's count) is at 128 or above, the last such edge, that bin's, wins.
      std::size_t occupied = counts.size() > 1 && counts[1] != 0 ? 0 : 1;
      while (occupied < counts.size() && counts[occupied] == 0) ++occupied;
      if (occupied >= 128) return edges[std::min(occupied, counts.size())];
      const std::vector<std::uint64_t> magnitudes(counts.begin(), counts.end());
      return edges[entropy_edge(magnitudes, s.levels, 128)];
    }
    case calibration_method::percentile:
      return edges[std::min(percentile_index(counts, s.percentile / 100.0), edges.size() - 1)];
    default:
      return tensorrt_mse_amax(counts, edges, s);
  }
}

}  // namespace calibration

/// HistogramCalibrator's running histogram of |x| (see the top of this header).
class tensorrt_histogram {
 public:
  explicit tensorrt_histogram(std::size_t bins = 2048) : bins_(bins) {}

  bool empty() const { return counts_.empty(); }
  const std::vector<float>& counts() const { return counts_; }
  const std::vector<float>& edges() const { return edges_; }

  /// The bins a batch whose largest magnitude is `amax` grows the histogram to.
  /// (Infinite when amax + width, the last edge, overflows float32: torch's arange fails there.)
  double bins_after(float amax) const {
    if (empty() || !(amax > edges_.back()) || width() == 0.0f) return static_cast<double>(bins_);
    if (!std::isfinite(detail::rounded(amax + width()))) return HUGE_VAL;
    return std::ceil(detail::rounded(amax / width()));
  }

  /// Adds a batch of finite values; see bins_after and detail::require_growth.
  void collect(const std::vector<float>& x) {
    if (x.empty()) return;
    float amax = 0.0f;
    for (float v : x) amax = std::max(amax, std::fabs(v));
    // The first batch; or larger values after nothing but zeros, where pytorch-quantization fails
    // (a bin width of 0, infinitely many bins): squint starts afresh with the zeros in bin 0.
    if (empty() || (amax > edges_.back() && width() == 0.0f)) {
      const std::vector<float> zeros = counts_;
      counts_ = histc(x, amax);
      edges_ = detail::torch_linspace(0.0f, amax, bins_ + 1);
      for (float c : zeros) counts_[0] = detail::rounded(counts_[0] + c);
      return;
    }
    if (amax > edges_.back()) {
      bins_ = static_cast<std::size_t>(bins_after(amax));
      edges_ = detail::torch_arange(detail::rounded(amax + width()), width());
    }
    std::vector<float> h = histc(x, edges_.back());
    for (std::size_t j = 0; j < counts_.size(); ++j) h[j] = detail::rounded(h[j] + counts_[j]);
    counts_.swap(h);
  }

  /// The amax of `method`.
  float amax(calibration_method method, const calibration::tensorrt_search& s) const {
    const std::vector<std::int64_t> counts(counts_.begin(), counts_.end());
    return calibration::tensorrt_amax(method, counts, edges_, s);
  }

 private:
  /// The first bin width, edges[1] - edges[0] in float32 (0 after a first batch of zeros).
  float width() const { return detail::rounded(edges_[1] - edges_[0]); }

  /// histc(|x|, bins_, 0, hi).
  std::vector<float> histc(const std::vector<float>& x, float hi) const {
    float lo = 0.0f;
    detail::torch_histc_range(lo, hi, 0.0f, 0.0f);  // hi is 0 only when every |x| is 0
    std::vector<float> h(bins_, 0.0f);
    for (float v : x) {
      const std::size_t b = detail::torch_histc_bin(std::fabs(v), lo, hi, bins_);
      if (b < bins_) h[b] += 1.0f;
    }
    return h;
  }

  std::size_t bins_;
  std::vector<float> counts_;
  std::vector<float> edges_;
};

SQUINT_NAMESPACE_END

// SPDX-License-Identifier: Apache-2.0
// observers/onnxruntime_histogram.hpp: ONNX Runtime's histogram calibrators (calibrate.py's
// HistogramCollector with EntropyCalibrater and PercentileCalibrater), ported so that a model
// calibrated here gets ORT's clipping range.
//
// ORT stacks every batch of one collect_data() call and histograms them together; this observer
// does the same with everything it observes between end_call()s (so observe() in batches, then
// qparams(); end_call() marks where a later collect_data() call starts, whose histogram ORT
// merges into the earlier ones by widening the range by whole bins). The
// histograms are numpy's (np.histogram: float32 edges from a float64 linspace, float32 bin
// arithmetic with its one-ulp corrections), the searches ORT's:
//   entropy     the symmetric window [zero - i, zero + i + 1) of a histogram over [-t, t],
//               t = max(|min|, |max|), for i = quantized_bins / 2 ... bins / 2; the window
//               merged into `quantized_bins` groups (the remainder joins the last group's count
//               but its positions get no estimate), each position of a group estimated by the
//               truncated integer mean over the group's nonzero reference bins, both sides
//               smoothed (epsilon 1e-4, float32), the first least KL divergence wins;
//   percentile  symmetric: the |x| histogram over [min |x|, max |x|], amax = edges[idx] with idx
//               the first cumulative share >= p; two-sided: the histogram over [-t, t] cut by
//               (100 - p) / 200 on each side.
// The range is clamped to the data's [min, max] and then goes through choose_qparams (use
// calibration_profile::onnxruntime in the spec for ORT's scale and zero point). Non-finite
// values are skipped and counted (ORT's np.histogram would fail on them). The divergence is
// scipy.stats.entropy's float32 arithmetic, numpy's pairwise sums included.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "squint/observers/calibration.hpp"
#include "squint/observers/granularity.hpp"
#include "squint/observers/numpy.hpp"

SQUINT_NAMESPACE_BEGIN

struct onnxruntime_histogram_options {
  enum class method : std::uint8_t { entropy, percentile };
  method search = method::entropy;
  /// Histogram bins: ORT's defaults are 128 for entropy (one candidate: plain min/max unless
  /// more bins are asked for) and 2048 for percentile.
  std::size_t bins = 128;
  /// Entropy: groups the window is merged into (ORT's num_quantized_bins).
  std::size_t quantized_bins = 128;
  /// Percentile in [0, 100] (ORT's default 99.999).
  double percentile = 99.999;
  /// Percentile: |x| histogram and a symmetric range (ORT's create_calibrator default), or a
  /// two-sided cut of the value histogram.
  bool symmetric = true;
};

namespace detail {

/// ORT's smooth_distribution in float32: zeros become eps, the others lose eps * zeros /
/// nonzeros. Empty when every entry is 0 (ORT returns None) or when that loss reaches 1 (where
/// ORT's assertion fails): the candidate then scores infinity.
inline std::vector<float> smooth_distribution(const std::vector<std::int64_t>& p) {
  std::size_t zeros = 0;
  for (std::int64_t v : p) zeros += v == 0 ? 1 : 0;
  const std::size_t nonzeros = p.size() - zeros;
  if (nonzeros == 0) return {};
  const double eps = 0.0001;
  const double eps1 = eps * static_cast<double>(zeros) / static_cast<double>(nonzeros);
  if (!(eps1 < 1.0)) return {};
  std::vector<float> out(p.size());
  for (std::size_t i = 0; i < p.size(); ++i)
    out[i] = p[i] == 0 ? static_cast<float>(eps) : static_cast<float>(p[i]) - static_cast<float>(eps1);
  return out;
}

/// scipy.stats.entropy(p, q) on float32 arrays, as scipy computes it: each side divided by its
/// numpy (pairwise) float32 sum, rel_entr per element in float64 rounded to float32, and the
/// float32 pairwise sum of those.
inline float divergence(const std::vector<float>& p, const std::vector<float>& q) {
  const float sp = numpy_pairwise_sum(p.data(), p.size()), sq = numpy_pairwise_sum(q.data(), q.size());
  std::vector<float> terms(p.size());
  for (std::size_t i = 0; i < p.size(); ++i) {
    const float pk = rounded(p[i] / sp), qk = rounded(q[i] / sq);  // both > 0 after smoothing
    terms[i] = static_cast<float>(static_cast<double>(pk) * std::log(static_cast<double>(pk) / static_cast<double>(qk)));
  }
  return numpy_pairwise_sum(terms.data(), terms.size());
}

/// HistogramCollector.collect_value across collect_data calls: the first call's np.histogram
/// over [-t, t], t = max(|min|, |max|); a later call whose t fits is binned on the old range and
/// added; a larger t widens the range by whole old bins on each side (merge_histogram), or
/// replaces an all-zero history's range.
struct onnxruntime_value_histogram {
  std::vector<std::int64_t> counts;
  std::vector<float> edges;
  double threshold = 0.0;
  bool float32_threshold = true;  ///< t is still a float32 scalar (widening makes it float64)

  bool empty() const { return counts.empty(); }

  /// The bins a call whose largest magnitude is `t` grows the histogram to.
  double bins_after(float t) const {
    if (empty() || !(static_cast<double>(t) > threshold) || threshold == 0.0) return static_cast<double>(counts.size());
    return static_cast<double>(counts.size()) + 2.0 * bins_added_each_side(t);
  }

  /// Adds one call's finite values (non-empty); see bins_after and require_growth.
  void collect(const std::vector<float>& x, std::size_t bins) {
    const auto [lo, hi] = std::minmax_element(x.begin(), x.end());
    const float t = std::max(std::fabs(*lo), std::fabs(*hi));
    if (empty()) {
      const numpy_histogram h(x, bins, -static_cast<double>(t), t);
      counts = h.counts;
      edges = h.edges;
      threshold = t;
      return;
    }
    const std::size_t n = counts.size();
    if (static_cast<double>(t) <= threshold) {
      const numpy_histogram h(x, n, -threshold, threshold, float32_threshold);
      for (std::size_t j = 0; j < n; ++j) counts[j] += h.counts[j];
      return;
    }
    if (threshold == 0.0) {
      numpy_histogram h(x, n, -static_cast<double>(t), t);
      for (std::size_t j = 0; j < n; ++j) h.counts[j] += counts[j];
      adopt(h, t, true);
      return;
    }
    const auto half = static_cast<std::size_t>(bins_added_each_side(t));
    const double widened = rounded(static_cast<double>(half) * stride()) + threshold;
    numpy_histogram h(x, n + 2 * half, -widened, widened, false);
    for (std::size_t j = 0; j < n; ++j) h.counts[half + j] += counts[j];
    adopt(h, widened, false);
  }

 private:
  /// merge_histogram's bin width, 2 t / bins, in Python's float64 arithmetic on numpy scalars.
  double stride() const { return 2.0 * threshold / static_cast<double>(counts.size()); }

  /// merge_histogram's half_increased_bins for a larger t (the difference stays float32 while
  /// both thresholds are).
  double bins_added_each_side(float t) const {
    const double gap = float32_threshold ? static_cast<double>(rounded(t - static_cast<float>(threshold)))
                                         : static_cast<double>(t) - threshold;
    return numpy_floor_divide(gap, stride()) + 1.0;
  }

  void adopt(numpy_histogram& h, double t, bool is_float32) {
    counts.swap(h.counts);
    edges.swap(h.edges);
    threshold = t;
    float32_threshold = is_float32;
  }
};

}  // namespace detail

/// ONNX Runtime's entropy and percentile calibration (per tensor). See the top of this header.
class onnxruntime_histogram_observer {
 public:
  /// @throws squint::error on an invalid spec, fewer than 2 bins, quantized_bins of 0 or above
  ///         bins, or a percentile outside [0, 100].
  explicit onnxruntime_histogram_observer(const quant_spec& spec = {}, const onnxruntime_histogram_options& options = {})
      : spec_(spec), options_(options), magnitudes_(options.bins) {
    detail::validate_spec(spec_);
    detail::require(options_.bins >= 2, "onnxruntime_histogram_observer: bins must be >= 2, got ", options_.bins);
    detail::require(options_.quantized_bins >= 1 && options_.quantized_bins <= options_.bins,
                    "onnxruntime_histogram_observer: quantized_bins must be in [1, bins], got ",
                    options_.quantized_bins);
    detail::require(options_.percentile >= 0.0 && options_.percentile <= 100.0,
                    "onnxruntime_histogram_observer: percentile must be in [0, 100], got ", options_.percentile);
  }

  const quant_spec& spec() const { return spec_; }
  const onnxruntime_histogram_options& options() const { return options_; }
  /// Finite values observed, in every call.
  std::size_t count() const { return counted_ + values_.size(); }
  std::size_t nonfinite_count() const { return nonfinite_; }

  /// Keeps x's finite values for the current call's histogram (ORT stacks the batches of a
  /// collect_data call the same way).
  /// @throws squint::error if x is null with elements.
  void observe(tensor_view<const float> x) {
    detail::require_data("onnxruntime_histogram_observer::observe", "x", x);
    for (float v : x) {
      if (std::isfinite(v)) values_.push_back(v == 0.0f ? 0.0f : v);
      else ++nonfinite_;
    }
  }

  /// Ends one collect_data call: what was observed since the last call is histogrammed and
  /// merged into the running histogram the way ORT merges a later call (the range widened by
  /// whole bins, or |x| bins appended for the symmetric percentile). Without it everything
  /// observed is one call, ORT's usual use. A call that observed nothing is skipped.
  /// @throws squint::error (and changes nothing) if the call's range would grow the histogram past
  ///         8192 bins (the value histogram) or 65536 (the |x| one) of its first call's width.
  void end_call() {
    if (values_.empty()) return;
    const auto [lo, hi] = std::minmax_element(values_.begin(), values_.end());
    const float top = std::max(std::fabs(*lo), std::fabs(*hi));
    // ORT's entropy search is quadratic in the bins: its histogram grows to 8192 at most here.
    if (magnitude())
      detail::require_growth("onnxruntime_histogram_observer::end_call", magnitudes_.bins_after(top));
    else
      detail::require_growth("onnxruntime_histogram_observer::end_call", values_histogram_.bins_after(top), 8192.0);
    collect(values_);
    counted_ += values_.size();
    values_.clear();
  }

  /// Takes another observer's values, as if they had been observed here in the current call.
  /// @throws squint::error if the specs' dtype, scheme or profile, or the options differ, or if
  ///         either observer has ended a call (merged calls have no order to follow).
  void merge(const onnxruntime_histogram_observer& other) {
    detail::require(spec_.type == other.spec_.type && spec_.scheme == other.spec_.scheme &&
                        spec_.profile == other.spec_.profile && options_.search == other.options_.search &&
                        options_.bins == other.options_.bins && options_.quantized_bins == other.options_.quantized_bins &&
                        options_.percentile == other.options_.percentile && options_.symmetric == other.options_.symmetric,
                    "onnxruntime_histogram_observer::merge: observers differ in spec or options");
    detail::require(counted_ == 0 && other.counted_ == 0,
                    "onnxruntime_histogram_observer::merge: an observer has ended calls; ORT's histogram of several "
                    "calls depends on their order");
    values_.insert(values_.end(), other.values_.begin(), other.values_.end());
    nonfinite_ += other.nonfinite_;
  }

  void reset() { *this = onnxruntime_histogram_observer(spec_, options_); }

  /// The clipping range ORT computes, clamped to the data's [min, max]; [0, 0] before any data.
  std::pair<float, float> clip_range() const {
    if (count() == 0) return {0.0f, 0.0f};
    onnxruntime_histogram_observer all = *this;
    all.end_call();
    return all.finished_range();
  }

  /// choose_qparams on the clipping range (after ORT's clamp a constant tensor can give
  /// min > max; choose_qparams then sees the range widened to hold 0, as compute_scale_zp does).
  squint::qparams qparams() const {
    if (count() == 0) {  // nothing observed: scale 1, zero point 0 clamped into the range
      const quant_range r = range_of(spec_);
      return {1.0f, std::clamp(0, r.qmin, r.qmax)};
    }
    const auto [lo, hi] = clip_range();
    return choose_qparams(std::min(lo, 0.0f), std::max(hi, 0.0f), spec_);
  }

 private:
  bool magnitude() const {
    return options_.search == onnxruntime_histogram_options::method::percentile && options_.symmetric;
  }

  /// collect_absolute_value or collect_value on one call's values.
  void collect(const std::vector<float>& x) {
    const auto [lo, hi] = std::minmax_element(x.begin(), x.end());
    min_ = counted_ == 0 ? *lo : std::min(min_, *lo);
    max_ = counted_ == 0 ? *hi : std::max(max_, *hi);
    if (magnitude()) {
      std::vector<float> m(x.size());
      for (std::size_t i = 0; i < x.size(); ++i) m[i] = std::fabs(x[i]);
      magnitudes_.collect(m);
    } else {
      values_histogram_.collect(x, options_.bins);
    }
  }

  /// The range of the histograms of every ended call, clamped to the data.
  std::pair<float, float> finished_range() const {
    std::pair<float, float> range = options_.search == onnxruntime_histogram_options::method::entropy
                                        ? entropy_range()
                                        : percentile_range();
    if (range.first < min_) range.first = min_;
    if (range.second > max_) range.second = max_;
    return range;
  }
  std::pair<float, float> entropy_range() const {
    const detail::onnxruntime_value_histogram& h = values_histogram_;
    const std::size_t n = h.counts.size(), zero = n / 2, levels = options_.quantized_bins, half = levels / 2;
    double best = std::numeric_limits<double>::infinity();
    std::pair<float, float> best_range{h.edges[zero - std::min(half, zero)], h.edges[std::min(zero + half + 1, n)]};
    bool first = true;
    for (std::size_t i = half; i <= zero; ++i) {
      const std::size_t start = zero - i, end = std::min(zero + i + 1, n);
      std::vector<std::int64_t> p(h.counts.begin() + static_cast<std::ptrdiff_t>(start),
                                  h.counts.begin() + static_cast<std::ptrdiff_t>(end));
      const std::vector<std::int64_t> sliced = p;
      for (std::size_t j = 0; j < start; ++j) p.front() += h.counts[j];
      for (std::size_t j = end; j < n; ++j) p.back() += h.counts[j];
      // Merge the window into `levels` groups; expand each back over its nonzero reference bins.
      const std::size_t merged = sliced.size() / levels;
      std::vector<std::int64_t> q(p.size(), 0);
      for (std::size_t g = 0; g < levels; ++g) {
        const std::size_t s = g * merged, e = s + merged;
        std::int64_t sum = 0, nonzero = 0;
        for (std::size_t j = s; j < e; ++j) sum += sliced[j];
        if (g + 1 == levels)
          for (std::size_t j = levels * merged; j < sliced.size(); ++j) sum += sliced[j];
        for (std::size_t j = s; j < e; ++j) nonzero += p[j] != 0 ? 1 : 0;
        if (nonzero != 0)
          for (std::size_t j = s; j < e; ++j)
            q[j] = static_cast<std::int64_t>(static_cast<double>(sum) / static_cast<double>(nonzero));
      }
      const std::vector<float> ps = detail::smooth_distribution(p), qs = detail::smooth_distribution(q);
      const double kl = ps.empty() || qs.empty() ? std::numeric_limits<double>::infinity() : detail::divergence(ps, qs);
      if (first || kl < best) {  // np.argmin: the first least value
        best = kl;
        best_range = {h.edges[start], h.edges[end]};
        first = false;
      }
    }
    return best_range;
  }

  std::pair<float, float> percentile_range() const {
    if (magnitude()) {
      const auto amax = static_cast<float>(
          magnitudes_.edges()[calibration::percentile_index(magnitudes_.counts(), options_.percentile / 100.0)]);
      return {-amax, amax};
    }
    const detail::onnxruntime_value_histogram& h = values_histogram_;
    const double side = (100.0 - options_.percentile) / 200.0;
    return {h.edges[calibration::percentile_index(h.counts, side)],
            h.edges[calibration::percentile_index(h.counts, 1.0 - side)]};
  }

  quant_spec spec_;
  onnxruntime_histogram_options options_;
  std::vector<float> values_;  ///< the current call's finite values
  std::size_t counted_ = 0;    ///< values of the ended calls
  std::size_t nonfinite_ = 0;
  float min_ = 0.0f, max_ = 0.0f;
  detail::numpy_appending_histogram magnitudes_;     ///< symmetric percentile
  detail::onnxruntime_value_histogram values_histogram_;  ///< entropy, two-sided percentile
};

SQUINT_NAMESPACE_END

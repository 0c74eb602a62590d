// SPDX-License-Identifier: Apache-2.0
// observers/pytorch_histogram.hpp: the histogram of PyTorch's HistogramObserver (PyTorch >= 2.5,
// with the spike weight fixed in #156457), which histogram_observer keeps for the L2 method under
// calibration_profile::pytorch, so that its range is PyTorch's to the bit.
//
//   first batch   histc(x, bins, min(x), max(x)) in float32 counts over [min_val, max_val]
//   same range    the new batch's histc added
//   wider range   the new batch binned on the union [lo, hi]; the old histogram moved onto it by
//                 splitting each bin into 16 sub-bins of count / 16 whose centres (a float32
//                 linspace plus half a sub-bin) go to the bin bucketize(centre, linspace(lo, hi))
//                 - 1, clamped; an old histogram of a single value moves whole to that value's bin
//   search        _non_linear_param_search: float32 cumulative counts and thresholds; the L2 error
//                 in float64 (PyTorch sums it in float32, so a near tie between two candidates'
//                 errors can resolve differently)
//   range         min_val + bin_width * start and min_val + bin_width * (end + 1) in float32
// PyTorch 1.13 truncates the histogram bounds to integers and merges by another scheme; squint
// follows the current algorithm (README, "Calibration profiles").
#pragma once

#include <algorithm>
#include <cstddef>
#include <utility>
#include <vector>

#include "squint/observers/calibration.hpp"
#include "squint/observers/torch.hpp"

SQUINT_NAMESPACE_BEGIN

class pytorch_histogram {
 public:
  explicit pytorch_histogram(std::size_t bins = 2048) : counts_(bins, 0.0f) {}

  bool empty() const { return empty_; }
  std::size_t bins() const { return counts_.size(); }
  /// The histogram's range [min_val, max_val] and float32 counts.
  float min() const { return min_; }
  float max() const { return max_; }
  const std::vector<float>& counts() const { return counts_; }

  /// Adds a batch: its finite values and their min and max.
  void collect(const std::vector<float>& x, float lo, float hi) {
    if (x.empty()) return;
    if (empty_) {
      min_ = lo;
      max_ = hi;
      counts_ = histc(x, lo, hi, lo, hi);
      empty_ = false;
      return;
    }
    const float new_min = std::min(min_, lo), new_max = std::max(max_, hi);
    std::vector<float> update = histc(x, new_min, new_max, lo, hi);
    if (new_min == min_ && new_max == max_) {
      for (std::size_t j = 0; j < counts_.size(); ++j) counts_[j] = detail::rounded(counts_[j] + update[j]);
      return;
    }
    const std::vector<float> moved = min_ == max_ ? spike(new_min, new_max) : upscale(new_min, new_max);
    for (std::size_t j = 0; j < counts_.size(); ++j) counts_[j] = detail::rounded(update[j] + moved[j]);
    min_ = new_min;
    max_ = new_max;
  }

  /// The clipping range PyTorch's search chooses with `levels` destination bins (2^bits).
  std::pair<float, float> l2_range(std::size_t levels) const {
    const double width = (static_cast<double>(max_) - static_cast<double>(min_)) / static_cast<double>(bins());
    const auto [first, last] = calibration::l2_bins<float>(counts_, width, levels);
    const float bin_width = detail::rounded(detail::rounded(max_ - min_) / static_cast<float>(bins()));
    const auto edge = [&](std::size_t i) {
      return detail::rounded(min_ + detail::rounded(bin_width * static_cast<float>(i)));
    };
    return {edge(first), edge(last + 1)};
  }

 private:
  static constexpr std::size_t sub_bins = 16;

  /// torch.histc(x, bins, lo, hi) of a batch whose own range is [data_lo, data_hi].
  std::vector<float> histc(const std::vector<float>& x, float lo, float hi, float data_lo, float data_hi) const {
    detail::torch_histc_range(lo, hi, data_lo, data_hi);
    std::vector<float> h(bins(), 0.0f);
    for (float v : x) {
      const std::size_t b = detail::torch_histc_bin(v, lo, hi, bins());
      if (b < bins()) h[b] += 1.0f;
    }
    return h;
  }

  /// An old histogram of the single value min_: its whole count in that value's new bin.
  std::vector<float> spike(float lo, float hi) const {
    double total = 0.0;
    for (float c : counts_) total += c;
    std::vector<float> h(bins(), 0.0f);
    const std::size_t b = detail::torch_histc_bin(min_, lo, hi, bins());
    if (b < bins()) h[b] = static_cast<float>(total);
    return h;
  }

  /// _upscale_histogram: the old counts moved onto [lo, hi] through 16 sub-bins per bin.
  std::vector<float> upscale(float lo, float hi) const {
    const std::size_t fine = bins() * sub_bins;
    const float sub_bin = detail::rounded(detail::rounded(max_ - min_) / static_cast<float>(fine));
    const float half_sub_bin = detail::rounded(0.5f * sub_bin);
    const std::vector<float> starts = detail::torch_linspace(min_, max_, fine + 1);
    const std::vector<float> boundaries = detail::torch_linspace(lo, hi, bins() + 1);
    std::vector<float> h(bins(), 0.0f);
    for (std::size_t k = 0; k < fine; ++k) {
      const float centre = detail::rounded(starts[k] + half_sub_bin);
      // bucketize(right=True) - 1: the last boundary <= centre, clamped to the bins.
      const auto above = static_cast<std::size_t>(std::upper_bound(boundaries.begin(), boundaries.end(), centre) -
                                                  boundaries.begin());
      const std::size_t b = std::min(above == 0 ? 0 : above - 1, bins() - 1);
      h[b] = detail::rounded(h[b] + counts_[k / sub_bins] / static_cast<float>(sub_bins));
    }
    return h;
  }

  std::vector<float> counts_;
  float min_ = 0.0f;
  float max_ = 0.0f;
  bool empty_ = true;
};

SQUINT_NAMESPACE_END

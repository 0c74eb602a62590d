// SPDX-License-Identifier: Apache-2.0
// observers/minmax.hpp: min-max and moving-average min-max observers (PyTorch semantics), and
// ONNX Runtime's mean of per-batch ranges.
#pragma once

#include <cstddef>
#include <limits>
#include <vector>

#include "squint/observers/granularity.hpp"
#include "squint/observers/numpy.hpp"

SQUINT_NAMESPACE_BEGIN

/// Tracks the running min and max of everything observed (PyTorch MinMaxObserver, and
/// PerChannelMinMaxObserver for granularity::per_channel) and turns them into qparams with
/// choose_qparams. NaN and +-inf are skipped and counted (nonfinite_count()), so one bad value
/// cannot poison the scale. Observers of the same spec can be merged, so threads may calibrate
/// in parallel and combine their observers at the end.
template <granularity G = granularity::per_tensor>
class min_max_observer : public detail::range_tracker<G> {
  using base = detail::range_tracker<G>;

 public:
  /// Per-tensor observer.
  explicit min_max_observer(const quant_spec& spec = {}) : base(spec, 0) {}
  /// Per-channel observer along `axis` (negative counts from the back).
  template <granularity g = G, std::enable_if_t<g == granularity::per_channel, int> = 0>
  min_max_observer(const quant_spec& spec, int axis) : base(spec, axis) {}

  /// Folds x's finite range into the running min and max.
  /// @throws squint::error if x is null with elements, or (per channel) its channel count along
  ///         the axis differs from earlier batches; the observer is then unchanged.
  void observe(tensor_view<const float> x) {
    const auto batch = this->measure("min_max_observer::observe", x);
    if (!batch) return;
    if (this->min_.empty()) {
      this->min_ = batch->min;
      this->max_ = batch->max;
    } else {
      for (std::size_t c = 0; c < this->min_.size(); ++c) {
        this->min_[c] = std::min(this->min_[c], batch->min[c]);
        this->max_[c] = std::max(this->max_[c], batch->max[c]);
      }
    }
    this->end_batch(*batch);
  }

  /// Combines another observer's statistics into this one (as if it had seen their data too).
  /// @throws squint::error if spec, axis or channel count differ.
  void merge(const min_max_observer& other) {
    this->require_compatible("min_max_observer::merge", other);
    if (this->min_.empty()) {
      this->min_ = other.min_;
      this->max_ = other.max_;
    } else if (!other.min_.empty()) {
      for (std::size_t c = 0; c < this->min_.size(); ++c) {
        this->min_[c] = std::min(this->min_[c], other.min_[c]);
        this->max_[c] = std::max(this->max_[c], other.max_[c]);
      }
    }
    this->add_counts(other);
  }
};

/// Exponential moving average of each batch's min and max (PyTorch MovingAverageMinMaxObserver
/// and MovingAveragePerChannelMinMaxObserver): the first batch sets the range, later ones move it
/// by min += c * (batch_min - min), in float32 as PyTorch computes it.
template <granularity G = granularity::per_tensor>
class moving_average_observer : public detail::range_tracker<G> {
  using base = detail::range_tracker<G>;

 public:
  /// Per-tensor observer. @throws squint::error if averaging_constant is not in (0, 1].
  explicit moving_average_observer(const quant_spec& spec = {}, float averaging_constant = 0.01f)
      : base(spec, 0), c_(checked(averaging_constant)) {}
  /// Per-channel observer along `axis`.
  template <granularity g = G, std::enable_if_t<g == granularity::per_channel, int> = 0>
  moving_average_observer(const quant_spec& spec, int axis, float averaging_constant = 0.01f)
      : base(spec, axis), c_(checked(averaging_constant)) {}

  float averaging_constant() const { return c_; }

  /// Moves the running range towards x's finite range. A channel without finite values in this
  /// batch keeps its range.
  /// @throws squint::error as min_max_observer::observe; the observer is then unchanged.
  void observe(tensor_view<const float> x) {
    const auto batch = this->measure("moving_average_observer::observe", x);
    if (!batch) return;
    if (this->min_.empty()) {
      this->min_ = batch->min;
      this->max_ = batch->max;
    } else {
      for (std::size_t c = 0; c < this->min_.size(); ++c) {
        if (!(batch->min[c] <= batch->max[c])) continue;
        if (!(this->min_[c] <= this->max_[c])) {
          this->min_[c] = batch->min[c];
          this->max_[c] = batch->max[c];
          continue;
        }
        this->min_[c] = this->min_[c] + detail::rounded(c_ * (batch->min[c] - this->min_[c]));
        this->max_[c] = this->max_[c] + detail::rounded(c_ * (batch->max[c] - this->max_[c]));
      }
    }
    this->end_batch(*batch);
  }

  /// Combines another observer's averages, weighting each by its number of batches. A moving
  /// average depends on batch order, so this is the natural approximation for parallel
  /// calibration; it is exact when either side is empty.
  /// @throws squint::error if spec, axis, averaging constant or channel count differ.
  void merge(const moving_average_observer& other) {
    this->require_compatible("moving_average_observer::merge", other);
    detail::require(c_ == other.c_, "moving_average_observer::merge: averaging constants differ (", c_,
                    " vs ", other.c_, ")");
    if (this->min_.empty()) {
      this->min_ = other.min_;
      this->max_ = other.max_;
    } else if (!other.min_.empty()) {
      const double wa = static_cast<double>(this->batches());
      const double wb = static_cast<double>(other.batches());
      for (std::size_t c = 0; c < this->min_.size(); ++c) {
        this->min_[c] = blend(this->min_[c], other.min_[c], wa, wb);
        this->max_[c] = blend(this->max_[c], other.max_[c], wa, wb);
      }
    }
    this->add_counts(other);
  }

 private:
  static float checked(float c) {
    detail::require(c > 0.0f && c <= 1.0f, "moving_average_observer: averaging_constant must be in (0, 1], got ",
                    c);
    return c;
  }
  static float blend(float a, float b, double wa, double wb) {
    if (!(b == b) || std::isinf(b)) return a;
    if (std::isinf(a)) return b;
    return static_cast<float>((a * wa + b * wb) / (wa + wb));
  }

  float c_;
};

/// The mean of each batch's min and the mean of each batch's max: ONNX Runtime's
/// MinMaxCalibrater with moving_average=True over the batches of one collect_data() call (its
/// averaging constant applies only between calls), with numpy's float32 mean. Use it with
/// quant_spec::profile = calibration_profile::onnxruntime to get ORT's numbers. A batch (or a
/// channel of it) without finite values is left out, as nanmean leaves out NaN.
template <granularity G = granularity::per_tensor>
class batch_mean_observer : public detail::range_tracker<G> {
  using base = detail::range_tracker<G>;

 public:
  explicit batch_mean_observer(const quant_spec& spec = {}) : base(spec, 0) {}
  template <granularity g = G, std::enable_if_t<g == granularity::per_channel, int> = 0>
  batch_mean_observer(const quant_spec& spec, int axis) : base(spec, axis) {}

  /// Records x's finite range as one more batch.
  /// @throws squint::error as min_max_observer::observe; the observer is then unchanged.
  void observe(tensor_view<const float> x) {
    const auto batch = this->measure("batch_mean_observer::observe", x);
    if (!batch) return;
    if (mins_.empty()) {
      mins_.resize(batch->min.size());
      maxs_.resize(batch->max.size());
    }
    for (std::size_t c = 0; c < mins_.size(); ++c) {
      if (!(batch->min[c] <= batch->max[c])) continue;
      mins_[c].push_back(batch->min[c]);
      maxs_[c].push_back(batch->max[c]);
    }
    update();
    this->end_batch(*batch);
  }

  /// Takes another observer's batches as if this one had seen them too (after its own).
  /// @throws squint::error if spec, axis or channel count differ.
  void merge(const batch_mean_observer& other) {
    this->require_compatible("batch_mean_observer::merge", other);
    if (mins_.empty()) {
      mins_ = other.mins_;
      maxs_ = other.maxs_;
    } else {
      for (std::size_t c = 0; c < other.mins_.size(); ++c) {
        mins_[c].insert(mins_[c].end(), other.mins_[c].begin(), other.mins_[c].end());
        maxs_[c].insert(maxs_[c].end(), other.maxs_[c].begin(), other.maxs_[c].end());
      }
    }
    update();
    this->add_counts(other);
  }

  void reset() {
    base::reset();
    mins_.clear();
    maxs_.clear();
  }

 private:
  void update() {
    this->min_.assign(mins_.size(), std::numeric_limits<float>::infinity());
    this->max_.assign(maxs_.size(), -std::numeric_limits<float>::infinity());
    for (std::size_t c = 0; c < mins_.size(); ++c) {
      if (mins_[c].empty()) continue;
      this->min_[c] = detail::numpy_mean(mins_[c]);
      this->max_[c] = detail::numpy_mean(maxs_[c]);
    }
  }

  std::vector<std::vector<float>> mins_, maxs_;
};

SQUINT_NAMESPACE_END

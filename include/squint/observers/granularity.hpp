// SPDX-License-Identifier: Apache-2.0
// observers/granularity.hpp: per-tensor vs per-channel statistics, and the shared range tracker.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <algorithm>
#include <atomic>
#include <type_traits>
#include <vector>

#include "squint/kernels/reduce.hpp"
#include "squint/qparams.hpp"
#include "squint/tensor.hpp"

SQUINT_NAMESPACE_BEGIN

/// One set of qparams for the whole tensor, or one per slice along a channel axis.
enum class granularity : std::uint8_t { per_tensor, per_channel };

/// What an observer of granularity G returns from qparams().
template <granularity G>
using qparams_for = std::conditional_t<G == granularity::per_tensor, qparams, per_channel_qparams>;

namespace detail {

/// Forces a float result to be rounded to float32 on its own, so a multiply-add written as two
/// operations is not contracted into an FMA (which would differ from PyTorch in the last ulp).
inline float rounded(float v) {
  volatile float r = v;
  return r;
}
inline double rounded(double v) {
  volatile double r = v;
  return r;
}

/// The reduction kernels the observers run, as pointers (squint::kernels::reduce_kernel's).
struct observer_kernels {
  const char* (*isa)();
  void (*min_max)(const float*, std::size_t, float*, float*, std::size_t*) noexcept;
  void (*min_max_columns)(const float*, std::size_t, std::size_t, float*, float*, std::size_t*) noexcept;
  void (*histogram)(const float*, std::size_t, bool, double, double, double, std::size_t, std::uint64_t*,
                    std::uint64_t*) noexcept;
};

/// This translation unit's static ISA's kernels.
inline const observer_kernels& native_observer_kernels() {
  using reduce = kernels::reduce_kernel<arch::native>;
  static const observer_kernels k{[]() { return arch::native::name(); }, &reduce::min_max, &reduce::min_max_columns,
                                  &reduce::histogram};
  return k;
}

/// Where runtime dispatch puts the running CPU's kernels: squint/dispatch.hpp does as the program
/// starts, so that observers (and nn calibration) run them wherever it is included.
inline std::atomic<const observer_kernels*>& observer_kernels_slot() {
  static std::atomic<const observer_kernels*> slot{nullptr};
  return slot;
}

/// The kernels observers run: the dispatched ones when installed, else the native ones. Every
/// arch computes the same min, max and bins, so this changes speed, never a result.
inline const observer_kernels& active_observer_kernels() {
  const observer_kernels* k = observer_kernels_slot().load(std::memory_order_acquire);
  return k != nullptr ? *k : native_observer_kernels();
}

/// Finite min and max of each channel of one batch; non-finite values are counted, not used.
/// Runs the active observer kernels; a zero extreme is reported as +0 whatever its sign, so
/// the result does not depend on the order in which an ISA visits the values.
struct batch_range {
  std::vector<float> min;
  std::vector<float> max;
  std::size_t finite = 0;
  std::size_t nonfinite = 0;

  batch_range(const float* x, axis_split split) : min(split.channels, HUGE_VALF), max(split.channels, -HUGE_VALF) {
    const observer_kernels& reduce = active_observer_kernels();
    if (split.inner == 1 && split.channels > 1) {
      reduce.min_max_columns(x, split.outer, split.channels, min.data(), max.data(), &nonfinite);
    } else {
      for (std::size_t o = 0; o < split.outer; ++o)
        for (std::size_t c = 0; c < split.channels; ++c)
          reduce.min_max(x + (o * split.channels + c) * split.inner, split.inner, &min[c], &max[c], &nonfinite);
    }
    for (std::size_t c = 0; c < split.channels; ++c) {
      if (min[c] == 0.0f) min[c] = 0.0f;
      if (max[c] == 0.0f) max[c] = 0.0f;
    }
    finite = split.outer * split.channels * split.inner - nonfinite;
  }
};

/// Running per-channel [min, max] shared by the min-max observers: the channel layout, the
/// counters and the conversion to qparams. Observers decide how a batch's range is folded in.
template <granularity G>
class range_tracker {
 public:
  range_tracker(const quant_spec& spec, int axis) : spec_(spec), axis_(axis) { validate_spec(spec_); }

  const quant_spec& spec() const { return spec_; }
  int axis() const { return axis_; }
  /// Finite values observed so far.
  std::size_t count() const { return count_; }
  /// NaN and +-inf values seen and skipped so far.
  std::size_t nonfinite_count() const { return nonfinite_; }
  /// Batches observed so far (empty batches do not count).
  std::size_t batches() const { return batches_; }

  /// The running min: a float per tensor, a vector (one per channel) per channel.
  auto min() const {
    if constexpr (G == granularity::per_tensor) return min_.empty() ? inf() : min_[0];
    else return min_;
  }
  auto max() const {
    if constexpr (G == granularity::per_tensor) return max_.empty() ? -inf() : max_[0];
    else return max_;
  }

  /// choose_qparams on the running range. A channel that has seen no finite value yields scale 1
  /// and zero point 0 (clamped into the range), as PyTorch's observers do.
  qparams_for<G> qparams() const {
    if constexpr (G == granularity::per_tensor) {
      return min_.empty() ? empty_qparams() : channel_qparams(0);
    } else {
      per_channel_qparams out;
      out.axis = axis_;
      for (std::size_t c = 0; c < min_.size(); ++c) {
        const squint::qparams p = channel_qparams(c);
        out.scale.push_back(p.scale);
        out.zero_point.push_back(p.zero_point);
      }
      return out;
    }
  }

  void reset() {
    min_.clear();
    max_.clear();
    count_ = nonfinite_ = batches_ = 0;
  }

 protected:
  static float inf() { return std::numeric_limits<float>::infinity(); }

  /// Validates x and measures its per-channel range; nullopt for an empty batch. Changes nothing.
  std::optional<batch_range> measure(const char* function, tensor_view<const float> x) const {
    require_data(function, "x", x);
    if (x.size() == 0) return std::nullopt;
    axis_split split{1, 1, x.size()};
    if constexpr (G == granularity::per_channel) split = split_at(x.extents(), axis_);
    require(min_.empty() || min_.size() == split.channels, function, ": x has ", split.channels,
            " channels along axis ", axis_, " but earlier batches had ", min_.size());
    return batch_range(x.data(), split);
  }

  void end_batch(const batch_range& b) {
    count_ += b.finite;
    nonfinite_ += b.nonfinite;
    ++batches_;
  }

  void require_compatible(const char* function, const range_tracker& other) const {
    require(spec_.type == other.spec_.type && spec_.scheme == other.spec_.scheme &&
                spec_.profile == other.spec_.profile && axis_ == other.axis_,
            function, ": observers differ in dtype, scheme, profile or axis");
    require(min_.empty() || other.min_.empty() || min_.size() == other.min_.size(), function,
            ": observers have ", min_.size(), " and ", other.min_.size(), " channels");
  }

  void add_counts(const range_tracker& other) {
    count_ += other.count_;
    nonfinite_ += other.nonfinite_;
    batches_ += other.batches_;
  }

  std::vector<float> min_;
  std::vector<float> max_;

 private:
  squint::qparams empty_qparams() const {
    const quant_range r = range_of(spec_);
    return {1.0f, std::clamp<std::int32_t>(0, r.qmin, r.qmax)};
  }
  squint::qparams channel_qparams(std::size_t c) const {
    if (!(min_[c] <= max_[c])) return empty_qparams();
    return choose_qparams(min_[c], max_[c], spec_);
  }

  quant_spec spec_;
  int axis_ = 0;
  std::size_t count_ = 0;
  std::size_t nonfinite_ = 0;
  std::size_t batches_ = 0;
};

}  // namespace detail
SQUINT_NAMESPACE_END

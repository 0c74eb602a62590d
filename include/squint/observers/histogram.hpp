// SPDX-License-Identifier: Apache-2.0
// observers/histogram.hpp: histogram observer with entropy / percentile / MSE / L2 calibration.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <utility>
#include <variant>
#include <vector>

#include "squint/kernels/reduce.hpp"
#include "squint/observers/calibration.hpp"
#include "squint/observers/granularity.hpp"
#include "squint/observers/numpy.hpp"
#include "squint/observers/pytorch_histogram.hpp"
#include "squint/observers/tensorrt_histogram.hpp"

SQUINT_NAMESPACE_BEGIN

struct histogram_options {
  calibration_method method = calibration_method::entropy;
  /// Number of bins; even and at least 256 (TensorRT and PyTorch use 2048).
  std::size_t bins = 2048;
  /// For calibration_method::percentile, in (0, 100].
  double percentile = 99.99;
  /// tensorrt profile, per tensor: pytorch-quantization's torch histogram (torch_hist=True, its
  /// default), or its numpy one (torch_hist=False: |x| from its own minimum, float64 edges).
  bool tensorrt_torch_hist = true;
};

/// Counts over [lo, lo + bins * width) whose range grows as data arrives. Growing doubles the bin
/// width and merges adjacent bin pairs exactly, extending to the right, or to the left when the
/// data goes below lo (old bins then fill the upper half), so no count is ever re-estimated
/// (unlike PyTorch's upsample-and-redistribute). A histogram whose data so far was a single value
/// has width 0 and holds its count in bin 0 until a second value arrives.
class histogram {
 public:
  explicit histogram(std::size_t bins = 2048) : counts_(bins, 0) {}

  std::size_t bins() const { return counts_.size(); }
  double lo() const { return lo_; }
  double width() const { return width_; }
  double hi() const { return lo_ + width_ * static_cast<double>(counts_.size()); }
  const std::vector<std::uint64_t>& counts() const { return counts_; }
  std::uint64_t total() const { return total_; }
  bool empty() const { return total_ == 0; }

  /// Grows the range until [lo, hi] is inside it. lo <= hi, both finite.
  void cover(double lo, double hi) {
    if (total_ == 0) {
      lo_ = lo;
      width_ = (hi - lo) / static_cast<double>(counts_.size());
      return;
    }
    if (width_ == 0.0) {
      if (lo >= lo_ && hi <= lo_) return;
      const double point = lo_;
      const std::uint64_t n = counts_[0];
      counts_[0] = 0;
      lo_ = std::min(lo, point);
      width_ = (std::max(hi, point) - lo_) / static_cast<double>(counts_.size());
      total_ -= n;
      top_edge_ = 0;
      add(point, n);
      return;
    }
    const std::size_t half = counts_.size() / 2;
    while (lo < lo_ || hi > this->hi()) {
      const bool left = lo < lo_;
      std::vector<std::uint64_t> merged(counts_.size(), 0);
      for (std::size_t j = 0; j < counts_.size(); ++j) merged[(left ? half : 0) + j / 2] += counts_[j];
      if (!left) {  // the old top edge is now the start of bin `half`
        merged[half - 1] -= top_edge_;
        merged[half] += top_edge_;
        top_edge_ = 0;
      }
      counts_.swap(merged);
      if (left) lo_ -= width_ * static_cast<double>(counts_.size());
      width_ *= 2.0;
    }
  }

  /// Counts one value inside the covered range.
  void add(double v, std::uint64_t n = 1) {
    counts_[index(v)] += n;
    total_ += n;
    if (width_ != 0.0 && v >= hi()) top_edge_ += n;
  }

  /// Counts the finite values of x (their magnitudes with `magnitude`), all inside the covered
  /// range; non-finite values are skipped. Runs the active observer kernels' binning.
  void add(const float* x, std::size_t n, std::size_t finite, bool magnitude) {
    if (width_ == 0.0) {
      counts_[0] += finite;
    } else {
      detail::active_observer_kernels().histogram(x, n, magnitude, lo_, width_, hi(), counts_.size(), counts_.data(),
                                                  &top_edge_);
    }
    total_ += finite;
  }

  /// Adds another histogram's counts, each at its bin's centre (exact when the bins coincide).
  void merge(const histogram& other) {
    if (other.empty()) return;
    cover(other.lo_, other.width_ == 0.0 ? other.lo_ : other.hi());
    for (std::size_t j = 0; j < other.counts_.size(); ++j)
      if (other.counts_[j] != 0) add(other.lo_ + (static_cast<double>(j) + 0.5) * other.width_, other.counts_[j]);
  }

  void reset() {
    std::fill(counts_.begin(), counts_.end(), 0);
    lo_ = width_ = 0.0;
    total_ = top_edge_ = 0;
  }

 private:
  std::size_t index(double v) const {
    if (width_ == 0.0) return 0;
    const double position = std::floor((v - lo_) / width_);
    const auto last = static_cast<double>(counts_.size() - 1);
    return static_cast<std::size_t>(std::min(std::max(position, 0.0), last));
  }

  std::vector<std::uint64_t> counts_;
  double lo_ = 0.0;
  double width_ = 0.0;
  std::uint64_t total_ = 0;
  std::uint64_t top_edge_ = 0;
};

/// Collects a histogram of the observed values (of |x| for the entropy, percentile and MSE
/// methods, of x for L2) and chooses the clipping range with the configured method; qparams()
/// applies choose_qparams to that range. Outliers that min-max would let stretch the scale are
/// clipped. Non-finite values are skipped and counted. Per-channel keeps one histogram per channel.
///
/// Which histogram depends on the spec's profile, so that a profile's numbers are its stack's:
///   pytorch profile, L2            PyTorch's HistogramObserver (pytorch_histogram)
///   tensorrt profile, per tensor   pytorch-quantization's HistogramCalibrator (tensorrt_histogram,
///                                  or its numpy path with tensorrt_torch_hist off)
///   tensorrt profile, per channel  its calibrate_weights: np.histogram of each channel's |w| once
///                                  the values are all in, so a channel's batches are kept
///   otherwise                      squint's histogram, whose growth never re-estimates a count
/// The entropy, percentile and MSE searches are pytorch-quantization's under both histograms
/// (squint's entropy starts at `levels`, its MSE compares in float64, and its percentile and MSE
/// clip to the data range; the tensorrt profile returns the calibrator's amax as it is).
template <granularity G = granularity::per_tensor>
class histogram_observer {
 public:
  /// Per-tensor observer. @throws squint::error on invalid options or spec.
  explicit histogram_observer(const quant_spec& spec = {}, const histogram_options& options = {})
      : histogram_observer(spec, 0, options, 0) {}
  /// Per-channel observer along `axis`.
  template <granularity g = G, std::enable_if_t<g == granularity::per_channel, int> = 0>
  histogram_observer(const quant_spec& spec, int axis, const histogram_options& options = {})
      : histogram_observer(spec, axis, options, 0) {}

  const quant_spec& spec() const { return spec_; }
  const histogram_options& options() const { return options_; }
  int axis() const { return axis_; }
  std::size_t count() const { return count_; }
  std::size_t nonfinite_count() const { return nonfinite_; }
  std::size_t channels() const { return channels_.size(); }
  /// The histogram of channel c (0 per tensor); empty before the first observation.
  /// @throws squint::error when the profile keeps its own histogram (see the class comment).
  const squint::histogram& histogram(std::size_t c = 0) const {
    const auto* h = std::get_if<squint::histogram>(&channels_.at(c).hist);
    detail::require(h != nullptr, "histogram_observer::histogram: the ", name(spec_.profile),
                    " profile keeps its own histogram for this method and granularity");
    return *h;
  }

  /// Adds x's finite values to the histogram(s), growing the range as needed.
  /// @throws squint::error if x is null with elements, its channel count changed, or a profile's
  ///         running histogram would grow past 65536 bins; the observer is then unchanged.
  void observe(tensor_view<const float> x) {
    detail::require_data("histogram_observer::observe", "x", x);
    if (x.size() == 0) return;
    axis_split split{1, 1, x.size()};
    if constexpr (G == granularity::per_channel) split = split_at(x.extents(), axis_);
    detail::require(channels_.empty() || channels_.size() == split.channels, "histogram_observer::observe: x has ",
                    split.channels, " channels along axis ", axis_, " but earlier batches had ", channels_.size());
    const detail::batch_range batch(x.data(), split);
    // A running profile histogram that would grow without bound is refused before anything changes.
    for (std::size_t c = 0; c < channels_.size(); ++c) {
      if (!(batch.min[c] <= batch.max[c])) continue;
      const float top = std::max(-batch.min[c], batch.max[c]);
      if (const auto* h = std::get_if<tensorrt_histogram>(&channels_[c].hist))
        detail::require_growth("histogram_observer::observe", h->bins_after(top));
      if (const auto* h = std::get_if<detail::numpy_appending_histogram>(&channels_[c].hist))
        detail::require_growth("histogram_observer::observe", h->bins_after(top));
    }
    if (channels_.empty()) channels_.assign(split.channels, channel_state{new_histogram()});
    for (std::size_t c = 0; c < split.channels; ++c) {
      if (!(batch.min[c] <= batch.max[c])) continue;
      channel_state& s = channels_[c];
      s.min = std::min(s.min, batch.min[c]);
      s.max = std::max(s.max, batch.max[c]);
      if (!std::holds_alternative<squint::histogram>(s.hist)) {
        std::vector<float> values;
        for (std::size_t o = 0; o < split.outer; ++o) {
          const float* row = x.data() + (o * split.channels + c) * split.inner;
          for (std::size_t i = 0; i < split.inner; ++i)
            if (row[i] - row[i] == 0.0f) values.push_back(row[i]);
        }
        if (auto* h = std::get_if<pytorch_histogram>(&s.hist)) h->collect(values, batch.min[c], batch.max[c]);
        if (auto* h = std::get_if<tensorrt_histogram>(&s.hist)) h->collect(values);
        if (auto* h = std::get_if<detail::numpy_appending_histogram>(&s.hist)) {
          for (float& v : values) v = std::fabs(v);
          h->collect(values);
        }
        if (auto* h = std::get_if<std::vector<float>>(&s.hist)) h->insert(h->end(), values.begin(), values.end());
        continue;
      }
      squint::histogram& hist = std::get<squint::histogram>(s.hist);
      if (magnitude()) {
        hist.cover(0.0, std::max(-static_cast<double>(batch.min[c]), static_cast<double>(batch.max[c])));
      } else {
        hist.cover(batch.min[c], batch.max[c]);
      }
      for (std::size_t o = 0; o < split.outer; ++o) {
        const float* row = x.data() + (o * split.channels + c) * split.inner;
        std::size_t finite = 0;
        for (std::size_t i = 0; i < split.inner; ++i) finite += row[i] - row[i] == 0.0f;
        hist.add(row, split.inner, finite, magnitude());
      }
    }
    count_ += batch.finite;
    nonfinite_ += batch.nonfinite;
  }

  /// Adds another observer's histograms (bins re-placed at their centres when ranges differ).
  /// @throws squint::error if spec, options, axis or channel count differ, or when the profile
  ///         keeps PyTorch's or pytorch-quantization's running histogram, whose result depends on
  ///         the order of the batches (observe them in one observer instead).
  void merge(const histogram_observer& other) {
    detail::require(spec_.type == other.spec_.type && spec_.scheme == other.spec_.scheme &&
                        options_.method == other.options_.method && options_.bins == other.options_.bins &&
                        axis_ == other.axis_,
                    "histogram_observer::merge: observers differ in spec, method, bins or axis");
    detail::require(channels_.empty() || other.channels_.empty() || channels_.size() == other.channels_.size(),
                    "histogram_observer::merge: observers have ", channels_.size(), " and ",
                    other.channels_.size(), " channels");
    detail::require(spec_.profile == other.spec_.profile, "histogram_observer::merge: observers differ in profile");
    const any_histogram fresh = new_histogram();
    const bool running = !std::holds_alternative<squint::histogram>(fresh) &&
                         !std::holds_alternative<std::vector<float>>(fresh);
    detail::require(!running, "histogram_observer::merge: the ", name(spec_.profile),
                    " profile's running histogram depends on the order of the batches and cannot be merged");
    if (channels_.empty()) {
      channels_ = other.channels_;
    } else {
      for (std::size_t c = 0; c < other.channels_.size(); ++c) {
        if (auto* h = std::get_if<squint::histogram>(&channels_[c].hist))
          h->merge(std::get<squint::histogram>(other.channels_[c].hist));
        if (auto* h = std::get_if<std::vector<float>>(&channels_[c].hist)) {
          const auto& v = std::get<std::vector<float>>(other.channels_[c].hist);
          h->insert(h->end(), v.begin(), v.end());
        }
        channels_[c].min = std::min(channels_[c].min, other.channels_[c].min);
        channels_[c].max = std::max(channels_[c].max, other.channels_[c].max);
      }
    }
    count_ += other.count_;
    nonfinite_ += other.nonfinite_;
  }

  void reset() {
    channels_.clear();
    count_ = nonfinite_ = 0;
  }

  /// The clipping range [lo, hi] the method chooses for channel c (before widening to 0).
  /// An empty channel gives [0, 0].
  std::pair<float, float> clip_range(std::size_t c = 0) const {
    const channel_state& s = channels_.at(c);
    if (!(s.min <= s.max)) return {0.0f, 0.0f};
    if (const auto* h = std::get_if<pytorch_histogram>(&s.hist)) return h->l2_range(destination_bins());
    if (const auto* h = std::get_if<tensorrt_histogram>(&s.hist)) {
      const float a = h->amax(options_.method, tensorrt_search());
      return {-a, a};
    }
    if (const auto* h = std::get_if<detail::numpy_appending_histogram>(&s.hist)) {
      const float a = calibration::tensorrt_amax(options_.method, h->counts(), h->float_edges(), tensorrt_search());
      return {-a, a};
    }
    if (const auto* values = std::get_if<std::vector<float>>(&s.hist)) {
      std::vector<float> magnitudes(values->size());
      for (std::size_t i = 0; i < values->size(); ++i) magnitudes[i] = std::fabs((*values)[i]);
      const float top = std::max(-s.min, s.max);
      if (top == 0.0f) return {0.0f, 0.0f};  // an all-zero channel (where pytorch-quantization's MSE fails)
      const detail::numpy_histogram h(magnitudes, options_.bins, 0.0f, top);
      const float a = calibration::tensorrt_amax(options_.method, h.counts, h.edges, tensorrt_search());
      return {-a, a};
    }
    const squint::histogram& hist = std::get<squint::histogram>(s.hist);
    const quant_range r = range_of(spec_);
    const auto levels = static_cast<std::size_t>(r.qmax - r.qmin + 1);
    if (!magnitude()) {
      const auto [lo, hi] = calibration::l2_range(hist.counts(), hist.lo(), hist.width(), destination_bins());
      return clip(s, static_cast<float>(lo), static_cast<float>(hi));
    }
    // Data without negatives can use every code of an affine range for [0, amax]; otherwise
    // half the codes cover each sign.
    const bool unsigned_data = s.min >= 0.0f;
    const std::size_t magnitude_levels =
        unsigned_data && spec_.scheme == qscheme::affine ? levels : levels / 2;
    double amax = 0.0;
    switch (options_.method) {
      case calibration_method::entropy:
        amax = calibration::entropy_threshold(hist.counts(), hist.width(), magnitude_levels);
        break;
      case calibration_method::percentile:
        amax = calibration::percentile_threshold(hist.counts(), hist.width(), options_.percentile);
        break;
      default:
        amax = calibration::mse_threshold(hist.counts(), hist.width(), magnitude_levels, unsigned_data);
        break;
    }
    const auto a = static_cast<float>(amax);
    return clip(s, -a, a);
  }

  /// choose_qparams on the clipping range; an empty channel gives scale 1, zero point 0.
  qparams_for<G> qparams() const {
    if constexpr (G == granularity::per_tensor) {
      return channels_.empty() ? empty_qparams() : channel_qparams(0);
    } else {
      per_channel_qparams out;
      out.axis = axis_;
      for (std::size_t c = 0; c < channels_.size(); ++c) {
        const squint::qparams p = channel_qparams(c);
        out.scale.push_back(p.scale);
        out.zero_point.push_back(p.zero_point);
      }
      return out;
    }
  }

 private:
  /// squint's histogram, PyTorch's, pytorch-quantization's, or a channel's values kept for
  /// pytorch-quantization's calibrate_weights.
  using any_histogram = std::variant<squint::histogram, pytorch_histogram, tensorrt_histogram,
                                     detail::numpy_appending_histogram, std::vector<float>>;

  struct channel_state {
    any_histogram hist;
    float min = std::numeric_limits<float>::infinity();
    float max = -std::numeric_limits<float>::infinity();
  };

  histogram_observer(const quant_spec& spec, int axis, const histogram_options& options, int)
      : spec_(spec), options_(options), axis_(axis) {
    detail::validate_spec(spec_);
    detail::require(options_.bins >= 256 && options_.bins % 2 == 0,
                    "histogram_observer: bins must be even and >= 256, got ", options_.bins);
    detail::require(options_.percentile > 0.0 && options_.percentile <= 100.0,
                    "histogram_observer: percentile must be in (0, 100], got ", options_.percentile);
  }

  bool magnitude() const { return options_.method != calibration_method::l2; }

  /// The histogram the profile, method and granularity call for (see the class comment).
  any_histogram new_histogram() const {
    if (spec_.profile == calibration_profile::pytorch && !magnitude()) return pytorch_histogram(options_.bins);
    if (spec_.profile == calibration_profile::tensorrt && magnitude()) {
      if (G == granularity::per_channel) return std::vector<float>();
      if (!options_.tensorrt_torch_hist) return detail::numpy_appending_histogram(options_.bins);
      return tensorrt_histogram(options_.bins);
    }
    return squint::histogram(options_.bins);
  }

  /// PyTorch's HistogramObserver searches onto 2^bits destination bins whatever the range
  /// (reduce_range and custom ranges included).
  std::size_t destination_bins() const {
    const quant_range full = full_range(spec_.type);
    return static_cast<std::size_t>(full.qmax - full.qmin + 1);
  }

  /// The quantizer as pytorch-quantization's searches see it: 2^(bits - 1 + unsigned) levels.
  calibration::tensorrt_search tensorrt_search() const {
    const quant_range r = range_of(spec_);
    calibration::tensorrt_search search;
    search.levels = static_cast<std::size_t>(r.qmax) + 1;
    search.max_bound = static_cast<float>(r.qmax);
    search.unsigned_codes = r.qmin >= 0;
    search.percentile = options_.percentile;
    return search;
  }

  /// The data range [min, max] clipped to [lo, hi]: each end clamped into it, so data lying
  /// wholly outside (a constant above the threshold, whose bin centre is below it) collapses to
  /// the nearest end instead of giving an inverted range.
  static std::pair<float, float> clip(const channel_state& s, float lo, float hi) {
    return {std::clamp(s.min, lo, hi), std::clamp(s.max, lo, hi)};
  }

  squint::qparams empty_qparams() const {
    const quant_range r = range_of(spec_);
    return {1.0f, std::clamp<std::int32_t>(0, r.qmin, r.qmax)};
  }
  squint::qparams channel_qparams(std::size_t c) const {
    if (!(channels_[c].min <= channels_[c].max)) return empty_qparams();
    const auto [lo, hi] = clip_range(c);
    return choose_qparams(lo, hi, spec_);
  }

  quant_spec spec_;
  histogram_options options_;
  int axis_ = 0;
  std::vector<channel_state> channels_;
  std::size_t count_ = 0;
  std::size_t nonfinite_ = 0;
};

SQUINT_NAMESPACE_END

// SPDX-License-Identifier: Apache-2.0
// observers/calibration.hpp: clipping-threshold searches over a histogram.
//
// Pure functions of bin counts, so they can be tested on hand-made histograms. Two families:
//   - magnitude methods (entropy, percentile, mse) see a histogram of |x| over [0, bins * width]
//     and return a threshold amax, as NVIDIA's pytorch-quantization calibrators (TensorRT);
//   - the L2 search sees a histogram of x over [lo, lo + bins * width] and returns [min, max],
//     as PyTorch's HistogramObserver._non_linear_param_search.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "squint/qparams.hpp"
#include "squint/reference/calibration.hpp"

SQUINT_NAMESPACE_BEGIN

/// How a histogram observer picks its clipping range.
enum class calibration_method : std::uint8_t {
  entropy,     ///< TensorRT's KL-divergence threshold on |x| (pytorch-quantization's algorithm)
  percentile,  ///< |x| threshold covering `percentile` percent of the values
  mse,         ///< |x| threshold minimising the squared fake-quantization error
  l2,          ///< PyTorch HistogramObserver's L2 norm-minimisation search on x
};

namespace calibration {

namespace detail {

/// log(v) for integers v, from a table up to `limit` (counts of a per-channel weight histogram
/// stay small, and the searches below take a few logs per candidate and group), std::log beyond.
/// The table is kept per thread and only grows, so the channels of a per-channel observer build
/// it once between them; its entries are std::log's, so a cached one equals a fresh one.
class integer_log {
 public:
  explicit integer_log(std::uint64_t limit) : table_(cache()) {
    const std::size_t size = static_cast<std::size_t>(std::min<std::uint64_t>(limit, 65536)) + 1;
    for (std::size_t v = table_.size(); v < size; ++v) table_.push_back(v == 0 ? 0.0 : std::log(static_cast<double>(v)));
  }
  /// log v, and 0 for v = 0.
  double operator()(std::uint64_t v) const {
    return v < table_.size() ? table_[v] : std::log(static_cast<double>(v));
  }

 private:
  static std::vector<double>& cache() {
    thread_local std::vector<double> table;
    return table;
  }
  std::vector<double>& table_;
};

/// ceil(v) for 0 <= v < 2^63 without a libm call (baseline x86-64 has no rounding instruction).
inline std::size_t ceil_index(double v) {
  const auto t = static_cast<std::int64_t>(v);  // signed: one instruction, unsigned is not
  return static_cast<std::size_t>(t + (static_cast<double>(t) < v ? 1 : 0));
}

/// The candidate the exact rule picks, evaluating exactly only the candidates whose fast value
/// is within `tolerance` of the fast minimum. The fast values are the exact ones up to rounding
/// (their difference is below tolerance / 2), so the exact minimum and every candidate tied
/// with it are among those, and the choice (first or last of the ties) is the exact search's.
/// A degenerate histogram can tie hundreds of candidates (each exact evaluation is linear in the
/// bins): then only the 256 least, the ones the tie rule prefers first among equals, are
/// evaluated exactly.
template <class Exact>
std::size_t confirm_best(const std::vector<double>& fast, std::size_t first, double tolerance, bool last_of_ties,
                         Exact exact) {
  double least = std::numeric_limits<double>::infinity();
  for (double v : fast) least = std::min(least, v);
  if (!(least < std::numeric_limits<double>::infinity())) return last_of_ties ? first + fast.size() - 1 : first;
  std::vector<std::size_t> near;
  for (std::size_t c = 0; c < fast.size(); ++c)
    if (fast[c] <= least + tolerance) near.push_back(c);
  constexpr std::size_t most = 256;
  if (near.size() > most) {
    std::partial_sort(near.begin(), near.begin() + most, near.end(), [&](std::size_t x, std::size_t y) {
      return fast[x] != fast[y] ? fast[x] < fast[y] : (last_of_ties ? x > y : x < y);
    });
    near.resize(most);
    std::sort(near.begin(), near.end());
  }
  double best = std::numeric_limits<double>::infinity();
  std::size_t best_i = first;
  for (std::size_t c : near) {
    const double v = exact(first + c);
    if (last_of_ties ? v <= best : v < best) {
      best = v;
      best_i = first + c;
    }
  }
  return best_i;
}

}  // namespace detail

/// Threshold whose KL divergence between the clipped reference distribution and its quantized
/// version over `levels` bins is smallest (TensorRT's entropy calibration, in the form of
/// pytorch-quantization's _compute_amax_entropy; reference::entropy_threshold is the plain
/// search, and this one returns the same threshold). Returns amax = i * width for the best edge i.
///
/// Per candidate edge i the divergence is, with T the total count, S(i) the count below i and
/// G_g, s_g, n_g a group's mass (the tail folded into the last group), count and nonzero bins:
///   KL(i) = (sum_{j<i-1} b_j log b_j + b'_{i-1} log b'_{i-1} - sum_g G_g log(s_g / n_g)) / T
///           - log T + log S(i)
/// so prefix sums make each candidate O(levels) instead of O(i) logs. Candidates within rounding
/// of the least are then evaluated exactly. The search starts at edge `first` (squint: `levels`;
/// pytorch-quantization: 128 whatever the levels) and returns the best edge.
inline std::size_t entropy_edge(const std::vector<std::uint64_t>& counts, std::size_t levels, std::size_t first) {
  const std::size_t nbins = counts.size();
  if (nbins == 0 || levels == 0) return 0;
  const std::vector<double> bins = reference::entropy_bins(counts);
  // Counts are integers: their prefix sums are exact, and index the log table directly.
  std::vector<std::uint64_t> below(nbins + 1, 0), nonzero(nbins + 1, 0);
  for (std::size_t j = 0; j < nbins; ++j) {
    const auto b = static_cast<std::uint64_t>(bins[j]);
    below[j + 1] = below[j] + b;
    nonzero[j + 1] = nonzero[j] + (b != 0 ? 1 : 0);
  }
  const std::uint64_t total = below[nbins];
  const detail::integer_log log(total);
  std::vector<double> xlogx(nbins + 1, 0.0);
  for (std::size_t j = 0; j < nbins; ++j)
    xlogx[j + 1] = xlogx[j] + bins[j] * log(static_cast<std::uint64_t>(bins[j]));
  first = std::min(first, nbins);
  std::vector<double> fast(nbins + 1 - first);
  std::vector<std::size_t> start(levels + 1);
  const bool power_of_two = (levels & (levels - 1)) == 0 && nbins < (std::size_t{1} << 40);
  std::size_t shift = 0;
  while ((std::size_t{1} << shift) < levels) ++shift;
  for (std::size_t i = first; i <= nbins; ++i) {
    double& kl = fast[i - first];
    const std::uint64_t tail = total - below[i];
    if (total == 0 || below[i] == 0) {
      kl = 0.0;  // nothing to compare (the plain search's loop does not run)
      continue;
    }
    if (bins[i - 1] == 0.0 && tail > 0) {
      kl = std::numeric_limits<double>::infinity();  // the folded tail lands on a bin quantized to 0
      continue;
    }
    if (power_of_two) {
      // i / levels and g * (i / levels) are exact dyadic doubles then: the same edges in integers.
      for (std::size_t g = 0; g < levels; ++g) start[g] = (g * i + levels - 1) >> shift;
    } else {
      const double step = static_cast<double>(i) / static_cast<double>(levels);
      for (std::size_t g = 0; g < levels; ++g) start[g] = detail::ceil_index(static_cast<double>(g) * step);
    }
    start[levels] = i;
    // An empty group adds mass * (log 0 - log 0) = 0 (the table's log 0 is 0): no branch. Four
    // partial sums, so the additions do not wait on each other.
    double grouped[4] = {0.0, 0.0, 0.0, 0.0};
    for (std::size_t g = 0; g < levels; ++g) {
      const std::uint64_t sum = below[start[g + 1]] - below[start[g]];
      const auto mass = static_cast<double>(sum + (g + 1 == levels ? tail : 0));
      grouped[g % 4] += mass * (log(sum) - log(nonzero[start[g + 1]] - nonzero[start[g]]));
    }
    const std::uint64_t last = static_cast<std::uint64_t>(bins[i - 1]) + tail;  // may be 0
    kl = (xlogx[i - 1] + static_cast<double>(last) * log(last) - ((grouped[0] + grouped[1]) + (grouped[2] + grouped[3]))) /
             static_cast<double>(total) -
         log(total) + log(below[i]);
  }
  const double tolerance = 1e-9 * (1.0 + log(total));
  return detail::confirm_best(fast, first, tolerance, true,
                              [&](std::size_t i) { return reference::entropy_divergence(bins, levels, i); });
}

/// entropy_edge from edge `levels` on, as a threshold amax = edge * width.
inline double entropy_threshold(const std::vector<std::uint64_t>& counts, double width, std::size_t levels) {
  return static_cast<double>(entropy_edge(counts, levels, levels)) * width;
}

/// The first bin whose cumulative share of the counts reaches `share` (np.searchsorted on
/// np.cumsum(counts / total): the per-bin quotients summed in order, as pytorch-quantization and
/// ONNX Runtime compute it); counts.size() when rounding leaves every share below it.
template <class Count>
std::size_t percentile_index(const std::vector<Count>& counts, double share) {
  double total = 0.0;
  for (Count c : counts) total += static_cast<double>(c);
  double cumulative = 0.0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    cumulative += static_cast<double>(counts[i]) / total;
    if (cumulative >= share) return i;
  }
  return counts.size();
}

/// The left edge of the first bin whose cumulative share of the counts reaches `percentile`
/// percent (pytorch-quantization's and ONNX Runtime's edges[idx]; so even 100 % gives the left
/// edge of the last occupied bin, below the maximum).
inline double percentile_threshold(const std::vector<std::uint64_t>& counts, double width, double percentile) {
  std::uint64_t total = 0;
  for (std::uint64_t c : counts) total += c;
  if (total == 0) return 0.0;
  const std::size_t i = std::min(percentile_index(counts, percentile / 100.0), counts.size() - 1);
  return static_cast<double>(i) * width;
}

/// Bin centre amax (from bin `levels` on) whose fake-quantization of the bin centres onto
/// [-(levels-1), levels-1] (or [0, levels-1] when `unsigned_data`) has the least count-weighted
/// squared error (pytorch-quantization's _compute_amax_mse; reference::mse_threshold is the
/// plain search, and this one returns the same threshold).
///
/// For candidate bin i the centres scale to x_j = (2j + 1) beta, beta = M / (2i + 1) with
/// M = levels - 1, and the bins that round to code k are one run of j: those below the edge
/// h_k = ceil((k + 0.5) (2i + 1) / 2M - 1/2) and not below h_(k-1). Summing c_j (k - x_j)^2
/// over the runs and telescoping, with prefix sums C0, C1, C2 of c_j, c_j (2j + 1), c_j (2j + 1)^2:
///   sum_j c_j (q_j - x_j)^2 = beta^2 C2(n) - 2 beta (M C1(n) - sum_{k<M} C1(h_k))
///                             + M^2 C0(n) - sum_{k<M} (2k + 1) C0(h_k)
/// so each candidate costs M independent lookups instead of a pass over the bins (codes below 0
/// never occur: centres are magnitudes). Candidates within rounding of the least are then
/// evaluated exactly.
inline double mse_threshold(const std::vector<std::uint64_t>& counts, double width, std::size_t levels,
                            bool unsigned_data) {
  const std::size_t nbins = counts.size();
  if (nbins == 0 || levels < 2) return 0.0;
  std::vector<double> c0(nbins + 1, 0.0), c1(nbins + 1, 0.0), c2(nbins + 1, 0.0);
  for (std::size_t j = 0; j < nbins; ++j) {
    const auto c = static_cast<double>(counts[j]);
    const auto odd = static_cast<double>(2 * j + 1);
    c0[j + 1] = c0[j] + c;
    c1[j + 1] = c1[j] + c * odd;
    c2[j + 1] = c2[j] + c * odd * odd;
  }
  const auto max_bound = static_cast<double>(levels - 1);
  const std::size_t first = std::min(levels, nbins - 1);
  std::vector<double> fast(nbins - first), slack(nbins - first);
  for (std::size_t i = first; i < nbins; ++i) {
    const auto odd_i = static_cast<double>(2 * i + 1);
    const double beta = max_bound / odd_i, per_code = odd_i / (2.0 * max_bound);
    // Two partial sums each, so the additions do not wait on each other. The edges advance by
    // addition: an edge an ulp off moves only a bin within an ulp of a tie, whose error is the
    // same on either side of it.
    double s1[2] = {0.0, 0.0}, s0[2] = {0.0, 0.0};
    double edge = 0.5 * per_code - 0.5, weight = 1.0;
    for (std::size_t k = 0; k + 1 < levels; ++k, edge += per_code, weight += 2.0) {
      const std::size_t h = std::min(nbins, detail::ceil_index(edge));
      s1[k % 2] += c1[h];
      s0[k % 2] += weight * c0[h];
    }
    const double sum = beta * beta * c2[nbins] - 2.0 * beta * (max_bound * c1[nbins] - (s1[0] + s1[1])) +
                       (max_bound * max_bound * c0[nbins] - (s0[0] + s0[1]));
    const double step = (static_cast<double>(i) + 0.5) * width / max_bound;  // one code, in data units
    fast[i - first] = sum * step * step;
    // The terms cancel down to sum; its rounding error is below ~levels ulps of their magnitude.
    const double magnitude = beta * beta * c2[nbins] + 2.0 * beta * max_bound * c1[nbins] + 2.0 * max_bound * max_bound * c0[nbins];
    slack[i - first] = 1e-12 * magnitude * step * step;
  }
  // Widen the window by each candidate's own bound (confirm_best takes one tolerance).
  double widest = 0.0;
  for (std::size_t c = 0; c < fast.size(); ++c) {
    fast[c] -= slack[c];
    widest = std::max(widest, 2.0 * slack[c]);
  }
  const std::size_t best = detail::confirm_best(fast, first, widest, false, [&](std::size_t i) {
    return reference::mse_error(counts, width, levels, unsigned_data, i);
  });
  return (static_cast<double>(best) + 0.5) * width;
}

namespace detail {

/// Integral of x^2 density over [begin, end] relative to a destination bin centre.
inline double l2_norm(double begin, double end, double density) {
  return density * (end * end * end - begin * begin * begin) / 3.0;
}

/// L2 error of quantizing the histogram onto `levels` codes spread over bins [first, last].
template <class Count>
double l2_error(const std::vector<Count>& counts, double width, std::size_t levels, std::size_t first,
                std::size_t last) {
  const double dst_width = width * static_cast<double>(last - first + 1) / static_cast<double>(levels);
  if (dst_width == 0.0) return 0.0;
  const double max_dst = static_cast<double>(levels - 1);
  double norm = 0.0;
  for (std::size_t j = 0; j < counts.size(); ++j) {
    if (counts[j] == 0) continue;
    const double begin = (static_cast<double>(j) - static_cast<double>(first)) * width;
    const double end = begin + width;
    const double dst_begin = std::min(std::max(std::floor(begin / dst_width), 0.0), max_dst);
    const double dst_end = std::min(std::max(std::floor(end / dst_width), 0.0), max_dst);
    const double density = static_cast<double>(counts[j]) / width;
    const double half = dst_width / 2.0;
    norm += l2_norm(begin - (dst_begin + 0.5) * dst_width, half, density);
    norm += (dst_end - dst_begin - 1.0) * l2_norm(-half, half, density);
    norm += l2_norm(-half, end - (dst_end + 0.5) * dst_width, density);
  }
  return norm;
}

}  // namespace detail

/// PyTorch's L2 (norm-minimization) search: starting from the full histogram, repeatedly drop
/// 1e-5 of the mass from whichever end frees more bins while the L2 quantization error onto
/// `levels` codes keeps falling. Returns the chosen bins [first, last]. The cumulative counts
/// are held and compared as `Cumulative` (PyTorch: float32, its cumsum and comparison types).
template <class Cumulative = double, class Count>
std::pair<std::size_t, std::size_t> l2_bins(const std::vector<Count>& counts, double width, std::size_t levels) {
  const std::size_t nbins = counts.size();
  if (nbins == 0) return {0, 0};
  std::vector<Cumulative> cumulative(nbins);
  double total = 0.0;
  for (std::size_t i = 0; i < nbins; ++i) {
    total += static_cast<double>(counts[i]);
    cumulative[i] = static_cast<Cumulative>(total);
  }

  const double step = 1e-5;
  double alpha = 0.0, beta = 1.0;
  std::size_t first = 0, last = nbins - 1;
  double best = std::numeric_limits<double>::infinity();
  while (alpha < beta) {
    const double next_alpha = alpha + step;
    const double next_beta = beta - step;
    const auto low = static_cast<Cumulative>(next_alpha * total), high = static_cast<Cumulative>(next_beta * total);
    std::size_t l = first, r = last;
    while (l < last && cumulative[l] < low) ++l;
    while (r > first && cumulative[r] > high) --r;
    std::size_t next_first = first, next_last = last;
    if (l - first > last - r) {
      next_first = l;
      alpha = next_alpha;
    } else {
      next_last = r;
      beta = next_beta;
    }
    if (next_first == first && next_last == last) continue;
    const double norm = detail::l2_error(counts, width, levels, next_first, next_last);
    if (norm > best) break;
    best = norm;
    first = next_first;
    last = next_last;
  }
  return {first, last};
}

/// l2_bins on a histogram starting at `lo`, as the range [min, max] of the chosen bins.
inline std::pair<double, double> l2_range(const std::vector<std::uint64_t>& counts, double lo, double width,
                                          std::size_t levels) {
  const auto [first, last] = l2_bins(counts, width, levels);
  return {lo + width * static_cast<double>(first), lo + width * static_cast<double>(last + 1)};
}

}  // namespace calibration
SQUINT_NAMESPACE_END

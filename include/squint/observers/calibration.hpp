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

SQUINT_NAMESPACE_BEGIN
namespace calibration {

/// Threshold whose KL divergence between the clipped reference distribution and its quantized
/// version over `levels` bins is smallest (TensorRT's entropy calibration, in the form of
/// pytorch-quantization's _compute_amax_entropy: bin 0 is replaced by bin 1 so a spike of zeros
/// does not dominate, candidates are every bin edge from `levels` to the end, ties go to the
/// largest threshold). Returns amax = i * width for the best edge i.
inline double entropy_threshold(const std::vector<std::uint64_t>& counts, double width, std::size_t levels) {
  const std::size_t nbins = counts.size();
  if (nbins == 0 || levels == 0) return 0.0;
  std::vector<double> bins(counts.begin(), counts.end());
  if (nbins > 1) bins[0] = bins[1];
  std::vector<double> tail(nbins + 1, 0.0);  // tail[i] = sum of bins[i:]
  for (std::size_t i = nbins; i-- > 0;) tail[i] = tail[i + 1] + bins[i];

  std::vector<double> group_sum(levels), q(nbins);
  std::vector<std::size_t> group_nonzero(levels), group_of(nbins);
  double best = std::numeric_limits<double>::infinity();
  std::size_t best_i = std::min(levels, nbins);
  for (std::size_t i = std::min(levels, nbins); i <= nbins; ++i) {
    // Bin j < i joins group g when edge g of linspace(0, i, levels + 1) is the last one <= j.
    const double step = static_cast<double>(i) / static_cast<double>(levels);
    std::fill(group_sum.begin(), group_sum.end(), 0.0);
    std::fill(group_nonzero.begin(), group_nonzero.end(), 0);
    for (std::size_t j = 0; j < i; ++j) {
      auto g = static_cast<std::size_t>(static_cast<double>(j) / step);
      while (g + 1 < levels && static_cast<double>(g + 1) * step <= static_cast<double>(j)) ++g;
      while (g > 0 && static_cast<double>(g) * step > static_cast<double>(j)) --g;
      if (g >= levels) g = levels - 1;
      group_of[j] = g;
      if (bins[j] != 0.0) {
        group_sum[g] += bins[j];
        ++group_nonzero[g];
      }
    }
    double sum_p = 0.0, sum_q = 0.0;
    for (std::size_t j = 0; j < i; ++j) {
      q[j] = bins[j] != 0.0 ? group_sum[group_of[j]] / static_cast<double>(group_nonzero[group_of[j]]) : 0.0;
      sum_q += q[j];
      sum_p += bins[j];
    }
    sum_p += tail[i];
    double kl = 0.0;
    for (std::size_t j = 0; j < i && sum_p > 0.0 && sum_q > 0.0; ++j) {
      const double p = (bins[j] + (j + 1 == i ? tail[i] : 0.0)) / sum_p;
      if (p == 0.0) continue;
      if (q[j] == 0.0) {
        kl = std::numeric_limits<double>::infinity();
        break;
      }
      kl += p * std::log(p / (q[j] / sum_q));
    }
    if (kl <= best) {
      best = kl;
      best_i = i;
    }
  }
  return static_cast<double>(best_i) * width;
}

/// Smallest bin upper edge below which `percentile` percent of the counts lie.
inline double percentile_threshold(const std::vector<std::uint64_t>& counts, double width, double percentile) {
  double total = 0.0;
  for (std::uint64_t c : counts) total += static_cast<double>(c);
  if (total == 0.0) return 0.0;
  double cumulative = 0.0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    cumulative += static_cast<double>(counts[i]);
    if (cumulative / total >= percentile / 100.0) return static_cast<double>(i + 1) * width;
  }
  return static_cast<double>(counts.size()) * width;
}

/// Bin centre amax (from bin `levels` on) whose fake-quantization of the bin centres onto
/// [-(levels-1), levels-1] (or [0, levels-1] when `unsigned_data`) has the least count-weighted
/// squared error (pytorch-quantization's _compute_amax_mse).
inline double mse_threshold(const std::vector<std::uint64_t>& counts, double width, std::size_t levels,
                            bool unsigned_data) {
  const std::size_t nbins = counts.size();
  if (nbins == 0 || levels < 2) return 0.0;
  const double max_bound = static_cast<double>(levels - 1);
  const double min_bound = unsigned_data ? 0.0 : -max_bound;
  double best = std::numeric_limits<double>::infinity();
  double best_amax = (static_cast<double>(nbins) - 0.5) * width;
  for (std::size_t i = std::min(levels, nbins - 1); i < nbins; ++i) {
    const double amax = (static_cast<double>(i) + 0.5) * width;
    const double scale = max_bound / amax;
    double err = 0.0;
    for (std::size_t j = 0; j < nbins; ++j) {
      if (counts[j] == 0) continue;
      const double centre = (static_cast<double>(j) + 0.5) * width;
      const double q = squint::detail::round_half_even(centre * scale);
      const double back = std::min(std::max(q, min_bound), max_bound) / scale;
      err += (back - centre) * (back - centre) * static_cast<double>(counts[j]);
    }
    if (err < best) {
      best = err;
      best_amax = amax;
    }
  }
  return best_amax;
}

namespace detail {

/// Integral of x^2 density over [begin, end] relative to a destination bin centre.
inline double l2_norm(double begin, double end, double density) {
  return density * (end * end * end - begin * begin * begin) / 3.0;
}

/// L2 error of quantizing the histogram onto `levels` codes spread over bins [first, last].
inline double l2_error(const std::vector<std::uint64_t>& counts, double width, std::size_t levels,
                       std::size_t first, std::size_t last) {
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
/// `levels` codes keeps falling. Returns the chosen [min, max] for a histogram starting at `lo`.
inline std::pair<double, double> l2_range(const std::vector<std::uint64_t>& counts, double lo, double width,
                                          std::size_t levels) {
  const std::size_t nbins = counts.size();
  if (nbins == 0) return {lo, lo};
  std::vector<double> cumulative(nbins);
  double total = 0.0;
  for (std::size_t i = 0; i < nbins; ++i) cumulative[i] = total += static_cast<double>(counts[i]);

  const double step = 1e-5;
  double alpha = 0.0, beta = 1.0;
  std::size_t first = 0, last = nbins - 1;
  double best = std::numeric_limits<double>::infinity();
  while (alpha < beta) {
    const double next_alpha = alpha + step;
    const double next_beta = beta - step;
    std::size_t l = first, r = last;
    while (l < last && cumulative[l] < next_alpha * total) ++l;
    while (r > first && cumulative[r] > next_beta * total) --r;
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
  return {lo + width * static_cast<double>(first), lo + width * static_cast<double>(last + 1)};
}

}  // namespace calibration
SQUINT_NAMESPACE_END

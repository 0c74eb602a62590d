// SPDX-License-Identifier: Apache-2.0
// reference/calibration.hpp: the histogram threshold searches as plain loops, one candidate at a
// time: the oracle that observers/calibration.hpp's fast searches must agree with (the same
// threshold, to the bit), and the exact evaluator those searches confirm their best candidates
// with.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "squint/qparams.hpp"

SQUINT_NAMESPACE_BEGIN
namespace reference {

/// Entropy calibration's counts: bin 0 replaced by bin 1, so a spike of zeros does not dominate
/// (pytorch-quantization's _compute_amax_entropy).
inline std::vector<double> entropy_bins(const std::vector<std::uint64_t>& counts) {
  std::vector<double> bins(counts.begin(), counts.end());
  if (bins.size() > 1) bins[0] = bins[1];
  return bins;
}

/// KL divergence between the reference distribution clipped at bin edge i (bins[i:] folded into
/// bin i - 1) and its quantization onto `levels` groups of bins, each nonzero bin of a group
/// receiving the group's mean. Bin j < i joins group g when edge g of linspace(0, i, levels + 1)
/// is the last one <= j. Infinite when a bin with mass quantizes to zero.
inline double entropy_divergence(const std::vector<double>& bins, std::size_t levels, std::size_t i) {
  double tail = 0.0;
  for (std::size_t j = bins.size(); j-- > i;) tail += bins[j];
  std::vector<double> group_sum(levels, 0.0), q(i);
  std::vector<std::size_t> group_nonzero(levels, 0), group_of(i);
  const double step = static_cast<double>(i) / static_cast<double>(levels);
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
  sum_p += tail;
  double kl = 0.0;
  for (std::size_t j = 0; j < i && sum_p > 0.0 && sum_q > 0.0; ++j) {
    const double p = (bins[j] + (j + 1 == i ? tail : 0.0)) / sum_p;
    if (p == 0.0) continue;
    if (q[j] == 0.0) return std::numeric_limits<double>::infinity();
    kl += p * std::log(p / (q[j] / sum_q));
  }
  return kl;
}

/// TensorRT's entropy calibration in the form of pytorch-quantization's _compute_amax_entropy:
/// the bin edge i in [levels, bins] of least entropy_divergence, ties to the largest; amax = i * width.
inline double entropy_threshold(const std::vector<std::uint64_t>& counts, double width, std::size_t levels) {
  const std::size_t nbins = counts.size();
  if (nbins == 0 || levels == 0) return 0.0;
  const std::vector<double> bins = entropy_bins(counts);
  double best = std::numeric_limits<double>::infinity();
  std::size_t best_i = std::min(levels, nbins);
  for (std::size_t i = std::min(levels, nbins); i <= nbins; ++i) {
    const double kl = entropy_divergence(bins, levels, i);
    if (kl <= best) {
      best = kl;
      best_i = i;
    }
  }
  return static_cast<double>(best_i) * width;
}

/// Count-weighted squared error of fake-quantizing the bin centres with amax at the centre of bin
/// i onto [-(levels-1), levels-1] (or [0, levels-1] when `unsigned_data`).
inline double mse_error(const std::vector<std::uint64_t>& counts, double width, std::size_t levels, bool unsigned_data,
                        std::size_t i) {
  const double max_bound = static_cast<double>(levels - 1);
  const double min_bound = unsigned_data ? 0.0 : -max_bound;
  const double amax = (static_cast<double>(i) + 0.5) * width;
  const double scale = max_bound / amax;
  double err = 0.0;
  for (std::size_t j = 0; j < counts.size(); ++j) {
    if (counts[j] == 0) continue;
    const double centre = (static_cast<double>(j) + 0.5) * width;
    const double q = squint::detail::round_half_even(centre * scale);
    const double back = std::min(std::max(q, min_bound), max_bound) / scale;
    err += (back - centre) * (back - centre) * static_cast<double>(counts[j]);
  }
  return err;
}

/// pytorch-quantization's _compute_amax_mse: the bin centre amax (bins min(levels, bins - 1) on)
/// of least mse_error, ties to the smallest.
inline double mse_threshold(const std::vector<std::uint64_t>& counts, double width, std::size_t levels,
                            bool unsigned_data) {
  const std::size_t nbins = counts.size();
  if (nbins == 0 || levels < 2) return 0.0;
  double best = std::numeric_limits<double>::infinity();
  double best_amax = (static_cast<double>(nbins) - 0.5) * width;
  for (std::size_t i = std::min(levels, nbins - 1); i < nbins; ++i) {
    const double err = mse_error(counts, width, levels, unsigned_data, i);
    if (err < best) {
      best = err;
      best_amax = (static_cast<double>(i) + 0.5) * width;
    }
  }
  return best_amax;
}

}  // namespace reference
SQUINT_NAMESPACE_END

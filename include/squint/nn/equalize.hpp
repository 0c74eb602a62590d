// SPDX-License-Identifier: Apache-2.0
// nn/equalize.hpp: cross-layer equalization (Nagel et al. 2019, "Data-Free Quantization Through
// Weight Equalization and Bias Correction"), a transform of float models before quantization.
//
// Where layer 1 (output channel c: a weight row and a bias) feeds layer 2 through ReLU or
// nothing (and, in graphs, max or average pooling and flatten, which all commute with a positive
// per-channel scale), dividing layer 1's channel c by s_c and multiplying every layer-2 weight
// that reads channel c by s_c computes the same function. With r1_c and r2_c the largest |w| of
// layer 1's row c and of layer 2's weights on channel c, s_c = sqrt(r1_c / r2_c) makes both
// ranges sqrt(r1_c r2_c): channels whose range is far below their tensor's no longer waste its
// scale. It matters for per-tensor weight scales (and depthwise convolutions after BatchNorm
// folding); per-channel scales see layer 1's rows separately already. Chains are swept until
// the scales settle, since a middle layer is both a producer and a consumer.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "squint/nn/sequential.hpp"

SQUINT_NAMESPACE_BEGIN
namespace nn {

struct equalize_options {
  /// Sweeps over all pairs at most; a sweep whose scales are all within `tolerance` of 1 stops.
  std::size_t max_sweeps = 100;
  float tolerance = 1e-4f;
};

namespace detail {

/// Layer 1 of a pair: `channels` rows of `row` contiguous weights, and a bias (empty or one per
/// row).
struct producer {
  float* weights;
  std::size_t channels, row;
  std::vector<float>* bias;
};

/// Layer 2 of a pair, read through the channels of layer 1: weights[o * row + j] for output o;
/// the column j reads channel j % channels within its group's columns. A linear layer after a
/// flatten of P pixels reads columns j = p * channels + c; a convolution with G groups reads
/// channel c = g * (row / taps) + k in group g at columns t * (row / taps) + k, for outputs of
/// group g only.
struct consumer {
  float* weights;
  std::size_t outputs, row;
  std::size_t taps = 1;    ///< convolution taps (1 for a linear layer)
  std::size_t groups = 1;  ///< convolution groups
};

/// Calls f(weight) for every weight of c that reads channel `channel` of `channels`.
template <class F>
void for_each_reader(const consumer& c, std::size_t channels, std::size_t channel, F f) {
  if (c.taps == 1 && c.groups == 1) {  // linear (after a flatten: every pixel's copy of the channel)
    for (std::size_t o = 0; o < c.outputs; ++o)
      for (std::size_t j = channel; j < c.row; j += channels) f(c.weights[o * c.row + j]);
    return;
  }
  const std::size_t group_channels = c.row / c.taps, group = channel / group_channels, k = channel % group_channels;
  const std::size_t per_group = c.outputs / c.groups;
  for (std::size_t o = group * per_group; o < (group + 1) * per_group; ++o)
    for (std::size_t t = 0; t < c.taps; ++t) f(c.weights[o * c.row + t * group_channels + k]);
}

/// Equalizes one pair; returns the largest |log s| applied (0 when nothing moved).
inline float equalize_pair(const producer& p, const consumer& c) {
  float moved = 0.0f;
  for (std::size_t ch = 0; ch < p.channels; ++ch) {
    float r1 = 0.0f, r2 = 0.0f;
    for (std::size_t j = 0; j < p.row; ++j) r1 = std::max(r1, std::fabs(p.weights[ch * p.row + j]));
    for_each_reader(c, p.channels, ch, [&](float w) { r2 = std::max(r2, std::fabs(w)); });
    // A dead channel on either side, or non-finite weights: nothing to balance.
    if (!(r1 > 0.0f) || !(r2 > 0.0f) || !std::isfinite(r1) || !std::isfinite(r2)) continue;
    const float s = std::sqrt(r1 / r2);
    if (!(s > 0.0f) || !std::isfinite(s)) continue;
    for (std::size_t j = 0; j < p.row; ++j) p.weights[ch * p.row + j] /= s;
    if (p.bias && !p.bias->empty()) (*p.bias)[ch] /= s;
    for_each_reader(c, p.channels, ch, [&](float& w) { w *= s; });
    moved = std::max(moved, std::fabs(std::log(s)));
  }
  return moved;
}

/// Sweeps equalize_pair over `pairs` until the scales settle; returns the sweeps run.
inline std::size_t equalize_pairs(const std::vector<std::pair<producer, consumer>>& pairs, const equalize_options& o) {
  std::size_t sweeps = 0;
  while (sweeps < o.max_sweeps && !pairs.empty()) {
    ++sweeps;
    float moved = 0.0f;
    for (const auto& [p, c] : pairs) moved = std::max(moved, equalize_pair(p, c));
    if (moved <= std::log1p(o.tolerance)) break;
  }
  return sweeps;
}

}  // namespace detail

/// Cross-layer equalization of a stack of float layers, in place: every consecutive pair whose
/// first layer ends in ReLU or nothing. Returns the sweeps run. The model computes the same
/// function (up to rounding).
/// @throws squint::error on layers whose shapes do not chain or whose weights or bias do not
///         match their sizes.
inline std::size_t cross_layer_equalize(std::vector<float_layer>& layers, const equalize_options& o = {}) {
  std::vector<std::pair<detail::producer, detail::consumer>> pairs;
  for (std::size_t l = 0; l < layers.size(); ++l) {
    float_layer& f = layers[l];
    squint::detail::require(f.weights.size() == f.out * f.in, "cross_layer_equalize: layer ", l, " has ",
                            f.weights.size(), " weights for ", f.out, " x ", f.in);
    squint::detail::require(f.bias.empty() || f.bias.size() == f.out, "cross_layer_equalize: layer ", l, " has ",
                            f.bias.size(), " biases for ", f.out, " outputs");
    squint::detail::require(l == 0 || f.in == layers[l - 1].out, "cross_layer_equalize: layer ", l, " takes ", f.in,
                            " inputs, the previous gives ", layers[l - 1].out);
  }
  for (std::size_t l = 0; l + 1 < layers.size(); ++l) {
    float_layer &a = layers[l], &b = layers[l + 1];
    pairs.push_back({{a.weights.data(), a.out, a.in, &a.bias}, {b.weights.data(), b.out, b.in}});
  }
  return detail::equalize_pairs(pairs, o);
}

}  // namespace nn
SQUINT_NAMESPACE_END

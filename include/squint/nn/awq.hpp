// SPDX-License-Identifier: Apache-2.0
// nn/awq.hpp: activation-aware weight quantization (AWQ, Lin et al. 2023) as a transform of a
// float MLP before it is built in an int4 precision (int4_weight_only, int4_dynamic).
//
// Weights that meet large activations matter most. AWQ scales each input channel k of a layer's
// weights by s_k = m_k^alpha (m_k the mean |x_k| over calibration rows, normalized so that
// max(s) min(s) = 1) and the layer's input by 1 / s_k, which changes nothing in float; the
// int4 groups then spend their resolution on the salient channels. alpha is searched on a
// grid per layer, minimizing the output error of the round-to-nearest int4 weights (squint's
// own RTN, detail::quantize_int4_groups, the one the int4 forms pack with) on calibration
// activations; alpha = 0 is plain RTN, so the search never does worse on its data. s_k is at
// least 1e-4 before normalizing (AWQ's clamp). The input's
// 1 / s folds into the rows (weights and bias) of the layer before, which ReLU and no
// activation commute with; the first layer has no such op and keeps s = 1.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "squint/gemm/fp32.hpp"
#include "squint/gemm/int4.hpp"
#include "squint/nn/sequential.hpp"

SQUINT_NAMESPACE_BEGIN
namespace nn {

struct awq_options {
  std::size_t group = 32;    ///< the int4 group of the build the scales are searched for
  std::size_t grid = 20;     ///< alpha takes grid + 1 values, 0, 1 / grid, ..., 1
  std::size_t max_rows = 512;  ///< calibration rows the search uses (the first ones)
  backend kernels = native_backend();  ///< for the float products of the search
};

/// What the search chose for one layer: alpha, and the mean squared output error of its int4
/// weights on the calibration rows with plain RTN and with the chosen scales.
struct awq_layer {
  std::size_t layer = 0;
  bool scaled = false;  ///< false for the first layer (no op before it to fold 1 / s into)
  float alpha = 0.0f;
  double mse_rtn = 0.0, mse_awq = 0.0;
};

namespace detail {

/// Mean squared difference of x . w^T and x . w_ref^T (rows x out) where ref is precomputed.
inline double output_mse(const float* x, std::size_t rows, std::size_t in, const std::vector<float>& w, std::size_t out,
                         const std::vector<float>& reference, const backend& kernels) {
  const packed_float_weights packed = packed_float_weights::from_float(w.data(), out, in, in);
  std::vector<float> y(rows * out);
  gemm_float(x, rows, in, packed, nullptr, false, y.data(), out, {}, kernels.gemm_float);
  double sum = 0.0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    const double d = static_cast<double>(y[i]) - reference[i];
    sum += d * d;
  }
  return y.empty() ? 0.0 : sum / static_cast<double>(y.size());
}

/// The RTN int4 weights (per channel and group) of w, dequantized.
inline std::vector<float> int4_rtn(const std::vector<float>& w, std::size_t out, std::size_t in, std::size_t group) {
  return squint::detail::quantize_int4_groups("nn::apply_awq", w.data(), out, in, in, group).values(in, group);
}

/// One weight matrix the search scales: w (out x in) applied to `rows` input rows x (rows x in),
/// input column k reading channel channel_of[k] (a linear layer: k itself, or k's channel after a
/// flatten; a convolution group's im2col columns: their input channels).
struct awq_block {
  const float* w;
  std::size_t out, in;
  const float* x;
  std::size_t rows;
  std::vector<std::size_t> channel_of;
};

/// What the search found for one layer: one scale per channel (all 1 when alpha is 0).
struct awq_choice {
  float alpha = 0.0f;
  std::vector<float> scale;
  double mse_rtn = 0.0, mse_awq = 0.0;
};

/// AWQ's grid search over alpha for one layer made of `blocks` (a convolution's groups) reading
/// `channels` channels: s_c = m_c^alpha (m_c the mean |x| of channel c's entries, at least 1e-4,
/// normalized so that max(s) min(s) = 1); the error of each alpha is the mean squared output
/// error over all blocks of int4 RTN on W diag(s) applied to x diag(1 / s).
inline awq_choice awq_search(const std::vector<awq_block>& blocks, std::size_t channels, const awq_options& o) {
  awq_choice best;
  best.scale.assign(channels, 1.0f);
  std::vector<double> magnitude(channels, 0.0), count(channels, 0.0);
  std::vector<std::vector<float>> reference(blocks.size());
  std::size_t outputs = 0;
  for (std::size_t b = 0; b < blocks.size(); ++b) {
    const awq_block& k = blocks[b];
    for (std::size_t i = 0; i < k.rows; ++i)
      for (std::size_t c = 0; c < k.in; ++c) magnitude[k.channel_of[c]] += std::fabs(static_cast<double>(k.x[i * k.in + c]));
    for (std::size_t c = 0; c < k.in; ++c) count[k.channel_of[c]] += static_cast<double>(k.rows);
    reference[b].resize(k.rows * k.out);
    gemm_float(k.x, k.rows, k.in, packed_float_weights::from_float(k.w, k.out, k.in, k.in), nullptr, false,
               reference[b].data(), k.out, {}, o.kernels.gemm_float);
    outputs += k.rows * k.out;
  }
  // The mean squared output error over all blocks with weights w * s and inputs x / s.
  const auto error = [&](const std::vector<float>& s) {
    double sum = 0.0;
    for (std::size_t b = 0; b < blocks.size(); ++b) {
      const awq_block& k = blocks[b];
      std::vector<float> scaled(k.w, k.w + k.out * k.in), xs(k.x, k.x + k.rows * k.in);
      for (std::size_t j = 0; j < k.out; ++j)
        for (std::size_t c = 0; c < k.in; ++c) scaled[j * k.in + c] *= s[k.channel_of[c]];
      for (std::size_t i = 0; i < k.rows; ++i)
        for (std::size_t c = 0; c < k.in; ++c) xs[i * k.in + c] /= s[k.channel_of[c]];
      sum += output_mse(xs.data(), k.rows, k.in, int4_rtn(scaled, k.out, k.in, o.group), k.out, reference[b], o.kernels) *
             static_cast<double>(k.rows * k.out);
    }
    return outputs > 0 ? sum / static_cast<double>(outputs) : 0.0;
  };
  best.mse_rtn = best.mse_awq = error(best.scale);
  if (outputs == 0) return best;
  for (std::size_t a = 1; a <= o.grid; ++a) {
    const double alpha = static_cast<double>(a) / static_cast<double>(o.grid);
    std::vector<float> s(channels);
    double lo = HUGE_VAL, hi = 0.0;
    for (std::size_t c = 0; c < channels; ++c) {
      // At least 1e-4 (AWQ's clamp): channels that never fire keep a usable 1 / s to fold.
      const double m = count[c] > 0.0 ? magnitude[c] / count[c] : 0.0;
      const double v = std::max(std::pow(m, alpha), 1e-4);
      s[c] = static_cast<float>(v);
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    const double norm = std::sqrt(lo * hi);
    for (float& v : s) v = static_cast<float>(v / norm);
    const double mse = error(s);
    if (mse < best.mse_awq) {
      best.mse_awq = mse;
      best.alpha = static_cast<float>(alpha);
      best.scale = s;
    }
  }
  return best;
}

}  // namespace detail

/// Searches AWQ scales for every layer after the first and folds them in place: layer l's
/// weight columns times s, layer l - 1's weight rows and bias divided by s (the float model
/// computes the same function up to float rounding). x holds `rows` calibration inputs
/// (rows x layers[0].in). Returns one entry per layer.
/// @throws squint::error on an empty model, layers that do not chain, a group that is not a
///         positive multiple of 16, grid == 0, or null x with rows; nothing is changed then.
inline std::vector<awq_layer> apply_awq(std::vector<float_layer>& layers, const float* x, std::size_t rows,
                                        const awq_options& o = {}) {
  squint::detail::require(!layers.empty(), "nn::apply_awq: the model has no layers");
  squint::detail::require(o.group > 0 && o.group % 16 == 0, "nn::apply_awq: group ", o.group,
                          " is not a positive multiple of 16");
  squint::detail::require(o.grid > 0, "nn::apply_awq: grid must be positive");
  squint::detail::require(x != nullptr || rows == 0, "nn::apply_awq: argument 'x' is null with ", rows, " rows");
  for (std::size_t l = 0; l < layers.size(); ++l) {
    const float_layer& f = layers[l];
    squint::detail::require(f.out > 0 && f.in > 0 && f.weights.size() == f.out * f.in, "nn::apply_awq: layer ", l,
                            " has ", f.weights.size(), " weights for ", f.out, " x ", f.in);
    squint::detail::require(f.bias.empty() || f.bias.size() == f.out, "nn::apply_awq: layer ", l, " has ",
                            f.bias.size(), " biases for ", f.out, " outputs");
    squint::detail::require(l == 0 || layers[l - 1].out == f.in, "nn::apply_awq: layer ", l, " takes ", f.in,
                            " inputs but layer ", l - 1, " gives ", layers[l - 1].out);
  }
  const std::size_t n = std::min(rows, o.max_rows);
  // Every layer's calibration input, from the model as it was given.
  build_options fp32;
  fp32.mode = precision::fp32;
  fp32.kernels = o.kernels;
  const sequential model(layers, fp32);
  std::vector<std::vector<float>> inputs(layers.size());
  inputs[0].assign(x, x + n * layers[0].in);
  for (std::size_t l = 0; l + 1 < layers.size(); ++l) {
    inputs[l + 1].resize(n * layers[l].out);
    model[l].forward(inputs[l].data(), n, inputs[l + 1].data());
  }
  std::vector<awq_layer> report(layers.size());
  for (std::size_t l = 0; l < layers.size(); ++l) {
    float_layer& f = layers[l];
    const float* xl = inputs[l].data();
    awq_layer& r = report[l];
    r.layer = l;
    std::vector<std::size_t> identity(f.in);
    for (std::size_t k = 0; k < f.in; ++k) identity[k] = k;
    const std::vector<detail::awq_block> block{{f.weights.data(), f.out, f.in, xl, n, identity}};
    if (l == 0) {  // no op before it to fold 1 / s into: RTN's error only
      awq_options rtn_only = o;
      rtn_only.grid = 0;
      r.mse_rtn = r.mse_awq = detail::awq_search(block, f.in, rtn_only).mse_rtn;
      continue;
    }
    const detail::awq_choice choice = detail::awq_search(block, f.in, o);
    r.mse_rtn = choice.mse_rtn;
    r.mse_awq = choice.mse_awq;
    r.alpha = choice.alpha;
    r.scaled = r.alpha > 0.0f;
    if (!r.scaled) continue;
    const std::vector<float>& best_scale = choice.scale;
    float_layer& before = layers[l - 1];
    for (std::size_t k = 0; k < f.in; ++k) {
      for (std::size_t j = 0; j < f.out; ++j) f.weights[j * f.in + k] *= best_scale[k];
      for (std::size_t i = 0; i < before.in; ++i) before.weights[k * before.in + i] /= best_scale[k];
      if (!before.bias.empty()) before.bias[k] /= best_scale[k];
    }
  }
  return report;
}

}  // namespace nn
SQUINT_NAMESPACE_END

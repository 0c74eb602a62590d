// SPDX-License-Identifier: Apache-2.0
// nn/analysis.hpp: what quantization cost, layer by layer — the "quant debug" table users
// otherwise write by hand. Each candidate model is compared with a float reference on the same
// inputs, both per layer in isolation (the layer fed the reference's input) and as propagated
// through the model (fed its own previous outputs).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdio>
#include <string>
#include <vector>

#include "squint/nn/graph.hpp"
#include "squint/nn/sequential.hpp"

SQUINT_NAMESPACE_BEGIN
namespace nn {

/// Error of a tensor against its reference.
struct error_stats {
  double mse = 0.0;      ///< mean squared error
  double sqnr_db = 0.0;  ///< 10 log10(sum ref^2 / sum err^2); +inf when identical
  double cosine = 1.0;   ///< cosine similarity (1 when both are zero)
  double max_abs = 0.0;  ///< largest |test - ref|
};

/// Compares n values of `test` with `reference` (in double).
inline error_stats compare(const float* reference, const float* test, std::size_t n) {
  error_stats s;
  double signal = 0.0, noise = 0.0, dot = 0.0, norm_t = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    const double r = reference[i], t = test[i], e = t - r;
    signal += r * r;
    noise += e * e;
    dot += r * t;
    norm_t += t * t;
    s.max_abs = std::fabs(e) > s.max_abs ? std::fabs(e) : s.max_abs;
  }
  s.mse = n ? noise / static_cast<double>(n) : 0.0;
  s.sqnr_db = noise == 0.0 ? HUGE_VAL : 10.0 * std::log10(signal / noise);
  s.cosine = signal == 0.0 && norm_t == 0.0 ? 1.0 : dot / std::sqrt(signal * norm_t);
  return s;
}

/// One row of the report: a candidate's layer against the reference's.
struct layer_error {
  std::string model;  ///< the candidate's label
  std::size_t layer = 0;  ///< the layer's index (a graph's node index)
  std::string node;       ///< a graph node's name ("" for a sequential's layers)
  precision mode = precision::fp32;
  error_stats isolated;    ///< layer fed the reference's input
  error_stats propagated;  ///< layer fed the candidate's own previous outputs
};

struct error_report {
  std::vector<layer_error> rows;

  /// The report as an aligned text table.
  std::string to_string() const {
    std::string out;
    char line[256];
    std::snprintf(line, sizeof line, "%-22s %5s %-10s %-16s %11s %9s %8s %10s | %11s %9s %8s %10s\n", "model",
                  "layer", "node", "precision", "mse", "sqnr_db", "cosine", "max_abs", "mse(prop)", "sqnr(prop)",
                  "cos(prop)", "max(prop)");
    out += line;
    for (const layer_error& r : rows) {
      std::snprintf(line, sizeof line, "%-22s %5zu %-10s %-16s %11.3e %9.2f %8.6f %10.3e | %11.3e %9.2f %8.6f %10.3e\n",
                    r.model.c_str(), r.layer, r.node.c_str(), nn::to_string(r.mode), r.isolated.mse, r.isolated.sqnr_db,
                    r.isolated.cosine, r.isolated.max_abs, r.propagated.mse, r.propagated.sqnr_db,
                    r.propagated.cosine, r.propagated.max_abs);
      out += line;
    }
    return out;
  }
};

/// Per-layer error of each labelled candidate against `reference` on x (m x in_features).
/// @throws squint::error if a candidate's layer shapes differ from the reference's.
inline error_report analyze(const sequential& reference,
                            const std::vector<std::pair<std::string, const sequential*>>& candidates, const float* x,
                            std::size_t m) {
  error_report report;
  const std::size_t layers = reference.size();
  // The reference's input to every layer and its output.
  std::vector<std::vector<float>> ref(layers + 1);
  ref[0].assign(x, x + m * reference.in_features());
  for (std::size_t l = 0; l < layers; ++l) {
    ref[l + 1].resize(m * reference[l].out_features());
    reference[l].forward(ref[l].data(), m, ref[l + 1].data());
  }
  for (const auto& [label, candidate] : candidates) {
    squint::detail::require(candidate->size() == layers, "analyze: '", label, "' has ", candidate->size(),
                            " layers, the reference ", layers);
    std::vector<float> own = ref[0], isolated, next;
    for (std::size_t l = 0; l < layers; ++l) {
      const linear& layer = (*candidate)[l];
      squint::detail::require(layer.in_features() == reference[l].in_features() &&
                                  layer.out_features() == reference[l].out_features(),
                              "analyze: layer ", l, " of '", label, "' differs in shape from the reference");
      const std::size_t n = m * layer.out_features();
      isolated.resize(n);
      next.resize(n);
      layer.forward(ref[l].data(), m, isolated.data());
      layer.forward(own.data(), m, next.data());
      report.rows.push_back({label, l, "", layer.mode(), compare(ref[l + 1].data(), isolated.data(), n),
                             compare(ref[l + 1].data(), next.data(), n)});
      own.swap(next);
    }
  }
  return report;
}

/// Per-layer error of each labelled candidate graph against `reference` (the same nodes, e.g.
/// the same CNN built in FP32) on x (NHWC, `in`): a row per convolution and linear node, the node
/// fed the reference's inputs (isolated) and the candidate's own (propagated), both against the
/// reference's output of that node.
/// @throws squint::error if a candidate's nodes or shapes differ from the reference's, or as
///         graph::forward.
inline error_report analyze(const graph& reference, const std::vector<std::pair<std::string, const graph*>>& candidates,
                            const float* x, const image_shape& in) {
  error_report report;
  const std::vector<std::vector<float>> ref = reference.node_outputs(x, in);
  const std::vector<image_shape> shape = reference.shapes(in);
  for (const auto& [label, candidate] : candidates) {
    squint::detail::require(candidate->size() == reference.size(), "analyze: '", label, "' has ", candidate->size(),
                            " nodes, the reference ", reference.size());
    const std::vector<image_shape> own_shape = candidate->shapes(in);
    const std::vector<std::vector<float>> own = candidate->node_outputs(x, in);
    for (std::size_t i = 0; i < reference.size(); ++i) {
      squint::detail::require(own_shape[i].size() == shape[i].size() && candidate->name(i) == reference.name(i),
                              "analyze: node ", i, " of '", label, "' differs from the reference's");
      const node_op& op = candidate->op(i);
      const auto* c = std::get_if<conv2d>(&op);
      const auto* l = std::get_if<linear>(&op);
      if (!c && !l) continue;
      std::vector<float> isolated(shape[i].size());
      candidate->forward_node(i, ref, x, in, isolated.data());
      report.rows.push_back({label, i, candidate->name(i), c ? c->mode() : l->mode(),
                             compare(ref[i].data(), isolated.data(), isolated.size()),
                             compare(ref[i].data(), own[i].data(), isolated.size())});
    }
  }
  return report;
}

}  // namespace nn
SQUINT_NAMESPACE_END

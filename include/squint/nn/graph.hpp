// SPDX-License-Identifier: Apache-2.0
// nn/graph.hpp: a model as a small graph of named nodes — convolutions, linear layers, pooling,
// residual adds, flatten — so CNNs with skip connections (ResNet blocks) run, calibrate and
// measure as one model.
//
// Nodes are added in an order that computes every input first (each names earlier nodes, or
// "input"); the last node is the output. Activations between nodes are float NHWC images
// (float-boundary quantization: each layer quantizes its own input by its precision's policy).
// A linear node applies to every pixel of its input (after flatten, one per image).
// calibrate() also records the range of the input and of every node's output, from which
// nn::integer_graph gives the tensors no layer calibrated their qparams.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "squint/nn/conv2d.hpp"
#include "squint/nn/graph_nodes.hpp"
#include "squint/nn/linear.hpp"
#include "squint/nn/sequential.hpp"
#include "squint/ops/pool.hpp"

SQUINT_NAMESPACE_BEGIN
namespace nn {

using node_op = std::variant<conv2d, linear, pool, add, flatten>;

namespace detail {
struct graph_access;
}

class graph {
 public:
  /// Appends node `name` computing `op` on `inputs` (names of earlier nodes or "input"; empty:
  /// the previous node, or the model's input for the first). Returns its index.
  /// @throws squint::error on a duplicate or reserved name, an unknown input, or the wrong number
  ///         of inputs for the op (two for add, one otherwise).
  std::size_t add(std::string name, node_op op, std::vector<std::string> inputs = {}) {
    const std::size_t i = nodes_.add("graph::add", std::move(name), std::move(op), std::move(inputs));
    ranges_.clear();  // recorded for the model without this node
    return i;
  }

  std::size_t size() const { return nodes_.size(); }
  const std::string& name(std::size_t i) const { return nodes_.at(i).name; }
  const node_op& op(std::size_t i) const { return nodes_.at(i).op; }
  node_op& op(std::size_t i) { return nodes_.at(i).op; }
  /// Node i's inputs: earlier nodes' indices, or size_t(-1) for the model's input.
  const std::vector<std::size_t>& inputs(std::size_t i) const { return nodes_.at(i).inputs; }

  /// Sum of the layers' weight bytes.
  std::size_t weight_bytes() const {
    std::size_t total = 0;
    for (const node& n : nodes_) {
      if (const auto* c = std::get_if<conv2d>(&n.op)) total += c->weight_bytes();
      if (const auto* l = std::get_if<linear>(&n.op)) total += l->weight_bytes();
    }
    return total;
  }

  /// The shape of every node's output for inputs of shape `in` (the last is the model's).
  /// @throws squint::error where a node does not fit its inputs' shapes.
  std::vector<image_shape> shapes(const image_shape& in) const {
    return nodes_.shapes("graph", in, [](const auto& op, const image_shape& a, const node& n) { return shape_of(op, a, n); });
  }
  image_shape output_shape(const image_shape& in) const {
    squint::detail::require(!nodes_.empty(), "graph: the model has no nodes");
    return shapes(in).back();
  }

  /// y (output_shape(in)) = the model on x (NHWC, `in`).
  /// @throws squint::error on an empty model, shapes that do not fit, null pointers with
  ///         elements, or an int8_static layer that has not been frozen.
  void forward(const float* x, const image_shape& in, float* y, const parallelism& par = {}) const {
    run(*this, x, in, y, par);
  }

  /// Every node's output (in node order; the last is the model's) for x (NHWC, `in`): what
  /// error analysis compares node by node.
  /// @throws squint::error as forward().
  std::vector<std::vector<float>> node_outputs(const float* x, const image_shape& in,
                                               const parallelism& par = {}) const {
    std::vector<std::vector<float>> outputs;
    run(*this, x, in, nullptr, par, &outputs);
    return outputs;
  }

  /// Node i fed from `outputs` (node_outputs() of a graph of the same structure, e.g. the FP32
  /// reference's) and the model input x (NHWC, `in`), into out (the node's output shape).
  /// @throws squint::error on a node index out of range, outputs that do not hold the node's
  ///         inputs at their shapes, or an int8_static layer that has not been frozen.
  void forward_node(std::size_t i, const std::vector<std::vector<float>>& outputs, const float* x,
                    const image_shape& in, float* out, const parallelism& par = {}) const {
    squint::detail::require(i < nodes_.size(), "graph::forward_node: node ", i, " of ", nodes_.size());
    const std::vector<image_shape> shape = shapes(in);
    const node& n = nodes_[i];
    const float* inputs[2] = {nullptr, nullptr};
    for (std::size_t k = 0; k < n.inputs.size(); ++k) {
      const std::size_t from = n.inputs[k];
      if (from == input_index) {
        squint::detail::require_matrix("graph::forward_node", "x", x, in.pixels(), in.channels);
        inputs[k] = x;
        continue;
      }
      squint::detail::require(from < outputs.size() && outputs[from].size() == shape[from].size(),
                              "graph::forward_node: no output of node '", nodes_[from].name, "' of ",
                              shape[from].size(), " values among the outputs given");
      inputs[k] = outputs[from].data();
    }
    squint::detail::require_matrix("graph::forward_node", "out", out, shape[i].pixels(), shape[i].channels);
    run_node(*this, i, inputs, n.inputs[0] == input_index ? in : shape[n.inputs[0]], shape[i], out, par);
  }

  /// Runs x (NHWC; `in.batch` images) through the model in batches of `batch` images, showing
  /// every unfrozen int8_static layer its input (such layers compute in float meanwhile, as
  /// PyTorch's prepared model does) and recording the finite range of the input and of every
  /// node's output over all calls (see range()). Call freeze() when done.
  /// @throws squint::error on an empty model, batch == 0, null x with images, or bad shapes.
  void calibrate(const float* x, const image_shape& in, std::size_t batch, const progress_callback& progress = nullptr) {
    squint::detail::require(batch > 0, "graph::calibrate: batch must be positive");
    squint::detail::require_matrix("graph::calibrate", "x", x, in.pixels(), in.channels);
    const std::size_t total = (in.batch + batch - 1) / batch, image = in.height * in.width * in.channels;
    for (std::size_t b = 0; b < total; ++b) {
      image_shape part = in;
      part.batch = std::min(batch, in.batch - b * batch);
      std::vector<float> out(output_shape(part).size());
      run(*this, x + b * batch * image, part, out.data(), {});
      if (progress) progress(b + 1, total);
    }
  }

  /// The finite [min, max] calibrate() has seen of node i's output, or of the model's input for
  /// i == size(); none before any calibration (or for a loaded model: files keep no ranges).
  /// @throws squint::error on i > size().
  std::optional<std::pair<float, float>> range(std::size_t i) const {
    squint::detail::require(i <= nodes_.size(), "graph::range: node ", i, " of ", nodes_.size());
    if (i >= ranges_.size() || !(ranges_[i].first <= ranges_[i].second)) return std::nullopt;
    return ranges_[i];
  }

  /// Freezes every int8_static layer that is still calibrating.
  void freeze() {
    for (node& n : nodes_) {
      if (auto* c = std::get_if<conv2d>(&n.op); c && !c->ready()) c->freeze();
      if (auto* l = std::get_if<linear>(&n.op); l && !l->ready()) l->freeze();
    }
  }

 private:
  using node_list = detail::graph_nodes<node_op>;
  using node = node_list::node;
  static constexpr std::size_t input_index = node_list::input_index;

  static image_shape shape_of(const conv2d& c, const image_shape& a, const node&) { return c.output_shape(a); }
  static image_shape shape_of(const linear& l, const image_shape& a, const node& n) {
    return detail::linear_shape("graph", n.name, l.in_features(), l.out_features(), a);
  }
  static image_shape shape_of(const pool& p, const image_shape& a, const node&) {
    return detail::pool_shape("graph pool", p, a);
  }
  static image_shape shape_of(const nn::add&, const image_shape& a, const node&) { return a; }
  static image_shape shape_of(const flatten&, const image_shape& a, const node&) { return detail::flatten_shape(a); }

  /// Runs the nodes in order; a non-const graph also calibrates its unfrozen int8_static layers.
  /// With `keep`, every node's output is kept in *keep (the last one too) and y may be null.
  template <class Self>
  static void run(Self& self, const float* x, const image_shape& in, float* y, const parallelism& par,
                  std::vector<std::vector<float>>* keep = nullptr) {
    auto& nodes = self.nodes_;
    squint::detail::require(!nodes.empty(), "graph: the model has no nodes");
    squint::detail::require_matrix("graph::forward", "x", x, in.pixels(), in.channels);
    const std::vector<image_shape> shape = self.shapes(in);
    if (!keep) squint::detail::require_matrix("graph::forward", "y", y, shape.back().pixels(), shape.back().channels);
    std::vector<std::vector<float>> own(keep ? 0 : nodes.size());
    std::vector<std::vector<float>>& outputs = keep ? *keep : own;
    outputs.assign(nodes.size(), {});
    constexpr bool calibrating = !std::is_const_v<Self>;
    if constexpr (calibrating) self.record(nodes.size(), x, in.size());
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      const bool last = i + 1 == nodes.size() && !keep;
      if (!last) outputs[i].resize(shape[i].size());
      float* out = last ? y : outputs[i].data();
      const node& n = nodes[i];
      const float* inputs[2] = {nullptr, nullptr};
      for (std::size_t k = 0; k < n.inputs.size(); ++k)
        inputs[k] = n.inputs[k] == input_index ? x : outputs[n.inputs[k]].data();
      run_node(self, i, inputs, n.inputs[0] == input_index ? in : shape[n.inputs[0]], shape[i], out, par);
      if constexpr (calibrating) self.record(i, out, shape[i].size());
    }
  }

  /// Widens range i by the finite values of v[0, n).
  void record(std::size_t i, const float* v, std::size_t n) {
    ranges_.resize(nodes_.size() + 1, {HUGE_VALF, -HUGE_VALF});
    auto& [lo, hi] = ranges_[i];
    for (std::size_t e = 0; e < n; ++e)
      if (std::isfinite(v[e])) lo = std::min(lo, v[e]), hi = std::max(hi, v[e]);
  }

  /// Node i on its inputs (a: the first input's shape; o: its output's), into out.
  template <class Self>
  static void run_node(Self& self, std::size_t i, const float* const* input, const image_shape& a,
                       const image_shape& o, float* out, const parallelism& par) {
    constexpr bool calibrating = !std::is_const_v<Self>;
    auto& n = self.nodes_[i];
    if (auto* c = std::get_if<conv2d>(&n.op)) {
      if constexpr (calibrating)
        if (!c->ready()) {
          c->calibrate(input[0], a, out);
          return;
        }
      c->forward(input[0], a, out, par);
    } else if (auto* l = std::get_if<linear>(&n.op)) {
      if constexpr (calibrating)
        if (!l->ready()) {
          l->calibrate(input[0], a.pixels(), out);
          return;
        }
      l->forward(input[0], a.pixels(), out, par);
    } else if (const auto* p = std::get_if<pool>(&n.op)) {
      if (p->type == pool::kind::max) max_pool2d(input[0], a, p->params, out);
      else if (p->type == pool::kind::average) avg_pool2d(input[0], a, p->params, out);
      else global_avg_pool(input[0], a, out);
    } else if (const auto* s = std::get_if<nn::add>(&n.op)) {
      for (std::size_t e = 0; e < o.size(); ++e) {
        const float sum = input[0][e] + input[1][e];
        out[e] = s->relu && !(sum > 0.0f) ? 0.0f : sum;
      }
    } else {  // flatten: NHWC is already one row per image
      std::copy(input[0], input[0] + a.size(), out);
    }
  }

  friend struct detail::graph_access;
  node_list nodes_;
  std::vector<std::pair<float, float>> ranges_;  // calibrate()'s: node i's output at i, the input last
};

}  // namespace nn
SQUINT_NAMESPACE_END

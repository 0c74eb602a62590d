// SPDX-License-Identifier: Apache-2.0
// nn/graph_nodes.hpp: what every model graph shares — named nodes in an order that computes each
// input first, their inputs by name ("input" is the model's), and the shapes they produce — for
// nn::graph (inference) and qat::graph (training), which differ in their ops only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "squint/conv/geometry.hpp"
#include "squint/error.hpp"
#include "squint/ops/pool.hpp"

SQUINT_NAMESPACE_BEGIN
namespace nn {

/// Pooling over windows (max or average) or over each whole image (global average).
struct pool {
  enum class kind : std::uint8_t { max, average, global_average } type = kind::max;
  pool2d_params params = {};
};

/// The sum of two nodes' outputs of one shape (a residual connection), then ReLU if asked.
struct add {
  bool relu = false;
};

/// Each image as one row of height x width x channels features (NHWC order).
struct flatten {};

namespace detail {

/// The nodes of a graph whose ops are the variant Op (holding nn::add, the one op of two inputs).
template <class Op>
class graph_nodes {
 public:
  struct node {
    std::string name;
    Op op;
    std::vector<std::size_t> inputs;  ///< node indices, or input_index
  };
  static constexpr std::size_t input_index = static_cast<std::size_t>(-1);

  /// Appends node `name` computing `op` on `inputs` (names of earlier nodes or "input"; empty:
  /// the previous node, or the model's input for the first). Returns its index. `who` names the
  /// caller in errors.
  /// @throws squint::error on a duplicate or reserved name, an unknown input, or the wrong number
  ///         of inputs for the op (two for add, one otherwise).
  std::size_t add(const char* who, std::string name, Op op, std::vector<std::string> inputs) {
    squint::detail::require(!name.empty() && name != "input", who, ": '", name, "' cannot name a node");
    for (const node& n : nodes_) squint::detail::require(n.name != name, who, ": a node is already named '", name, "'");
    if (inputs.empty()) inputs.push_back(nodes_.empty() ? std::string("input") : nodes_.back().name);
    const std::size_t arity = std::holds_alternative<nn::add>(op) ? 2 : 1;
    squint::detail::require(inputs.size() == arity, who, ": node '", name, "' takes ", arity, " inputs, got ",
                            inputs.size());
    node n{std::move(name), std::move(op), {}};
    for (const std::string& in : inputs) n.inputs.push_back(index_of(who, in));
    nodes_.push_back(std::move(n));
    return nodes_.size() - 1;
  }

  /// The shape of every node's output for inputs of shape `in`: shape_of(op, first input's
  /// shape, node) per node; two inputs must agree.
  /// @throws squint::error where they do not, or as shape_of.
  template <class ShapeOf>
  std::vector<image_shape> shapes(const char* who, const image_shape& in, ShapeOf shape_of) const {
    std::vector<image_shape> out;
    for (const node& n : nodes_) {
      // Copies: push_back below may move the vector's elements.
      const image_shape a = n.inputs[0] == input_index ? in : out[n.inputs[0]];
      out.push_back(std::visit([&](const auto& op) { return shape_of(op, a, n); }, n.op));
      if (n.inputs.size() == 2) {
        const image_shape b = n.inputs[1] == input_index ? in : out[n.inputs[1]];
        squint::detail::require(a.batch == b.batch && a.height == b.height && a.width == b.width &&
                                    a.channels == b.channels,
                                who, ": node '", n.name, "' adds inputs of different shapes");
      }
    }
    return out;
  }

  std::size_t size() const { return nodes_.size(); }
  bool empty() const { return nodes_.empty(); }
  node& operator[](std::size_t i) { return nodes_[i]; }
  const node& operator[](std::size_t i) const { return nodes_[i]; }
  node& at(std::size_t i) { return nodes_.at(i); }
  const node& at(std::size_t i) const { return nodes_.at(i); }
  auto begin() { return nodes_.begin(); }
  auto end() { return nodes_.end(); }
  auto begin() const { return nodes_.begin(); }
  auto end() const { return nodes_.end(); }

 private:
  std::size_t index_of(const char* who, const std::string& name) const {
    if (name == "input") return input_index;
    for (std::size_t i = 0; i < nodes_.size(); ++i)
      if (nodes_[i].name == name) return i;
    squint::detail::fail(who, ": no node named '", name, "' before this one");
  }

  std::vector<node> nodes_;
};

/// The output shapes of the ops both graphs have: a linear layer on every pixel, pooling, add
/// and flatten.
inline image_shape linear_shape(const char* who, const std::string& node, std::size_t in_features,
                                std::size_t out_features, const image_shape& a) {
  squint::detail::require(a.channels == in_features, who, ": node '", node, "' takes ", in_features,
                          " features, its input has ", a.channels);
  return {a.batch, a.height, a.width, out_features};
}
inline image_shape pool_shape(const char* who, const pool& p, const image_shape& a) {
  if (p.type == pool::kind::global_average) return {a.batch, 1, 1, a.channels};
  return squint::detail::pool_geometry(who, a, p.params).out;
}
inline image_shape flatten_shape(const image_shape& a) { return {a.batch, 1, 1, a.height * a.width * a.channels}; }

}  // namespace detail
}  // namespace nn
SQUINT_NAMESPACE_END

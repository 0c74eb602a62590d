// SPDX-License-Identifier: Apache-2.0
// nn/integer_graph.hpp: a calibrated graph run full-integer (TFLite's "full INT8", ONNX's
// QLinear* semantics): uint8 codes flow between the nodes, each int8_static convolution or linear
// layer requantizes its accumulators straight into the next tensor's qparams, pooling and
// residual adds work on codes (ops/), and float exists only at the model's input (quantized
// once) and output.
//
// Every tensor (the input, each node's output) gets its qparams once, when the model is built:
//   - max pooling and flatten keep their input's (the order of codes is the order of values);
//   - otherwise the frozen input qparams of the first int8_static layer that reads the tensor
//     (directly or through max pooling / flatten), so that layer reads the codes as they are;
//   - otherwise (a residual add's inputs and output, an average pool's output) uint8 affine
//     qparams of the range graph::calibrate() recorded (min-max, zero included).
// A layer that reads codes with other qparams (a second reader with its own observer; 7-bit
// codes) first requantizes them code by code through a 256-entry table. Layers in other
// precisions (fp32, fp16, dynamic, weight-only) compute in float between a dequantization of
// their input and a quantization of their output, so mixed precision stays possible. The last
// node writes float: a layer from its accumulators, any other node by dequantizing its codes.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "squint/nn/graph.hpp"
#include "squint/ops/eltwise.hpp"
#include "squint/ops/pool.hpp"

SQUINT_NAMESPACE_BEGIN
namespace nn {

class integer_graph {
 public:
  /// Compiles `model` (its layers are shared, not copied) into its full-integer form.
  /// @throws squint::error on an empty model, an int8_static layer that is not frozen, or a
  ///         tensor that needs a recorded range (see above) from a model never calibrated.
  explicit integer_graph(graph model) : model_(std::move(model)) {
    const std::size_t count = model_.size();
    squint::detail::require(count > 0, "integer_graph: the model has no nodes");
    for (std::size_t i = 0; i < count; ++i) {
      const node_op& op = model_.op(i);
      const bool frozen = std::visit([](const auto& o) { return ready(o); }, op);
      squint::detail::require(frozen, "integer_graph: node '", model_.name(i),
                              "' is an int8_static layer that is not frozen; calibrate() and freeze() the graph first");
    }
    readers_.assign(count + 1, {});
    for (std::size_t i = 0; i < count; ++i)
      for (std::size_t k = 0; k < model_.inputs(i).size(); ++k) readers_[tensor_of(model_.inputs(i)[k])].push_back(i);
    params_.assign(count + 1, std::nullopt);
    params_[0] = choose(0, count);
    for (std::size_t i = 0; i < count; ++i) {
      const node_op& op = model_.op(i);
      if (passes_codes(op)) params_[i + 1] = params_[tensor_of(model_.inputs(i)[0])];
      else if (i + 1 < count || !is_layer(op)) params_[i + 1] = choose(i + 1, i);
    }
    tables_.assign(count, {});
    for (std::size_t i = 0; i < count; ++i) {
      const std::optional<qparams> wanted = static_input(model_.op(i));
      if (!wanted) continue;
      const qparams have = *params_[tensor_of(model_.inputs(i)[0])];
      const bool seven_bits = reduce_range(model_.op(i));
      if (have.scale == wanted->scale && have.zero_point == wanted->zero_point && !seven_bits) continue;
      std::array<std::uint8_t, 256>& table = tables_[i].emplace();
      const float ratio = have.scale / wanted->scale;
      for (int c = 0; c < 256; ++c) {
        const std::uint8_t code = squint::detail::round_to_code<std::uint8_t>(static_cast<float>(c - have.zero_point) * ratio,
                                                                              wanted->zero_point, 0);
        table[static_cast<std::size_t>(c)] = seven_bits && code > 127 ? std::uint8_t{127} : code;
      }
    }
  }

  const graph& model() const { return model_; }
  /// The qparams of the codes the model's input is quantized to.
  qparams input_qparams() const { return *params_[0]; }
  /// The qparams of node i's output codes; none for a last node that is a layer (it writes
  /// float from its accumulators).
  /// @throws squint::error on a node index out of range.
  std::optional<qparams> output_qparams(std::size_t i) const {
    squint::detail::require(i < model_.size(), "integer_graph::output_qparams: node ", i, " of ", model_.size());
    return params_[i + 1];
  }
  /// Whether node i requantizes its input's codes through a table first (see above).
  /// @throws squint::error on a node index out of range.
  bool requantizes_input(std::size_t i) const {
    squint::detail::require(i < model_.size(), "integer_graph::requantizes_input: node ", i, " of ", model_.size());
    return tables_[i].has_value();
  }
  image_shape output_shape(const image_shape& in) const { return model_.output_shape(in); }

  /// y (output_shape(in), float) = the model on x (NHWC, `in`), integer from the input's
  /// quantization to the last node.
  /// @throws squint::error on shapes that do not fit or null pointers with elements.
  void forward(const float* x, const image_shape& in, float* y, const parallelism& par = {}) const {
    run(x, in, y, par, nullptr);
  }

  /// Every node's output as the model computes it (node order; codes dequantized with
  /// output_qparams(), the last layer's float as written), to compare with the float graph's
  /// node_outputs() node by node.
  /// @throws squint::error as forward().
  std::vector<std::vector<float>> node_outputs(const float* x, const image_shape& in,
                                               const parallelism& par = {}) const {
    std::vector<std::vector<float>> outputs(model_.size());
    std::vector<float> y(output_shape(in).size());
    run(x, in, y.data(), par, &outputs);
    outputs.back() = std::move(y);
    return outputs;
  }

 private:
  static std::size_t tensor_of(std::size_t input) { return input == static_cast<std::size_t>(-1) ? 0 : input + 1; }

  static bool is_layer(const node_op& op) {
    return std::holds_alternative<conv2d>(op) || std::holds_alternative<linear>(op);
  }
  /// Max pooling and flatten move codes without changing their meaning.
  static bool passes_codes(const node_op& op) {
    const auto* p = std::get_if<pool>(&op);
    return std::holds_alternative<flatten>(op) || (p && p->type == pool::kind::max);
  }
  template <class Op>
  static bool ready(const Op& op) {
    if constexpr (std::is_same_v<Op, conv2d> || std::is_same_v<Op, linear>) return op.ready();
    return true;
  }
  /// The qparams an int8_static layer reads its codes with.
  static std::optional<qparams> static_input(const node_op& op) {
    if (const auto* c = std::get_if<conv2d>(&op); c && c->mode() == precision::int8_static) return c->input_qparams();
    if (const auto* l = std::get_if<linear>(&op); l && l->mode() == precision::int8_static) return l->input_qparams();
    return std::nullopt;
  }
  static bool reduce_range(const node_op& op) {
    if (const auto* c = std::get_if<conv2d>(&op)) return c->reduce_range();
    if (const auto* l = std::get_if<linear>(&op)) return l->reduce_range();
    return false;
  }

  /// The qparams of tensor t: the first int8_static reader's (looking through nodes that pass
  /// codes), else those of its recorded range (`node` names it in errors: size() for the input).
  qparams choose(std::size_t t, std::size_t node) const {
    if (const std::optional<qparams> p = reader_qparams(t)) return *p;
    const std::optional<std::pair<float, float>> r = model_.range(t == 0 ? model_.size() : t - 1);
    squint::detail::require(r.has_value(), "integer_graph: no range recorded for ",
                            node == model_.size() ? std::string("the model's input") : "node '" + model_.name(node) + "'",
                            " (no int8_static layer reads it); run graph::calibrate() first");
    return choose_qparams(r->first, r->second, quant_spec{});
  }
  std::optional<qparams> reader_qparams(std::size_t t) const {
    for (std::size_t reader : readers_[t]) {
      const node_op& op = model_.op(reader);
      if (std::optional<qparams> p = static_input(op)) return p;
      if (passes_codes(op))
        if (std::optional<qparams> p = reader_qparams(reader + 1)) return p;
    }
    return std::nullopt;
  }

  static void dequantize(const std::uint8_t* codes, std::size_t n, qparams p, float* y) {
    for (std::size_t e = 0; e < n; ++e) y[e] = static_cast<float>(static_cast<std::int32_t>(codes[e]) - p.zero_point) * p.scale;
  }
  static void quantize(const float* x, std::size_t n, qparams p, const backend& kernels, std::uint8_t* codes) {
    const squint::detail::nearest_rounding_scope rounding;
    kernels.quantize_u8(x, codes, n, p.scale, p.zero_point, false);
  }

  /// Runs the nodes in order into y; with `keep`, every node but the last dequantized there.
  void run(const float* x, const image_shape& in, float* y, const parallelism& par,
           std::vector<std::vector<float>>* keep) const {
    squint::detail::require_matrix("integer_graph::forward", "x", x, in.pixels(), in.channels);
    const std::vector<image_shape> shape = model_.shapes(in);
    squint::detail::require_matrix("integer_graph::forward", "y", y, shape.back().pixels(), shape.back().channels);
    const std::size_t count = model_.size();
    std::vector<std::vector<std::uint8_t>> codes(count + 1);
    codes[0].resize(in.size());
    quantize(x, in.size(), *params_[0], input_kernels_, codes[0].data());
    for (std::size_t i = 0; i < count; ++i) {
      const std::vector<std::size_t>& from = model_.inputs(i);
      const image_shape& a = from[0] == static_cast<std::size_t>(-1) ? in : shape[from[0]];
      const std::uint8_t* input[2] = {nullptr, nullptr};
      for (std::size_t k = 0; k < from.size(); ++k) input[k] = codes[tensor_of(from[k])].data();
      std::vector<std::uint8_t> mapped;
      if (tables_[i]) {
        mapped.resize(a.size());
        for (std::size_t e = 0; e < a.size(); ++e) mapped[e] = (*tables_[i])[input[0][e]];
        input[0] = mapped.data();
      }
      const bool last = i + 1 == count;
      if (last && is_layer(model_.op(i))) {
        run_layer(i, input[0], a, shape[i], nullptr, y, par);
        break;
      }
      codes[i + 1].resize(shape[i].size());
      run_node(i, input, a, shape[i], codes[i + 1].data(), par);
      if (last) dequantize(codes[i + 1].data(), shape[i].size(), *params_[i + 1], y);
      else if (keep) {
        (*keep)[i].resize(shape[i].size());
        dequantize(codes[i + 1].data(), shape[i].size(), *params_[i + 1], (*keep)[i].data());
      }
    }
  }

  /// The kernels of the model's first layer (quantizing the input), or this TU's.
  static backend first_kernels(const graph& model) {
    for (std::size_t i = 0; i < model.size(); ++i) {
      if (const auto* c = std::get_if<conv2d>(&model.op(i))) return c->kernels();
      if (const auto* l = std::get_if<linear>(&model.op(i))) return l->kernels();
    }
    return native_backend();
  }

  /// Node i (not a layer that ends the model) on its input codes, into out's codes.
  void run_node(std::size_t i, const std::uint8_t* const* input, const image_shape& a, const image_shape& o,
                std::uint8_t* out, const parallelism& par) const {
    const node_op& op = model_.op(i);
    const auto& from = model_.inputs(i);
    const qparams x_params = *params_[tensor_of(from[0])];
    if (is_layer(op)) {
      run_layer(i, input[0], a, o, out, nullptr, par);
    } else if (const auto* p = std::get_if<pool>(&op)) {
      if (p->type == pool::kind::max) max_pool2d(input[0], a, p->params, out);
      else if (p->type == pool::kind::average) avg_pool2d(input[0], a, x_params, p->params, *params_[i + 1], out);
      else global_avg_pool(input[0], a, x_params, *params_[i + 1], out);
    } else if (const auto* s = std::get_if<nn::add>(&op)) {
      squint::add(input[0], x_params, input[1], *params_[tensor_of(from[1])], *params_[i + 1], s->relu, out, o.size());
    } else {  // flatten: NHWC is already one row per image
      std::copy(input[0], input[0] + a.size(), out);
    }
  }

  /// Layer node i on codes x: into codes `out` (with the node's qparams) or float `y`.
  void run_layer(std::size_t i, const std::uint8_t* x, const image_shape& a, const image_shape& o, std::uint8_t* out,
                 float* y, const parallelism& par) const {
    const node_op& op = model_.op(i);
    const qparams x_params = tables_[i] ? *static_input(op) : *params_[tensor_of(model_.inputs(i)[0])];
    const auto* c = std::get_if<conv2d>(&op);
    const auto* l = std::get_if<linear>(&op);
    if (static_input(op)) {
      if (c && out) c->forward_codes(x, a, *params_[i + 1], out, par);
      else if (c) c->forward_codes(x, a, y, par);
      else if (out) l->forward_codes(x, a.pixels(), *params_[i + 1], out, par);
      else l->forward_codes(x, a.pixels(), y, par);
      return;
    }
    // Another precision: float between a dequantization and a quantization.
    std::vector<float> input(a.size()), output(out ? o.size() : 0);
    dequantize(x, a.size(), x_params, input.data());
    float* result = out ? output.data() : y;
    if (c) c->forward(input.data(), a, result, par);
    else l->forward(input.data(), a.pixels(), result, par);
    if (out) quantize(result, o.size(), *params_[i + 1], c ? c->kernels() : l->kernels(), out);
  }

  graph model_;
  std::vector<std::vector<std::size_t>> readers_;    // per tensor (0: the input, i + 1: node i), its readers
  std::vector<std::optional<qparams>> params_;       // per tensor
  std::vector<std::optional<std::array<std::uint8_t, 256>>> tables_;  // per node, its input's requantization
  backend input_kernels_ = first_kernels(model_);                     // quantize the model's input
};

}  // namespace nn
SQUINT_NAMESPACE_END

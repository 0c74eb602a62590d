// SPDX-License-Identifier: Apache-2.0
// qat/graph.hpp: training CNNs (and anything nn::graph holds) in FP32 or with fake quantization:
// a graph of named nodes — convolutions, BatchNorm, linear layers, pooling, residual adds,
// flatten — with forward, backward and the parameters an optimizer updates.
//
//   qat::graph model;                                      // FP32 training
//   model.add("conv1", qat::conv2d(conv, std::nullopt, std::nullopt));
//   model.add("bn1", qat::batch_norm(qat::identity_batch_norm(32, nn::activation::relu)));
//   ...                                                    // train: forward, loss, backward, step
//   nn::graph int8 = model.build(build_options);           // PTQ from the trained weights, or
//   qat::graph q = qat::prepare_qat(model, qat_options);    // QAT: train q a few epochs, then
//   nn::graph deployed = q.convert();                       // the same outputs, bit for bit
//
// The deployed models fold each BatchNorm into the convolution it follows, with its running
// statistics. prepare_qat does the same (PyTorch's folding after freeze_bn_stats, the default:
// QAT begins from trained statistics), or, with qat_options::freeze_batch_norm_after, trains
// each pair as a qat::conv_bn2d on batch statistics until then; either way the fake-quantized
// weights are the folded ones, as deployed. Node semantics are nn::graph's; a BatchNorm node
// takes one input, which must be a convolution used by nothing else when the model is folded.
#pragma once

#include <cstddef>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "squint/nn/awq.hpp"
#include "squint/nn/equalize.hpp"
#include "squint/nn/graph.hpp"
#include "squint/qat/batch_norm.hpp"
#include "squint/qat/conv2d.hpp"
#include "squint/qat/conv_bn2d.hpp"
#include "squint/qat/layer_rows.hpp"
#include "squint/qat/linear.hpp"
#include "squint/qat/sequential.hpp"

SQUINT_NAMESPACE_BEGIN
namespace qat {

using node_op = std::variant<conv2d, batch_norm, linear, nn::pool, nn::add, nn::flatten, conv_bn2d>;

class graph {
 public:
  /// Appends node `name` computing `op` on `inputs` (as nn::graph::add). Returns its index.
  /// @throws squint::error as nn::graph::add.
  std::size_t add(std::string name, node_op op, std::vector<std::string> inputs = {}) {
    return nodes_.add("qat::graph::add", std::move(name), std::move(op), std::move(inputs));
  }

  std::size_t size() const { return nodes_.size(); }
  const std::string& name(std::size_t i) const { return nodes_.at(i).name; }
  const node_op& op(std::size_t i) const { return nodes_.at(i).op; }
  node_op& op(std::size_t i) { return nodes_.at(i).op; }
  /// Training steps (forward calls with images, in training mode) so far.
  std::size_t steps() const { return steps_; }
  /// Freeze the activation observers after this many training steps (none: never).
  void freeze_observers_after(std::optional<std::size_t> steps) { freeze_after_ = steps; }
  /// Freeze the conv_bn2d nodes' statistics after this many training steps (none: never).
  void freeze_batch_norm_after(std::optional<std::size_t> steps) { freeze_bn_after_ = steps; }

  /// The shape of every node's output for inputs of shape `in` (the last is the model's).
  /// @throws squint::error where a node does not fit its inputs' shapes.
  std::vector<image_shape> shapes(const image_shape& in) const {
    return nodes_.shapes("qat::graph", in,
                         [](const auto& op, const image_shape& a, const node& n) { return shape_of(op, a, n); });
  }

  /// y (the last node's shape) = the model on x (NHWC, `in`): BatchNorm on the batch's
  /// statistics when `training` (which also counts a step), else on its running ones. The
  /// activation observers see every input until frozen. x and y must stay valid until backward().
  /// @throws squint::error on an empty model, shapes that do not fit, or null pointers with elements.
  void forward(const float* x, const image_shape& in, float* y, bool training = true) {
    squint::detail::require(!nodes_.empty(), "qat::graph: the model has no nodes");
    squint::detail::require_matrix("qat::graph::forward", "x", x, in.pixels(), in.channels);
    shapes_ = shapes(in);
    squint::detail::require_matrix("qat::graph::forward", "y", y, shapes_.back().pixels(), shapes_.back().channels);
    if (training && freeze_after_ && steps_ == *freeze_after_) freeze_observers();
    if (training && freeze_bn_after_ && steps_ == *freeze_bn_after_) freeze_batch_norms();
    run(x, in, y, training, nodes_.size());
    steps_ += training && in.batch > 0;
  }

  /// Backpropagates dy (the output's gradient for the last forward) into every node's
  /// parameter gradients.
  /// @throws squint::error on null dy with elements, or before any forward().
  void backward(const float* dy) {
    squint::detail::require(!shapes_.empty(), "qat::graph::backward: no forward() to differentiate");
    squint::detail::require(dy != nullptr || shapes_.back().size() == 0, "qat::graph::backward: argument 'dy' is null");
    grads_.assign(nodes_.size(), {});
    grads_.back().assign(dy, dy + shapes_.back().size());
    std::vector<float> dx;
    for (std::size_t i = nodes_.size(); i-- > 0;) {
      node& n = nodes_[i];
      std::vector<float>& g = grads_[i];
      if (g.empty()) g.assign(shapes_[i].size(), 0.0f);  // an output nothing used
      const bool needs_dx = n.inputs[0] != input_index;
      const image_shape& as = input_shape(n, 0);
      dx.assign(needs_dx ? as.size() : 0, 0.0f);
      float* d = needs_dx ? dx.data() : nullptr;
      if (auto* c = std::get_if<conv2d>(&n.op)) c->backward(g.data(), d);
      else if (auto* b = std::get_if<batch_norm>(&n.op)) b->backward(g.data(), d);
      else if (auto* cb = std::get_if<conv_bn2d>(&n.op)) cb->backward(g.data(), d);
      else if (auto* l = std::get_if<linear>(&n.op)) l->backward(g.data(), d);
      else if (const auto* p = std::get_if<nn::pool>(&n.op)) {
        if (d) pool_backward(*p, as, g.data(), argmax_[i], d);
      } else if (const auto* s = std::get_if<nn::add>(&n.op)) {
        const float* out = i + 1 == nodes_.size() ? y_ : outputs_[i].data();
        for (std::size_t e = 0; e < g.size() && s->relu; ++e)
          if (!(out[e] > 0.0f)) g[e] = 0.0f;
        if (d) std::copy(g.begin(), g.end(), d);
        if (n.inputs[1] != input_index) accumulate(n.inputs[1], g.data());
      } else if (d) {
        std::copy(g.begin(), g.end(), d);
      }
      if (d) accumulate(n.inputs[0], d);
      if (i + 1 < nodes_.size()) std::vector<float>().swap(g);
    }
  }

  /// Every node's parameters, first node first.
  std::vector<parameter> parameters() {
    std::vector<parameter> all;
    for (node& n : nodes_) {
      std::vector<parameter> p;
      if (auto* c = std::get_if<conv2d>(&n.op)) p = c->parameters();
      else if (auto* b = std::get_if<batch_norm>(&n.op)) p = b->parameters();
      else if (auto* cb = std::get_if<conv_bn2d>(&n.op)) p = cb->parameters();
      else if (auto* l = std::get_if<linear>(&n.op)) p = l->parameters();
      all.insert(all.end(), p.begin(), p.end());
    }
    return all;
  }

  /// Stops every activation observer (their qparams stay).
  void freeze_observers() {
    for (node& n : nodes_) {
      if (auto* c = std::get_if<conv2d>(&n.op)) c->freeze_observer();
      if (auto* cb = std::get_if<conv_bn2d>(&n.op)) cb->freeze_observer();
      if (auto* l = std::get_if<linear>(&n.op)) l->freeze_observer();
    }
  }

  /// Freezes every conv_bn2d node's BatchNorm statistics: from now on it is its folded convolution.
  void freeze_batch_norms() {
    for (node& n : nodes_)
      if (auto* cb = std::get_if<conv_bn2d>(&n.op)) cb->freeze_statistics();
  }

  /// The deployed model: each layer's convert() (int8_static where both weights and input are
  /// fake-quantized, else FP32), each BatchNorm folded into its convolution.
  /// @throws squint::error as conv2d::convert / linear::convert, or on a BatchNorm that cannot fold.
  nn::graph convert(const nn::backend& kernels) const {
    return assemble([&](const conv2d& c) { return c.convert(kernels); },
                    [&](const linear& l) { return l.convert(kernels); });
  }
  /// The deployed model on the kernels prepare_qat was given (the native ones otherwise).
  nn::graph convert() const { return convert(kernels_); }

  /// The model in any nn precision from the float master weights (PTQ of the trained model;
  /// o.overrides by weighted layer: convolutions and linear layers counted in node order), each
  /// BatchNorm folded into its convolution. int8_static layers need calibrate() and freeze().
  /// @throws squint::error on a BatchNorm that cannot fold, or as nn::conv2d / nn::linear.
  nn::graph build(const nn::build_options& o) const {
    std::size_t layer = 0;
    return assemble(
        [&](const conv2d& c) {
          const float_conv f = c.float_layer();
          return nn::conv2d(f.weights.data(), f.filter, f.layout, f.params, f.bias.empty() ? nullptr : f.bias.data(),
                            nn::conv2d_options::like(o.layer_options(layer++, f.act)));
        },
        [&](const linear& l) {
          const nn::float_layer f = l.float_layer();
          return nn::linear(f.weights.data(), f.out, f.in, f.in, f.bias.empty() ? nullptr : f.bias.data(),
                            o.layer_options(layer++, f.act));
        });
  }

  /// This model in FP32 with each BatchNorm folded into its convolution (running statistics):
  /// the float model the deployed ones are built from, e.g. to transform before quantization.
  /// @throws squint::error on a BatchNorm that cannot fold.
  graph folded() const { return prepare(fp32_training(kernels_)); }

  /// Cross-layer equalization (nn/equalize.hpp), in place, of every convolution or linear layer
  /// (ReLU or no activation) whose output reaches exactly one convolution or linear layer through
  /// nothing but pooling (and flatten, before a linear layer) that nothing else reads. Returns
  /// the sweeps run. The model computes the same function, up to rounding.
  /// @throws squint::error if the model still has BatchNorm or conv_bn2d nodes (equalize
  ///         folded() instead).
  std::size_t equalize(const nn::equalize_options& o = {}) {
    std::vector<std::pair<nn::detail::producer, nn::detail::consumer>> pairs;
    for (const scalable_pair& p : scalable_pairs("qat::graph::equalize")) pairs.push_back({p.producer, p.consumer});
    return nn::detail::equalize_pairs(pairs, o);
  }

  /// AWQ (nn/awq.hpp) for CNNs, in place: for every pair that equalize() would balance, the
  /// second layer's input channels are scaled by s_c = m_c^alpha (m_c the mean |x| of channel c
  /// where its weights meet it: a convolution's im2col rows, a linear layer's input pixels) with
  /// alpha searched on a grid to minimize the layer's int4 RTN output error on its calibration
  /// rows (up to o.max_rows drawn from all of its input rows in the model as given, x: NHWC
  /// images of shape `in`), and the first layer's output channels divided by s_c. The model
  /// computes the same function up to rounding; build it in an int4 precision with o.group.
  /// Returns one entry per scaled layer (`layer`: its node index).
  /// @throws squint::error on BatchNorm or conv_bn2d nodes (use folded()), a group that is not a
  ///         positive multiple of 16, grid == 0, max_rows == 0, no images or null x, or shapes that
  ///         do not fit; nothing is changed then.
  std::vector<nn::awq_layer> apply_awq(const float* x, const image_shape& in, const nn::awq_options& o = {}) {
    const std::vector<scalable_pair> pairs = scalable_pairs("qat::graph::apply_awq");
    squint::detail::require(o.group > 0 && o.group % 16 == 0, "qat::graph::apply_awq: group ", o.group,
                            " is not a positive multiple of 16");
    squint::detail::require(o.grid > 0, "qat::graph::apply_awq: grid must be positive");
    squint::detail::require(o.max_rows > 0, "qat::graph::apply_awq: max_rows must be positive");
    squint::detail::require(in.batch > 0 && x != nullptr, "qat::graph::apply_awq: needs calibration images (x is ",
                            x ? "set" : "null", ", batch ", in.batch, ")");
    nn::build_options fp32;
    fp32.mode = nn::precision::fp32;
    fp32.kernels = o.kernels;
    const nn::graph model = build(fp32);
    const std::vector<image_shape> shapes = model.shapes(in);
    const std::vector<std::vector<float>> outputs = model.node_outputs(x, in);
    std::vector<nn::awq_layer> report;
    for (const scalable_pair& p : pairs) {
      const std::size_t from = model.inputs(p.node)[0];
      const float* a = from == input_index ? x : outputs[from].data();
      const image_shape& as = from == input_index ? in : shapes[from];
      // The layer's weight matrices with their rows (a convolution: one per group).
      std::vector<std::vector<float>> rows;
      std::vector<nn::detail::awq_block> blocks;
      if (const auto* c = std::get_if<conv2d>(&nodes_[p.node].op)) {
        const conv2d_geometry g = squint::resolve("qat::graph::apply_awq", as, c->filter_, c->params_);
        const std::vector<std::size_t> sample = detail::sample_rows(g.out.pixels(), o.max_rows);
        const std::size_t depth = g.depth(), ocg = g.group_out_channels(), cg = c->filter_.group_channels;
        for (std::size_t k = 0; k < g.groups(); ++k) rows.push_back(detail::im2col_rows(a, g, k, sample));
        for (std::size_t k = 0; k < g.groups(); ++k) {
          std::vector<std::size_t> channel_of(depth);
          for (std::size_t t = 0; t < depth; ++t) channel_of[t] = k * cg + t % cg;
          blocks.push_back({c->w_.data() + k * ocg * depth, ocg, depth, rows[k].data(), sample.size(), channel_of});
        }
      } else {
        const auto& l = std::get<linear>(nodes_[p.node].op);
        const std::vector<std::size_t> sample = detail::sample_rows(as.pixels(), o.max_rows);
        rows.push_back(detail::pixel_rows(a, l.in_, sample));
        std::vector<std::size_t> channel_of(l.in_);
        for (std::size_t t = 0; t < l.in_; ++t) channel_of[t] = t % p.producer.channels;
        blocks.push_back({l.w_.data(), l.out_, l.in_, rows[0].data(), sample.size(), channel_of});
      }
      const nn::detail::awq_choice choice = nn::detail::awq_search(blocks, p.producer.channels, o);
      nn::awq_layer r{p.node, choice.alpha > 0.0f, choice.alpha, choice.mse_rtn, choice.mse_awq};
      report.push_back(r);
      if (!r.scaled) continue;
      for (std::size_t ch = 0; ch < p.producer.channels; ++ch) {
        const float s = choice.scale[ch];
        for (std::size_t j = 0; j < p.producer.row; ++j) p.producer.weights[ch * p.producer.row + j] /= s;
        if (!p.producer.bias->empty()) (*p.producer.bias)[ch] /= s;
        nn::detail::for_each_reader(p.consumer, p.producer.channels, ch, [&](float& w) { w *= s; });
      }
    }
    return report;
  }

  /// Empirical bias correction (Nagel et al. 2019, section 4.2, from data): layer by layer in
  /// node order, each convolution's and linear layer's bias moves by the mean, per output
  /// channel, of reference's output minus this model's, both before the activation, over the
  /// calibration images x (NHWC, `in`; in batches of `batch`), each model on its own inputs: the
  /// shift quantization error leaves in the expected output, this model's earlier corrections
  /// included. reference is the float model this one was prepared from (folded(): the same
  /// nodes). Freezes the activation observers first (calibrate before). A layer without a bias
  /// gets one. Returns the largest correction.
  /// @throws squint::error on a reference of another structure, a conv_bn2d node, batch == 0, or
  ///         bad shapes.
  float correct_bias(graph& reference, const float* x, const image_shape& in, std::size_t batch = 64) {
    squint::detail::require(batch > 0, "qat::graph::correct_bias: batch must be positive");
    squint::detail::require(!nodes_.empty(), "qat::graph: the model has no nodes");
    squint::detail::require_matrix("qat::graph::correct_bias", "x", x, in.pixels(), in.channels);
    squint::detail::require(reference.nodes_.size() == nodes_.size(), "qat::graph::correct_bias: the reference has ",
                            reference.nodes_.size(), " nodes, this model ", nodes_.size());
    for (std::size_t i = 0; i < nodes_.size(); ++i)
      squint::detail::require(reference.nodes_[i].op.index() == nodes_[i].op.index() &&
                                  reference.nodes_[i].inputs == nodes_[i].inputs,
                              "qat::graph::correct_bias: node '", nodes_[i].name, "' differs from the reference's");
    for (const node& n : nodes_)
      squint::detail::require(!std::holds_alternative<conv_bn2d>(n.op), "qat::graph::correct_bias: '", n.name,
                              "' trains its BatchNorm's statistics; correct a model prepared with them folded");
    shapes(in);
    freeze_observers();
    float largest = 0.0f;
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      detail::layer_state* layer = nullptr;
      if (auto* c = std::get_if<conv2d>(&nodes_[i].op)) layer = c;
      else if (auto* l = std::get_if<linear>(&nodes_[i].op)) layer = l;
      else continue;
      const std::vector<double> want = reference.pre_activation_means(i, x, in, batch);
      const std::vector<double> have = pre_activation_means(i, x, in, batch);
      layer->ensure_bias(want.size());
      std::vector<float>* bias = &layer->b_;
      for (std::size_t c = 0; c < want.size(); ++c) {
        const float shift = static_cast<float>(want[c] - have[c]);
        (*bias)[c] += shift;
        largest = std::max(largest, std::fabs(shift));
      }
    }
    return largest;
  }

  /// The QAT model of this one (see prepare_qat).
  /// @throws squint::error on a BatchNorm that cannot fold, an override for a missing layer, or
  ///         invalid quantizer options.
  graph prepare(const qat_options& o) const {
    std::size_t layers = 0;
    graph q;
    q.freeze_after_ = o.freeze_observers_after;
    const bool fold = o.freeze_batch_norm_after && *o.freeze_batch_norm_after == 0;
    if (!fold) q.freeze_bn_after_ = o.freeze_batch_norm_after;
    q.kernels_ = o.kernels;
    const auto weights = [&]() {
      const auto it = o.weight_overrides.find(layers++);
      return it == o.weight_overrides.end() ? o.weights : std::optional<weight_quant>(it->second);
    };
    const std::vector<std::size_t> folds = fold_targets();
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      const node& n = nodes_[i];
      std::vector<std::string> inputs;
      for (std::size_t from : n.inputs) inputs.push_back(from == input_index ? "input" : output_name(from));
      if (folds[i] != none) continue;  // a convolution whose BatchNorm folds into it
      if (const auto* b = std::get_if<batch_norm>(&n.op)) {
        const std::string& conv = nodes_[n.inputs[0]].name;
        if (fold)
          q.add(conv, conv2d(folded(n.inputs[0], *b), weights(), o.activations, o.kernels),
                {input_names(nodes_[n.inputs[0]])});
        else
          q.add(conv, conv_bn2d(std::get<conv2d>(nodes_[n.inputs[0]].op).float_layer(), b->state(), weights(),
                                o.activations, o.kernels),
                {input_names(nodes_[n.inputs[0]])});
      } else if (const auto* cb = std::get_if<conv_bn2d>(&n.op)) {
        if (fold) q.add(n.name, conv2d(cb->folded().float_layer(), weights(), o.activations, o.kernels), inputs);
        else
          q.add(n.name, conv_bn2d(cb->float_layer(), cb->batch_norm_statistics(), weights(), o.activations, o.kernels),
                inputs);
      } else if (const auto* c = std::get_if<conv2d>(&n.op)) {
        q.add(n.name, conv2d(c->float_layer(), weights(), o.activations, o.kernels), inputs);
      } else if (const auto* l = std::get_if<linear>(&n.op)) {
        q.add(n.name, linear(l->float_layer(), weights(), o.activations, o.kernels), inputs);
      } else {
        q.add(n.name, n.op, inputs);
      }
    }
    if (!o.weight_overrides.empty())
      squint::detail::require(o.weight_overrides.rbegin()->first < layers, "qat::prepare_qat: weight override for layer ",
                              o.weight_overrides.rbegin()->first, " of ", layers);
    return q;
  }

 private:
  using node_list = nn::detail::graph_nodes<node_op>;
  using node = node_list::node;
  static constexpr std::size_t input_index = node_list::input_index;
  static constexpr std::size_t none = static_cast<std::size_t>(-1);

  /// A producer and the one layer that reads its output channels (see equalize()), and that
  /// layer's node.
  struct scalable_pair {
    nn::detail::producer producer;
    nn::detail::consumer consumer;
    std::size_t node;
  };

  /// Every convolution or linear layer whose output reaches exactly one convolution or linear
  /// layer through nothing but pooling (and flatten, before a linear layer) that nothing else
  /// reads, with that layer. The ReLU or no activation between them commutes with a positive
  /// per-channel scale.
  /// @throws squint::error (naming `function`) on BatchNorm or conv_bn2d nodes.
  std::vector<scalable_pair> scalable_pairs(const char* function) {
    std::vector<scalable_pair> pairs;
    for (std::size_t i = 0; i < nodes_.size(); ++i)
      squint::detail::require(!std::holds_alternative<batch_norm>(nodes_[i].op) &&
                                  !std::holds_alternative<conv_bn2d>(nodes_[i].op),
                              function, ": BatchNorm of '", nodes_[i].name, "' is not folded; use folded()");
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      const std::optional<nn::detail::producer> p = producer_of(nodes_[i].op);
      if (!p) continue;
      std::size_t at = i;
      bool flattened = false;
      for (;;) {
        std::size_t readers = 0, reader = 0;
        for (std::size_t j = at + 1; j < nodes_.size(); ++j)
          for (std::size_t in : nodes_[j].inputs)
            if (in == at) ++readers, reader = j;
        if (readers != 1 || nodes_[reader].inputs.size() != 1) break;
        node_op& op = nodes_[reader].op;
        if (std::holds_alternative<nn::pool>(op) || std::holds_alternative<nn::flatten>(op)) {
          flattened = flattened || std::holds_alternative<nn::flatten>(op);
          at = reader;
          continue;
        }
        if (auto* c = std::get_if<conv2d>(&op); c && !flattened)
          pairs.push_back({*p,
                           {c->w_.data(), c->filter_.out_channels, c->w_.size() / c->filter_.out_channels,
                            c->filter_.taps(), c->params_.groups},
                           reader});
        if (auto* l = std::get_if<linear>(&op)) pairs.push_back({*p, {l->w_.data(), l->out_, l->in_}, reader});
        break;
      }
    }
    return pairs;
  }

  /// A convolution's or linear layer's weights as the first layer of an equalized pair (none for
  /// other nodes; both activations, ReLU and none, commute with a positive scale).
  static std::optional<nn::detail::producer> producer_of(node_op& op) {
    if (auto* c = std::get_if<conv2d>(&op))
      return nn::detail::producer{c->w_.data(), c->filter_.out_channels, c->w_.size() / c->filter_.out_channels, &c->b_};
    if (auto* l = std::get_if<linear>(&op)) return nn::detail::producer{l->w_.data(), l->out_, l->in_, &l->b_};
    return std::nullopt;
  }

  /// Runs nodes [0, count) on x (shapes_ already its shapes); the last node writes y when count
  /// is the whole model, every other node its entry of outputs_.
  void run(const float* x, const image_shape& in, float* y, bool training, std::size_t count) {
    x_ = x;
    in_ = in;
    outputs_.resize(nodes_.size());
    argmax_.resize(nodes_.size());
    for (std::size_t i = 0; i < count; ++i) {
      node& n = nodes_[i];
      const bool last = i + 1 == nodes_.size();
      if (!last) outputs_[i].resize(shapes_[i].size());
      float* out = last ? y : outputs_[i].data();
      const float* a = input(n, 0);
      const image_shape& as = input_shape(n, 0);
      if (auto* c = std::get_if<conv2d>(&n.op)) c->forward(a, as, out);
      else if (auto* b = std::get_if<batch_norm>(&n.op)) b->forward(a, as, out, training);
      else if (auto* cb = std::get_if<conv_bn2d>(&n.op)) cb->forward(a, as, out, training);
      else if (auto* l = std::get_if<linear>(&n.op)) l->forward(a, as.pixels(), out);
      else if (const auto* p = std::get_if<nn::pool>(&n.op)) pool_forward(*p, a, as, out, argmax_[i]);
      else if (const auto* s = std::get_if<nn::add>(&n.op)) {
        const float* rhs = input(n, 1);
        for (std::size_t e = 0; e < shapes_[i].size(); ++e) {
          const float sum = a[e] + rhs[e];
          out[e] = s->relu && !(sum > 0.0f) ? 0.0f : sum;
        }
      } else {
        std::copy(a, a + as.size(), out);
      }
      if (last) y_ = y;
    }
  }

  /// Per output channel, the mean of weighted node i's output before its activation over x
  /// (NHWC, `in`), in batches of `batch` images; the other nodes run as they are.
  std::vector<double> pre_activation_means(std::size_t i, const float* x, const image_shape& in, std::size_t batch) {
    nn::activation* act = nullptr;
    if (auto* c = std::get_if<conv2d>(&nodes_[i].op)) act = &c->act_;
    if (auto* l = std::get_if<linear>(&nodes_[i].op)) act = &l->act_;
    const nn::activation keep = *act;
    *act = nn::activation::none;
    std::vector<double> sum;
    std::size_t rows = 0;
    const std::size_t image = in.height * in.width * in.channels;
    std::vector<float> last;
    for (std::size_t b = 0; b < in.batch; b += batch) {
      image_shape part = in;
      part.batch = std::min(batch, in.batch - b);
      shapes_ = shapes(part);
      const image_shape o = shapes_[i];
      if (i + 1 == nodes_.size()) last.resize(o.size());
      run(x + b * image, part, last.data(), false, i + 1);
      const float* y = i + 1 == nodes_.size() ? last.data() : outputs_[i].data();
      sum.resize(o.channels, 0.0);
      for (std::size_t r = 0; r < o.pixels(); ++r)
        for (std::size_t c = 0; c < o.channels; ++c) sum[c] += y[r * o.channels + c];
      rows += o.pixels();
    }
    *act = keep;
    for (double& v : sum) v /= static_cast<double>(std::max<std::size_t>(rows, 1));
    return sum;
  }

  const float* input(const node& n, std::size_t k) const {
    return n.inputs[k] == input_index ? x_ : outputs_[n.inputs[k]].data();
  }
  const image_shape& input_shape(const node& n, std::size_t k) const {
    return n.inputs[k] == input_index ? in_ : shapes_[n.inputs[k]];
  }
  void accumulate(std::size_t to, const float* d) {
    std::vector<float>& g = grads_[to];
    if (g.empty()) {
      g.assign(d, d + shapes_[to].size());
      return;
    }
    for (std::size_t e = 0; e < g.size(); ++e) g[e] += d[e];
  }

  static image_shape shape_of(const conv2d& c, const image_shape& a, const node&) { return c.output_shape(a); }
  static image_shape shape_of(const conv_bn2d& c, const image_shape& a, const node&) { return c.output_shape(a); }
  static image_shape shape_of(const batch_norm& b, const image_shape& a, const node& n) {
    squint::detail::require(a.channels == b.channels(), "qat::graph: node '", n.name, "' normalizes ", b.channels(),
                            " channels, its input has ", a.channels);
    return a;
  }
  static image_shape shape_of(const linear& l, const image_shape& a, const node& n) {
    return nn::detail::linear_shape("qat::graph", n.name, l.in_features(), l.out_features(), a);
  }
  static image_shape shape_of(const nn::pool& p, const image_shape& a, const node&) {
    return nn::detail::pool_shape("qat::graph pool", p, a);
  }
  static image_shape shape_of(const nn::add&, const image_shape& a, const node&) { return a; }
  static image_shape shape_of(const nn::flatten&, const image_shape& a, const node&) {
    return nn::detail::flatten_shape(a);
  }

  /// The deployed pooling's values; for max pooling also the input element each output came
  /// from (the first maximum, as max_pool2d keeps; `none` for a window of padding only).
  static void pool_forward(const nn::pool& p, const float* x, const image_shape& a, float* y,
                           std::vector<std::size_t>& argmax) {
    if (p.type == nn::pool::kind::average) return avg_pool2d(x, a, p.params, y);
    if (p.type == nn::pool::kind::global_average) return global_avg_pool(x, a, y);
    // One pass for the values and their routes: max_pool2d's rule (the first maximum, padding
    // the lowest float), so the values are max_pool2d's.
    const conv2d_geometry g = squint::detail::pool_geometry("qat::graph pool", a, p.params);
    const std::size_t c = a.channels;
    argmax.assign(g.out.size(), none);
    const float lowest = std::numeric_limits<float>::lowest();
    squint::detail::for_each_window(x, g, lowest, [&](std::size_t pixel, const float* const* taps, std::size_t) {
      for (std::size_t j = 0; j < c; ++j) {
        const float* best = taps[0] + j;
        for (std::size_t t = 1; t < g.filter.taps(); ++t)
          if (*best < taps[t][j]) best = taps[t] + j;
        y[pixel * c + j] = *best;
        if (best >= x && best < x + a.size()) argmax[pixel * c + j] = static_cast<std::size_t>(best - x);
      }
    });
  }
  static void pool_backward(const nn::pool& p, const image_shape& a, const float* dy,
                            const std::vector<std::size_t>& argmax, float* dx) {
    const std::size_t c = a.channels;
    if (p.type == nn::pool::kind::max) {
      for (std::size_t e = 0; e < argmax.size(); ++e)
        if (argmax[e] != none) dx[argmax[e]] += dy[e];
      return;
    }
    if (p.type == nn::pool::kind::global_average) {
      const std::size_t area = a.height * a.width;
      for (std::size_t n = 0; n < a.batch; ++n)
        for (std::size_t i = 0; i < area; ++i)
          for (std::size_t j = 0; j < c; ++j) dx[(n * area + i) * c + j] += dy[n * c + j] / static_cast<float>(area);
      return;
    }
    // Average: each window's gradient shared by its in-image taps, divided by the forward's count.
    const conv2d_geometry g = squint::detail::pool_geometry("qat::graph pool", a, p.params);
    const std::vector<float> zero(a.size(), 0.0f);
    squint::detail::for_each_window(zero.data(), g, 0.0f,
                                    [&](std::size_t pixel, const float* const* taps, std::size_t inside) {
      const float count = static_cast<float>(p.params.count_include_pad ? g.filter.taps() : std::max<std::size_t>(inside, 1));
      for (std::size_t t = 0; t < g.filter.taps(); ++t) {
        if (taps[t] < zero.data() || taps[t] >= zero.data() + zero.size()) continue;  // padding
        float* to = dx + (taps[t] - zero.data());
        for (std::size_t j = 0; j < c; ++j) to[j] += dy[pixel * c + j] / count;
      }
    });
  }

  /// For each node, the BatchNorm node that folds into it (none for every other node).
  std::vector<std::size_t> fold_targets() const {
    std::vector<std::size_t> folds(nodes_.size(), none);
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      if (!std::holds_alternative<batch_norm>(nodes_[i].op)) continue;
      const std::size_t from = nodes_[i].inputs[0];
      bool foldable = from != input_index && std::holds_alternative<conv2d>(nodes_[from].op);
      for (std::size_t j = 0; j < nodes_.size() && foldable; ++j)
        for (std::size_t in : nodes_[j].inputs) foldable = foldable && (j == i || in != from);
      squint::detail::require(foldable, "qat::graph: BatchNorm '", nodes_[i].name,
                              "' does not follow a convolution that nothing else uses, so it cannot fold");
      squint::detail::require(std::get<conv2d>(nodes_[from].op).act() == nn::activation::none,
                              "qat::graph: convolution '", nodes_[from].name,
                              "' has an activation before its BatchNorm, so the BatchNorm cannot fold");
      folds[from] = i;
    }
    return folds;
  }
  /// The name node i's output goes by in the folded model (a BatchNorm's is its convolution's).
  std::string output_name(std::size_t i) const {
    if (std::holds_alternative<batch_norm>(nodes_[i].op)) return nodes_[nodes_[i].inputs[0]].name;
    return nodes_[i].name;
  }
  std::string input_names(const node& n) const {
    return n.inputs[0] == input_index ? std::string("input") : output_name(n.inputs[0]);
  }
  /// Convolution `conv` with BatchNorm b folded in (running statistics), taking b's activation.
  float_conv folded(std::size_t conv, const batch_norm& b) const {
    float_conv f = std::get<conv2d>(nodes_[conv].op).float_layer();
    const batch_norm_state& s = b.state();
    nn::fold_batch_norm(f.weights, f.bias, s.gamma, s.beta, s.running_mean, s.running_var, s.eps);
    f.act = s.act;
    return f;
  }

  /// The nn::graph of the folded model, its layers made by conv_of and linear_of.
  template <class ConvOf, class LinearOf>
  nn::graph assemble(ConvOf conv_of, LinearOf linear_of) const {
    const std::vector<std::size_t> folds = fold_targets();
    nn::graph g;
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      const node& n = nodes_[i];
      if (folds[i] != none) continue;
      std::vector<std::string> inputs;
      for (std::size_t from : n.inputs) inputs.push_back(from == input_index ? "input" : output_name(from));
      if (const auto* b = std::get_if<batch_norm>(&n.op)) {
        const conv2d fp32(folded(n.inputs[0], *b), std::nullopt, std::nullopt);
        g.add(nodes_[n.inputs[0]].name, conv_of(fp32), {input_names(nodes_[n.inputs[0]])});
      } else if (const auto* c = std::get_if<conv2d>(&n.op)) {
        g.add(n.name, conv_of(*c), inputs);
      } else if (const auto* cb = std::get_if<conv_bn2d>(&n.op)) {
        g.add(n.name, conv_of(cb->folded()), inputs);
      } else if (const auto* l = std::get_if<linear>(&n.op)) {
        g.add(n.name, linear_of(*l), inputs);
      } else if (const auto* p = std::get_if<nn::pool>(&n.op)) {
        g.add(n.name, *p, inputs);
      } else if (const auto* s = std::get_if<nn::add>(&n.op)) {
        g.add(n.name, *s, inputs);
      } else {
        g.add(n.name, nn::flatten{}, inputs);
      }
    }
    return g;
  }

  node_list nodes_;
  std::optional<std::size_t> freeze_after_, freeze_bn_after_;
  nn::backend kernels_ = nn::native_backend();
  std::size_t steps_ = 0;
  // The last forward's input, shapes, outputs (the last one is the caller's y) and max-pool
  // routes; backward's gradients per node output.
  const float* x_ = nullptr;
  const float* y_ = nullptr;
  image_shape in_;
  std::vector<image_shape> shapes_;
  std::vector<std::vector<float>> outputs_, grads_;
  std::vector<std::vector<std::size_t>> argmax_;
};

/// The QAT model of a float (FP32-trained) graph: quantizers inserted as `options` says, each
/// BatchNorm folded into its convolution with its running statistics.
inline graph prepare_qat(const graph& model, const qat_options& options = {}) { return model.prepare(options); }

}  // namespace qat
SQUINT_NAMESPACE_END

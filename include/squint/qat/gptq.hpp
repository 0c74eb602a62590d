// SPDX-License-Identifier: Apache-2.0
// qat/gptq.hpp: GPTQ (nn/gptq.hpp) for CNNs — every convolution and linear layer of a float
// qat::graph quantized to int4 codes per output channel and group of inputs, in node order.
//
// A convolution is a linear layer on its im2col rows (one output pixel's window, taps x group
// channels in OHWI order, padding as zeros), so GPTQ runs on each group's filter with the
// Hessian of those rows; a linear node's rows are its input pixels (one per image after a
// flatten). Each layer calibrates on its input in the model quantized so far: the float model
// with every earlier layer's weights replaced by their dequantized int4 codes (what
// int4_weight_only computes, up to float rounding), as GPTQ runs a model layer by layer. Up to
// max_rows rows are drawn at random (a fixed seed) from all of a layer's input rows (images and
// pixels).
// BatchNorm is folded first (graph::folded()); the codes and scales are built as they are
// (nn::conv2d::from_int4, nn::linear::from_int4).
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <variant>
#include <vector>

#include "squint/nn/gptq.hpp"
#include "squint/qat/graph.hpp"
#include "squint/qat/layer_rows.hpp"

SQUINT_NAMESPACE_BEGIN
namespace qat {

/// GPTQ's model and, per convolution or linear node (`layer`: its index in the model), the mean
/// squared error of its output on its sampled calibration rows with RTN codes and with GPTQ's.
struct gptq_graph_result {
  nn::graph model;
  std::vector<nn::gptq_layer> layers;
};

namespace detail {

/// Mean over rows x outputs of (x . (w - dequantized codes))^2: a layer's output error on x
/// (rows x in) for float weights w (out x in) and int4 codes with their group scales.
inline double int4_output_mse(const std::vector<float>& x, std::size_t rows, const float* w, std::size_t out,
                              std::size_t in, const squint::detail::group_codes& q, std::size_t group) {
  const std::size_t groups = (in + group - 1) / group;
  std::vector<double> dw(in);
  double sum = 0.0;
  for (std::size_t j = 0; j < out; ++j) {
    for (std::size_t i = 0; i < in; ++i)
      dw[i] = static_cast<double>(w[j * in + i]) -
              static_cast<double>(q.codes[j * in + i]) * static_cast<double>(q.scales[j * groups + i / group]);
    for (std::size_t r = 0; r < rows; ++r) {
      double e = 0.0;
      for (std::size_t i = 0; i < in; ++i) e += static_cast<double>(x[r * in + i]) * dw[i];
      sum += e * e;
    }
  }
  return rows * out > 0 ? sum / static_cast<double>(rows * out) : 0.0;
}

/// One weight matrix (out x in) through GPTQ on its rows x: the codes; both errors, times
/// `share` (the matrix's part of the layer's outputs), added to the report.
inline squint::detail::group_codes gptq_matrix(const float* w, std::size_t out, std::size_t in,
                                              const std::vector<float>& x, std::size_t rows,
                                              const nn::gptq_options& o, double share, nn::gptq_layer& report) {
  squint::detail::group_codes q = nn::detail::gptq_codes(std::vector<float>(w, w + out * in), out, in, x.data(), rows, o);
  const squint::detail::group_codes rtn = squint::detail::quantize_int4_groups("qat::gptq", w, out, in, in, o.group);
  report.mse_rtn += share * int4_output_mse(x, rows, w, out, in, rtn, o.group);
  report.mse_gptq += share * int4_output_mse(x, rows, w, out, in, q, o.group);
  return q;
}

}  // namespace detail

/// Quantizes the float CNN `model` (BatchNorm folded) to int4 with GPTQ on the calibration images
/// x (NHWC, `in`) and builds it in o.mode (int4_weight_only or int4_dynamic), o.group inputs per
/// scale, o.max_rows sampled rows per layer; pooling, adds and flatten as they are.
/// @throws squint::error on an empty model, a mode other than the int4 ones, a group that is not
///         a positive multiple of 16, damp < 0, block 0, no images or null x, shapes that do not
///         fit, or a BatchNorm that cannot fold.
inline gptq_graph_result gptq(const graph& model, const float* x, const image_shape& in,
                              const nn::gptq_options& o = {}) {
  squint::detail::require(model.size() > 0, "qat::gptq: the model has no nodes");
  squint::detail::require(o.mode == nn::precision::int4_weight_only || o.mode == nn::precision::int4_dynamic,
                          "qat::gptq: mode ", nn::to_string(o.mode), " is not int4_weight_only or int4_dynamic");
  squint::detail::require(o.group > 0 && o.group % 16 == 0, "qat::gptq: group ", o.group,
                          " is not a positive multiple of 16");
  squint::detail::require(o.damp >= 0.0, "qat::gptq: damp ", o.damp, " is negative");
  squint::detail::require(o.block > 0, "qat::gptq: block must be positive");
  squint::detail::require(o.max_rows > 0, "qat::gptq: max_rows must be positive");
  squint::detail::require(in.batch > 0 && x != nullptr, "qat::gptq: needs calibration images (x is ",
                          x ? "set" : "null", ", batch ", in.batch, ")");
  graph work = model.folded();
  nn::build_options fp32;
  fp32.mode = nn::precision::fp32;
  fp32.kernels = o.kernels;
  nn::graph current = work.build(fp32);
  const std::vector<image_shape> shapes = current.shapes(in);
  std::vector<squint::detail::group_codes> codes(work.size());
  // Each node's output in the model quantized so far: node i runs once, after every layer up to
  // it has its int4 weights (nodes are in topological order, so later layers never change it).
  std::vector<std::vector<float>> outputs(work.size());
  gptq_graph_result result;
  for (std::size_t i = 0; i < work.size(); ++i) {
    auto* c = std::get_if<conv2d>(&work.op(i));
    auto* l = std::get_if<linear>(&work.op(i));
    outputs[i].resize(shapes[i].size());
    if (!c && !l) {
      current.forward_node(i, outputs, x, in, outputs[i].data());
      continue;
    }
    // This node's input in the float model with every earlier layer dequantized.
    const std::size_t from = current.inputs(i)[0];
    const float* a = from == static_cast<std::size_t>(-1) ? x : outputs[from].data();
    const image_shape& as = from == static_cast<std::size_t>(-1) ? in : shapes[from];
    nn::gptq_layer report{i, 0.0, 0.0};
    float* weights = (c ? c->parameters() : l->parameters())[0].value;
    std::size_t depth = 0;  // the layer's inputs per row
    if (c) {
      const float_conv f = c->float_layer();
      const conv2d_geometry g = squint::resolve("qat::gptq", as, f.filter, f.params);
      const std::vector<std::size_t> sample = detail::sample_rows(g.out.pixels(), o.max_rows);
      const std::size_t ocg = g.group_out_channels();
      depth = g.depth();
      for (std::size_t k = 0; k < g.groups(); ++k) {  // one GPTQ per group, codes and scales in channel order
        const std::vector<float> rows = detail::im2col_rows(a, g, k, sample);
        squint::detail::group_codes q =
            detail::gptq_matrix(f.weights.data() + k * ocg * depth, ocg, depth, rows, sample.size(), o,
                                1.0 / static_cast<double>(g.groups()), report);
        codes[i].codes.insert(codes[i].codes.end(), q.codes.begin(), q.codes.end());
        codes[i].scales.insert(codes[i].scales.end(), q.scales.begin(), q.scales.end());
      }
    } else {
      const nn::float_layer f = l->float_layer();
      const std::vector<std::size_t> sample = detail::sample_rows(as.pixels(), o.max_rows);
      const std::vector<float> rows = detail::pixel_rows(a, f.in, sample);
      codes[i] = detail::gptq_matrix(f.weights.data(), f.out, f.in, rows, sample.size(), o, 1.0, report);
      depth = f.in;
    }
    // The next layers calibrate on this one's int4 weights.
    const std::vector<float> dequantized = codes[i].values(depth, o.group);
    std::copy(dequantized.begin(), dequantized.end(), weights);
    result.layers.push_back(report);
    current = work.build(fp32);
    current.forward_node(i, outputs, x, in, outputs[i].data());
  }
  // The int4 model: the folded model's nodes, its layers from their codes.
  const nn::graph& float_model = current;
  for (std::size_t i = 0; i < work.size(); ++i) {
    std::vector<std::string> inputs;
    for (std::size_t from : float_model.inputs(i))
      inputs.push_back(from == static_cast<std::size_t>(-1) ? std::string("input") : float_model.name(from));
    nn::linear_options lo;
    lo.mode = o.mode;
    lo.kernels = o.kernels;
    lo.int4_group = o.group;
    if (const auto* c = std::get_if<conv2d>(&work.op(i))) {
      const float_conv f = c->float_layer();
      lo.act = f.act;
      result.model.add(work.name(i),
                       nn::conv2d::from_int4(codes[i].codes.data(), f.filter, f.layout, f.params, o.group,
                                             codes[i].scales, f.bias.empty() ? nullptr : f.bias.data(),
                                             nn::conv2d_options::like(lo)),
                       inputs);
    } else if (const auto* l = std::get_if<linear>(&work.op(i))) {
      const nn::float_layer f = l->float_layer();
      lo.act = f.act;
      result.model.add(work.name(i),
                       nn::linear::from_int4(codes[i].codes.data(), f.out, f.in, f.in, o.group, codes[i].scales,
                                             f.bias.empty() ? nullptr : f.bias.data(), lo),
                       inputs);
    } else {
      result.model.add(work.name(i), float_model.op(i), inputs);
    }
  }
  return result;
}

}  // namespace qat
SQUINT_NAMESPACE_END

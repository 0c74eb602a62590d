// SPDX-License-Identifier: Apache-2.0
// nn_integer_test.cpp: full-integer graphs (nn::integer_graph): every node's codes against a
// scalar recomputation of the pipeline (int64 convolutions, the int32 bias, one float
// requantization, the ops on codes), on every backend; the float-boundary graph as the limit;
// mixed precision; bad arguments.
#include <gtest/gtest.h>

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // see nn_conv_test.cpp
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "squint/dispatch.hpp"
#include "squint/nn.hpp"
#include "squint/ops/eltwise.hpp"
#include "squint/ops/pool.hpp"
#include "squint/reference/conv.hpp"
#include "squint/reference/quantize.hpp"
#include "squint/reference/requantize.hpp"
#include "support/data.hpp"

namespace nn_integer_test {

namespace {

namespace nn = squint::nn;
using squint::conv2d_params;
using squint::filter_layout;
using squint::filter_shape;
using squint::image_shape;
using squint::qparams;

conv2d_params params(std::size_t pad, std::size_t groups = 1) {
  conv2d_params p;
  p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = pad;
  p.groups = groups;
  return p;
}

/// Random int8 codes over the whole range, -128 and 127 included.
std::vector<std::int8_t> codes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> d(-128, 127);
  std::vector<std::int8_t> c(n);
  for (auto& v : c) v = static_cast<std::int8_t>(d(rng));
  c[0] = -128;
  c[n - 1] = 127;
  return c;
}

std::vector<float> scales(std::size_t n, float base) {
  std::vector<float> s(n);
  for (std::size_t j = 0; j < n; ++j) s[j] = base * (1.0f + 0.37f * static_cast<float>(j % 5));
  return s;
}

/// The integer layers of the test model, as codes, scales, biases and input qparams.
struct layer_data {
  filter_shape f;
  conv2d_params p;
  std::vector<std::int8_t> w;  // OHWI
  std::vector<float> scale, bias;
  qparams input;
  bool relu, seven_bits;
};

/// conv 3x3 3->8 + ReLU, max pool, depthwise 3x3 + ReLU, conv 1x1 8->8 (7-bit codes: it reads
/// conv2's output through a table), add with the pool's output + ReLU, average pool 2x2 stride
/// 1, flatten, fc 32->5 (float out).
std::vector<layer_data> model_data() {
  std::vector<layer_data> d;
  d.push_back({{8, 3, 3, 3}, params(1), codes(8 * 27, 1), scales(8, 0.004f), squint_test::normal(8, 0.1f, 0.3f, 2),
               {0.03f, 120}, true, false});
  d.push_back({{8, 1, 3, 3}, params(1, 8), codes(8 * 9, 3), scales(8, 0.006f), squint_test::normal(8, 0.0f, 0.2f, 4),
               {0.05f, 3}, true, false});
  d.push_back({{8, 8, 1, 1}, params(0), codes(64, 5), scales(8, 0.003f), squint_test::normal(8, 0.0f, 0.2f, 6),
               {0.04f, 9}, false, true});
  d.push_back({{5, 32, 1, 1}, params(0), codes(5 * 32, 7), scales(5, 0.002f), squint_test::normal(5, 0.0f, 0.1f, 8),
               {0.05f, 2}, false, false});
  return d;
}

nn::graph model(const std::vector<layer_data>& d, const nn::backend& kernels) {
  nn::graph g;
  const char* names[] = {"conv1", "conv2", "conv3"};
  for (std::size_t k = 0; k < 3; ++k) {
    nn::conv2d_options o;
    o.act = d[k].relu ? nn::activation::relu : nn::activation::none;
    o.kernels = kernels;
    o.reduce_range = d[k].seven_bits;
    g.add(names[k], nn::conv2d::from_int8(d[k].w.data(), d[k].f, filter_layout::ohwi, d[k].p, d[k].scale,
                                          d[k].bias.data(), d[k].input, o));
    if (k == 0) g.add("pool1", nn::pool{});
  }
  g.add("skip", nn::add{true}, {"conv3", "pool1"});
  nn::pool avg{nn::pool::kind::average, {}};
  avg.params.window.stride_h = avg.params.window.stride_w = 1;
  g.add("avg", avg);
  g.add("flat", nn::flatten{});
  nn::linear_options lo;
  lo.kernels = kernels;
  g.add("fc", nn::linear::from_int8(d[3].w.data(), 5, 32, 32, d[3].scale, d[3].bias.data(), d[3].input, lo));
  return g;
}

/// One int8_static layer on codes (qparams `in`), as a scalar pipeline: int64 sums, the bias
/// rounded to accumulator units, then either one float requantization into `out` (ReLU: at
/// least its zero point) or the float output stage.
std::vector<std::int32_t> reference_layer(const layer_data& d, const std::vector<std::uint8_t>& x,
                                          const image_shape& in, const qparams* out, std::vector<float>* y) {
  const squint::conv2d_geometry g = squint::resolve("test", in, d.f, d.p);
  std::vector<std::int64_t> acc(g.out.size());
  squint::reference::conv2d(x.data(), g, d.input.zero_point, d.w.data(), nullptr, 0, acc.data());
  std::vector<std::int32_t> result(acc.size());
  const std::size_t oc = d.f.out_channels;
  for (std::size_t e = 0; e < acc.size(); ++e) {
    const std::size_t j = e % oc;
    if (y) {  // the scalar float stage: its multiply and add never contract to an FMA (aarch64 GCC would here)
      const auto acc32 = static_cast<std::int32_t>(acc[e]);
      const float multiplier = d.input.scale * d.scale[j];
      squint::kernels::float_stage_kernel<squint::arch::scalar>::row(&acc32, &(*y)[e], 1, &multiplier, &d.bias[j],
                                                                      d.relu, HUGE_VALF);
      continue;
    }
    const double bias = std::nearbyint(static_cast<double>(d.bias[j]) / (static_cast<double>(d.input.scale) * d.scale[j]));
    const float multiplier = d.input.scale * d.scale[j] / out->scale;
    result[e] = squint::reference::requantize_value(static_cast<std::int32_t>(acc[e] + static_cast<std::int64_t>(bias)),
                                                    multiplier, out->zero_point,
                                                    {d.relu ? out->zero_point : 0, 255});
  }
  return result;
}

std::vector<float> dequantized(const std::vector<std::uint8_t>& c, qparams p) {
  std::vector<float> v(c.size());
  for (std::size_t e = 0; e < c.size(); ++e) v[e] = squint::reference::dequantize_value(c[e], p);
  return v;
}

std::vector<std::uint8_t> to_codes(const std::vector<std::int32_t>& v) { return {v.begin(), v.end()}; }

}  // namespace

/// The whole pipeline against a scalar recomputation, node by node, codes equal: the tensors'
/// qparams follow the rules of nn/integer_graph.hpp (conv1's output takes conv2's input qparams
/// through the max pool; conv3 reads conv2's output through a table into 7-bit codes; the add
/// and the average pool take their recorded ranges).
TEST(IntegerGraphTest, EveryNodeEqualsTheScalarPipeline) {
  const std::vector<layer_data> d = model_data();
  const image_shape in{2, 6, 6, 3};
  const std::vector<float> x = squint_test::normal(in.size(), 1.0f, 2.0f, 9);
  for (const nn::backend& kernels : {nn::native_backend(), squint::runtime::backend()}) {
    SCOPED_TRACE(kernels.isa);
    nn::graph g = model(d, kernels);
    EXPECT_THROW(nn::integer_graph{g}, squint::error);  // no recorded range for the add yet
    g.calibrate(x.data(), in, 1);
    const nn::integer_graph q(g);
    const std::vector<image_shape> shape = g.shapes(in);

    EXPECT_EQ(q.input_qparams(), d[0].input);
    EXPECT_EQ(*q.output_qparams(0), d[1].input);  // through the max pool
    EXPECT_EQ(*q.output_qparams(1), d[1].input);
    EXPECT_EQ(*q.output_qparams(2), d[2].input);
    EXPECT_FALSE(q.output_qparams(7).has_value());  // the last layer writes float
    EXPECT_TRUE(q.requantizes_input(3) && !q.requantizes_input(2) && !q.requantizes_input(0));
    const auto [lo, hi] = *g.range(4);
    EXPECT_EQ(*q.output_qparams(4), squint::choose_qparams(lo, hi, squint::quant_spec{}));

    std::vector<std::uint8_t> c0(in.size());
    squint::reference::quantize(x.data(), c0.data(), c0.size(), d[0].input);
    const qparams p1 = *q.output_qparams(0), p3 = *q.output_qparams(3), p4 = *q.output_qparams(4),
                  p5 = *q.output_qparams(5);
    const auto c1 = to_codes(reference_layer(d[0], c0, in, &p1, nullptr));
    std::vector<std::uint8_t> c2(shape[1].size());
    squint::max_pool2d(c1.data(), shape[0], squint::pool2d_params{}, c2.data());
    const auto c3 = to_codes(reference_layer(d[1], c2, shape[1], &d[2].input, nullptr));
    std::vector<std::uint8_t> c3_seven(c3.size());  // into conv3's 7-bit codes
    for (std::size_t e = 0; e < c3.size(); ++e) {
      const std::int32_t v = squint::reference::requantize_value(c3[e] - d[2].input.zero_point, 1.0f, d[2].input.zero_point,
                                                                 {0, 127});
      c3_seven[e] = static_cast<std::uint8_t>(v);
    }
    const auto c4 = to_codes(reference_layer(d[2], c3_seven, shape[2], &p3, nullptr));
    std::vector<std::uint8_t> c5(shape[4].size()), c6(shape[5].size());
    squint::add(c4.data(), p3, c2.data(), p1, p4, true, c5.data(), c5.size());
    const auto& avg = std::get<nn::pool>(g.op(5)).params;
    squint::avg_pool2d(c5.data(), shape[4], p4, avg, p5, c6.data());
    std::vector<float> y(shape[7].size());
    reference_layer(d[3], c6, shape[6], nullptr, &y);

    const auto outputs = q.node_outputs(x.data(), in);
    ASSERT_EQ(outputs.size(), 8u);
    EXPECT_EQ(outputs[0], dequantized(c1, p1));
    EXPECT_EQ(outputs[1], dequantized(c2, p1));
    EXPECT_EQ(outputs[2], dequantized(c3, d[2].input));
    EXPECT_EQ(outputs[3], dequantized(c4, p3));
    EXPECT_EQ(outputs[4], dequantized(c5, p4));
    EXPECT_EQ(outputs[5], dequantized(c6, p5));
    EXPECT_EQ(outputs[6], dequantized(c6, p5));
    EXPECT_EQ(outputs[7], y);
    std::vector<float> forward(y.size());
    q.forward(x.data(), in, forward.data(), {2});
    EXPECT_EQ(forward, y);
    // The codes reach the extremes: the requantization saturates somewhere and ReLU clamps.
    EXPECT_TRUE(std::count(c1.begin(), c1.end(), std::uint8_t(p1.zero_point)) > 0);
  }
}

/// A graph of one int8_static layer writes float straight from its accumulators: the integer
/// graph is then the float-boundary layer bit for bit. A float-built, calibrated residual CNN run
/// full-integer stays close to its FP32 model, and mixed precision (an fp32 layer inside) runs.
TEST(IntegerGraphTest, TracksTheFloatBoundaryModel) {
  const image_shape in{4, 8, 8, 2};
  const std::vector<float> x = squint_test::normal(in.size(), 0.0f, 1.0f, 31);
  const auto w1 = squint_test::normal(8 * 18, 0.0f, 0.3f, 32), w2 = squint_test::normal(64 * 9, 0.0f, 0.12f, 33),
             w3 = squint_test::normal(8 * 3, 0.0f, 0.4f, 34);
  const std::vector<float> b(8, 0.05f);
  {
    nn::conv2d_options o;
    o.mode = nn::precision::int8_static;
    nn::graph g;
    g.add("conv", nn::conv2d(w1.data(), {8, 2, 3, 3}, filter_layout::oihw, params(1), b.data(), o));
    g.calibrate(x.data(), in, 2);
    g.freeze();
    std::vector<float> expect(g.output_shape(in).size()), y(expect.size());
    g.forward(x.data(), in, expect.data());
    nn::integer_graph(g).forward(x.data(), in, y.data());
    EXPECT_EQ(y, expect);
  }
  const auto build = [&](nn::precision mode, nn::precision middle) {
    nn::conv2d_options o;
    o.mode = mode;
    o.act = nn::activation::relu;
    nn::graph g;
    g.add("conv1", nn::conv2d(w1.data(), {8, 2, 3, 3}, filter_layout::oihw, params(1), b.data(), o));
    o.mode = middle;
    o.act = nn::activation::none;
    g.add("conv2", nn::conv2d(w2.data(), {8, 8, 3, 3}, filter_layout::oihw, params(1), b.data(), o));
    g.add("skip", nn::add{true}, {"conv2", "conv1"});
    g.add("gap", nn::pool{nn::pool::kind::global_average, {}});
    nn::linear_options lo;
    lo.mode = mode;
    g.add("fc", nn::linear(w3.data(), 3, 8, 8, nullptr, lo));
    return g;
  };
  const nn::graph fp32 = build(nn::precision::fp32, nn::precision::fp32);
  std::vector<float> expect(fp32.output_shape(in).size());
  fp32.forward(x.data(), in, expect.data());
  for (nn::precision middle : {nn::precision::int8_static, nn::precision::fp32}) {
    nn::graph g = build(nn::precision::int8_static, middle);
    g.calibrate(x.data(), in, 2);
    g.freeze();
    std::vector<float> y(expect.size());
    nn::integer_graph(g).forward(x.data(), in, y.data());
    double signal = 0, noise = 0;
    for (std::size_t i = 0; i < y.size(); ++i) {
      signal += double(expect[i]) * expect[i];
      noise += double(y[i] - expect[i]) * (y[i] - expect[i]);
    }
    EXPECT_GT(10 * std::log10(signal / std::max(noise, 1e-30)), 25.0) << nn::to_string(middle);
  }
}

/// The requantized stage on its own, with a multiplier of 1 so that every accumulator unit
/// shows: the bias rounds half to even into accumulator units (ties included), a huge bias
/// saturates instead of wrapping, ReLU clamps at the zero point; odd sizes, every backend.
TEST(IntegerGraphTest, LinearForwardCodesRoundsTheBiasIntoAccumulatorUnits) {
  const std::size_t m = 3, in = 41, out = 19;
  const std::vector<std::int8_t> w = codes(out * in, 51);
  std::vector<std::uint8_t> x(m * in);
  std::mt19937 rng(52);
  for (auto& v : x) v = static_cast<std::uint8_t>(rng() % 256);
  std::vector<float> bias(out);
  for (std::size_t j = 0; j < out; ++j) bias[j] = 0.125f * (static_cast<float>(j) - 9.0f) + (j % 2 ? 0.0625f : 0.03f);
  bias[5] = 1e9f;
  const qparams x_params{0.5f, 7}, y_params{0.125f, 100};
  for (bool relu : {false, true})
    for (const nn::backend& kernels : {nn::native_backend(), squint::runtime::backend()}) {
      nn::linear_options o;
      o.kernels = kernels;
      o.act = relu ? nn::activation::relu : nn::activation::none;
      const nn::linear l =
          nn::linear::from_int8(w.data(), out, in, in, std::vector<float>(out, 0.25f), bias.data(), x_params, o);
      std::vector<std::uint8_t> y(m * out);
      l.forward_codes(x.data(), m, y_params, y.data());
      for (std::size_t i = 0; i < m; ++i)
        for (std::size_t j = 0; j < out; ++j) {
          std::int64_t acc = 0;
          for (std::size_t k = 0; k < in; ++k) acc += (std::int64_t(x[i * in + k]) - 7) * w[j * in + k];
          const std::int64_t v = acc + static_cast<std::int64_t>(std::nearbyint(bias[j] / 0.125)) + 100;
          const std::int64_t expect = std::clamp<std::int64_t>(v, relu ? 100 : 0, 255);
          ASSERT_EQ(y[i * out + j], expect) << kernels.isa << " row " << i << " channel " << j;
        }
    }
}

/// Graph files keep the recorded ranges: a loaded graph compiles to the same integer model.
TEST(IntegerGraphTest, SavedGraphsKeepTheirRanges) {
  const std::vector<layer_data> d = model_data();
  const image_shape in{2, 6, 6, 3};
  const std::vector<float> x = squint_test::normal(in.size(), 0.0f, 1.0f, 61);
  nn::graph g = model(d, nn::native_backend());
  g.calibrate(x.data(), in, 2);
  const nn::graph back = nn::deserialize_graph(nn::serialize(g));
  for (std::size_t i = 0; i <= g.size(); ++i) EXPECT_EQ(back.range(i), g.range(i)) << i;
  std::vector<float> y(g.output_shape(in).size()), z(y.size());
  nn::integer_graph(g).forward(x.data(), in, y.data());
  nn::integer_graph(back).forward(x.data(), in, z.data());
  EXPECT_EQ(y, z);
  nn::graph grown = back;
  grown.add("more", nn::flatten{});
  EXPECT_FALSE(grown.range(0).has_value());  // ranges of a model that has changed are dropped
}

TEST(IntegerGraphTest, BadArgumentsThrow) {
  const std::vector<layer_data> d = model_data();
  const image_shape in{1, 6, 6, 3};
  const std::vector<float> x = squint_test::normal(in.size(), 0.0f, 1.0f, 41);
  EXPECT_THROW(nn::integer_graph{nn::graph{}}, squint::error);
  nn::graph g = model(d, nn::native_backend());
  g.calibrate(x.data(), in, 1);
  const nn::integer_graph q(g);
  std::vector<float> y(q.output_shape(in).size());
  EXPECT_THROW(q.forward(nullptr, in, y.data()), squint::error);
  EXPECT_THROW(q.forward(x.data(), in, nullptr), squint::error);
  EXPECT_THROW(q.forward(x.data(), {1, 5, 6, 3}, y.data()), squint::error);  // the add's inputs differ
  EXPECT_THROW(q.output_qparams(8), squint::error);
  EXPECT_THROW(g.range(9), squint::error);
  // An unfrozen static layer, and layers that are not int8_static, refuse full-integer calls.
  const auto w = squint_test::normal(8 * 27, 0.0f, 0.3f, 42);
  nn::conv2d_options o;
  o.mode = nn::precision::int8_static;
  nn::graph unfrozen;
  unfrozen.add("conv", nn::conv2d(w.data(), {8, 3, 3, 3}, filter_layout::oihw, params(1), nullptr, o));
  EXPECT_THROW(nn::integer_graph{unfrozen}, squint::error);
  std::vector<std::uint8_t> codes(in.size()), out(6 * 6 * 8);
  o.mode = nn::precision::int8_dynamic;
  const nn::conv2d dynamic(w.data(), {8, 3, 3, 3}, filter_layout::oihw, params(1), nullptr, o);
  EXPECT_THROW(dynamic.forward_codes(codes.data(), in, {0.1f, 0}, out.data()), squint::error);
  const nn::conv2d& frozen = std::get<nn::conv2d>(g.op(0));
  EXPECT_THROW(frozen.forward_codes(codes.data(), in, {0.0f, 0}, out.data()), squint::error);
  EXPECT_THROW(frozen.forward_codes(codes.data(), in, {0.1f, 256}, out.data()), squint::error);
  const nn::linear& fc = std::get<nn::linear>(g.op(7));
  EXPECT_THROW(fc.forward_codes(nullptr, 1, {0.1f, 0}, out.data()), squint::error);
  EXPECT_THROW(fc.forward_codes(codes.data(), 1, {0.1f, -1}, out.data()), squint::error);
}

}  // namespace nn_integer_test

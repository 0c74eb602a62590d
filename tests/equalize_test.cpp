// SPDX-License-Identifier: Apache-2.0
// equalize_test.cpp: cross-layer equalization (nn::cross_layer_equalize, qat::graph::equalize)
// keeps the function and balances the ranges it should, and leaves alone what it must; empirical
// bias correction (qat::graph::correct_bias) moves the quantized model's expected output onto the
// float model's.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <vector>

#include "squint/nn.hpp"
#include "squint/qat.hpp"
#include "support/data.hpp"

namespace equalize_test {

namespace {

namespace nn = squint::nn;
namespace qat = squint::qat;
using squint::conv2d_params;
using squint::image_shape;

/// A stack whose first layers' output channels span six orders of magnitude (as after BatchNorm
/// folding with very different channel variances), undone by the next layer.
std::vector<nn::float_layer> unbalanced_mlp() {
  std::vector<nn::float_layer> layers = {
      {squint_test::normal(24 * 16, 0.0f, 0.3f, 1), squint_test::normal(24, 0.0f, 0.1f, 2), 24, 16, nn::activation::relu},
      {squint_test::normal(12 * 24, 0.0f, 0.3f, 3), squint_test::normal(12, 0.0f, 0.1f, 4), 12, 24, nn::activation::relu},
      {squint_test::normal(5 * 12, 0.0f, 0.3f, 5), squint_test::normal(5, 0.0f, 0.1f, 6), 5, 12, nn::activation::none}};
  for (std::size_t l = 0; l < 2; ++l)
    for (std::size_t c = 0; c < layers[l].out; ++c) {
      const float s = std::pow(10.0f, static_cast<float>(c % 7) - 3.0f);
      for (std::size_t j = 0; j < layers[l].in; ++j) layers[l].weights[c * layers[l].in + j] *= s;
      layers[l].bias[c] *= s;
      for (std::size_t o = 0; o < layers[l + 1].out; ++o) layers[l + 1].weights[o * layers[l + 1].in + c] /= s;
    }
  return layers;
}

std::vector<float> fp32_forward(const std::vector<nn::float_layer>& layers, const std::vector<float>& x, std::size_t m) {
  nn::build_options o;
  o.mode = nn::precision::fp32;
  const nn::sequential model(layers, o);
  std::vector<float> y(m * layers.back().out);
  model.forward(x.data(), m, y.data());
  return y;
}

double mse(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) s += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
  return s / static_cast<double>(a.size());
}

void expect_close(const std::vector<float>& got, const std::vector<float>& want, float tol) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol * (1.0f + std::fabs(want[i]))) << i;
}

float row_range(const nn::float_layer& f, std::size_t c) {
  float r = 0.0f;
  for (std::size_t j = 0; j < f.in; ++j) r = std::max(r, std::fabs(f.weights[c * f.in + j]));
  return r;
}
float column_range(const nn::float_layer& f, std::size_t c) {
  float r = 0.0f;
  for (std::size_t o = 0; o < f.out; ++o) r = std::max(r, std::fabs(f.weights[o * f.in + c]));
  return r;
}

}  // namespace

TEST(EqualizeTest, StacksKeepTheirFunctionAndBalanceEachBoundary) {
  const std::vector<nn::float_layer> before = unbalanced_mlp();
  std::vector<nn::float_layer> after = before;
  const std::size_t sweeps = nn::cross_layer_equalize(after);
  EXPECT_GT(sweeps, 1u);
  EXPECT_LT(sweeps, 100u);
  const std::vector<float> x = squint_test::normal(32 * 16, 0.0f, 1.0f, 9);
  expect_close(fp32_forward(after, x, 32), fp32_forward(before, x, 32), 1e-4f);
  for (std::size_t l = 0; l < 2; ++l)
    for (std::size_t c = 0; c < after[l].out; ++c)
      EXPECT_NEAR(row_range(after[l], c) / column_range(after[l + 1], c), 1.0f, 2e-3f) << "layer " << l << " channel " << c;
}

TEST(EqualizeTest, PerTensorWeightsLoseFarLessAfterEqualization) {
  const std::vector<nn::float_layer> before = unbalanced_mlp();
  std::vector<nn::float_layer> after = before;
  nn::cross_layer_equalize(after);
  const std::vector<float> x = squint_test::normal(64 * 16, 0.0f, 1.0f, 10);
  const std::vector<float> reference = fp32_forward(before, x, 64);
  qat::qat_options o;
  o.weights->per_channel = false;
  o.activations = std::nullopt;
  auto error = [&](const std::vector<nn::float_layer>& layers) {
    const nn::sequential q = qat::prepare_qat(layers, o).convert();  // FP32 on per-tensor int8 weights
    std::vector<float> y(64 * 5);
    q.forward(x.data(), 64, y.data());
    return mse(y, reference);
  };
  EXPECT_LT(error(after), error(before) / 100.0);
}

TEST(EqualizeTest, DeadChannelsAndBadLayersAreLeftAlone) {
  std::vector<nn::float_layer> layers = unbalanced_mlp();
  layers.pop_back();  // one pair: layer 1's rows then move only with channel 3's scale
  for (std::size_t j = 0; j < 16; ++j) layers[0].weights[3 * 16 + j] = 0.0f;  // channel 3 is dead
  const std::vector<float> column3_before = [&] {
    std::vector<float> v;
    for (std::size_t o = 0; o < 12; ++o) v.push_back(layers[1].weights[o * 24 + 3]);
    return v;
  }();
  nn::cross_layer_equalize(layers);
  for (std::size_t o = 0; o < 12; ++o) EXPECT_EQ(layers[1].weights[o * 24 + 3], column3_before[o]);

  std::vector<nn::float_layer> bad = unbalanced_mlp();
  bad[1].in = 23;
  EXPECT_THROW(nn::cross_layer_equalize(bad), squint::error);
  bad = unbalanced_mlp();
  bad[2].bias.push_back(0.0f);
  const std::vector<nn::float_layer> untouched = bad;
  EXPECT_THROW(nn::cross_layer_equalize(bad), squint::error);
  EXPECT_EQ(bad[0].weights, untouched[0].weights);  // checked before anything moves
}

namespace {

qat::float_conv conv(std::size_t in_c, std::size_t out_c, std::size_t k, std::size_t groups, nn::activation act,
                     unsigned seed) {
  conv2d_params p;
  p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = k / 2;
  p.groups = groups;
  const squint::filter_shape f{out_c, in_c / groups, k, k};
  qat::float_conv c{squint_test::normal(out_c * f.taps() * f.group_channels, 0.0f, 0.4f, seed),
                    squint_test::normal(out_c, 0.0f, 0.1f, seed + 1), f, squint::filter_layout::ohwi, p, act};
  return c;
}

/// conv -> BN(ReLU) -> max pool -> depthwise (ReLU) -> 1x1 (ReLU) -> a residual add fed by the
/// 1x1 and by another 3x3 -> average pool -> flatten -> linear (ReLU) -> linear, with channel
/// ranges spread over four orders of magnitude by the BatchNorm.
qat::graph unbalanced_cnn() {
  qat::graph g;
  g.add("conv1", qat::conv2d(conv(2, 6, 3, 1, nn::activation::none, 20), std::nullopt, std::nullopt));
  qat::batch_norm_state bn = qat::identity_batch_norm(6, nn::activation::relu);
  bn.gamma = {1e-2f, 1.0f, 30.0f, 0.1f, 3.0f, 1e-3f};
  g.add("bn1", qat::batch_norm(bn));
  g.add("pool", nn::pool{});
  g.add("dw", qat::conv2d(conv(6, 6, 3, 6, nn::activation::relu, 22), std::nullopt, std::nullopt));
  g.add("pw", qat::conv2d(conv(6, 4, 1, 1, nn::activation::relu, 24), std::nullopt, std::nullopt));
  g.add("side", qat::conv2d(conv(4, 4, 3, 1, nn::activation::none, 26), std::nullopt, std::nullopt));
  g.add("sum", nn::add{true}, {"side", "pw"});
  nn::pool avg;
  avg.type = nn::pool::kind::average;
  g.add("avg", avg);
  g.add("flatten", nn::flatten{});
  g.add("fc1", qat::linear({squint_test::normal(8 * 16, 0.0f, 0.3f, 28), squint_test::normal(8, 0.0f, 0.1f, 29), 8, 16,
                            nn::activation::relu},
                           std::nullopt, std::nullopt));
  g.add("fc2", qat::linear({squint_test::normal(3 * 8, 0.0f, 0.3f, 30), squint_test::normal(3, 0.0f, 0.1f, 31), 3, 8,
                            nn::activation::none},
                           std::nullopt, std::nullopt));
  return g;
}

std::vector<float> evaluate(qat::graph& g, const std::vector<float>& x, const image_shape& in) {
  std::vector<float> y(g.shapes(in).back().size());
  g.forward(x.data(), in, y.data(), false);
  return y;
}

std::vector<float> weights_of(const qat::graph& g, std::size_t node) {
  if (const auto* c = std::get_if<qat::conv2d>(&g.op(node))) return c->float_layer().weights;
  return std::get<qat::linear>(g.op(node)).float_layer().weights;
}

}  // namespace

TEST(EqualizeTest, GraphsEqualizeThroughPoolingAndDepthwiseButNotIntoAnAdd) {
  qat::graph model = unbalanced_cnn();
  EXPECT_THROW(model.equalize(), squint::error);  // BatchNorm not folded yet
  qat::graph folded = model.folded();
  EXPECT_EQ(folded.size(), model.size() - 1);
  const image_shape in{3, 8, 8, 2};
  const std::vector<float> x = squint_test::normal(in.size(), 0.0f, 1.0f, 40);
  const std::vector<float> before = evaluate(folded, x, in);
  expect_close(before, evaluate(model, x, in), 1e-4f);
  // folded nodes: conv1 pool dw pw side sum avg flatten fc1 fc2
  const std::vector<float> side = weights_of(folded, 4), pw_before = weights_of(folded, 3);
  EXPECT_GT(folded.equalize(), 1u);
  expect_close(evaluate(folded, x, in), before, 1e-4f);
  EXPECT_EQ(weights_of(folded, 4), side);  // feeds the add: neither a producer nor a consumer
  EXPECT_NE(weights_of(folded, 3), pw_before);  // the depthwise layer's consumer
  // conv1 -> (pool) -> depthwise: each conv1 row's range now equals its depthwise filter's.
  const std::vector<float> c1 = weights_of(folded, 0), dw = weights_of(folded, 2);
  for (std::size_t c = 0; c < 6; ++c) {
    float r1 = 0.0f, r2 = 0.0f;
    for (std::size_t j = 0; j < 18; ++j) r1 = std::max(r1, std::fabs(c1[c * 18 + j]));
    for (std::size_t t = 0; t < 9; ++t) r2 = std::max(r2, std::fabs(dw[c * 9 + t]));
    EXPECT_NEAR(r1 / r2, 1.0f, 2e-3f) << c;
  }
}

TEST(EqualizeTest, AFlattenMapsEachChannelToItsColumnsInEveryPixel) {
  qat::graph g;
  qat::float_conv c = conv(2, 3, 3, 1, nn::activation::relu, 60);
  for (std::size_t j = 0; j < 18; ++j) c.weights[2 * 18 + j] *= 1e3f;  // channel 2 is 1000x the others
  g.add("conv", qat::conv2d(c, std::nullopt, std::nullopt));
  g.add("pool", nn::pool{});
  g.add("flatten", nn::flatten{});
  g.add("fc", qat::linear({squint_test::normal(4 * 12, 0.0f, 0.3f, 61), {}, 4, 12, nn::activation::none}, std::nullopt,
                          std::nullopt));
  const image_shape in{2, 4, 4, 2};
  const std::vector<float> x = squint_test::normal(in.size(), 0.0f, 1.0f, 62);
  const std::vector<float> before = evaluate(g, x, in);
  g.equalize();
  expect_close(evaluate(g, x, in), before, 1e-4f);
  const std::vector<float> w = weights_of(g, 0), fc = weights_of(g, 3);
  for (std::size_t ch = 0; ch < 3; ++ch) {
    float r1 = 0.0f, r2 = 0.0f;
    for (std::size_t j = 0; j < 18; ++j) r1 = std::max(r1, std::fabs(w[ch * 18 + j]));
    for (std::size_t o = 0; o < 4; ++o)
      for (std::size_t p = 0; p < 4; ++p) r2 = std::max(r2, std::fabs(fc[o * 12 + p * 3 + ch]));  // NHWC columns
    EXPECT_NEAR(r1 / r2, 1.0f, 1e-3f) << ch;
  }
}

TEST(EqualizeTest, BiasCorrectionMatchesTheFloatModelsExpectedOutput) {
  qat::graph reference = unbalanced_cnn().folded();
  qat::qat_options o;
  o.weights->bits = 3;
  o.weights->per_channel = false;
  o.weights->range = nn::int8_weight_range::full;
  o.activations->observer = nn::observers::min_max();
  qat::graph q = qat::prepare_qat(reference, o);
  const image_shape in{16, 8, 8, 2};
  const std::vector<float> x = squint_test::normal(in.size(), 0.0f, 1.0f, 50);
  const std::vector<float> want = evaluate(reference, x, in);
  evaluate(q, x, in);  // calibrates the observers
  auto mean_gap = [&](const std::vector<float>& y) {
    double worst = 0.0;
    for (std::size_t c = 0; c < 3; ++c) {
      double gap = 0.0;
      for (std::size_t n = 0; n < in.batch; ++n) gap += static_cast<double>(want[n * 3 + c]) - y[n * 3 + c];
      worst = std::max(worst, std::fabs(gap / static_cast<double>(in.batch)));
    }
    return worst;
  };
  const double gap_before = mean_gap(evaluate(q, x, in));
  EXPECT_GT(q.correct_bias(reference, x.data(), in, 5), 0.0f);
  const double gap_after = mean_gap(evaluate(q, x, in));
  // The last layer has no activation: its expected output is the float model's, but for rounding.
  EXPECT_LT(gap_after, 1e-4);
  EXPECT_GT(gap_before, 100 * gap_after);
  const nn::graph deployed = q.convert();
  std::vector<float> z(want.size());
  deployed.forward(x.data(), in, z.data());
  EXPECT_EQ(z, evaluate(q, x, in));  // the corrected biases deploy bit for bit

  qat::graph other = unbalanced_cnn();  // with its BatchNorm: another structure
  EXPECT_THROW(q.correct_bias(other, x.data(), in), squint::error);
  EXPECT_THROW(q.correct_bias(reference, x.data(), in, 0), squint::error);
}

}  // namespace equalize_test

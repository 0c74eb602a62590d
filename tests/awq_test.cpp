// SPDX-License-Identifier: Apache-2.0
// awq_test.cpp: nn::apply_awq. The scaled float model computes the same function; the search
// never does worse than RTN on its data and does clearly better where a few input channels carry
// large activations (what AWQ is for), which the built int4 models show on held-out rows too;
// the first layer is left alone; bad arguments change nothing.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "squint/dispatch.hpp"
#include "squint/nn.hpp"
#include "support/data.hpp"

namespace awq_test {

namespace {

using squint::nn::activation;
using squint::nn::float_layer;
using squint::nn::precision;

/// 64 -> 96 (ReLU) -> 48 (ReLU) -> 10, where 6 of the first layer's outputs run 40x larger.
std::vector<float_layer> outlier_mlp() {
  std::vector<float_layer> layers(3);
  const std::size_t sizes[] = {64, 96, 48, 10};
  for (std::size_t l = 0; l < 3; ++l) {
    float_layer& f = layers[l];
    f.in = sizes[l];
    f.out = sizes[l + 1];
    f.weights = squint_test::normal(f.out * f.in, 0.0f, 1.0f / std::sqrt(static_cast<float>(f.in)), static_cast<unsigned>(l + 1));
    f.bias = squint_test::normal(f.out, 0.1f, 0.05f, static_cast<unsigned>(l + 10));
    f.act = l < 2 ? activation::relu : activation::none;
  }
  for (std::size_t j = 0; j < 96; j += 16) {
    for (std::size_t i = 0; i < 64; ++i) layers[0].weights[j * 64 + i] *= 40.0f;
    layers[0].bias[j] = std::fabs(layers[0].bias[j]) * 40.0f;
  }
  return layers;
}

std::vector<float> run(const std::vector<float_layer>& layers, precision mode, const std::vector<float>& x,
                       std::size_t rows) {
  squint::nn::build_options o;
  o.mode = mode;
  o.kernels = squint::runtime::backend();
  const squint::nn::sequential model(layers, o);
  std::vector<float> y(rows * layers.back().out);
  model.forward(x.data(), rows, y.data());
  return y;
}

double mse(const std::vector<float>& a, const std::vector<float>& b) {
  double sum = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) sum += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
  return sum / static_cast<double>(a.size());
}

TEST(Awq, KeepsTheFunctionAndBeatsRoundToNearest) {
  const auto original = outlier_mlp();
  auto layers = original;
  const std::size_t rows = 256, held_out = 200;
  const auto x = squint_test::normal(rows * 64, 0.0f, 1.0f, 21);
  const auto test = squint_test::normal(held_out * 64, 0.0f, 1.0f, 22);
  squint::nn::awq_options o;
  o.group = 16;
  o.kernels = squint::runtime::backend();
  const auto report = squint::nn::apply_awq(layers, x.data(), rows, o);
  ASSERT_EQ(report.size(), 3u);
  EXPECT_FALSE(report[0].scaled);
  EXPECT_EQ(report[0].alpha, 0.0f);
  EXPECT_EQ(layers[0].in, original[0].in);
  for (const auto& r : report) EXPECT_LE(r.mse_awq, r.mse_rtn) << r.layer;
  // Layer 1 sees the outlier channels: its int4 output error drops well below RTN's.
  EXPECT_TRUE(report[1].scaled);
  EXPECT_GT(report[1].alpha, 0.0f);
  EXPECT_LT(report[1].mse_awq, 0.5 * report[1].mse_rtn);
  // The same function in float, up to rounding.
  const auto before = run(original, precision::fp32, test, held_out), after = run(layers, precision::fp32, test, held_out);
  for (std::size_t i = 0; i < before.size(); ++i) ASSERT_NEAR(after[i], before[i], 1e-3 * (1.0 + std::fabs(before[i])));
  // Built in int4 (weight-only and W4A8), the scaled model is closer to FP32 on rows it never saw.
  for (precision mode : {precision::int4_weight_only, precision::int4_dynamic}) {
    const double rtn = mse(run(original, mode, test, held_out), before);
    const double awq = mse(run(layers, mode, test, held_out), before);
    EXPECT_LT(awq, 0.8 * rtn) << squint::nn::to_string(mode);
  }
}

TEST(Awq, BadArgumentsChangeNothing) {
  const auto original = outlier_mlp();
  auto layers = original;
  const auto x = squint_test::normal(8 * 64, 0.0f, 1.0f, 3);
  squint::nn::awq_options o;
  o.group = 24;
  EXPECT_THROW(squint::nn::apply_awq(layers, x.data(), 8, o), squint::error);
  o.group = 32;
  o.grid = 0;
  EXPECT_THROW(squint::nn::apply_awq(layers, x.data(), 8, o), squint::error);
  EXPECT_THROW(squint::nn::apply_awq(layers, nullptr, 8), squint::error);
  layers[1].in = 63;
  EXPECT_THROW(squint::nn::apply_awq(layers, x.data(), 8), squint::error);
  layers[1].in = 96;
  for (std::size_t l = 0; l < 3; ++l) {
    EXPECT_EQ(layers[l].weights, original[l].weights);
    EXPECT_EQ(layers[l].bias, original[l].bias);
  }
  std::vector<float_layer> none;
  EXPECT_THROW(squint::nn::apply_awq(none, x.data(), 8), squint::error);
}

}  // namespace

}  // namespace awq_test

// SPDX-License-Identifier: Apache-2.0
// gptq_test.cpp: nn::gptq and linear::from_int4. The inverse-Hessian factor against its
// definition; GPTQ's layer output error below RTN's on its calibration data and the built int4
// models (weight-only and W4A8) closer to FP32 than RTN's on held-out rows; external int4 codes
// run exactly; lazy blocks change no code; act-order is independent of the inputs' order and
// beats the natural one on inputs of unequal energy; bad arguments are refused.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "squint/dispatch.hpp"
#include "squint/nn.hpp"
#include "support/data.hpp"

namespace gptq_test {

namespace {

using squint::nn::activation;
using squint::nn::float_layer;
using squint::nn::precision;

TEST(Gptq, InverseHessianFactor) {
  const std::size_t n = 9;
  const auto a = squint_test::normal(n * n, 0.0f, 1.0f, 4);
  std::vector<double> h(n * n, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      for (std::size_t k = 0; k < n; ++k) h[i * n + j] += static_cast<double>(a[i * n + k]) * a[j * n + k];
      if (i == j) h[i * n + j] += 0.5;
    }
  const auto u = squint::nn::detail::inverse_hessian_factor(h, n);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < i; ++j) ASSERT_EQ(u[i * n + j], 0.0) << "upper triangular";
  for (std::size_t i = 0; i < n; ++i) ASSERT_GT(u[i * n + i], 0.0) << "Cholesky's factor: a positive diagonal";
  // (U^T U) H = I.
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      double v = 0.0;
      for (std::size_t k = 0; k < n; ++k) {
        double hinv = 0.0;
        for (std::size_t t = 0; t < n; ++t) hinv += u[t * n + i] * u[t * n + k];
        v += hinv * h[k * n + j];
      }
      ASSERT_NEAR(v, i == j ? 1.0 : 0.0, 1e-9) << i << "," << j;
    }
  std::vector<double> singular(n * n, 0.0);
  EXPECT_THROW(squint::nn::detail::inverse_hessian_factor(singular, n), squint::error);
}

/// 48 -> 64 (ReLU) -> 10 on inputs mixed so that they correlate (what GPTQ exploits).
std::vector<float_layer> mlp() {
  std::vector<float_layer> layers(2);
  layers[0] = {squint_test::normal(64 * 48, 0.0f, 0.15f, 1), squint_test::normal(64, 0.1f, 0.05f, 2), 64, 48,
               activation::relu};
  layers[1] = {squint_test::normal(10 * 64, 0.0f, 0.12f, 3), squint_test::normal(10, 0.0f, 0.1f, 4), 10, 64,
               activation::none};
  return layers;
}

std::vector<float> correlated_rows(std::size_t rows, unsigned seed) {
  const auto z = squint_test::normal(rows * 8, 0.0f, 1.0f, seed);
  const auto mix = squint_test::normal(8 * 48, 0.0f, 1.0f, 99);
  const auto noise = squint_test::normal(rows * 48, 0.0f, 0.05f, seed + 1);
  std::vector<float> x(rows * 48);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t i = 0; i < 48; ++i) {
      float v = noise[r * 48 + i];
      for (std::size_t t = 0; t < 8; ++t) v += z[r * 8 + t] * mix[t * 48 + i];
      x[r * 48 + i] = v;
    }
  return x;
}

double error_vs(const squint::nn::sequential& model, const squint::nn::sequential& fp32, const std::vector<float>& x,
                std::size_t rows) {
  std::vector<float> y(rows * 10), ref(rows * 10);
  model.forward(x.data(), rows, y.data());
  fp32.forward(x.data(), rows, ref.data());
  double sum = 0.0;
  for (std::size_t i = 0; i < y.size(); ++i) sum += (static_cast<double>(y[i]) - ref[i]) * (y[i] - ref[i]);
  return sum / static_cast<double>(y.size());
}

TEST(Gptq, BeatsRoundToNearestOnCorrelatedInputs) {
  const auto layers = mlp();
  const auto x = correlated_rows(400, 10), test = correlated_rows(300, 20);
  const auto kernels = squint::runtime::backend();
  const squint::nn::sequential fp32(layers, {precision::fp32, {}, false, std::nullopt, kernels});
  for (precision mode : {precision::int4_weight_only, precision::int4_dynamic}) {
    squint::nn::gptq_options o;
    o.mode = mode;
    o.group = 16;
    o.kernels = kernels;
    const squint::nn::gptq_result g = squint::nn::gptq(layers, x.data(), 400, o);
    ASSERT_EQ(g.layers.size(), 2u);
    ASSERT_EQ(g.model.size(), 2u);
    EXPECT_EQ(g.model[0].mode(), mode);
    for (const auto& r : g.layers) EXPECT_LT(r.mse_gptq, 0.5 * r.mse_rtn) << "layer " << r.layer;
    squint::nn::build_options b;
    b.mode = mode;
    b.int4_group = 16;
    b.kernels = kernels;
    const squint::nn::sequential rtn(layers, b);
    EXPECT_LT(error_vs(g.model, fp32, test, 300), 0.5 * error_vs(rtn, fp32, test, 300)) << squint::nn::to_string(mode);
    // The model saves and loads as any int4 model.
    const auto loaded = squint::nn::deserialize(squint::nn::serialize(g.model), kernels);
    EXPECT_EQ(loaded[1].weights(), g.model[1].weights());
  }
}

/// The output MSE of w (out x in) quantized by `q` on the inputs x (rows x in), against w.
double output_mse(const std::vector<float>& w, const squint::detail::group_codes& q, std::size_t out, std::size_t in,
                  std::size_t group, const std::vector<float>& x, std::size_t rows) {
  const std::size_t groups = (in + group - 1) / group;
  double sum = 0.0;
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t j = 0; j < out; ++j) {
      double d = 0.0;
      for (std::size_t i = 0; i < in; ++i)
        d += (static_cast<double>(q.codes[j * in + i]) * q.scales[j * groups + i / group] - w[j * in + i]) *
             x[r * in + i];
      sum += d * d;
    }
  return sum / static_cast<double>(rows * out);
}

/// Lazy batches reorder nothing an update touches: any block gives the same codes and scales.
TEST(Gptq, LazyBlocksGiveTheSameCodes) {
  const std::size_t out = 24, in = 48, rows = 300;
  const auto w = squint_test::normal(out * in, 0.0f, 0.2f, 30);
  const auto x = correlated_rows(rows, 31);
  for (bool act_order : {false, true}) {
    squint::nn::gptq_options o;
    o.group = 16;
    o.act_order = act_order;
    o.block = 1000;  // one block
    const auto whole = squint::nn::detail::gptq_codes(w, out, in, x.data(), rows, o);
    for (std::size_t block : {1u, 16u, 32u, 40u}) {  // 1 and 40 round to whole groups (16, 32)
      o.block = block;
      const auto blocked = squint::nn::detail::gptq_codes(w, out, in, x.data(), rows, o);
      EXPECT_EQ(blocked.codes, whole.codes) << block << " " << act_order;
      EXPECT_EQ(blocked.scales, whole.scales) << block << " " << act_order;
    }
  }
}

/// Act-order quantizes by input energy, not by position: permuting the inputs (and the weights'
/// columns alike) permutes the codes; its group scales are the float weights' (static groups);
/// and on inputs of very unequal energy it beats the natural order.
TEST(Gptq, ActOrderFollowsTheInputsNotTheirOrder) {
  const std::size_t out = 16, in = 48, rows = 400;
  const auto w = squint_test::normal(out * in, 0.0f, 0.2f, 32);
  auto x = correlated_rows(rows, 33);
  for (std::size_t i = 0; i < in; ++i) {  // energies from 1 to ~40, in no order
    const float gain = 1.0f + static_cast<float>((i * 37) % in) * 0.8f;
    for (std::size_t r = 0; r < rows; ++r) x[r * in + i] *= gain;
  }
  squint::nn::gptq_options o;
  o.group = in;  // one group: a permutation keeps group membership
  o.act_order = true;
  const auto q = squint::nn::detail::gptq_codes(w, out, in, x.data(), rows, o);
  std::vector<std::size_t> perm(in);
  for (std::size_t i = 0; i < in; ++i) perm[i] = (i * 29 + 5) % in;  // 29 is coprime to 48
  std::vector<float> wp(out * in), xp(rows * in);
  for (std::size_t i = 0; i < in; ++i) {
    for (std::size_t j = 0; j < out; ++j) wp[j * in + i] = w[j * in + perm[i]];
    for (std::size_t r = 0; r < rows; ++r) xp[r * in + i] = x[r * in + perm[i]];
  }
  const auto qp = squint::nn::detail::gptq_codes(wp, out, in, xp.data(), rows, o);
  for (std::size_t j = 0; j < out; ++j) {
    for (std::size_t i = 0; i < in; ++i) ASSERT_EQ(qp.codes[j * in + i], q.codes[j * in + perm[i]]) << j << " " << i;
    float amax = 0.0f;
    for (std::size_t i = 0; i < in; ++i) amax = std::max(amax, std::fabs(w[j * in + i]));
    EXPECT_EQ(q.scales[j], amax / 7.0f);
    EXPECT_EQ(qp.scales[j], q.scales[j]);
  }
  o.group = 16;
  const auto error_of = [&](bool act_order) {
    o.act_order = act_order;
    return output_mse(w, squint::nn::detail::gptq_codes(w, out, in, x.data(), rows, o), out, in, 16, x, rows);
  };
  const double ordered = error_of(true), natural = error_of(false);
  EXPECT_LT(ordered, natural);
}

TEST(Gptq, ExternalInt4CodesRunExactlyAndArgumentsAreChecked) {
  const std::size_t out = 20, in = 40, group = 16, groups = 3;
  const auto codes = squint_test::uniform_ints<std::int8_t>(out * in, -8, 7, 5);
  std::vector<float> scales(out * groups);
  for (std::size_t s = 0; s < scales.size(); ++s) scales[s] = 0.01f * static_cast<float>(s % 7 + 1);
  const auto x = squint_test::normal(3 * in, 0.0f, 1.0f, 6);
  squint::nn::linear_options o;
  o.mode = precision::int4_weight_only;
  const auto layer = squint::nn::linear::from_int4(codes.data(), out, in, in, group, scales, nullptr, o);
  const auto w = layer.weights();
  for (std::size_t j = 0; j < out; ++j)
    for (std::size_t i = 0; i < in; ++i) ASSERT_EQ(w[j * in + i], codes[j * in + i] * scales[j * groups + i / group]);
  std::vector<float> y(3 * out), expect(3 * out);
  layer.forward(x.data(), 3, y.data());
  squint::gemm_int4(x.data(), 3, in, squint::packed_int4_weights::from_int4(codes.data(), out, in, in, group, scales),
                    nullptr, false, expect.data(), out);
  EXPECT_EQ(y, expect);
  o.mode = precision::int8_dynamic;
  EXPECT_THROW(squint::nn::linear::from_int4(codes.data(), out, in, in, group, scales, nullptr, o), squint::error);
  o.mode = precision::int4_dynamic;
  EXPECT_THROW(squint::nn::linear::from_int4(codes.data(), out, in, in, 24, scales, nullptr, o), squint::error);

  const auto layers = mlp();
  const auto rows = correlated_rows(8, 1);
  squint::nn::gptq_options g;
  EXPECT_THROW(squint::nn::gptq(layers, nullptr, 8, g), squint::error);
  EXPECT_THROW(squint::nn::gptq(layers, rows.data(), 0, g), squint::error);
  g.group = 20;
  EXPECT_THROW(squint::nn::gptq(layers, rows.data(), 8, g), squint::error);
  g.group = 32;
  g.mode = precision::fp16;
  EXPECT_THROW(squint::nn::gptq(layers, rows.data(), 8, g), squint::error);
  g.mode = precision::int4_weight_only;
  g.damp = -1.0;
  EXPECT_THROW(squint::nn::gptq(layers, rows.data(), 8, g), squint::error);
  g.damp = 0.01;
  g.block = 0;
  EXPECT_THROW(squint::nn::gptq(layers, rows.data(), 8, g), squint::error);
  auto broken = layers;
  broken[1].in = 63;
  EXPECT_THROW(squint::nn::gptq(broken, rows.data(), 8), squint::error);
}

}  // namespace

}  // namespace gptq_test

// SPDX-License-Identifier: Apache-2.0
// qat_cnn_test.cpp: training CNNs — qat::conv2d, qat::batch_norm and qat::graph gradients against
// finite differences, the converted model's outputs bit for bit against the QAT forward, BatchNorm
// folding, and bad arguments.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "squint/qat.hpp"
#include "support/data.hpp"

namespace qat_cnn_test {

namespace {

namespace nn = squint::nn;
namespace qat = squint::qat;
using squint::conv2d_params;
using squint::filter_shape;
using squint::image_shape;

/// A random float convolution, OHWI, with a bias.
qat::float_conv random_conv(std::size_t in_c, std::size_t out_c, std::size_t k, const conv2d_params& p,
                            nn::activation act = nn::activation::none, unsigned seed = 3) {
  const filter_shape f{out_c, in_c / p.groups, k, k};
  return {squint_test::normal(out_c * f.taps() * f.group_channels, 0.0f, 0.4f, seed),
          squint_test::normal(out_c, 0.0f, 0.1f, seed + 1), f, squint::filter_layout::ohwi, p, act};
}

conv2d_params padded(std::size_t pad, std::size_t stride = 1, std::size_t groups = 1, std::size_t dilation = 1) {
  conv2d_params p;
  p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = pad;
  p.stride_h = p.stride_w = stride;
  p.dilation_h = p.dilation_w = dilation;
  p.groups = groups;
  return p;
}

double dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

/// Checks `grad` against central differences of loss() in the values of `value` (every
/// `stride`-th one): |fd - grad| <= tol * (1 + |grad|).
template <class Loss>
void expect_gradient(const char* what, float* value, const float* grad, std::size_t n, Loss loss, float h, double tol,
                     std::size_t stride = 1) {
  for (std::size_t i = 0; i < n; i += stride) {
    const float keep = value[i];
    value[i] = keep + h;
    const double up = loss();
    value[i] = keep - h;
    const double down = loss();
    value[i] = keep;
    const double fd = (up - down) / (2.0 * static_cast<double>(h));
    EXPECT_NEAR(fd, grad[i], tol * (1.0 + std::fabs(grad[i]))) << what << " element " << i;
  }
}

/// As expect_gradient for a piecewise-linear loss: values where a step crosses a kink (the
/// slopes before and after differ) are skipped; returns how many were checked.
template <class Loss>
std::size_t expect_piecewise_gradient(const char* what, float* value, const float* grad, std::size_t n, Loss loss,
                                      float h, double tol) {
  std::size_t checked = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const float keep = value[i];
    const double center = loss();
    value[i] = keep + h;
    const double up = (loss() - center) / static_cast<double>(h);
    value[i] = keep - h;
    const double down = (center - loss()) / static_cast<double>(h);
    value[i] = keep;
    if (std::fabs(up - down) > tol * (1.0 + std::fabs(grad[i]))) continue;
    ++checked;
    EXPECT_NEAR(0.5 * (up + down), grad[i], tol * (1.0 + std::fabs(grad[i]))) << what << " element " << i;
  }
  return checked;
}

/// A convolution's parameter and input gradients against finite differences of sum(r . y).
void check_conv_gradients(const qat::float_conv& f, const image_shape& in) {
  qat::conv2d layer(f, std::nullopt, std::nullopt);
  std::vector<float> x = squint_test::normal(in.size(), 0.0f, 1.0f, 11);
  const image_shape out = layer.output_shape(in);
  const std::vector<float> r = squint_test::normal(out.size(), 0.0f, 1.0f, 12);
  std::vector<float> y(out.size()), dx(in.size());
  layer.forward(x.data(), in, y.data());
  layer.backward(r.data(), dx.data());
  std::vector<float> w_grad(layer.parameters()[0].grad, layer.parameters()[0].grad + layer.parameters()[0].size);
  std::vector<float> b_grad(layer.parameters()[1].grad, layer.parameters()[1].grad + layer.parameters()[1].size);
  auto loss = [&]() {
    std::vector<float> z(out.size());
    layer.forward(x.data(), in, z.data());
    return dot(z, r);
  };
  // Linear in each value: any step is exact up to rounding.
  const std::vector<qat::parameter> p = layer.parameters();
  expect_gradient("dW", p[0].value, w_grad.data(), p[0].size, loss, 0.5f, 2e-3);
  expect_gradient("db", p[1].value, b_grad.data(), p[1].size, loss, 0.5f, 2e-3);
  expect_gradient("dx", x.data(), dx.data(), x.size(), loss, 0.5f, 2e-3);
}

}  // namespace

TEST(QatConvTest, Fp32GradientsMatchFiniteDifferences) {
  check_conv_gradients(random_conv(3, 4, 3, padded(1)), {2, 5, 6, 3});
  check_conv_gradients(random_conv(4, 6, 3, padded(1, 2, 2)), {1, 7, 5, 4});  // stride 2, two groups
  check_conv_gradients(random_conv(2, 3, 3, padded(2, 1, 1, 2)), {1, 6, 6, 2});  // dilation 2
  check_conv_gradients(random_conv(4, 4, 3, padded(1, 1, 4)), {2, 4, 4, 4});  // depthwise
  check_conv_gradients(random_conv(5, 3, 1, padded(0)), {1, 3, 3, 5});  // pointwise
}

TEST(QatConvTest, ReluMasksTheGradientAndBiaslessLayersHaveNone) {
  qat::float_conv f = random_conv(2, 3, 3, padded(1), nn::activation::relu);
  f.bias.clear();
  qat::conv2d layer(f, std::nullopt, std::nullopt);
  const image_shape in{1, 4, 4, 2};
  const std::vector<float> x = squint_test::normal(in.size(), 0.0f, 1.0f, 5);
  std::vector<float> y(layer.output_shape(in).size()), dx(in.size());
  const std::vector<float> ones(y.size(), 1.0f);
  layer.forward(x.data(), in, y.data());
  layer.backward(ones.data(), dx.data());
  EXPECT_EQ(layer.parameters().size(), 1u);
  // dW = sum over outputs with y > 0 of their windows: recompute from scratch.
  std::vector<float> expect(f.weights.size(), 0.0f);
  const std::size_t depth = 9 * 2;
  for (std::size_t oy = 0; oy < 4; ++oy)
    for (std::size_t ox = 0; ox < 4; ++ox)
      for (std::size_t o = 0; o < 3; ++o) {
        if (!(y[(oy * 4 + ox) * 3 + o] > 0.0f)) continue;
        for (std::size_t t = 0; t < 9; ++t) {
          const std::size_t iy = oy + t / 3, ix = ox + t % 3;
          if (iy < 1 || ix < 1 || iy > 4 || ix > 4) continue;
          for (std::size_t c = 0; c < 2; ++c) expect[o * depth + t * 2 + c] += x[((iy - 1) * 4 + ix - 1) * 2 + c];
        }
      }
  const qat::parameter w = layer.parameters()[0];
  for (std::size_t i = 0; i < expect.size(); ++i) EXPECT_NEAR(w.grad[i], expect[i], 1e-5f) << i;
}

namespace {

/// Four SGD steps of `layer` on random images of shape `in`, random output gradients.
void sgd_steps(qat::conv2d& layer, const image_shape& in) {
  qat::sgd opt(0.9f);
  std::vector<float> y(layer.output_shape(in).size()), dx(in.size());
  for (unsigned step = 0; step < 4; ++step) {
    const std::vector<float> x = squint_test::normal(in.size(), 0.5f, 1.0f, 20 + step);
    layer.forward(x.data(), in, y.data());
    const std::vector<float> dy = squint_test::normal(y.size(), 0.0f, 1.0f, 40 + step);
    layer.backward(dy.data(), dx.data());
    opt.step(layer.parameters(), 0.01f);
  }
}

/// layer's forward on one more image, bit for bit against its convert() in `mode`.
void expect_converts_exactly(qat::conv2d& layer, const image_shape& in, nn::precision mode) {
  const std::vector<float> x = squint_test::normal(in.size(), 0.5f, 1.0f, 99);
  std::vector<float> y(layer.output_shape(in).size()), z(y.size());
  layer.forward(x.data(), in, y.data());
  const nn::conv2d deployed = layer.convert(nn::native_backend());
  EXPECT_EQ(deployed.mode(), mode);
  deployed.forward(x.data(), in, z.data());
  EXPECT_EQ(0, std::memcmp(y.data(), z.data(), y.size() * sizeof(float))) << nn::to_string(mode);
}

}  // namespace

TEST(QatConvTest, ConvertedLayerGivesTheQatForwardBitForBit) {
  for (int bits : {8, 4, 2}) {
    qat::weight_quant wq;
    wq.bits = bits;
    qat::conv2d layer(random_conv(3, 8, 3, padded(1, 2)), wq, qat::activation_quant{});
    sgd_steps(layer, {2, 9, 7, 3});
    layer.freeze_observer();
    expect_converts_exactly(layer, {2, 9, 7, 3}, nn::precision::int8_static);
  }
}

/// Weights quantized per group run on the int4 convolution they convert to — W4A8 with per-row
/// input codes, weight-only without — bit for bit after training steps, grouped convolutions and
/// short last groups included.
TEST(QatConvTest, GroupedWeightsConvertToTheInt4ConvolutionsExactly) {
  for (bool per_row : {true, false})
    for (int bits : {4, 2}) {
      qat::weight_quant wq{bits, true, nn::int8_weight_range::full, bits == 2, 16};
      std::optional<qat::activation_quant> aq;
      if (per_row) aq.emplace(), aq->per_row = true;
      qat::conv2d layer(random_conv(6, 8, 3, padded(1, 2, 2)), wq, aq);  // 2 groups, depth 27: 16 + 11
      sgd_steps(layer, {2, 9, 7, 6});
      expect_converts_exactly(layer, {2, 9, 7, 6},
                              per_row ? nn::precision::int4_dynamic : nn::precision::int4_weight_only);
    }
}

/// A 1x1 convolution's im2col rows are its pixels: with grouped weights and per-row codes it is
/// qat::linear on the pixels — the same outputs and, but for summation order, the same gradients.
TEST(QatConvTest, PerRowCodesOnAOneByOneConvolutionAreTheLinearLayers) {
  const qat::float_conv f = random_conv(40, 6, 1, padded(0), nn::activation::none, 50);
  const qat::weight_quant wq{2, true, nn::int8_weight_range::full, false, 16};
  qat::activation_quant aq;
  aq.per_row = true;
  qat::conv2d conv(f, wq, aq);
  qat::linear lin({f.weights, f.bias, 6, 40, nn::activation::none}, wq, aq);
  const image_shape in{2, 3, 5, 40};
  std::vector<float> x = squint_test::normal(in.size(), 0.0f, 1.0f, 51);
  x[17] = std::numeric_limits<float>::infinity();
  std::vector<float> y(30 * 6), z(30 * 6), dxc(in.size()), dxl(in.size());
  conv.forward(x.data(), in, y.data());
  lin.forward(x.data(), 30, z.data());
  EXPECT_EQ(0, std::memcmp(y.data(), z.data(), y.size() * sizeof(float)));
  const std::vector<float> dy = squint_test::normal(y.size(), 0.0f, 1.0f, 52);
  conv.backward(dy.data(), dxc.data());
  lin.backward(dy.data(), dxl.data());
  const std::vector<qat::parameter> pc = conv.parameters(), pl = lin.parameters();
  for (std::size_t i = 0; i < f.weights.size(); ++i) EXPECT_NEAR(pc[0].grad[i], pl[0].grad[i], 1e-4f) << i;
  for (std::size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(dxc[i], dxl[i], 1e-4f) << i;
  EXPECT_EQ(dxc[17], 0.0f);  // not finite: no gradient
}

TEST(QatConvTest, FakeQuantizedInputPassesTheGradientOnlyInsideItsRange) {
  qat::activation_quant aq;
  aq.observer = nn::observers::min_max();
  qat::conv2d layer(random_conv(1, 2, 1, padded(0)), qat::weight_quant{}, aq);
  const image_shape in{1, 1, 4, 1};
  std::vector<float> x = {-1.0f, 0.0f, 0.5f, 1.0f}, y(8), dx(4);
  layer.forward(x.data(), in, y.data());
  layer.freeze_observer();
  x = {-2.0f, 0.25f, 0.5f, 3.0f};  // the ends fall outside the frozen range [-1, 1]
  layer.forward(x.data(), in, y.data());
  const std::vector<float> dy(8, 1.0f);
  layer.backward(dy.data(), dx.data());
  EXPECT_EQ(dx[0], 0.0f);
  EXPECT_EQ(dx[3], 0.0f);
  EXPECT_NE(dx[1], 0.0f);
  EXPECT_NE(dx[2], 0.0f);
}

TEST(QatBatchNormTest, TrainingAndEvaluationGradientsMatchFiniteDifferences) {
  for (bool training : {true, false}) {
    qat::batch_norm_state s = qat::identity_batch_norm(3);
    s.gamma = {1.5f, 0.5f, -1.0f};
    s.beta = {0.1f, -0.2f, 0.3f};
    s.running_mean = {0.2f, -0.1f, 0.4f};
    s.running_var = {0.8f, 1.2f, 2.0f};
    s.momentum = 0.0f;  // the statistics stay put while differencing
    qat::batch_norm bn(s);
    const image_shape in{2, 3, 2, 3};
    std::vector<float> x = squint_test::normal(in.size(), 0.3f, 1.5f, 8);
    const std::vector<float> r = squint_test::normal(in.size(), 0.0f, 1.0f, 9);
    std::vector<float> y(in.size()), dx(in.size());
    bn.forward(x.data(), in, y.data(), training);
    bn.backward(r.data(), dx.data());
    std::vector<qat::parameter> p = bn.parameters();
    const std::vector<float> dgamma(p[0].grad, p[0].grad + 3), dbeta(p[1].grad, p[1].grad + 3);
    auto loss = [&]() {
      std::vector<float> z(in.size());
      bn.forward(x.data(), in, z.data(), training);
      return dot(z, r);
    };
    expect_gradient("dgamma", p[0].value, dgamma.data(), 3, loss, 1e-2f, 1e-3);
    expect_gradient("dbeta", p[1].value, dbeta.data(), 3, loss, 1e-2f, 1e-3);
    expect_gradient(training ? "dx (batch statistics)" : "dx (running statistics)", x.data(), dx.data(), x.size(), loss,
                    1e-2f, 5e-3);
  }
}

TEST(QatBatchNormTest, RunningStatisticsFollowPyTorch) {
  qat::batch_norm bn(qat::identity_batch_norm(2, nn::activation::relu));
  const image_shape in{1, 2, 2, 2};
  const std::vector<float> x = {1, 10, 2, 20, 3, 30, 6, 40};
  std::vector<float> y(8);
  bn.forward(x.data(), in, y.data(), true);
  // mean (3, 25); biased variance (3.5, 125), unbiased (14/3, 500/3).
  const qat::batch_norm_state& s = bn.state();
  EXPECT_FLOAT_EQ(s.running_mean[0], 0.3f);
  EXPECT_FLOAT_EQ(s.running_mean[1], 2.5f);
  EXPECT_FLOAT_EQ(s.running_var[0], 0.9f + 0.1f * 14.0f / 3.0f);
  EXPECT_FLOAT_EQ(s.running_var[1], 0.9f + 0.1f * 500.0f / 3.0f);
  EXPECT_FLOAT_EQ(y[0], 0.0f);  // (1 - 3) / sqrt(3.5) < 0, then ReLU
  EXPECT_NEAR(y[6], 3.0f / std::sqrt(3.5f + 1e-5f), 1e-6f);
  bn.forward(x.data(), in, y.data(), false);  // evaluation: the running statistics
  EXPECT_NEAR(y[6], (6.0f - 0.3f) / std::sqrt(s.running_var[0] + 1e-5f), 1e-5f);
}

namespace {

/// conv-BN-ReLU, max pool, a residual block (conv-BN-ReLU, conv-BN, add + ReLU), average pool,
/// global average pool, flatten, linear: every node kind, on 8 x 8 x 2 images.
qat::graph small_cnn() {
  qat::graph g;
  g.add("conv1", qat::conv2d(random_conv(2, 4, 3, padded(1), nn::activation::none, 30), std::nullopt, std::nullopt));
  qat::batch_norm_state s = qat::identity_batch_norm(4, nn::activation::relu);
  s.gamma = {1.2f, 0.8f, 1.0f, 0.9f};
  s.beta = {0.1f, 0.0f, -0.1f, 0.2f};
  g.add("bn1", qat::batch_norm(s));
  g.add("pool1", nn::pool{});
  g.add("res1", qat::conv2d(random_conv(4, 4, 3, padded(1), nn::activation::none, 31), std::nullopt, std::nullopt));
  g.add("res1_bn", qat::batch_norm(qat::identity_batch_norm(4, nn::activation::relu)));
  g.add("res2", qat::conv2d(random_conv(4, 4, 3, padded(1), nn::activation::none, 32), std::nullopt, std::nullopt));
  g.add("res2_bn", qat::batch_norm(qat::identity_batch_norm(4)));
  g.add("skip", nn::add{true}, {"res2_bn", "pool1"});
  nn::pool avg;
  avg.type = nn::pool::kind::average;
  avg.params.kernel_h = avg.params.kernel_w = 3;
  avg.params.window = padded(1, 1);
  g.add("avg", avg);
  g.add("head", qat::linear({squint_test::normal(6 * 4, 0.0f, 0.5f, 33), squint_test::normal(6, 0.0f, 0.1f, 34), 6, 4,
                             nn::activation::relu},
                            std::nullopt, std::nullopt));
  g.add("gap", nn::pool{nn::pool::kind::global_average, {}});
  g.add("flatten", nn::flatten{});
  g.add("fc", qat::linear({squint_test::normal(3 * 6, 0.0f, 0.5f, 35), squint_test::normal(3, 0.0f, 0.1f, 36), 3, 6,
                           nn::activation::none},
                          std::nullopt, std::nullopt));
  return g;
}

}  // namespace

TEST(QatGraphTest, Fp32GradientsMatchFiniteDifferences) {
  qat::graph g = small_cnn();
  const image_shape in{2, 8, 8, 2};
  std::vector<float> x = squint_test::normal(in.size(), 0.0f, 1.0f, 50);
  std::vector<float> y(2 * 3);
  const std::vector<float> r = {0.3f, -1.0f, 0.7f, 1.1f, 0.2f, -0.5f};
  g.forward(x.data(), in, y.data(), false);  // evaluation mode: the running statistics, a fixed function
  g.backward(r.data());
  std::vector<qat::parameter> params = g.parameters();
  std::vector<std::vector<float>> grads;
  for (const qat::parameter& p : params) grads.emplace_back(p.grad, p.grad + p.size);
  auto loss = [&]() {
    std::vector<float> z(6);
    g.forward(x.data(), in, z.data(), false);
    return dot(z, r);
  };
  // Piecewise linear (ReLU, max pool): away from the kinks the differences are exact but for rounding.
  std::size_t checked = 0, total = 0;
  for (std::size_t i = 0; i < params.size(); ++i) {
    checked += expect_piecewise_gradient(("parameter " + std::to_string(i)).c_str(), params[i].value, grads[i].data(),
                                         params[i].size, loss, 1e-2f, 1e-2);
    total += params[i].size;
  }
  EXPECT_GT(checked, total * 9 / 10);
}

TEST(QatGraphTest, BatchStatisticsTrainingReducesTheLoss) {
  qat::graph g = small_cnn();
  const image_shape in{8, 8, 8, 2};
  const std::vector<float> x = squint_test::normal(in.size(), 0.0f, 1.0f, 60);
  std::vector<std::uint8_t> labels(8);
  for (std::size_t i = 0; i < 8; ++i) labels[i] = static_cast<std::uint8_t>(i % 3);
  std::vector<float> logits(8 * 3), dlogits(8 * 3);
  qat::sgd opt(0.9f);
  double first = 0.0, last = 0.0;
  for (int step = 0; step < 60; ++step) {
    g.forward(x.data(), in, logits.data());
    last = qat::softmax_cross_entropy(logits.data(), labels.data(), 8, 3, dlogits.data()).loss;
    if (step == 0) first = last;
    g.backward(dlogits.data());
    opt.step(g.parameters(), 0.05f);
  }
  EXPECT_LT(last, 0.5f * first);
  EXPECT_EQ(g.steps(), 60u);
}

TEST(QatGraphTest, ConvertedModelGivesTheQatForwardBitForBit) {
  qat::graph fp32 = small_cnn();
  const image_shape in{4, 8, 8, 2};
  std::vector<float> y(4 * 3), dy(4 * 3);
  // A few FP32 steps so that the running statistics are not the identity's.
  for (unsigned step = 0; step < 3; ++step) {
    const std::vector<float> x = squint_test::normal(in.size(), 0.0f, 1.0f, 70 + step);
    fp32.forward(x.data(), in, y.data());
  }
  qat::qat_options o;
  o.weights->bits = 4;
  o.freeze_observers_after = 3;
  qat::graph q = qat::prepare_qat(fp32, o);
  EXPECT_EQ(q.size(), fp32.size() - 3);  // the BatchNorms fold away
  qat::sgd opt(0.9f);
  for (unsigned step = 0; step < 5; ++step) {
    const std::vector<float> x = squint_test::normal(in.size(), 0.0f, 1.0f, 80 + step);
    q.forward(x.data(), in, y.data());
    for (std::size_t i = 0; i < dy.size(); ++i) dy[i] = y[i] - static_cast<float>(i % 3);
    q.backward(dy.data());
    opt.step(q.parameters(), 0.01f);
  }
  const std::vector<float> x = squint_test::normal(in.size(), 0.0f, 1.0f, 99);
  q.forward(x.data(), in, y.data());
  const nn::graph deployed = q.convert(nn::native_backend());
  EXPECT_EQ(std::get<nn::conv2d>(deployed.op(0)).mode(), nn::precision::int8_static);
  std::vector<float> z(y.size());
  deployed.forward(x.data(), in, z.data());
  EXPECT_EQ(0, std::memcmp(y.data(), z.data(), y.size() * sizeof(float)));
}

TEST(QatGraphTest, FoldedFp32ModelsMatchTheEvaluationForward) {
  qat::graph g = small_cnn();
  const image_shape in{3, 8, 8, 2};
  std::vector<float> y(9);
  for (unsigned step = 0; step < 3; ++step) {
    const std::vector<float> x = squint_test::normal(in.size(), 0.0f, 1.0f, 90 + step);
    g.forward(x.data(), in, y.data());
  }
  const std::vector<float> x = squint_test::normal(in.size(), 0.0f, 1.0f, 95);
  g.forward(x.data(), in, y.data(), false);
  std::vector<float> z(9);
  g.convert(nn::native_backend()).forward(x.data(), in, z.data());
  for (std::size_t i = 0; i < 9; ++i) EXPECT_NEAR(z[i], y[i], 1e-4f * (1.0f + std::fabs(y[i]))) << i;
  nn::build_options o;
  o.mode = nn::precision::int8_dynamic;
  o.overrides[0] = nn::precision::fp32;
  const nn::graph int8 = g.build(o);
  EXPECT_EQ(std::get<nn::conv2d>(int8.op(0)).mode(), nn::precision::fp32);
  EXPECT_EQ(std::get<nn::conv2d>(int8.op(2)).mode(), nn::precision::int8_dynamic);
  int8.forward(x.data(), in, z.data());
  for (std::size_t i = 0; i < 9; ++i) EXPECT_NEAR(z[i], y[i], 0.05f * (1.0f + std::fabs(y[i]))) << i;
}

// ---- conv_bn2d: BatchNorm statistics trained during QAT --------------------------------------

namespace {

qat::batch_norm_state trained_statistics(std::size_t channels, nn::activation act, float momentum) {
  qat::batch_norm_state s = qat::identity_batch_norm(channels, act);
  for (std::size_t c = 0; c < channels; ++c) {
    s.gamma[c] = 0.7f + 0.2f * static_cast<float>(c);
    s.beta[c] = 0.1f * static_cast<float>(c) - 0.15f;
    s.running_mean[c] = 0.05f * static_cast<float>(c) - 0.1f;
    s.running_var[c] = 0.5f + 0.4f * static_cast<float>(c);
  }
  s.momentum = momentum;
  return s;
}

}  // namespace

/// Every parameter's gradient and the input's against central differences, on batch statistics
/// and frozen (the running statistics stay put: momentum 0).
TEST(QatConvBnTest, GradientsMatchFiniteDifferences) {
  const qat::float_conv f = random_conv(3, 4, 3, padded(1, 2), nn::activation::none, 40);
  const image_shape in{2, 5, 5, 3};
  std::vector<float> x = squint_test::normal(in.size(), 0.2f, 1.0f, 41);
  for (bool frozen : {false, true}) {
    qat::conv_bn2d layer(f, trained_statistics(4, nn::activation::none, 0.0f), std::nullopt, std::nullopt);
    if (frozen) layer.freeze_statistics();
    const image_shape out = layer.output_shape(in);
    const std::vector<float> r = squint_test::normal(out.size(), 0.0f, 1.0f, 42);
    std::vector<float> y(out.size()), dx(in.size());
    layer.forward(x.data(), in, y.data(), true);
    layer.backward(r.data(), dx.data());
    std::vector<qat::parameter> p = layer.parameters();
    ASSERT_EQ(p.size(), 4u);  // W, bias, gamma, beta
    std::vector<std::vector<float>> grads;
    for (const qat::parameter& q : p) grads.emplace_back(q.grad, q.grad + q.size);
    auto loss = [&]() {
      std::vector<float> z(out.size());
      layer.forward(x.data(), in, z.data(), true);
      return dot(z, r);
    };
    const char* names[] = {"dW", "dbias", "dgamma", "dbeta"};
    for (std::size_t i = 0; i < p.size(); ++i)
      expect_gradient(names[i], p[i].value, grads[i].data(), p[i].size, loss, 1e-2f, 5e-3, i == 0 ? 5 : 1);
    expect_gradient(frozen ? "dx (frozen)" : "dx (batch statistics)", x.data(), dx.data(), x.size(), loss, 1e-2f, 5e-3,
                    7);
    // The bias moves nothing on batch statistics (the batch mean takes it away).
    if (!frozen) {
      for (float g : grads[1]) EXPECT_NEAR(g, 0.0f, 1e-4f);
    }
  }
}

/// In FP32 the layer is the convolution and the BatchNorm one after the other: the same outputs
/// and running statistics on batch statistics, the same evaluation forward.
TEST(QatConvBnTest, Fp32IsTheConvolutionThenTheBatchNorm) {
  const qat::float_conv f = random_conv(2, 3, 3, padded(1), nn::activation::none, 43);
  const image_shape in{3, 6, 6, 2};
  const qat::batch_norm_state s = trained_statistics(3, nn::activation::relu, 0.1f);
  qat::conv_bn2d layer(f, s, std::nullopt, std::nullopt);
  qat::conv2d conv(f, std::nullopt, std::nullopt);
  qat::batch_norm bn(s);
  const image_shape out = layer.output_shape(in);
  std::vector<float> y(out.size()), mid(out.size()), z(out.size());
  for (unsigned step = 0; step < 3; ++step) {
    const std::vector<float> x = squint_test::normal(in.size(), 0.1f, 1.0f, 44 + step);
    const bool training = step < 2;
    layer.forward(x.data(), in, y.data(), training);
    conv.forward(x.data(), in, mid.data());
    bn.forward(mid.data(), out, z.data(), training);
    for (std::size_t e = 0; e < y.size(); ++e) EXPECT_NEAR(y[e], z[e], 1e-5f * (1.0f + std::fabs(z[e]))) << step;
    for (std::size_t c = 0; c < 3; ++c) {
      EXPECT_NEAR(layer.batch_norm_statistics().running_mean[c], bn.state().running_mean[c], 1e-6f);
      EXPECT_NEAR(layer.batch_norm_statistics().running_var[c], bn.state().running_var[c], 1e-6f);
    }
  }
  EXPECT_NE(layer.batch_norm_statistics().running_var, s.running_var);
}

/// prepare_qat with freeze_batch_norm_after: conv_bn2d nodes train their statistics until then,
/// and from then on (and in evaluation before) the forward is the converted model's, bit for bit.
TEST(QatGraphTest, BatchNormStatisticsTrainUntilFrozenThenConvertExactly) {
  const qat::graph fp32 = small_cnn();
  const image_shape in{4, 8, 8, 2};
  for (int bits : {8, 4}) {
    qat::qat_options o;
    o.weights->bits = bits;
    o.freeze_batch_norm_after = 3;
    qat::graph q = qat::prepare_qat(fp32, o);
    ASSERT_EQ(q.size(), fp32.size() - 3);
    ASSERT_TRUE(std::holds_alternative<qat::conv_bn2d>(q.op(0)));
    const auto& first = std::get<qat::conv_bn2d>(q.op(0));
    std::vector<float> y(4 * 3), dy(4 * 3), z(4 * 3);
    qat::sgd opt(0.9f);
    std::vector<float> before = first.batch_norm_statistics().running_var;
    for (unsigned step = 0; step < 6; ++step) {
      const std::vector<float> x = squint_test::normal(in.size(), 0.0f, 1.0f, 100 + step);
      if (step == 2) {  // before the freeze, evaluation folds the running statistics
        q.forward(x.data(), in, y.data(), false);
        q.convert().forward(x.data(), in, z.data());
        EXPECT_EQ(0, std::memcmp(y.data(), z.data(), y.size() * sizeof(float))) << bits;
      }
      q.forward(x.data(), in, y.data());
      const std::vector<float>& now = first.batch_norm_statistics().running_var;
      EXPECT_EQ(now != before, step < 3) << "step " << step;
      EXPECT_EQ(first.frozen(), step >= 3);
      before = now;
      for (std::size_t i = 0; i < dy.size(); ++i) dy[i] = y[i] - static_cast<float>(i % 3);
      q.backward(dy.data());
      opt.step(q.parameters(), 0.01f);
    }
    const std::vector<float> x = squint_test::normal(in.size(), 0.0f, 1.0f, 120);
    q.forward(x.data(), in, y.data());
    const nn::graph deployed = q.convert();
    EXPECT_EQ(std::get<nn::conv2d>(deployed.op(0)).mode(), nn::precision::int8_static);
    deployed.forward(x.data(), in, z.data());
    EXPECT_EQ(0, std::memcmp(y.data(), z.data(), y.size() * sizeof(float))) << bits;
  }
}

TEST(QatGraphTest, BadArgumentsThrow) {
  const qat::float_conv f = random_conv(2, 4, 3, padded(1));
  qat::float_conv short_weights = f;
  short_weights.weights.pop_back();
  EXPECT_THROW(qat::conv2d(short_weights, std::nullopt, std::nullopt), squint::error);
  EXPECT_THROW(qat::conv2d(f, std::nullopt, qat::activation_quant{}), squint::error);
  // Grouped weights pair with per-row input codes (W4A8) or none; per-tensor codes with the rest.
  qat::weight_quant grouped{4, true, nn::int8_weight_range::full, false, 16};
  qat::activation_quant per_row;
  per_row.per_row = true;
  EXPECT_NO_THROW(qat::conv2d(f, grouped, per_row));
  EXPECT_THROW(qat::conv2d(f, grouped, qat::activation_quant{}), squint::error);
  EXPECT_THROW(qat::conv2d(f, qat::weight_quant{}, per_row), squint::error);
  EXPECT_NO_THROW(qat::conv2d(f, grouped, std::nullopt));
  qat::batch_norm_state s = qat::identity_batch_norm(4);
  s.running_var[1] = -1.0f;
  EXPECT_THROW(qat::batch_norm{s}, squint::error);
  EXPECT_THROW(qat::batch_norm{qat::identity_batch_norm(0)}, squint::error);

  qat::graph g;
  EXPECT_THROW(g.add("input", nn::flatten{}), squint::error);
  g.add("bn", qat::batch_norm(qat::identity_batch_norm(2)));  // on the model's input: cannot fold
  EXPECT_THROW(qat::prepare_qat(g), squint::error);
  EXPECT_THROW(g.add("sum", nn::add{}, {"bn"}), squint::error);
  EXPECT_THROW(g.backward(nullptr), squint::error);

  qat::graph relu_first;
  relu_first.add("conv", qat::conv2d(random_conv(2, 4, 3, padded(1), nn::activation::relu), std::nullopt, std::nullopt));
  relu_first.add("bn", qat::batch_norm(qat::identity_batch_norm(4)));
  EXPECT_THROW(relu_first.convert(nn::native_backend()), squint::error);

  qat::graph shared;  // the convolution's output also feeds the add: the BatchNorm cannot fold
  shared.add("conv", qat::conv2d(random_conv(2, 2, 3, padded(1)), std::nullopt, std::nullopt));
  shared.add("bn", qat::batch_norm(qat::identity_batch_norm(2)));
  shared.add("sum", nn::add{}, {"bn", "conv"});
  EXPECT_THROW(qat::prepare_qat(shared), squint::error);
  qat::qat_options o;
  o.weight_overrides[5] = qat::weight_quant{};
  EXPECT_THROW(qat::prepare_qat(small_cnn(), o), squint::error);

  qat::graph q = qat::prepare_qat(small_cnn());
  const image_shape in{1, 8, 8, 2};
  std::vector<float> x(in.size()), y(3);
  EXPECT_THROW(q.forward(x.data(), {1, 8, 8, 3}, y.data()), squint::error);
  EXPECT_THROW(q.forward(nullptr, in, y.data()), squint::error);
  EXPECT_THROW(q.convert(), squint::error);  // no data seen yet

  // conv_bn2d: no activation before the BatchNorm, one statistic per output channel; a model
  // training its statistics is neither equalized nor bias-corrected.
  EXPECT_THROW(qat::conv_bn2d(random_conv(2, 4, 3, padded(1), nn::activation::relu), qat::identity_batch_norm(4),
                              std::nullopt, std::nullopt),
               squint::error);
  EXPECT_THROW(qat::conv_bn2d(random_conv(2, 4, 3, padded(1)), qat::identity_batch_norm(3), std::nullopt, std::nullopt),
               squint::error);
  qat::qat_options live = qat::fp32_training();
  live.freeze_batch_norm_after = std::nullopt;
  qat::graph training = qat::prepare_qat(small_cnn(), live);
  EXPECT_THROW(training.equalize(), squint::error);
  qat::graph reference = training;
  std::vector<float> images(4 * 8 * 8 * 2, 0.5f);
  EXPECT_THROW(training.correct_bias(reference, images.data(), {4, 8, 8, 2}), squint::error);
}

}  // namespace qat_cnn_test

// SPDX-License-Identifier: Apache-2.0
// qat_test.cpp: quantization-aware training. The fused fake-quant kernel of every compiled arch
// against the scalar reference (forward and straight-through gradient bit for bit, gradient sums
// to rounding), the reference against hand-worked cases and finite differences where the
// gradient is defined, the training layers' backward against finite differences, the loss and
// the optimizers against hand-computed steps, convert() exact against the QAT forward, and bad
// arguments.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "squint/qat.hpp"
#include "support/archs.hpp"
#include "support/data.hpp"

namespace qat_test {

namespace {

namespace k = squint::kernels;
namespace ref = squint::reference;
namespace qat = squint::qat;
using squint::quant_range;
using squint::quantize_mode;

template <class Arch>
class QatKernelTest : public squint_test::arch_test<Arch> {};
TYPED_TEST_SUITE(QatKernelTest, squint_test::compiled_archs, squint_test::arch_names);

std::vector<std::size_t> sizes() {
  std::vector<std::size_t> s{0, 1, 2, 3};
  for (std::size_t base : {4u, 8u, 16u, 32u, 64u})
    for (int d = -1; d <= 1; ++d) s.push_back(base + static_cast<std::size_t>(d));
  s.push_back(1000);
  s.push_back(4099);  // past the kernel's float flush into double
  return s;
}

/// Edge values, ties around the scale, and values reaching past the range.
std::vector<float> inputs(std::size_t n, float scale, unsigned seed) {
  std::vector<float> x = squint_test::edge_values();
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> k(-300, 300);
  for (int i = 0; i < 48; ++i) {
    const float tie = (static_cast<float>(k(rng)) + 0.5f) * scale;
    x.push_back(tie);
    x.push_back(std::nextafter(tie, 1e30f));
  }
  const auto noise = squint_test::normal(n, 0.0f, 60.0f * scale, seed);
  x.insert(x.end(), noise.begin(), noise.end());
  x.resize(n);
  return x;
}

/// Bitwise float equality (NaN payloads and signed zeros included).
bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

struct sum_check {
  double expect, bound;
};

/// The reference sums and a bound on the reordering error: n float additions of terms whose
/// magnitudes sum to at most `magnitude`.
sum_check sums_bound(const std::vector<float>& x, const std::vector<float>& dy, squint::qparams p, quant_range r,
                     quantize_mode mode, bool scale) {
  double magnitude = 0.0;
  ref::fake_quant_sums total;
  for (std::size_t i = 0; i < x.size(); ++i) {
    ref::fake_quant_sums one;
    ref::fake_quantize_grad(x[i], dy[i], p, r, mode, one);
    magnitude += std::fabs(scale ? one.scale : one.zero_point);
    total.scale += one.scale;
    total.zero_point += one.zero_point;
  }
  return {scale ? total.scale : total.zero_point, 1e-6 * magnitude + 1e-30};
}

template <class Arch>
void check_kernel(std::size_t n, float scale, std::int32_t zp, quant_range r, bool reciprocal) {
  const auto x = inputs(n, scale, static_cast<unsigned>(n) + 5);
  auto dy = squint_test::normal(n, 0.0f, 1.0f, static_cast<unsigned>(n) + 9);
  // A NaN input contributes nothing, whatever its gradient (the fuzzer's finding: 0 * inf).
  for (std::size_t i = 0; i < n; ++i)
    if (std::isnan(x[i])) dy[i] = std::numeric_limits<float>::infinity();
  const quantize_mode mode = reciprocal ? quantize_mode::reciprocal : quantize_mode::divide;
  std::vector<float> y(n, -7.0f), dx(n, -7.0f), y_ref(n), dx_ref(n);
  k::fake_quant_params p;
  p.x = x.data();
  p.dy = dy.data();
  p.y = y.data();
  p.dx = dx.data();
  p.n = n;
  p.scale = scale;
  p.zero_point = zp;
  p.qmin = r.qmin;
  p.qmax = r.qmax;
  p.reciprocal = reciprocal;
  const ref::fake_quant_sums got = k::fake_quant_kernel<Arch>::run(p);
  ref::fake_quantize(x.data(), y_ref.data(), n, {scale, zp}, r, mode);
  ref::fake_quantize_backward(x.data(), dy.data(), dx_ref.data(), n, {scale, zp}, r, mode);
  const std::string where = "n=" + std::to_string(n) + " scale=" + std::to_string(scale) + " zp=" +
                            std::to_string(zp) + " reciprocal=" + std::to_string(reciprocal);
  ASSERT_TRUE(same_bits(y, y_ref)) << where;
  ASSERT_TRUE(same_bits(dx, dx_ref)) << where;
  const sum_check s = sums_bound(x, dy, {scale, zp}, r, mode, true), z = sums_bound(x, dy, {scale, zp}, r, mode, false);
  ASSERT_NEAR(got.scale, s.expect, s.bound) << where;
  ASSERT_NEAR(got.zero_point, z.expect, z.bound) << where;

  // Forward alone equals quantize_kernel::fake; backward alone writes no y; dx may alias dy.
  std::vector<float> y_only(n), fake(n), shared = dy;
  k::fake_quant_params f = p;
  f.dy = nullptr;
  f.dx = nullptr;
  f.y = y_only.data();
  const ref::fake_quant_sums none = k::fake_quant_kernel<Arch>::run(f);
  k::quantize_kernel<Arch, std::int8_t>::fake(x.data(), fake.data(), n, scale, zp, r.qmin, r.qmax, reciprocal);
  ASSERT_TRUE(same_bits(y_only, fake)) << where;
  ASSERT_EQ(none.scale, 0.0);
  k::fake_quant_params b = p;
  b.y = nullptr;
  b.dy = shared.data();
  b.dx = shared.data();
  k::fake_quant_kernel<Arch>::run(b);
  ASSERT_TRUE(same_bits(shared, dx_ref)) << where;
}

TYPED_TEST(QatKernelTest, ForwardAndBackwardMatchReference) {
  for (std::size_t n : sizes())
    for (bool reciprocal : {false, true}) {
      check_kernel<TypeParam>(n, 0.05f, 128, {0, 255}, reciprocal);    // uint8 activations
      check_kernel<TypeParam>(n, 0.05f, 0, {-127, 127}, reciprocal);   // int8 narrow weights
      check_kernel<TypeParam>(n, 0.3f, 0, {-8, 7}, reciprocal);        // int4
      check_kernel<TypeParam>(n, 0.7f, 0, {-2, 1}, reciprocal);        // int2
      check_kernel<TypeParam>(n, 0.02f, 255, {0, 255}, reciprocal);    // zero point at the top
      check_kernel<TypeParam>(n, 1e-30f, 3, {-5, 9}, reciprocal);      // x / s overflows to inf
      check_kernel<TypeParam>(n, 0.01f, -3, {-40000, 40000}, reciprocal);  // a custom range past 16 bits
    }
}

TEST(QatReference, HandWorkedCases) {
  const squint::qparams p{0.5f, 0};
  const quant_range r{-4, 3};
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  struct row {
    float x, dx, scale, zero_point;
  };
  // dy = 2 for every case: inside -> dx = dy, ds = dy * (round(v) - v); outside -> dx = 0,
  // ds = dy * (bound - zp), dzp = -s * dy; NaN -> nothing.
  const row rows[] = {
      {1.3f, 2.0f, 2.0f * (3.0f - 2.6f), 0.0f},  // v = 2.6 -> 3, inside
      {1.5f, 2.0f, 0.0f, 0.0f},                  // v = 3 exactly
      {1.75f, 0.0f, 2.0f * 3.0f, -1.0f},         // v = 3.5 -> 4 (ties to even) > 3
      {-2.0f, 2.0f, 0.0f, 0.0f},                 // v = -4, the bottom code
      {-2.3f, 0.0f, 2.0f * -4.0f, -1.0f},        // v = -4.6 -> -5 < -4
      {inf, 0.0f, 2.0f * 3.0f, -1.0f},
      {-inf, 0.0f, 2.0f * -4.0f, -1.0f},
      {nan, 0.0f, 0.0f, 0.0f},
  };
  for (const row& c : rows) {
    ref::fake_quant_sums s;
    const float dx = ref::fake_quantize_grad(c.x, 2.0f, p, r, quantize_mode::divide, s);
    EXPECT_EQ(dx, c.dx) << c.x;
    EXPECT_FLOAT_EQ(static_cast<float>(s.scale), c.scale) << c.x;
    EXPECT_FLOAT_EQ(static_cast<float>(s.zero_point), c.zero_point) << c.x;
  }
}

/// Where the output is a differentiable function of the qparams (clamped elements: y = (bound -
/// zp) * s), the scale and zero-point sums are the exact derivatives: finite differences agree.
TEST(QatReference, ClampedGradientsMatchFiniteDifferences) {
  const quant_range r{0, 15};
  const std::vector<float> x{-3.0f, -1.0f, 9.0f, 12.0f, 30.0f};  // all outside [0 - zp, 15 - zp] * s
  const std::vector<float> dy{0.5f, -1.25f, 2.0f, 0.75f, -0.5f};
  const float s = 0.25f;
  const std::int32_t zp = 2;
  auto loss = [&](double scale, double zero_point) {
    double sum = 0.0;
    for (std::size_t i = 0; i < x.size(); ++i) {
      const double code = std::nearbyint(x[i] / scale + zero_point);
      const double clamped = std::min(std::max(code, 0.0), 15.0);
      sum += dy[i] * (clamped - zero_point) * scale;
    }
    return sum;
  };
  const ref::fake_quant_sums g =
      ref::fake_quantize_backward(x.data(), dy.data(), nullptr, x.size(), {s, zp}, r, quantize_mode::divide);
  const double h = 1e-4;
  EXPECT_NEAR(g.scale, (loss(s + h, zp) - loss(s - h, zp)) / (2 * h), 1e-6);
  // The zero point moves the clamp bounds in code space; the clamped output moves by -s per unit.
  EXPECT_NEAR(g.zero_point, (loss(s, zp + h) - loss(s, zp - h)) / (2 * h), 1e-6);
}

TEST(QatFakeQuant, PublicApiMatchesReferenceAndPerChannel) {
  const auto x = squint_test::normal(6 * 40, 0.0f, 1.0f, 3);
  const auto dy = squint_test::normal(6 * 40, 0.0f, 1.0f, 4);
  std::vector<float> dx(x.size()), dx_ref(x.size());
  const auto sums = qat::fake_quantize_backward({x.data(), squint::shape{6, 40}}, {dy.data(), squint::shape{6, 40}},
                                                {dx.data(), squint::shape{6, 40}}, {0.02f, 3}, {-8, 7},
                                                quantize_mode::divide, squint::runtime::backend().fake_quant);
  const auto expect = ref::fake_quantize_backward(x.data(), dy.data(), dx_ref.data(), x.size(), {0.02f, 3}, {-8, 7},
                                                  quantize_mode::divide);
  EXPECT_TRUE(same_bits(dx, dx_ref));
  EXPECT_NEAR(sums.scale, expect.scale, 1e-4);
  EXPECT_NEAR(sums.zero_point, expect.zero_point, 1e-6);

  // Per channel along axis 0, and per group: rows of 40 in groups of 8 are channels of {6, 5, 8}.
  for (const squint::shape& s : {squint::shape{6, 40}, squint::shape{6, 5, 8}}) {
    const std::size_t channels = s.numel() / (s.rank() == 2 ? 40 : 8);
    squint::per_channel_qparams p;
    p.axis = s.rank() == 2 ? 0 : 1;
    std::size_t count = s[static_cast<std::size_t>(p.axis)];
    for (std::size_t c = 0; c < count; ++c) p.scale.push_back(0.1f + 0.05f * static_cast<float>(c)), p.zero_point.push_back(0);
    const auto got = qat::fake_quantize_backward({x.data(), s}, {dy.data(), s}, {dx.data(), s}, p, {-2, 1});
    ASSERT_EQ(got.size(), count);
    std::vector<double> scale_sums(count, 0.0);
    for (std::size_t i = 0; i < x.size(); ++i) {
      const std::size_t c = s.rank() == 2 ? i / 40 : (i / 8) % 5;
      ref::fake_quant_sums one;
      EXPECT_EQ(dx[i], ref::fake_quantize_grad(x[i], dy[i], p[c], {-2, 1}, quantize_mode::reciprocal, one)) << i;
      scale_sums[c] += one.scale;
    }
    for (std::size_t c = 0; c < count; ++c) EXPECT_NEAR(got[c].scale, scale_sums[c], 1e-4) << c;
    (void)channels;
  }
}

TEST(QatFakeQuant, BadArgumentsThrowAndChangeNothing) {
  std::vector<float> x(8, 1.0f), dy(8, 1.0f), dx(8, -5.0f), short_dx(7, -5.0f);
  auto untouched = [&] {
    for (float v : dx) EXPECT_EQ(v, -5.0f);
  };
  EXPECT_THROW(qat::fake_quantize_backward({x.data(), 8}, {dy.data(), 8}, {short_dx.data(), 7}, {1.0f, 0}, {0, 255}),
               squint::error);
  EXPECT_THROW(qat::fake_quantize_backward({x.data(), 8}, {dy.data(), 8}, {dx.data(), 8}, {1.0f, 0}, {3, 3}),
               squint::error);
  EXPECT_THROW(qat::fake_quantize_backward({x.data(), 8}, {dy.data(), 8}, {dx.data(), 8}, {0.0f, 0}, {0, 255}),
               squint::error);
  EXPECT_THROW(qat::fake_quantize_backward({x.data(), 8}, {dy.data(), 8}, {dx.data(), 8}, {1.0f, 300}, {0, 255}),
               squint::error);
  EXPECT_THROW(qat::fake_quantize_backward({x.data(), 8}, {dy.data(), 8}, {dx.data(), 8}, {1.0f, 0},
                                           {0, (1 << 24) + 1}),
               squint::error);
  squint::per_channel_qparams p{{1.0f, 1.0f, 1.0f}, {0, 0, 0}, 0};
  EXPECT_THROW(qat::fake_quantize_backward({x.data(), squint::shape{2, 4}}, {dy.data(), squint::shape{2, 4}},
                                           {dx.data(), squint::shape{2, 4}}, p, {-8, 7}),
               squint::error);
  untouched();
  try {
    qat::fake_quantize_backward({x.data(), 8}, {dy.data(), 8}, {short_dx.data(), 7}, {1.0f, 0}, {0, 255});
  } catch (const squint::error& e) {
    EXPECT_NE(std::string(e.what()).find("qat::fake_quantize_backward"), std::string::npos) << e.what();
  }
  EXPECT_FLOAT_EQ(qat::lsq_grad_scale(100, 127), static_cast<float>(1.0 / std::sqrt(12700.0)));
  EXPECT_EQ(qat::lsq_grad_scale(0, 127), 0.0f);
}

// ---- loss and optimizers ---------------------------------------------------------------------

TEST(QatLoss, SoftmaxCrossEntropyValueAndGradient) {
  const std::vector<float> z{1.0f, 2.0f, 3.0f, -1.0f, 0.0f, 5.0f};
  const std::vector<std::uint8_t> labels{2, 0};
  std::vector<float> d(6);
  const auto r = qat::softmax_cross_entropy(z.data(), labels.data(), 2, 3, d.data());
  const double l0 = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)) - 3.0;
  const double l1 = std::log(std::exp(-1.0) + std::exp(0.0) + std::exp(5.0)) + 1.0;
  EXPECT_NEAR(r.loss, (l0 + l1) / 2, 1e-9);
  EXPECT_EQ(r.correct, 1u);
  for (std::size_t i = 0; i < 6; ++i) {
    std::vector<float> up = z, down = z, scratch(6);
    up[i] += 1e-3f;
    down[i] -= 1e-3f;
    const double fd = (qat::softmax_cross_entropy(up.data(), labels.data(), 2, 3, scratch.data()).loss -
                       qat::softmax_cross_entropy(down.data(), labels.data(), 2, 3, scratch.data()).loss) /
                      (static_cast<double>(up[i]) - down[i]);
    EXPECT_NEAR(d[i], fd, 1e-4) << i;
  }
  const std::vector<std::uint8_t> bad{3, 0};
  EXPECT_THROW(qat::softmax_cross_entropy(z.data(), bad.data(), 2, 3, d.data()), squint::error);
}

TEST(QatOptimizer, SgdAndAdamStepsAsPyTorch) {
  std::vector<float> w{1.0f, -2.0f}, g{0.5f, 0.25f}, b{0.3f}, gb{-1.0f};
  std::vector<qat::parameter> params{{w.data(), g.data(), 2, true}, {b.data(), gb.data(), 1, false}};
  qat::sgd sgd(0.9f, 0.1f);
  sgd.step(params, 0.1f);  // buf = g + 0.1 w
  EXPECT_FLOAT_EQ(w[0], 1.0f - 0.1f * 0.6f);
  EXPECT_FLOAT_EQ(w[1], -2.0f - 0.1f * 0.05f);
  EXPECT_FLOAT_EQ(b[0], 0.3f + 0.1f);
  const float buf0 = 0.6f, w0 = w[0];
  sgd.step(params, 0.1f);  // buf = 0.9 buf + g + 0.1 w
  EXPECT_FLOAT_EQ(w[0], w0 - 0.1f * (0.9f * buf0 + 0.5f + 0.1f * w0));

  std::vector<float> v{1.0f}, gv{0.5f};
  std::vector<qat::parameter> one{{v.data(), gv.data(), 1, false}};
  qat::adam adam;
  adam.step(one, 0.01f);  // the first Adam step moves by lr * sign(g) (bias-corrected m / sqrt(v))
  EXPECT_NEAR(v[0], 1.0f - 0.01f, 1e-6);
  adam.step(one, 0.01f);
  EXPECT_NEAR(v[0], 1.0f - 0.02f, 1e-6);
  std::vector<qat::parameter> more{{v.data(), gv.data(), 1, false}, {w.data(), g.data(), 2, true}};
  EXPECT_THROW(adam.step(more, 0.01f), squint::error);
  EXPECT_THROW(sgd.step(one, 0.01f), squint::error);
}

// ---- training layers -------------------------------------------------------------------------

std::vector<squint::nn::float_layer> small_mlp(unsigned seed, std::size_t in = 12, std::size_t hidden = 9,
                                               std::size_t out = 4) {
  std::vector<squint::nn::float_layer> layers(2);
  layers[0] = {squint_test::normal(hidden * in, 0.0f, 0.4f, seed), squint_test::normal(hidden, 0.1f, 0.1f, seed + 1),
               hidden, in, squint::nn::activation::relu};
  layers[1] = {squint_test::normal(out * hidden, 0.0f, 0.4f, seed + 2), squint_test::normal(out, 0.0f, 0.1f, seed + 3),
               out, hidden, squint::nn::activation::none};
  return layers;
}

/// FP32 training: every parameter's gradient against central differences of the loss.
TEST(QatTraining, Fp32BackwardMatchesFiniteDifferences) {
  const auto layers = small_mlp(21);
  const std::size_t m = 5;
  const auto x = squint_test::normal(m * 12, 0.0f, 1.0f, 22);
  const std::vector<std::uint8_t> labels{0, 3, 1, 2, 3};
  auto model = qat::prepare_qat(layers, qat::fp32_training(squint::runtime::backend()));
  std::vector<float> y(m * 4), dy(m * 4);
  model.forward(x.data(), m, y.data());
  qat::softmax_cross_entropy(y.data(), labels.data(), m, 4, dy.data());
  model.backward(dy.data());
  auto loss_with = [&](const std::vector<squint::nn::float_layer>& l) {
    auto probe = qat::prepare_qat(l, qat::fp32_training());
    std::vector<float> out(m * 4), scratch(m * 4);
    probe.forward(x.data(), m, out.data());
    return qat::softmax_cross_entropy(out.data(), labels.data(), m, 4, scratch.data()).loss;
  };
  const auto params = model.parameters();
  ASSERT_EQ(params.size(), 4u);  // W0, b0, W1, b1
  for (std::size_t p = 0; p < 4; ++p)
    for (std::size_t i = 0; i < params[p].size; i += 3) {
      auto up = layers, down = layers;
      std::vector<float>& u = p % 2 == 0 ? up[p / 2].weights : up[p / 2].bias;
      std::vector<float>& d = p % 2 == 0 ? down[p / 2].weights : down[p / 2].bias;
      const float h = 1e-2f;
      u[i] += h;
      d[i] -= h;
      const double fd = (loss_with(up) - loss_with(down)) / (static_cast<double>(u[i]) - d[i]);
      EXPECT_NEAR(params[p].grad[i], fd, 2e-3 + 2e-2 * std::fabs(fd)) << "parameter " << p << " element " << i;
    }
}

/// `steps` SGD steps (momentum 0.9, learning rate 0.05) of softmax cross-entropy on x.
void sgd_steps(qat::sequential& model, const std::vector<float>& x, const std::vector<std::uint8_t>& labels,
               int steps) {
  const std::size_t m = labels.size(), classes = model.out_features();
  qat::sgd opt(0.9f);
  std::vector<float> y(m * classes), dy(m * classes);
  for (int step = 0; step < steps; ++step) {
    model.forward(x.data(), m, y.data());
    qat::softmax_cross_entropy(y.data(), labels.data(), m, classes, dy.data());
    model.backward(dy.data());
    opt.step(model.parameters(), 0.05f);
  }
}

/// The deployed model's outputs and last layer's input codes equal the QAT forward's, bit for bit,
/// after training steps, for every weight setting.
TEST(QatTraining, ConvertedModelIsExactlyTheQatForward) {
  const auto layers = small_mlp(31, 40, 24, 6);
  const std::size_t m = 16;
  const auto x = squint_test::normal(m * 40, 0.2f, 1.5f, 32);
  std::vector<std::uint8_t> labels(m);
  for (std::size_t i = 0; i < m; ++i) labels[i] = static_cast<std::uint8_t>(i % 6);
  struct setting {
    int bits;
    bool per_channel, learn;
    squint::nn::int8_weight_range range;
  };
  const setting settings[] = {{8, true, false, squint::nn::int8_weight_range::narrow},
                              {8, true, false, squint::nn::int8_weight_range::full},
                              {4, true, true, squint::nn::int8_weight_range::narrow},
                              {2, false, false, squint::nn::int8_weight_range::full},
                              {3, false, true, squint::nn::int8_weight_range::narrow}};
  for (const setting& s : settings) {
    qat::qat_options o;
    o.weights->bits = s.bits;
    o.weights->per_channel = s.per_channel;
    o.weights->learn_scale = s.learn;
    o.weights->range = s.range;
    o.activations->learn = s.learn;
    o.kernels = squint::runtime::backend();
    auto model = qat::prepare_qat(layers, o);
    sgd_steps(model, x, labels, 5);
    std::vector<float> y(m * 6);
    model.freeze_observers();
    model.forward(x.data(), m, y.data());
    const squint::nn::sequential deployed = model.convert();
    ASSERT_EQ(deployed[0].mode(), squint::nn::precision::int8_static);
    std::vector<float> z(m * 6);
    deployed.forward(x.data(), m, z.data());
    EXPECT_TRUE(same_bits(y, z)) << s.bits << " bits";
    // The last layer's input codes: the deployed layer's from the deployed hidden output.
    std::vector<float> hidden(m * 24);
    deployed[0].forward(x.data(), m, hidden.data());
    std::vector<std::uint8_t> codes(m * 24);
    std::vector<squint::qparams> row(1);
    std::vector<std::int32_t> acc(m * 6);
    deployed[1].accumulate(hidden.data(), m, codes.data(), row.data(), acc.data());
    EXPECT_EQ(codes, model[1].input_codes()) << s.bits << " bits";
    EXPECT_EQ(row[0], *model[1].input_qparams());
    // Weight codes stay inside the setting's range.
    const auto w = deployed[1].weights();
    const quant_range r = qat::weight_range({s.bits, s.per_channel, s.range, s.learn});
    const auto& packed = dynamic_cast<const squint::nn::int8_weights&>(deployed[1].stored_weights()).packed();
    for (std::size_t j = 0; j < packed.n(); ++j)
      for (std::size_t i = 0; i < packed.k(); ++i) {
        ASSERT_GE(packed.at(j, i), r.qmin);
        ASSERT_LE(packed.at(j, i), r.qmax);
      }
    (void)w;
  }
}

/// PTQ through the QAT model (observers see one calibration batch, no training) is squint's
/// int8_static min-max layer: the same weights, input qparams and outputs. (Deeper layers differ
/// by design: squint::nn calibrates in float, the QAT model's observers see the fake-quantized
/// outputs of the layers before, as PyTorch's prepared QAT model's do.)
TEST(QatTraining, CalibratedWithoutTrainingIsNnStaticMinMax) {
  const auto two = small_mlp(71, 30, 20, 5);
  const std::size_t m = 32;
  const auto x = squint_test::normal(m * 30, 0.3f, 1.2f, 72);
  for (std::size_t depth : {1u, 2u}) {
    const std::vector<squint::nn::float_layer> layers(two.begin(), two.begin() + static_cast<std::ptrdiff_t>(depth));
    const std::size_t out = layers.back().out;
    qat::qat_options o;
    o.kernels = squint::runtime::backend();
    auto model = qat::prepare_qat(layers, o);
    std::vector<float> y(m * out);
    model.forward(x.data(), m, y.data());
    const auto ptq = model.convert();
    squint::nn::build_options b;
    b.mode = squint::nn::precision::int8_static;
    b.kernels = o.kernels;
    squint::nn::sequential reference(layers, b);
    reference.calibrate(x.data(), m, m);
    reference.freeze();
    EXPECT_EQ(*ptq[0].input_qparams(), *reference[0].input_qparams());
    for (std::size_t l = 0; l < depth; ++l) EXPECT_TRUE(same_bits(ptq[l].weights(), reference[l].weights())) << l;
    if (depth == 1) {
      std::vector<float> a(m * out), c(m * out);
      ptq.forward(x.data(), m, a.data());
      reference.forward(x.data(), m, c.data());
      EXPECT_TRUE(same_bits(a, c));
      EXPECT_TRUE(same_bits(a, y));
    }
  }
}

/// Another observer (entropy here) sets the input qparams; LSQ starts from them.
TEST(QatTraining, ObserverOptionSetsTheInputQparams) {
  const auto layers = small_mlp(81, 30, 20, 5);
  const std::size_t m = 64;
  const auto x = squint_test::normal(m * 30, 0.3f, 1.2f, 82);
  for (bool learn : {false, true}) {
    qat::qat_options o;
    o.activations->observer = squint::nn::observers::entropy();
    o.activations->learn = learn;
    auto model = qat::prepare_qat(layers, o);
    std::vector<float> y(m * 5);
    model.forward(x.data(), m, y.data());
    squint::nn::observer expect = squint::nn::observers::entropy();
    expect.observe({x.data(), m * 30});
    EXPECT_EQ(*model[0].input_qparams(), expect.qparams()) << learn;
    EXPECT_EQ(*model.convert()[0].input_qparams(), expect.qparams()) << learn;
  }
}

TEST(QatTraining, WeightOnlyAndFp32ConvertExactly) {
  const auto layers = small_mlp(41);
  const auto x = squint_test::normal(3 * 12, 0.0f, 1.0f, 42);
  for (int weights_only = 0; weights_only < 2; ++weights_only) {
    qat::qat_options o = qat::fp32_training();
    if (weights_only) o.weights = qat::weight_quant{4, true, squint::nn::int8_weight_range::narrow, false};
    auto model = qat::prepare_qat(layers, o);
    std::vector<float> y(3 * 4), z(3 * 4);
    model.forward(x.data(), 3, y.data());
    const auto deployed = model.convert();
    deployed.forward(x.data(), 3, z.data());
    EXPECT_TRUE(same_bits(y, z)) << weights_only;
    EXPECT_EQ(deployed[0].mode(), squint::nn::precision::fp32);
  }
}

/// Weights quantized per group (short last groups included) run on the int4 form they convert to:
/// int4_dynamic (W4A8) with per-row input codes, int4_weight_only without. After training steps
/// the deployed model's outputs are the QAT forward's bit for bit, its codes stay in range, and
/// its group scales are the range scales of the master weights' groups.
TEST(QatTraining, GroupedWeightsConvertToTheInt4FormsExactly) {
  const auto layers = small_mlp(91, 40, 24, 6);
  const std::size_t m = 9;
  const auto x = squint_test::normal(m * 40, 0.2f, 1.5f, 92);
  std::vector<std::uint8_t> labels(m);
  for (std::size_t i = 0; i < m; ++i) labels[i] = static_cast<std::uint8_t>(i % 6);
  struct setting {
    int bits;
    std::size_t group;
    bool per_row, learn;
    squint::nn::int8_weight_range range;
  };
  const setting settings[] = {{4, 16, true, false, squint::nn::int8_weight_range::full},
                              {2, 32, true, true, squint::nn::int8_weight_range::full},
                              {3, 16, false, false, squint::nn::int8_weight_range::narrow},
                              {4, 32, false, true, squint::nn::int8_weight_range::narrow}};
  for (const setting& s : settings) {
    qat::qat_options o;
    o.weights = qat::weight_quant{s.bits, true, s.range, s.learn, s.group};
    if (s.per_row) o.activations = qat::activation_quant{}, o.activations->per_row = true;
    else o.activations.reset();
    o.kernels = squint::runtime::backend();
    auto model = qat::prepare_qat(layers, o);
    sgd_steps(model, x, labels, 5);
    std::vector<float> y(m * 6);
    model.forward(x.data(), m, y.data());
    EXPECT_FALSE(model[0].input_qparams().has_value());
    const squint::nn::sequential deployed = model.convert();
    const auto mode = s.per_row ? squint::nn::precision::int4_dynamic : squint::nn::precision::int4_weight_only;
    std::vector<float> z(m * 6);
    deployed.forward(x.data(), m, z.data());
    EXPECT_TRUE(same_bits(y, z)) << s.bits << " bits, group " << s.group;
    const quant_range r = qat::weight_range(*o.weights);
    const auto master = model.float_layers();
    for (std::size_t l = 0; l < 2; ++l) {
      ASSERT_EQ(deployed[l].mode(), mode);
      const std::size_t out = master[l].out, in = master[l].in;
      const std::vector<float> w = deployed[l].weights();
      for (std::size_t j = 0; j < out; ++j)
        for (std::size_t i = 0; i < in; ++i) {
          const int code = s.per_row
                               ? dynamic_cast<const squint::nn::int4_dynamic_weights&>(deployed[l].stored_weights())
                                     .packed()
                                     .at(j, i)
                               : dynamic_cast<const squint::nn::int4_weight_only_weights&>(deployed[l].stored_weights())
                                     .packed()
                                     .at(j, i);
          ASSERT_GE(code, r.qmin);
          ASSERT_LE(code, r.qmax);
        }
      if (s.learn) continue;
      // Observed scales: the group's amax over the range's half-width.
      const float half = s.range == squint::nn::int8_weight_range::narrow ? static_cast<float>(r.qmax)
                                                                          : static_cast<float>(r.qmax - r.qmin) / 2.0f;
      for (std::size_t j = 0; j < out; ++j)
        for (std::size_t g0 = 0; g0 < in; g0 += s.group) {
          const std::size_t g1 = std::min(in, g0 + s.group);
          float amax = 0.0f;
          for (std::size_t i = g0; i < g1; ++i) amax = std::max(amax, std::fabs(master[l].weights[j * in + i]));
          const float scale = amax / half;
          for (std::size_t i = g0; i < g1; ++i) {
            const float code = std::nearbyint(master[l].weights[j * in + i] / scale);
            const float expect = std::min(std::max(code, static_cast<float>(r.qmin)), static_cast<float>(r.qmax));
            ASSERT_EQ(w[j * in + i], expect * scale) << l << " " << j << " " << i;
          }
        }
    }
  }
}

/// Straight-through gradients with grouped weights and per-row input codes, against a scalar
/// reference: dW = dZ^T . fq(x) where each weight's unclamped code is in range (zero elsewhere),
/// dx = dZ . fq(W) where x is finite.
TEST(QatTraining, GroupedWeightsAndPerRowInputGradients) {
  const std::size_t m = 3, in = 40, out = 5, group = 16;
  squint::nn::float_layer f{squint_test::normal(out * in, 0.0f, 0.5f, 93), {}, out, in,
                            squint::nn::activation::none};
  auto x = squint_test::normal(m * in, 0.0f, 1.0f, 94);
  x[7] = std::numeric_limits<float>::quiet_NaN();
  qat::activation_quant a;
  a.per_row = true;
  const qat::weight_quant wq{2, true, squint::nn::int8_weight_range::full, false, group};
  qat::linear layer(f, wq, a);
  std::vector<float> y(m * out), dx(m * in);
  layer.forward(x.data(), m, y.data());
  const auto dy = squint_test::normal(m * out, 0.0f, 1.0f, 95);
  layer.backward(dy.data(), dx.data());
  const quant_range r = qat::weight_range(wq);
  // fq(W) and its mask, per group; fq(x) per row (NaN -> code 0).
  std::vector<float> fw(out * in), mask(out * in), fx(m * in);
  for (std::size_t j = 0; j < out; ++j)
    for (std::size_t g0 = 0; g0 < in; g0 += group) {
      const std::size_t g1 = std::min(in, g0 + group);
      float amax = 0.0f;
      for (std::size_t i = g0; i < g1; ++i) amax = std::max(amax, std::fabs(f.weights[j * in + i]));
      const float scale = amax / 1.5f;  // 2 bits, full range: (1 - (-2)) / 2
      for (std::size_t i = g0; i < g1; ++i) {
        const float code = std::nearbyint(f.weights[j * in + i] / scale);
        mask[j * in + i] = code >= static_cast<float>(r.qmin) && code <= static_cast<float>(r.qmax) ? 1.0f : 0.0f;
        fw[j * in + i] = std::min(std::max(code, static_cast<float>(r.qmin)), static_cast<float>(r.qmax)) * scale;
      }
    }
  for (std::size_t i = 0; i < m; ++i) {
    float amax = 0.0f;
    for (std::size_t d = 0; d < in; ++d)
      if (std::isfinite(x[i * in + d])) amax = std::max(amax, std::fabs(x[i * in + d]));
    for (std::size_t d = 0; d < in; ++d) {
      const float v = x[i * in + d];
      fx[i * in + d] = std::isnan(v) ? 0.0f : std::nearbyint(v / (amax / 127.0f)) * (amax / 127.0f);
    }
  }
  const auto params = layer.parameters();
  for (std::size_t j = 0; j < out; ++j)
    for (std::size_t d = 0; d < in; ++d) {
      double g = 0.0;
      for (std::size_t i = 0; i < m; ++i) g += static_cast<double>(dy[i * out + j]) * fx[i * in + d];
      EXPECT_NEAR(params[0].grad[j * in + d], mask[j * in + d] * g, 1e-5) << j << " " << d;
    }
  const auto clamped = std::count(mask.begin(), mask.end(), 0.0f);
  EXPECT_GT(clamped, 0);  // the full range clamps each group's +amax
  EXPECT_LT(clamped, static_cast<std::ptrdiff_t>(out * in) / 4);
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t d = 0; d < in; ++d) {
      double g = 0.0;
      for (std::size_t j = 0; j < out; ++j) g += static_cast<double>(dy[i * out + j]) * fw[j * in + d];
      EXPECT_NEAR(dx[i * in + d], std::isfinite(x[i * in + d]) ? g : 0.0, 1e-5) << i << " " << d;
    }
}

/// Training lowers the loss in every mode, and the straight-through gradient is zero for inputs
/// that the activation quantizer clamps.
TEST(QatTraining, TrainingLowersTheLoss) {
  const auto layers = small_mlp(51, 16, 32, 4);
  const std::size_t m = 64;
  const auto x = squint_test::normal(m * 16, 0.0f, 1.0f, 52);
  std::vector<std::uint8_t> labels(m);
  for (std::size_t i = 0; i < m; ++i) labels[i] = static_cast<std::uint8_t>((x[i * 16] > 0) + 2 * (x[i * 16 + 1] > 0));
  for (int mode = 0; mode < 3; ++mode) {
    qat::qat_options o = mode == 0 ? qat::fp32_training() : qat::qat_options{};
    if (mode == 2) o.weights->bits = 2, o.weights->learn_scale = true, o.activations->learn = true;
    auto model = qat::prepare_qat(layers, o);
    qat::adam opt;
    std::vector<float> y(m * 4), dy(m * 4);
    double first = 0.0, last = 0.0;
    for (int step = 0; step < 150; ++step) {
      model.forward(x.data(), m, y.data());
      last = qat::softmax_cross_entropy(y.data(), labels.data(), m, 4, dy.data()).loss;
      if (step == 0) first = last;
      model.backward(dy.data());
      opt.step(model.parameters(), 0.01f);
    }
    EXPECT_LT(last, 0.5 * first) << "mode " << mode;
  }
}

TEST(QatTraining, BadOptionsThrow) {
  const auto layers = small_mlp(61);
  qat::qat_options o;
  o.weights.reset();
  EXPECT_THROW(qat::prepare_qat(layers, o), squint::error);  // quantized input needs quantized weights
  o = {};
  o.weights->bits = 1;
  EXPECT_THROW(qat::prepare_qat(layers, o), squint::error);
  o.weights->bits = 9;
  EXPECT_THROW(qat::prepare_qat(layers, o), squint::error);
  o = {};
  o.activations->averaging_constant = 0.0f;
  EXPECT_THROW(qat::prepare_qat(layers, o), squint::error);
  o = {};
  o.activations->observer = squint::nn::observers::min_max({squint::dtype::int8, squint::qscheme::symmetric});
  EXPECT_THROW(qat::prepare_qat(layers, o), squint::error);  // activation codes are uint8 affine
  o = {};
  o.weight_overrides[2] = qat::weight_quant{};
  EXPECT_THROW(qat::prepare_qat(layers, o), squint::error);
  auto broken = layers;
  broken[1].in = 5;
  EXPECT_THROW(qat::prepare_qat(broken, {}), squint::error);
  EXPECT_THROW(qat::prepare_qat(std::vector<squint::nn::float_layer>{}, {}), squint::error);
  o = {};
  o.weights->group = 24;  // not a multiple of 16
  o.weights->bits = 4;
  o.activations->per_row = true;
  EXPECT_THROW(qat::prepare_qat(layers, o), squint::error);
  o.weights->group = 16;
  o.weights->bits = 5;  // groups are int4 codes
  EXPECT_THROW(qat::prepare_qat(layers, o), squint::error);
  o.weights->bits = 4;
  o.weights->per_channel = false;
  EXPECT_THROW(qat::prepare_qat(layers, o), squint::error);
  o.weights->per_channel = true;
  o.activations->per_row = false;  // grouped weights have no per-tensor uint8 form
  EXPECT_THROW(qat::prepare_qat(layers, o), squint::error);
  o.activations->per_row = true;
  o.activations->learn = true;  // per-row codes learn nothing
  EXPECT_THROW(qat::prepare_qat(layers, o), squint::error);
  o.activations->learn = false;
  EXPECT_NO_THROW(qat::prepare_qat(layers, o));
  o.weights->group = 0;  // per-row codes need grouped weights
  EXPECT_THROW(qat::prepare_qat(layers, o), squint::error);
  auto model = qat::prepare_qat(layers, {});
  EXPECT_THROW(model.convert(), squint::error);  // the input quantizers have seen no data
}

TEST(NnLinearFromInt8, RunsTheGivenCodesAndChecksArguments) {
  const std::vector<std::int8_t> codes{1, -2, 3, 0, 127, -128};
  const std::vector<float> scale{0.5f, 0.25f}, bias{1.0f, -1.0f};
  const squint::qparams in{0.1f, 10};
  const auto layer = squint::nn::linear::from_int8(codes.data(), 2, 3, 3, scale, bias.data(), in);
  EXPECT_EQ(layer.mode(), squint::nn::precision::int8_static);
  EXPECT_EQ(*layer.input_qparams(), in);
  const std::vector<float> x{0.3f, -0.5f, 1.2f};
  std::vector<float> y(2);
  layer.forward(x.data(), 1, y.data());
  for (std::size_t j = 0; j < 2; ++j) {
    std::int64_t acc = 0;
    for (std::size_t i = 0; i < 3; ++i) acc += (ref::quantize_value(x[i], in, {0, 255}) - 10) * codes[j * 3 + i];
    const volatile float product = static_cast<float>(acc) * (in.scale * scale[j]);  // no FMA: two roundings
    EXPECT_EQ(y[j], product + bias[j]) << j;
  }
  EXPECT_THROW(squint::nn::linear::from_int8(codes.data(), 2, 3, 3, {0.5f}, nullptr, in), squint::error);
  EXPECT_THROW(squint::nn::linear::from_int8(codes.data(), 2, 3, 2, scale, nullptr, in), squint::error);
  EXPECT_THROW(squint::nn::linear::from_int8(nullptr, 2, 3, 3, scale, nullptr, in), squint::error);
  EXPECT_THROW(squint::nn::linear::from_int8(codes.data(), 2, 3, 3, {0.5f, -1.0f}, nullptr, in), squint::error);
  EXPECT_THROW(squint::nn::linear::from_int8(codes.data(), 2, 3, 3, scale, nullptr, {0.1f, 300}), squint::error);
}

}  // namespace

}  // namespace qat_test

// SPDX-License-Identifier: Apache-2.0
// int4_graph_test.cpp: INT4 weights for CNNs, qat::gptq and qat::graph::apply_awq. GPTQ: a
// grouped, strided, padded convolution's codes against GPTQ run on im2col rows the test gathers
// itself (all rows: no sampling); every layer's error below RTN's on its calibration rows, the
// built int4 CNNs (weight-only and W4A8) closer to FP32 than RTN's on held-out images; BatchNorm
// folded first; sampled rows that cover the image. AWQ: the function kept, each scaled layer's
// reported error recomputed from the scaled model's own rows, the int4 CNN closer to FP32 than
// RTN's; bad arguments refused and nothing changed.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "squint/dispatch.hpp"
#include "squint/qat.hpp"
#include "support/data.hpp"

namespace int4_graph_test {

namespace {

namespace nn = squint::nn;
namespace qat = squint::qat;
using squint::conv2d_params;
using squint::filter_shape;
using squint::image_shape;

/// Smooth images (sums of a few wide bumps per channel): neighbouring pixels and channels are
/// correlated, as in real images, which is what lets GPTQ's error compensation pay.
std::vector<float> smooth_images(const image_shape& s, unsigned seed) {
  const auto centre = squint_test::uniform_ints<int>(s.batch * s.channels * 3 * 2, 0, 1000, seed);
  const auto height = squint_test::normal(s.batch * s.channels * 3, 0.0f, 1.0f, seed + 1);
  std::vector<float> x(s.size());
  for (std::size_t b = 0; b < s.batch; ++b)
    for (std::size_t y = 0; y < s.height; ++y)
      for (std::size_t xx = 0; xx < s.width; ++xx)
        for (std::size_t c = 0; c < s.channels; ++c) {
          float v = 0.0f;
          for (std::size_t t = 0; t < 3; ++t) {
            const std::size_t k = (b * s.channels + c) * 3 + t;
            const float dy = static_cast<float>(y) / static_cast<float>(s.height) - 0.001f * static_cast<float>(centre[2 * k]);
            const float dx = static_cast<float>(xx) / static_cast<float>(s.width) - 0.001f * static_cast<float>(centre[2 * k + 1]);
            v += height[k] * std::exp(-4.0f * (dx * dx + dy * dy));
          }
          x[((b * s.height + y) * s.width + xx) * s.channels + c] = v;
        }
  return x;
}

qat::float_conv random_conv(std::size_t in_c, std::size_t out_c, std::size_t k, const conv2d_params& p,
                            nn::activation act, unsigned seed) {
  const filter_shape f{out_c, in_c / p.groups, k, k};
  return {squint_test::normal(out_c * f.taps() * f.group_channels, 0.0f, 0.3f, seed),
          squint_test::normal(out_c, 0.0f, 0.1f, seed + 1), f, squint::filter_layout::ohwi, p, act};
}

conv2d_params padded(std::size_t pad, std::size_t stride = 1, std::size_t groups = 1) {
  conv2d_params p;
  p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = pad;
  p.stride_h = p.stride_w = stride;
  p.groups = groups;
  return p;
}

double mse(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) s += (static_cast<double>(a[i]) - b[i]) * (a[i] - b[i]);
  return s / static_cast<double>(a.size());
}

/// Group k's im2col rows of x (NHWC, `in`) for filter f with p, gathered pixel by pixel
/// (padding reads 0).
std::vector<float> im2col_rows(const std::vector<float>& x, const image_shape& in, const filter_shape& f,
                               const conv2d_params& p, std::size_t k, image_shape& out) {
  out = {in.batch, (in.height + p.pad_top + p.pad_bottom - f.kernel_h) / p.stride_h + 1,
         (in.width + p.pad_left + p.pad_right - f.kernel_w) / p.stride_w + 1, f.out_channels};
  std::vector<float> rows;
  for (std::size_t b = 0; b < in.batch; ++b)
    for (std::size_t y = 0; y < out.height; ++y)
      for (std::size_t xx = 0; xx < out.width; ++xx)
        for (std::size_t ky = 0; ky < f.kernel_h; ++ky)
          for (std::size_t kx = 0; kx < f.kernel_w; ++kx)
            for (std::size_t c = 0; c < f.group_channels; ++c) {
              const long iy = static_cast<long>(y * p.stride_h + ky) - static_cast<long>(p.pad_top);
              const long ix = static_cast<long>(xx * p.stride_w + kx) - static_cast<long>(p.pad_left);
              const bool inside = iy >= 0 && iy < static_cast<long>(in.height) && ix >= 0 && ix < static_cast<long>(in.width);
              rows.push_back(inside ? x[((b * in.height + static_cast<std::size_t>(iy)) * in.width +
                                         static_cast<std::size_t>(ix)) * in.channels + k * f.group_channels + c]
                                    : 0.0f);
            }
  return rows;
}

/// GPTQ on every group's rows gathered here: the layer's codes and scales (channel order).
squint::detail::group_codes gptq_on_gathered_rows(const qat::float_conv& f, const std::vector<float>& x,
                                                 const image_shape& in, const nn::gptq_options& o, image_shape& out) {
  squint::detail::group_codes all;
  const std::size_t depth = f.filter.taps() * f.filter.group_channels, ocg = f.filter.out_channels / f.params.groups;
  for (std::size_t k = 0; k < f.params.groups; ++k) {
    const std::vector<float> rows = im2col_rows(x, in, f.filter, f.params, k, out);
    const std::vector<float> wk(f.weights.begin() + static_cast<std::ptrdiff_t>(k * ocg * depth),
                                f.weights.begin() + static_cast<std::ptrdiff_t>((k + 1) * ocg * depth));
    const auto q = nn::detail::gptq_codes(wk, ocg, depth, rows.data(), rows.size() / depth, o);
    all.codes.insert(all.codes.end(), q.codes.begin(), q.codes.end());
    all.scales.insert(all.scales.end(), q.scales.begin(), q.scales.end());
  }
  return all;
}

TEST(GptqGraph, EachConvolutionIsGptqOnItsIm2colRowsAfterTheLayersBefore) {
  // conv1: 4 -> 6 channels in two groups, 3 x 3, stride 2, pads 1 top / 2 bottom / 0 left /
  // 1 right, ReLU; conv2: 6 -> 8, 3 x 3, pads 1. Depths 18 and 54: groups of 16 with a short last one.
  conv2d_params p = padded(0, 2, 2);
  p.pad_top = 1;
  p.pad_bottom = 2;
  p.pad_right = 1;
  const qat::float_conv f1 = random_conv(4, 6, 3, p, nn::activation::relu, 7);
  const qat::float_conv f2 = random_conv(6, 8, 3, padded(1), nn::activation::none, 9);
  qat::graph g;
  g.add("conv1", qat::conv2d(f1, std::nullopt, std::nullopt));
  g.add("conv2", qat::conv2d(f2, std::nullopt, std::nullopt));
  const image_shape in{3, 7, 6, 4};
  const auto x = smooth_images(in, 11);
  nn::gptq_options o;
  o.group = 16;
  o.max_rows = 1000;  // more than the 3 x 5 x 3 output pixels: every row, in order
  const qat::gptq_graph_result r = qat::gptq(g, x.data(), in, o);
  ASSERT_EQ(r.model.size(), 2u);
  ASSERT_EQ(r.layers.size(), 2u);

  // conv1 from GPTQ on x's rows; conv2 from GPTQ on the rows of conv1's output with its int4
  // weights (dequantized, in FP32, as the model quantized so far computes it).
  nn::conv2d_options co;
  co.mode = o.mode;
  co.act = nn::activation::relu;
  image_shape mid, out;
  const auto q1 = gptq_on_gathered_rows(f1, x, in, o, mid);
  const nn::conv2d c1 = nn::conv2d::from_int4(q1.codes.data(), f1.filter, f1.layout, p, 16, q1.scales, f1.bias.data(), co);
  std::vector<float> dequantized(q1.codes.size());
  for (std::size_t j = 0; j < 6; ++j)
    for (std::size_t t = 0; t < 18; ++t) dequantized[j * 18 + t] = q1.codes[j * 18 + t] * q1.scales[j * 2 + t / 16];
  nn::conv2d_options fp32 = co;
  fp32.mode = nn::precision::fp32;
  std::vector<float> h(mid.size());
  nn::conv2d(dequantized.data(), f1.filter, f1.layout, p, f1.bias.data(), fp32).forward(x.data(), in, h.data());
  const auto q2 = gptq_on_gathered_rows(f2, h, mid, o, out);
  co.act = nn::activation::none;
  const nn::conv2d c2 =
      nn::conv2d::from_int4(q2.codes.data(), f2.filter, f2.layout, f2.params, 16, q2.scales, f2.bias.data(), co);

  const auto test = smooth_images(in, 12);
  std::vector<float> got(out.size()), t1(mid.size()), want(out.size());
  r.model.forward(test.data(), in, got.data());
  c1.forward(test.data(), in, t1.data());
  c2.forward(t1.data(), mid, want.data());
  EXPECT_EQ(got, want);
  for (const auto& l : r.layers) EXPECT_LT(l.mse_gptq, l.mse_rtn) << "node " << l.layer;
}

/// conv-BN-ReLU, max pool, conv-ReLU, a residual add, flatten, linear.
qat::graph cnn() {
  qat::graph g;
  g.add("conv1", qat::conv2d(random_conv(2, 16, 3, padded(1), nn::activation::none, 30), std::nullopt, std::nullopt));
  qat::batch_norm_state s = qat::identity_batch_norm(16, nn::activation::relu);
  for (std::size_t c = 0; c < 16; ++c) s.gamma[c] = 0.8f + 0.05f * static_cast<float>(c % 5);
  g.add("bn1", qat::batch_norm(s));
  g.add("pool1", nn::pool{});
  g.add("conv2", qat::conv2d(random_conv(16, 16, 3, padded(1), nn::activation::relu, 31), std::nullopt, std::nullopt));
  g.add("skip", nn::add{true}, {"conv2", "pool1"});
  g.add("flatten", nn::flatten{});
  g.add("fc", qat::linear({squint_test::normal(5 * 4 * 4 * 16, 0.0f, 0.08f, 33), squint_test::normal(5, 0.0f, 0.1f, 34),
                           5, 4 * 4 * 16, nn::activation::none},
                          std::nullopt, std::nullopt));
  return g;
}

TEST(GptqGraph, BeatsRoundToNearestOnTheWholeCnn) {
  const qat::graph model = cnn();
  const image_shape in{48, 8, 8, 2}, held_out{32, 8, 8, 2};
  const auto x = smooth_images(in, 40), test = smooth_images(held_out, 41);
  const auto kernels = squint::runtime::backend();
  nn::build_options fp32;
  fp32.mode = nn::precision::fp32;
  fp32.kernels = kernels;
  std::vector<float> ref(held_out.batch * 5), y(ref.size());
  model.build(fp32).forward(test.data(), held_out, ref.data());
  for (nn::precision mode : {nn::precision::int4_weight_only, nn::precision::int4_dynamic}) {
    nn::gptq_options o;
    o.mode = mode;
    o.group = 16;
    o.kernels = kernels;
    const qat::gptq_graph_result r = qat::gptq(model, x.data(), in, o);
    // BatchNorm folded: conv1, pool1, conv2, skip, flatten, fc.
    ASSERT_EQ(r.model.size(), 6u);
    ASSERT_EQ(r.layers.size(), 3u);
    EXPECT_EQ(r.model.name(3), "skip");
    EXPECT_EQ(std::get<nn::conv2d>(r.model.op(2)).mode(), mode);
    EXPECT_EQ(std::get<nn::linear>(r.model.op(5)).mode(), mode);
    for (const auto& l : r.layers) EXPECT_LT(l.mse_gptq, 0.5 * l.mse_rtn) << "node " << l.layer;
    r.model.forward(test.data(), held_out, y.data());
    const double gptq_error = mse(y, ref);
    nn::build_options rtn = fp32;
    rtn.mode = mode;
    rtn.int4_group = 16;
    model.build(rtn).forward(test.data(), held_out, y.data());
    EXPECT_LT(gptq_error, 0.3 * mse(y, ref)) << nn::to_string(mode);
  }
}

/// Sampled rows must cover every column of the image: 64 x 28 x 28 output pixels in 256 rows is
/// every 196th pixel, always in column 0 if the rows were evenly spaced, and the filter's left
/// taps would see only padding (GPTQ then zeroes their weights).
TEST(GptqGraph, SampledRowsCoverTheWholeImage) {
  qat::graph g;
  g.add("conv", qat::conv2d(random_conv(1, 8, 3, padded(1), nn::activation::none, 50), std::nullopt, std::nullopt));
  const image_shape in{64, 28, 28, 1}, held_out{16, 28, 28, 1};
  const auto x = smooth_images(in, 51), test = smooth_images(held_out, 52);
  nn::gptq_options o;
  o.max_rows = 256;
  const qat::gptq_graph_result r = qat::gptq(g, x.data(), in, o);
  nn::build_options b;
  b.mode = nn::precision::fp32;
  std::vector<float> ref(held_out.pixels() * 8), y(ref.size());
  g.build(b).forward(test.data(), held_out, ref.data());
  r.model.forward(test.data(), held_out, y.data());
  const double gptq_error = mse(y, ref);
  b.mode = o.mode;
  g.build(b).forward(test.data(), held_out, y.data());
  EXPECT_LT(gptq_error, mse(y, ref));
}

/// conv (output channels of very unequal size: what AWQ is for) - ReLU - max pool - grouped conv -
/// ReLU, then (with a head) flatten - linear: two scalable pairs.
qat::graph unequal_cnn(bool head) {
  qat::float_conv c1 = random_conv(2, 16, 3, padded(1), nn::activation::relu, 60);
  for (std::size_t o = 0; o < 16; ++o)
    for (std::size_t t = 0; t < 18; ++t) c1.weights[o * 18 + t] *= 0.05f + 0.3f * static_cast<float>(o % 7);
  qat::graph g;
  g.add("conv1", qat::conv2d(c1, std::nullopt, std::nullopt));
  g.add("pool1", nn::pool{});
  g.add("conv2", qat::conv2d(random_conv(16, 16, 3, padded(1, 1, 2), nn::activation::relu, 61), std::nullopt, std::nullopt));
  if (!head) return g;
  g.add("flatten", nn::flatten{});
  g.add("fc", qat::linear({squint_test::normal(5 * 4 * 4 * 16, 0.0f, 0.08f, 62), squint_test::normal(5, 0.0f, 0.1f, 63),
                           5, 4 * 4 * 16, nn::activation::none},
                          std::nullopt, std::nullopt));
  return g;
}

/// The mean squared output error of int4 RTN weights (squint's, per group) against the float
/// weights w (out x in) on rows x (rows x in), in double.
double rtn_error(const float* w, std::size_t out, std::size_t in, std::size_t group, const std::vector<float>& x) {
  const auto q = squint::detail::quantize_int4_groups("test", w, out, in, in, group);
  const std::size_t rows = x.size() / in, groups = (in + group - 1) / group;
  double sum = 0.0;
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t j = 0; j < out; ++j) {
      double exact = 0.0, quantized = 0.0;
      for (std::size_t i = 0; i < in; ++i) {
        exact += static_cast<double>(x[r * in + i]) * w[j * in + i];
        quantized += static_cast<double>(x[r * in + i]) * q.codes[j * in + i] * q.scales[j * groups + i / group];
      }
      sum += (exact - quantized) * (exact - quantized);
    }
  return sum / static_cast<double>(rows * out);
}

TEST(AwqGraph, KeepsTheFunctionAndBeatsRoundToNearest) {
  qat::graph g = unequal_cnn(true);
  const image_shape in{24, 8, 8, 2}, held_out{32, 8, 8, 2};
  const auto x = smooth_images(in, 70), test = smooth_images(held_out, 71);
  nn::build_options fp32;
  fp32.mode = nn::precision::fp32;
  std::vector<float> before(held_out.batch * 5), after(before.size()), y(before.size());
  g.build(fp32).forward(test.data(), held_out, before.data());
  nn::build_options rtn = fp32;
  rtn.mode = nn::precision::int4_weight_only;
  rtn.int4_group = 16;
  g.build(rtn).forward(test.data(), held_out, y.data());
  const double rtn_model_error = mse(y, before);

  nn::awq_options o;
  o.group = 16;
  o.max_rows = 100000;  // every row: the report can be recomputed exactly
  const std::vector<nn::awq_layer> report = g.apply_awq(x.data(), in, o);
  ASSERT_EQ(report.size(), 2u);
  EXPECT_EQ(report[0].layer, 2u);  // conv2, reading conv1 through the max pool
  EXPECT_EQ(report[1].layer, 4u);  // fc, reading conv2 through the flatten
  for (const auto& r : report) EXPECT_LE(r.mse_awq, r.mse_rtn) << r.layer;
  EXPECT_TRUE(report[0].scaled);
  EXPECT_LT(report[0].mse_awq, 0.8 * report[0].mse_rtn);

  g.build(fp32).forward(test.data(), held_out, after.data());
  for (std::size_t i = 0; i < before.size(); ++i) ASSERT_NEAR(after[i], before[i], 1e-4 * (1.0 + std::fabs(before[i]))) << i;
  // The last scaled layer's reported error is RTN's on its scaled weights and its input in the
  // scaled model (every row).
  const nn::graph scaled = g.build(fp32);
  const auto outputs = scaled.node_outputs(x.data(), in);
  const nn::float_layer fc = std::get<qat::linear>(g.op(4)).float_layer();
  EXPECT_NEAR(rtn_error(fc.weights.data(), 5, 256, 16, outputs[3]), report[1].mse_awq, 1e-4 * report[1].mse_awq);
  // The int4 model built from the scaled weights is closer to FP32.
  g.build(rtn).forward(test.data(), held_out, y.data());
  EXPECT_LT(mse(y, before), rtn_model_error);
}

TEST(AwqGraph, ConvolutionScalesFollowItsInputChannelsInEveryGroup) {
  qat::graph g = unequal_cnn(false);
  const image_shape in{16, 8, 8, 2};
  const auto x = smooth_images(in, 72);
  nn::awq_options o;
  o.group = 16;
  o.max_rows = 100000;
  const std::vector<nn::awq_layer> report = g.apply_awq(x.data(), in, o);
  ASSERT_EQ(report.size(), 1u);
  ASSERT_TRUE(report[0].scaled);
  // conv2 (two groups of 8 channels): the mean of both groups' RTN errors on their im2col rows
  // of pool1's output in the scaled model, gathered here.
  nn::build_options fp32;
  fp32.mode = nn::precision::fp32;
  const auto outputs = g.build(fp32).node_outputs(x.data(), in);
  const qat::float_conv f = std::get<qat::conv2d>(g.op(2)).float_layer();
  double error = 0.0;
  for (std::size_t k = 0; k < 2; ++k) {
    image_shape out;
    const std::vector<float> rows = im2col_rows(outputs[1], {16, 4, 4, 16}, f.filter, f.params, k, out);
    error += 0.5 * rtn_error(f.weights.data() + k * 8 * 72, 8, 72, 16, rows);
  }
  EXPECT_NEAR(error, report[0].mse_awq, 1e-4 * report[0].mse_awq);
}

TEST(AwqGraph, BadArgumentsChangeNothing) {
  const image_shape in{2, 8, 8, 2};
  const auto x = smooth_images(in, 1);
  qat::graph g = unequal_cnn(true);
  nn::build_options fp32;
  fp32.mode = nn::precision::fp32;
  std::vector<float> before(2 * 5), after(before.size());
  g.build(fp32).forward(x.data(), in, before.data());
  nn::awq_options o;
  o.group = 24;
  EXPECT_THROW(g.apply_awq(x.data(), in, o), squint::error);
  o.group = 32;
  o.grid = 0;
  EXPECT_THROW(g.apply_awq(x.data(), in, o), squint::error);
  o.grid = 20;
  o.max_rows = 0;
  EXPECT_THROW(g.apply_awq(x.data(), in, o), squint::error);
  o.max_rows = 512;
  EXPECT_THROW(g.apply_awq(nullptr, in, o), squint::error);
  EXPECT_THROW(g.apply_awq(x.data(), {0, 8, 8, 2}, o), squint::error);
  EXPECT_THROW(g.apply_awq(x.data(), {2, 8, 8, 3}, o), squint::error);
  g.build(fp32).forward(x.data(), in, after.data());
  EXPECT_EQ(after, before);
  qat::graph with_bn = cnn();  // BatchNorm not folded
  EXPECT_THROW(with_bn.apply_awq(x.data(), in, o), squint::error);
}

TEST(GptqGraph, BadArgumentsThrow) {
  const qat::graph model = cnn();
  const image_shape in{2, 8, 8, 2};
  const auto x = smooth_images(in, 1);
  nn::gptq_options o;
  EXPECT_THROW(qat::gptq(qat::graph{}, x.data(), in, o), squint::error);
  EXPECT_THROW(qat::gptq(model, nullptr, in, o), squint::error);
  EXPECT_THROW(qat::gptq(model, x.data(), {0, 8, 8, 2}, o), squint::error);
  EXPECT_THROW(qat::gptq(model, x.data(), {2, 8, 8, 3}, o), squint::error);  // the filter takes 2 channels
  o.mode = nn::precision::int8_dynamic;
  EXPECT_THROW(qat::gptq(model, x.data(), in, o), squint::error);
  o.mode = nn::precision::int4_dynamic;
  o.group = 24;
  EXPECT_THROW(qat::gptq(model, x.data(), in, o), squint::error);
  o.group = 32;
  o.max_rows = 0;
  EXPECT_THROW(qat::gptq(model, x.data(), in, o), squint::error);
  o.max_rows = 512;
  o.damp = -0.5;
  EXPECT_THROW(qat::gptq(model, x.data(), in, o), squint::error);
}

}  // namespace

}  // namespace int4_graph_test

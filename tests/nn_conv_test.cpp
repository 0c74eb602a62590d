// SPDX-License-Identifier: Apache-2.0
// nn_conv_test.cpp: squint::nn's convolution layer in every precision against the kernel-level
// convolutions (bit for bit where they compute the same thing), BatchNorm folding, calibration.
#include <gtest/gtest.h>

// GCC 12 at -O2 with ThreadSanitizer instrumentation (the tsan preset) reports the never-engaged
// std::optional<nn::observer> of the conv2d_options objects below as maybe used uninitialized
// when they are destroyed: a false positive of its flow analysis through the instrumented,
// inlined layer constructors.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "squint/conv/float_conv.hpp"
#include "squint/dispatch.hpp"
#include "squint/nn.hpp"
#include "squint/ops/pool.hpp"
#include "squint/reference/conv.hpp"
#include "support/data.hpp"

namespace nn_conv_test {

namespace {

namespace nn = squint::nn;
using squint::conv2d_params;
using squint::filter_layout;
using squint::filter_shape;
using squint::image_shape;

conv2d_params params(std::size_t stride, std::size_t pad, std::size_t groups = 1) {
  conv2d_params p;
  p.stride_h = p.stride_w = stride;
  p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = pad;
  p.groups = groups;
  return p;
}

struct layer_case {
  image_shape in;
  filter_shape f;
  conv2d_params p;
};

squint::conv2d_geometry layer_geometry(const layer_case& c) { return squint::resolve("test", c.in, c.f, c.p); }

const layer_case cases[] = {{{2, 9, 8, 5}, {12, 5, 3, 3}, params(1, 1)},
                            {{1, 7, 7, 8}, {6, 4, 3, 3}, params(2, 1, 2)},
                            {{1, 6, 6, 16}, {24, 16, 1, 1}, params(1, 0)},
                            {{1, 7, 6, 10}, {10, 1, 3, 3}, params(1, 1, 10)}};

TEST(NnConvTest, Int8DynamicEqualsTheKernelConvolutionBitForBit) {
  for (const layer_case& c : cases) {
    const std::size_t wn = c.f.out_channels * c.f.taps() * c.f.group_channels;
    const auto w = squint_test::normal(wn, 0.0f, 0.2f, 3);
    const auto x = squint_test::normal(c.in.size(), 0.3f, 1.0f, 4);
    std::vector<float> bias(c.f.out_channels);
    for (std::size_t o = 0; o < bias.size(); ++o) bias[o] = 0.1f * static_cast<float>(o) - 0.4f;
    for (nn::activation act : {nn::activation::none, nn::activation::relu}) {
      nn::conv2d_options o;
      o.mode = nn::precision::int8_dynamic;
      o.act = act;
      o.kernels = squint::runtime::backend();
      const nn::conv2d layer(w.data(), c.f, filter_layout::oihw, c.p, bias.data(), o);
      std::vector<float> got(layer.output_shape(c.in).size());
      layer.forward(x.data(), c.in, got.data(), {2});
      // The same computation spelled with the kernel-level API.
      const auto range = squint::finite_min_max({x.data(), x.size()});
      const squint::qparams xp = squint::choose_qparams(range.first, range.second);
      std::vector<std::uint8_t> codes(x.size());
      squint::quantize<std::uint8_t>({x.data(), x.size()}, {codes.data(), codes.size()}, xp);
      const auto packed = squint::packed_conv::from_float(w.data(), c.f, filter_layout::oihw, c.p);
      std::vector<float> expect(got.size());
      squint::runtime::conv2d(codes.data(), c.in, xp, packed, bias.data(),
                              act == nn::activation::relu ? squint::activation::relu : squint::activation::none,
                              expect.data());
      EXPECT_EQ(got, expect);
      // A depthwise layer runs the depthwise kernels, the others one GEMM per group.
      EXPECT_EQ(layer.runs_depthwise_kernel(), c.f.group_channels == 1 && c.p.groups == c.f.out_channels);
    }
  }
}

/// The depthwise kernels and the per-channel GEMMs they replace give the same outputs bit for
/// bit: a depthwise layer against the same channels as separate one-group layers, int8_static
/// (float output and requantized codes), with -128 weights (the full weight range), padding and
/// stride 2.
TEST(NnConvTest, DepthwiseKernelEqualsOneGemmPerChannel) {
  const std::size_t channels = 19, taps = 9;
  const image_shape in{2, 9, 8, channels};
  const auto w = squint_test::normal(channels * taps, 0.0f, 0.3f, 71);
  const auto x = squint_test::normal(in.size(), 0.2f, 1.0f, 72);
  std::vector<float> bias(channels);
  for (std::size_t c = 0; c < channels; ++c) bias[c] = 0.05f * static_cast<float>(c) - 0.3f;
  nn::conv2d_options o;
  o.mode = nn::precision::int8_static;
  o.act = nn::activation::relu;
  o.weight_range = nn::int8_weight_range::full;
  const squint::qparams xp{0.02f, 90}, yp{0.03f, 5};
  const conv2d_params p = params(2, 1, channels);
  nn::conv2d depthwise(w.data(), {channels, 1, 3, 3}, filter_layout::ohwi, p, bias.data(), o);
  depthwise.set_input_qparams(xp);
  ASSERT_TRUE(depthwise.runs_depthwise_kernel());
  const image_shape out = depthwise.output_shape(in);
  std::vector<float> got(out.size());
  depthwise.forward(x.data(), in, got.data());
  std::vector<std::uint8_t> codes(in.size()), got_codes(out.size());
  squint::quantize<std::uint8_t>({x.data(), x.size()}, {codes.data(), codes.size()}, xp);
  depthwise.forward_codes(codes.data(), in, yp, got_codes.data());
  // Channel c alone: a one-channel image through a one-group layer (the GEMM route).
  const conv2d_params single = params(2, 1);
  for (std::size_t c = 0; c < channels; ++c) {
    nn::conv2d one(w.data() + c * taps, {1, 1, 3, 3}, filter_layout::ohwi, single, bias.data() + c, o);
    one.set_input_qparams(xp);
    ASSERT_FALSE(one.runs_depthwise_kernel());
    const image_shape in1{in.batch, in.height, in.width, 1};
    std::vector<float> x1(in1.size()), y1(out.pixels());
    std::vector<std::uint8_t> c1(in1.size()), q1(out.pixels());
    for (std::size_t i = 0; i < in1.size(); ++i) x1[i] = x[i * channels + c], c1[i] = codes[i * channels + c];
    one.forward(x1.data(), in1, y1.data());
    one.forward_codes(c1.data(), in1, yp, q1.data());
    for (std::size_t i = 0; i < out.pixels(); ++i) {
      ASSERT_EQ(got[i * channels + c], y1[i]) << "channel " << c << " pixel " << i;
      ASSERT_EQ(got_codes[i * channels + c], q1[i]) << "channel " << c << " pixel " << i;
    }
  }
  // Saved and loaded, the layer still runs the depthwise kernels.
  nn::graph g;
  g.add("dw", depthwise);
  const nn::graph back = nn::deserialize_graph(nn::serialize(g));
  EXPECT_TRUE(std::get<nn::conv2d>(back.op(0)).runs_depthwise_kernel());
  std::vector<float> again(out.size());
  back.forward(x.data(), in, again.data());
  EXPECT_EQ(again, got);
}

TEST(NnConvTest, EveryPrecisionTracksFp32) {
  for (const layer_case& c : cases) {
    const std::size_t wn = c.f.out_channels * c.f.taps() * c.f.group_channels;
    const auto w = squint_test::normal(wn, 0.0f, 0.2f, 5);
    const auto x = squint_test::normal(c.in.size(), 0.3f, 1.0f, 6);
    const std::vector<float> bias(c.f.out_channels, 0.25f);
    std::vector<double> ref;
    for (nn::precision mode : {nn::precision::fp32, nn::precision::fp16, nn::precision::int8_weight_only,
                               nn::precision::int8_dynamic, nn::precision::int8_static, nn::precision::automatic,
                               nn::precision::fp8_weight_only, nn::precision::int4_weight_only,
                               nn::precision::int4_dynamic}) {
      nn::conv2d_options o;
      o.mode = mode;
      nn::conv2d layer(w.data(), c.f, filter_layout::oihw, c.p, bias.data(), o);
      std::vector<float> y(layer.output_shape(c.in).size());
      if (!layer.ready()) {
        EXPECT_THROW(layer.forward(x.data(), c.in, y.data()), squint::error);
        layer.calibrate(x.data(), c.in, y.data());
        layer.freeze();
        EXPECT_TRUE(layer.input_qparams().has_value());
      }
      layer.forward(x.data(), c.in, y.data());
      if (mode == nn::precision::fp32) {
        // FP32 against the float64 reference over OHWI weights.
        ref.assign(y.size(), 0.0);
        const auto ohwi = layer.weights();
        squint::reference::conv2d_float(x.data(), layer_geometry(c), ohwi.data(), bias.data(), ref.data());
      }
      double signal = 0, noise = 0;
      for (std::size_t i = 0; i < y.size(); ++i) {
        signal += ref[i] * ref[i];
        noise += (y[i] - ref[i]) * (y[i] - ref[i]);
      }
      const double sqnr = 10 * std::log10(signal / std::max(noise, 1e-30));
      // 4-bit weights (per group of 32 inputs, round to nearest): ~20 dB on these random filters.
      const double floor = mode == nn::precision::fp32   ? 100
                           : mode == nn::precision::fp16 ? 55
                           : mode == nn::precision::int4_weight_only || mode == nn::precision::int4_dynamic ? 15
                                                                      : 25;
      EXPECT_GT(sqnr, floor) << nn::to_string(mode) << " groups " << c.p.groups;
    }
  }
}

TEST(NnConvTest, FoldBatchNormMatchesConvThenNormalize) {
  const layer_case c{{1, 6, 6, 3}, {4, 3, 3, 3}, params(1, 1)};
  auto w = squint_test::normal(4 * 27, 0.0f, 0.3f, 7);
  std::vector<float> bias{0.1f, -0.2f, 0.3f, 0.0f};
  const std::vector<float> gamma{1.5f, 0.5f, 2.0f, 1.0f}, beta{0.1f, 0.2f, -0.3f, 0.0f}, mean{0.3f, -0.1f, 0.0f, 0.5f},
      var{0.8f, 1.2f, 0.05f, 2.0f};
  const auto x = squint_test::normal(c.in.size(), 0.0f, 1.0f, 8);
  const nn::conv2d plain(w.data(), c.f, filter_layout::oihw, c.p, bias.data(), {nn::precision::fp32});
  std::vector<float> y(plain.output_shape(c.in).size());
  plain.forward(x.data(), c.in, y.data());
  nn::fold_batch_norm(w, bias, gamma, beta, mean, var, 1e-5f);
  const nn::conv2d folded(w.data(), c.f, filter_layout::oihw, c.p, bias.data(), {nn::precision::fp32});
  std::vector<float> z(y.size());
  folded.forward(x.data(), c.in, z.data());
  for (std::size_t i = 0; i < y.size(); ++i) {
    const std::size_t o = i % 4;
    const float bn = (y[i] - mean[o]) / std::sqrt(var[o] + 1e-5f) * gamma[o] + beta[o];
    EXPECT_NEAR(z[i], bn, 1e-4f * (1.0f + std::fabs(bn))) << i;
  }
  std::vector<float> empty;
  const std::vector<float> five(5, 1.0f);
  EXPECT_THROW(nn::fold_batch_norm(w, empty, five, five, five, five), squint::error);  // 108 weights, 5 channels
  EXPECT_THROW(nn::fold_batch_norm(w, empty, gamma, beta, mean, {1.0f}), squint::error);
  EXPECT_THROW(nn::fold_batch_norm(w, bias, gamma, beta, mean, {1.0f, 1.0f, -1.0f, 1.0f}), squint::error);
}

/// A small residual CNN: conv 3x3 1->8 + ReLU, max pool, [conv 3x3 8->8 + ReLU, conv 3x3 8->8]
/// + skip, ReLU, global average, flatten, fc 8->4.
nn::graph residual_cnn(nn::precision mode) {
  nn::conv2d_options o;
  o.mode = mode;
  o.act = nn::activation::relu;
  const auto w1 = squint_test::normal(8 * 9, 0.0f, 0.4f, 11), w2 = squint_test::normal(64 * 9, 0.0f, 0.15f, 12),
             w3 = squint_test::normal(64 * 9, 0.0f, 0.15f, 13), fc = squint_test::normal(4 * 8, 0.0f, 0.5f, 14);
  const std::vector<float> b(8, 0.05f);
  nn::graph g;
  g.add("conv1", nn::conv2d(w1.data(), {8, 1, 3, 3}, filter_layout::oihw, params(1, 1), b.data(), o));
  nn::pool pool;
  g.add("pool1", pool);
  g.add("conv2", nn::conv2d(w2.data(), {8, 8, 3, 3}, filter_layout::oihw, params(1, 1), b.data(), o));
  o.act = nn::activation::none;
  g.add("conv3", nn::conv2d(w3.data(), {8, 8, 3, 3}, filter_layout::oihw, params(1, 1), b.data(), o));
  g.add("skip", nn::add{true}, {"conv3", "pool1"});
  g.add("gap", nn::pool{nn::pool::kind::global_average, {}});
  g.add("flat", nn::flatten{});
  nn::linear_options lo;
  lo.mode = mode;
  g.add("fc", nn::linear(fc.data(), 4, 8, 8, nullptr, lo));
  return g;
}

/// Error analysis of graphs: every convolution and linear node, isolated (the reference's inputs)
/// and propagated (the candidate's own outputs); FP32 against itself is exact; node_outputs ends
/// with forward()'s output; forward_node on the reference's outputs reproduces each node.
TEST(NnGraphTest, AnalyzeReportsEveryLayerNode) {
  const image_shape in{3, 8, 8, 1};
  const auto x = squint_test::normal(in.size(), 0.0f, 1.0f, 21);
  const nn::graph fp32 = residual_cnn(nn::precision::fp32);
  const nn::graph int8 = residual_cnn(nn::precision::int8_dynamic);
  const auto outputs = fp32.node_outputs(x.data(), in);
  ASSERT_EQ(outputs.size(), fp32.size());
  std::vector<float> y(3 * 4);
  fp32.forward(x.data(), in, y.data());
  EXPECT_EQ(outputs.back(), y);
  for (std::size_t i = 0; i < fp32.size(); ++i) {
    std::vector<float> again(outputs[i].size());
    fp32.forward_node(i, outputs, x.data(), in, again.data());
    EXPECT_EQ(again, outputs[i]) << fp32.name(i);
  }
  const nn::error_report r = nn::analyze(fp32, {{"fp32", &fp32}, {"int8", &int8}}, x.data(), in);
  ASSERT_EQ(r.rows.size(), 8u);  // conv1, conv2, conv3, fc for each candidate
  const char* layers[] = {"conv1", "conv2", "conv3", "fc"};
  for (std::size_t k = 0; k < 4; ++k) {
    EXPECT_EQ(r.rows[k].node, layers[k]);
    EXPECT_TRUE(std::isinf(r.rows[k].isolated.sqnr_db) && std::isinf(r.rows[k].propagated.sqnr_db)) << layers[k];
    const nn::layer_error& e = r.rows[4 + k];
    EXPECT_EQ(e.mode, nn::precision::int8_dynamic);
    EXPECT_GT(e.isolated.sqnr_db, 20.0) << layers[k];
    EXPECT_LE(e.propagated.sqnr_db, e.isolated.sqnr_db + 3.0) << layers[k];  // errors accumulate downstream
  }
  EXPECT_NE(r.to_string().find("conv2"), std::string::npos);
  const nn::graph other = residual_cnn(nn::precision::fp32);
  nn::graph shorter;
  shorter.add("conv1", std::get<nn::conv2d>(other.op(0)));
  EXPECT_THROW(nn::analyze(fp32, {{"short", &shorter}}, x.data(), in), squint::error);
  EXPECT_THROW(fp32.forward_node(9, outputs, x.data(), in, y.data()), squint::error);
  EXPECT_THROW(fp32.forward_node(2, {}, x.data(), in, y.data()), squint::error);
}

TEST(NnGraphTest, ResidualCnnRunsAndCalibrates) {
  const image_shape in{6, 10, 10, 1};
  const auto x = squint_test::normal(in.size(), 0.0f, 1.0f, 15);
  const nn::graph fp32 = residual_cnn(nn::precision::fp32);
  EXPECT_EQ(fp32.output_shape(in).channels, 4u);
  EXPECT_EQ(fp32.output_shape(in).pixels(), 6u);
  std::vector<float> expect(6 * 4);
  fp32.forward(x.data(), in, expect.data());
  // The same model node by node.
  const auto shapes = fp32.shapes(in);
  std::vector<float> c1(shapes[0].size()), p1(shapes[1].size()), c2(shapes[2].size()), c3(shapes[3].size()),
      sum(shapes[4].size()), gap(shapes[5].size()), out(6 * 4);
  std::get<nn::conv2d>(fp32.op(0)).forward(x.data(), in, c1.data());
  squint::max_pool2d(c1.data(), shapes[0], squint::pool2d_params{}, p1.data());
  std::get<nn::conv2d>(fp32.op(2)).forward(p1.data(), shapes[1], c2.data());
  std::get<nn::conv2d>(fp32.op(3)).forward(c2.data(), shapes[2], c3.data());
  for (std::size_t i = 0; i < sum.size(); ++i) sum[i] = std::max(0.0f, c3[i] + p1[i]);
  squint::global_avg_pool(sum.data(), shapes[4], gap.data());
  std::get<nn::linear>(fp32.op(7)).forward(gap.data(), 6, out.data());
  EXPECT_EQ(out, expect);

  for (nn::precision mode : {nn::precision::fp16, nn::precision::int8_dynamic, nn::precision::int8_static}) {
    nn::graph g = residual_cnn(mode);
    std::vector<float> y(expect.size());
    if (mode == nn::precision::int8_static) {
      EXPECT_THROW(g.forward(x.data(), in, y.data()), squint::error);
      g.calibrate(x.data(), in, 4);
      g.freeze();
    }
    g.forward(x.data(), in, y.data(), {2});
    double signal = 0, noise = 0;
    for (std::size_t i = 0; i < y.size(); ++i) {
      signal += double(expect[i]) * expect[i];
      noise += double(y[i] - expect[i]) * (y[i] - expect[i]);
    }
    EXPECT_GT(10 * std::log10(signal / std::max(noise, 1e-30)), mode == nn::precision::fp16 ? 50 : 20) << nn::to_string(mode);
    // (FP16 panels pad these 8-channel layers to 16 channels: no smaller than FP32 here.)
    if (mode != nn::precision::fp16) {
      EXPECT_LT(g.weight_bytes(), fp32.weight_bytes());
    }
  }
}

namespace {

/// Replaces the checksum of a model file after an edit.
void reseal(std::vector<std::uint8_t>& bytes) {
  const std::uint64_t h = squint::nn::detail::fnv1a(bytes.data(), bytes.size() - 8);
  for (std::size_t i = 0; i < 8; ++i) bytes[bytes.size() - 8 + i] = static_cast<std::uint8_t>(h >> (8 * i));
}

std::string error_of(const std::vector<std::uint8_t>& bytes) {
  try {
    nn::deserialize_graph(bytes);
  } catch (const squint::error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(NnGraphTest, SavedGraphsLoadToTheSameOutputs) {
  const image_shape in{3, 10, 10, 1};
  const auto x = squint_test::normal(in.size(), 0.0f, 1.0f, 31);
  for (nn::precision mode : {nn::precision::fp32, nn::precision::fp16, nn::precision::int8_dynamic,
                             nn::precision::int8_static, nn::precision::int8_weight_only, nn::precision::fp8_weight_only,
                             nn::precision::int4_weight_only, nn::precision::int4_dynamic}) {
    nn::graph g = residual_cnn(mode);
    // Every pooling field: a strided average window with SAME padding that counts the padding.
    nn::pool avg;
    avg.type = nn::pool::kind::average;
    avg.params.kernel_h = 3;
    avg.params.kernel_w = 2;
    avg.params.window = params(2, 0);
    avg.params.window.padding = squint::padding_mode::same_upper;
    avg.params.count_include_pad = true;
    g.add("avg", avg, {"conv2"});
    g.add("flat2", nn::flatten{});
    if (mode == nn::precision::int8_static) {
      EXPECT_THROW(nn::serialize(g), squint::error);  // not calibrated yet
      g.calibrate(x.data(), in, 3);
      g.freeze();
    }
    const std::vector<std::uint8_t> bytes = nn::serialize(g);
    const nn::graph back = nn::deserialize_graph(bytes);
    ASSERT_EQ(back.size(), g.size());
    for (std::size_t i = 0; i < g.size(); ++i) {
      EXPECT_EQ(back.name(i), g.name(i));
      EXPECT_EQ(back.inputs(i), g.inputs(i));
    }
    EXPECT_EQ(nn::serialize(back), bytes) << nn::to_string(mode);
    const auto out = g.shapes(in).back();
    std::vector<float> y(out.size()), z(out.size());
    g.forward(x.data(), in, y.data());
    back.forward(x.data(), in, z.data());
    EXPECT_EQ(y, z) << nn::to_string(mode);
  }
  // Through a file, on the runtime-dispatched kernels.
  const nn::graph g = residual_cnn(nn::precision::int8_dynamic);
  const std::string path = ::testing::TempDir() + "squint_graph_test.sqgr";
  nn::save(g, path);
  const nn::graph back = nn::load_graph(path, squint::runtime::backend());
  std::vector<float> y(3 * 4), z(3 * 4);
  g.forward(x.data(), in, y.data());
  back.forward(x.data(), in, z.data());
  for (std::size_t i = 0; i < y.size(); ++i) EXPECT_NEAR(z[i], y[i], 1e-5f * (1.0f + std::fabs(y[i])));
}

TEST(NnGraphTest, DamagedGraphFilesAreRefused) {
  const std::vector<std::uint8_t> good = nn::serialize(residual_cnn(nn::precision::int8_dynamic));
  // Node 0, "conv1": name length at 16, name at 20, kind at 25, input count at 26, input at 27.
  std::vector<std::uint8_t> bad = good;
  bad[25] = 9;
  reseal(bad);
  EXPECT_NE(error_of(bad).find("unknown kind 9"), std::string::npos) << error_of(bad);
  bad = good;
  bad[27] = 5;
  bad[28] = bad[29] = bad[30] = 0;
  reseal(bad);
  EXPECT_NE(error_of(bad).find("does not come before"), std::string::npos) << error_of(bad);
  bad = good;
  bad[26] = 2;
  reseal(bad);
  EXPECT_NE(error_of(bad).find("2 inputs"), std::string::npos) << error_of(bad);
  bad = good;
  bad[20] = 'p';  // "conv1" -> "ponv1": the checksum no longer matches
  EXPECT_NE(error_of(bad).find("checksum"), std::string::npos);
  for (std::size_t cut : {std::size_t{0}, std::size_t{12}, std::size_t{30}, good.size() / 2, good.size() - 1}) {
    const std::vector<std::uint8_t> truncated(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(cut));
    EXPECT_NE(error_of(truncated), "") << "cut at " << cut;
  }
  // Version 1 files (no ranges) still load; a range count that fits no node count does not.
  std::vector<std::uint8_t> old(good.begin(), good.end() - 12);
  old.insert(old.end(), good.end() - 8, good.end());
  old[8] = 1;
  reseal(old);
  EXPECT_EQ(error_of(old), "");
  bad = good;
  bad[bad.size() - 12] = 3;
  reseal(bad);
  EXPECT_NE(error_of(bad).find("3 ranges"), std::string::npos) << error_of(bad);
  bad = good;
  bad[8] = 3;
  reseal(bad);
  EXPECT_NE(error_of(bad).find("versions 1 to 2"), std::string::npos) << error_of(bad);
  nn::build_options o;
  o.mode = nn::precision::fp32;
  const std::vector<std::uint8_t> sequential_file =
      nn::serialize(nn::sequential({{std::vector<float>(4, 1.0f), {}, 2, 2, nn::activation::none}}, o));
  EXPECT_NE(error_of(sequential_file).find("wrong magic"), std::string::npos);
  EXPECT_THROW(nn::deserialize(good), squint::error);  // and the other way round
  EXPECT_THROW(nn::load_graph("/nonexistent/model.sqgr"), squint::error);
}

TEST(NnGraphTest, BadGraphsThrow) {
  nn::graph g;
  EXPECT_THROW(g.add("input", nn::flatten{}), squint::error);
  g.add("a", nn::flatten{});
  EXPECT_THROW(g.add("a", nn::flatten{}), squint::error);
  EXPECT_THROW(g.add("b", nn::flatten{}, {"nowhere"}), squint::error);
  EXPECT_THROW(g.add("c", nn::add{}, {"a"}), squint::error);
  g.add("d", nn::pool{nn::pool::kind::max, {}}, {"input"});
  g.add("e", nn::add{}, {"a", "d"});
  std::vector<float> x(2 * 4 * 4 * 3, 1.0f), y(64);
  EXPECT_THROW(g.forward(x.data(), {2, 4, 4, 3}, y.data()), squint::error);  // 1x1x48 + 2x2x3
  EXPECT_THROW(nn::graph().forward(x.data(), {2, 4, 4, 3}, y.data()), squint::error);
}

TEST(NnConvTest, BadArgumentsThrow) {
  const std::vector<float> w(4 * 27, 0.1f);
  EXPECT_THROW(nn::conv2d(nullptr, {4, 3, 3, 3}, filter_layout::oihw, params(1, 1), nullptr), squint::error);
  EXPECT_THROW(nn::conv2d(w.data(), {4, 3, 3, 3}, filter_layout::oihw, params(0, 1), nullptr), squint::error);
  const nn::conv2d layer(w.data(), {4, 3, 3, 3}, filter_layout::oihw, params(1, 1), nullptr, {nn::precision::int8_dynamic});
  std::vector<float> x(5 * 5 * 3, 1.0f), y(5 * 5 * 4, 7.0f);
  EXPECT_THROW(layer.forward(x.data(), {1, 5, 5, 4}, y.data()), squint::error);
  EXPECT_THROW(layer.forward(nullptr, {1, 5, 5, 3}, y.data()), squint::error);
  EXPECT_EQ(y, std::vector<float>(5 * 5 * 4, 7.0f));
}

}  // namespace

namespace {

/// A layer built from external int8 codes runs exactly them: codes of the input with the given
/// qparams, the int64 reference convolution of the codes, then the float output stage, for
/// grouped, strided and padded filters given OIHW or OHWI.
TEST(NnConv2dFromInt8, RunsTheGivenCodes) {
  struct shape_case {
    filter_shape f;
    conv2d_params params;
    filter_layout layout;
  };
  conv2d_params padded;
  padded.pad_top = padded.pad_left = padded.pad_bottom = padded.pad_right = 1;
  conv2d_params grouped = padded;
  grouped.groups = 2;
  grouped.stride_h = grouped.stride_w = 2;
  const shape_case cases[] = {{{6, 3, 3, 3}, padded, filter_layout::oihw},
                              {{4, 2, 3, 3}, grouped, filter_layout::ohwi},
                              {{5, 4, 1, 1}, conv2d_params{}, filter_layout::oihw}};
  for (const shape_case& c : cases) {
    const std::size_t channels = c.f.group_channels * c.params.groups;
    const image_shape in{2, 5, 6, channels};
    const auto x = squint_test::normal(in.size(), 0.2f, 1.0f, 91);
    const auto codes = squint_test::uniform_ints<std::int8_t>(c.f.out_channels * c.f.taps() * c.f.group_channels,
                                                              -128, 127, 92);
    std::vector<float> scale(c.f.out_channels), bias(c.f.out_channels);
    for (std::size_t o = 0; o < c.f.out_channels; ++o)
      scale[o] = 0.01f + 0.002f * static_cast<float>(o), bias[o] = 0.1f * static_cast<float>(o) - 0.2f;
    const squint::qparams p{0.015f, 120};
    nn::conv2d_options o;
    o.act = nn::activation::relu;
    o.kernels = squint::runtime::backend();
    const nn::conv2d layer = nn::conv2d::from_int8(codes.data(), c.f, c.layout, c.params, scale, bias.data(), p, o);
    EXPECT_EQ(layer.mode(), nn::precision::int8_static);
    EXPECT_EQ(*layer.input_qparams(), p);
    const image_shape out = layer.output_shape(in);
    std::vector<float> y(out.size());
    layer.forward(x.data(), in, y.data());

    std::vector<std::uint8_t> xq(x.size());
    for (std::size_t i = 0; i < x.size(); ++i)
      xq[i] = static_cast<std::uint8_t>(squint::reference::quantize_value(x[i], p, {0, 255}));
    const std::vector<std::int8_t> ohwi = squint::detail::to_ohwi(codes.data(), c.f, c.layout);
    const auto g = squint::resolve("test", in, c.f, c.params);
    std::vector<std::int64_t> acc(out.size());
    squint::reference::conv2d(xq.data(), g, p.zero_point, ohwi.data(), nullptr, 0, acc.data());
    for (std::size_t i = 0; i < out.size(); ++i) {
      const std::size_t ch = i % c.f.out_channels;
      const volatile float product = static_cast<float>(acc[i]) * (p.scale * scale[ch]);  // no FMA: two roundings
      const float v = product + bias[ch];
      ASSERT_EQ(y[i], v > 0.0f ? v : 0.0f) << i;
    }
  }
  const std::vector<std::int8_t> codes(6 * 3 * 9, 1);
  const std::vector<float> scale(6, 0.1f);
  EXPECT_THROW(nn::conv2d::from_int8(codes.data(), {6, 3, 3, 3}, filter_layout::oihw, {}, {0.1f}, nullptr, {0.1f, 0}),
               squint::error);
  EXPECT_THROW(nn::conv2d::from_int8(nullptr, {6, 3, 3, 3}, filter_layout::oihw, {}, scale, nullptr, {0.1f, 0}),
               squint::error);
  EXPECT_THROW(nn::conv2d::from_int8(codes.data(), {6, 3, 3, 3}, filter_layout::oihw, {}, scale, nullptr, {0.1f, 256}),
               squint::error);
  EXPECT_THROW(nn::conv2d::from_int8(codes.data(), {6, 3, 3, 3}, filter_layout::oihw, {}, std::vector<float>(6, -1.0f),
                                     nullptr, {0.1f, 0}),
               squint::error);
}

}  // namespace

}  // namespace nn_conv_test

// SPDX-License-Identifier: Apache-2.0
// nn_test.cpp: squint::nn layers in every precision against FP32, the dynamic INT8 integer stage
// against the reference pieces, calibration, mixed precision, error analysis and save/load.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "squint/dispatch.hpp"
#include "squint/nn.hpp"
#include "squint/reference/gemm.hpp"
#include "squint/reference/quantize.hpp"
#include "support/data.hpp"

namespace nn_test {

namespace {

using squint::nn::activation;
using squint::nn::precision;

constexpr precision all_modes[] = {precision::fp32, precision::fp16, precision::int8_dynamic, precision::int8_static,
                                   precision::int8_weight_only, precision::fp8_weight_only,
                                   precision::int4_weight_only, precision::int4_dynamic};

/// A 3-layer MLP with He-scaled random weights.
std::vector<squint::nn::float_layer> mlp(std::size_t in = 96, std::size_t hidden = 70, std::size_t out = 10) {
  std::vector<squint::nn::float_layer> layers;
  const std::size_t sizes[] = {in, hidden, hidden / 2, out};
  for (std::size_t l = 0; l < 3; ++l) {
    squint::nn::float_layer f;
    f.in = sizes[l];
    f.out = sizes[l + 1];
    f.weights = squint_test::normal(f.out * f.in, 0.0f, std::sqrt(2.0f / static_cast<float>(f.in)),
                                    static_cast<unsigned>(100 + l));
    f.bias = squint_test::normal(f.out, 0.0f, 0.1f, static_cast<unsigned>(200 + l));
    f.act = l < 2 ? activation::relu : activation::none;
    layers.push_back(f);
  }
  return layers;
}

squint::nn::sequential build(const std::vector<squint::nn::float_layer>& layers, precision mode,
                             const std::vector<float>& calibration, squint::nn::backend kernels) {
  squint::nn::build_options o;
  o.mode = mode;
  o.kernels = kernels;
  squint::nn::sequential model(layers, o);
  if (mode == precision::int8_static) {
    model.calibrate(calibration.data(), calibration.size() / model.in_features(), 32);
    model.freeze();
  }
  return model;
}

std::vector<float> run(const squint::nn::sequential& model, const std::vector<float>& x,
                       const squint::parallelism& par = {}) {
  const std::size_t m = x.size() / model.in_features();
  std::vector<float> y(m * model.out_features());
  model.forward(x.data(), m, y.data(), par);
  return y;
}

/// Each precision against FP32 on the same MLP, native and runtime kernels. Thresholds (SQNR of
/// the model output): fp16 60 dB (11-bit weights), int8 and fp8 25 dB (8-bit weights and
/// activations through three layers), int4 12 dB, measured with margin: fp16 ~70, int8 ~35-40,
/// int4 ~15.
TEST(NnLinearTest, EveryPrecisionTracksFp32) {
  const auto layers = mlp();
  const auto x = squint_test::normal(37 * 96, 0.0f, 1.0f, 7);
  const auto calibration = squint_test::normal(256 * 96, 0.0f, 1.0f, 8);
  for (const squint::nn::backend& kernels : {squint::nn::native_backend(), squint::runtime::backend()}) {
    const auto reference = run(build(layers, precision::fp32, calibration, kernels), x);
    for (precision mode : all_modes) {
      const auto model = build(layers, mode, calibration, kernels);
      EXPECT_EQ(model[0].mode(), mode);
      const auto y = run(model, x);
      const auto e = squint::nn::compare(reference.data(), y.data(), y.size());
      // int4 (round to nearest, groups of 32): ~15 dB through three layers of random weights.
      const bool int4 = mode == precision::int4_weight_only || mode == precision::int4_dynamic;
      const double floor = mode == precision::fp32 ? 200.0 : mode == precision::fp16 ? 60.0 : int4 ? 12.0 : 25.0;
      EXPECT_GT(e.sqnr_db, floor) << squint::nn::to_string(mode) << " on " << kernels.isa;
      EXPECT_GT(e.cosine, int4 ? 0.97 : 0.99) << squint::nn::to_string(mode);
    }
  }
}

/// The forms below 8 bits (FP8 E4M3FN and INT4 per group weight-only, INT4 W4A8) run the weights
/// they report (FP32 on values() agrees to float rounding, or to W4A8's int8 activations), are
/// smaller than INT8 (INT4) or as small (FP8), and save and load to the same outputs; a
/// truncated file is refused.
TEST(NnLinearTest, LowBitFormsRunSaveAndLoad) {
  std::vector<squint::nn::float_layer> layers(2);
  layers[0] = {squint_test::normal(24 * 71, 0.0f, 0.3f, 1), squint_test::normal(24, 0.0f, 0.1f, 2), 24, 71,
               activation::relu};
  layers[1] = {squint_test::normal(7 * 24, 0.0f, 0.3f, 3), {}, 7, 24, activation::none};
  const double fp32_bytes = static_cast<double>(squint::nn::sequential(layers, {precision::fp32}).weight_bytes());
  for (precision mode : {precision::fp8_weight_only, precision::int4_weight_only, precision::int4_dynamic}) {
    squint::nn::build_options o;
    o.mode = mode;
    o.int4_group = 16;
    o.kernels = squint::runtime::backend();
    const squint::nn::sequential model(layers, o);
    EXPECT_EQ(model[0].mode(), mode);
    EXPECT_EQ(squint::nn::precision_from_string(squint::nn::to_string(mode)), mode);
    EXPECT_LT(static_cast<double>(model.weight_bytes()), (mode == precision::fp8_weight_only ? 0.3 : 0.25) * fp32_bytes);
    const auto x = squint_test::normal(5 * 71, 0.0f, 1.0f, 4);
    std::vector<float> y(5 * 7), z(5 * 7), reference(5 * 7);
    model.forward(x.data(), 5, y.data());
    const squint::nn::sequential decoded(squint::nn::float_layers(model), {precision::fp32});
    decoded.forward(x.data(), 5, reference.data());
    // W4A8 also rounds its activations to int8 per row (a step of amax / 127, ~0.02 here).
    const float tolerance = mode == precision::int4_dynamic ? 0.1f : 1e-4f;
    for (std::size_t i = 0; i < y.size(); ++i)
      EXPECT_NEAR(y[i], reference[i], tolerance * (1.0f + std::fabs(reference[i]))) << squint::nn::to_string(mode);
    const auto bytes = squint::nn::serialize(model);
    const squint::nn::sequential loaded = squint::nn::deserialize(bytes, o.kernels);
    loaded.forward(x.data(), 5, z.data());
    EXPECT_EQ(y, z) << squint::nn::to_string(mode);
    EXPECT_EQ(loaded[0].weights(), model[0].weights());
    EXPECT_THROW(squint::nn::deserialize(std::vector<std::uint8_t>(bytes.begin(), bytes.begin() + 120), o.kernels),
                 squint::error);
  }
}

/// int4 layers with fp16 group scales: the scales are fp16 values, the bytes fewer, and a file
/// keeps them so (the group field's flag); an unknown flag is refused.
TEST(NnLinearTest, Int4LayersKeepFp16ScalesThroughAFile) {
  const std::vector<squint::nn::float_layer> layers{
      {squint_test::normal(24 * 71, 0.0f, 0.3f, 1), squint_test::normal(24, 0.0f, 0.1f, 2), 24, 71, activation::relu},
      {squint_test::normal(7 * 24, 0.0f, 0.3f, 3), {}, 7, 24, activation::none}};
  for (precision mode : {precision::int4_weight_only, precision::int4_dynamic}) {
    squint::nn::build_options o;
    o.mode = mode;
    o.int4_group = 16;
    const squint::nn::sequential fp32_scales(layers, o);
    o.int4_scales = squint::group_scale_format::fp16;
    const squint::nn::sequential model(layers, o);
    // 24 x 5 + 7 x 2 groups, two bytes each fewer.
    EXPECT_EQ(fp32_scales.weight_bytes() - model.weight_bytes(), (24 * 5 + 7 * 2) * 2u);
    // The layer's weights are the fp16-scale RTN packing's codes times its fp16 scales.
    const auto packed = squint::packed_int4_weights::from_float(layers[0].weights.data(), 24, 71, 71, 16,
                                                               squint::group_scale_format::fp16);
    const auto first = model[0].weights();
    for (std::size_t j = 0; j < 24; ++j)
      for (std::size_t i = 0; i < 71; ++i) {
        const float s = packed.scale(j, i / 16);
        ASSERT_EQ(s, squint::reference::half_to_float(squint::reference::float_to_half(s)));
        ASSERT_EQ(first[j * 71 + i], static_cast<float>(packed.at(j, i)) * s) << j << "," << i;
      }
    const auto x = squint_test::normal(5 * 71, 0.0f, 1.0f, 4);
    std::vector<float> y(5 * 7), z(5 * 7);
    model.forward(x.data(), 5, y.data());
    const auto bytes = squint::nn::serialize(model);
    const squint::nn::sequential loaded = squint::nn::deserialize(bytes, o.kernels);
    loaded.forward(x.data(), 5, z.data());
    EXPECT_EQ(y, z) << squint::nn::to_string(mode);
    EXPECT_EQ(loaded.weight_bytes(), model.weight_bytes());
    EXPECT_EQ(loaded[0].weights(), model[0].weights());
    EXPECT_EQ(squint::nn::serialize(loaded), bytes);
    EXPECT_LT(bytes.size(), squint::nn::serialize(fp32_scales).size());
    // The group field (16 | 1, little-endian) with another flag, checksum renewed: refused.
    std::vector<std::uint8_t> bad = bytes;
    const std::uint8_t field[4] = {17, 0, 0, 0};
    const auto at = std::search(bad.begin(), bad.end(), field, field + 4);
    ASSERT_NE(at, bad.end());
    *at = 18;
    const std::uint64_t h = squint::nn::detail::fnv1a(bad.data(), bad.size() - 8);
    for (std::size_t i = 0; i < 8; ++i) bad[bad.size() - 8 + i] = static_cast<std::uint8_t>(h >> (8 * i));
    try {
      squint::nn::deserialize(bad, o.kernels);
      ADD_FAILURE() << "an unknown int4 flag loaded";
    } catch (const squint::error& e) {
      EXPECT_NE(std::string(e.what()).find("unknown flags"), std::string::npos) << e.what();
    }
  }
}

/// Dynamic INT8's integer stage is the composition of the reference pieces, bit for bit: the
/// activation qparams are choose_qparams of x's range (uint8 affine), the codes are
/// reference::quantize, the accumulators reference::gemm against the weights' codes; the float
/// output applies scale_x * scale_w[j] and the bias to them.
TEST(NnLinearTest, DynamicInt8IntegerStageEqualsTheReferencePieces) {
  for (bool reduce_range : {false, true})
    for (bool per_row : {false, true})
      for (std::size_t m : {1u, 3u, 17u}) {
        const std::size_t in = 203, out = 37;
        const auto w = squint_test::normal(out * in, 0.0f, 0.2f, 9);
        const auto bias = squint_test::normal(out, 0.0f, 0.5f, 10);
        auto x = squint_test::normal(m * in, 0.3f, 2.0f, static_cast<unsigned>(11 + m));
        x[0] = 40.0f;  // an outlier that sets the range
        squint::nn::linear_options o;
        o.mode = precision::int8_dynamic;
        o.per_row = per_row;
        o.reduce_range = reduce_range;  // 7-bit codes: the 7-bit kernel on AVX2 / AVX-512BW
        for (const squint::nn::backend& kernels : {squint::nn::native_backend(), squint::runtime::backend()}) {
          o.kernels = kernels;
          const squint::nn::linear layer(w.data(), out, in, in, bias.data(), o);
          std::vector<std::uint8_t> codes(m * in);
          std::vector<squint::qparams> params(per_row ? m : 1);
          std::vector<std::int32_t> acc(m * out);
          layer.accumulate(x.data(), m, codes.data(), params.data(), acc.data());

          const auto packed = squint::packed_weights::from_float(w.data(), out, in, in);
          std::vector<std::int8_t> wq(out * in);
          for (std::size_t j = 0; j < out; ++j)
            for (std::size_t i = 0; i < in; ++i) wq[j * in + i] = packed.at(j, i);
          std::vector<float> y(m * out);
          layer.forward(x.data(), m, y.data());
          for (std::size_t g = 0; g < params.size(); ++g) {
            const std::size_t rows = per_row ? 1 : m, r0 = g * rows;
            float lo = HUGE_VALF, hi = -HUGE_VALF;
            for (std::size_t v = r0 * in; v < (r0 + rows) * in; ++v) {
              lo = std::min(lo, x[v]);
              hi = std::max(hi, x[v]);
            }
            squint::quant_spec spec;
            spec.reduce_range = reduce_range;
            const squint::qparams p = squint::choose_qparams(lo, hi, spec);
            ASSERT_EQ(params[g].scale, p.scale);
            ASSERT_EQ(params[g].zero_point, p.zero_point);
            std::vector<std::uint8_t> expected_codes(rows * in);
            squint::reference::quantize(x.data() + r0 * in, expected_codes.data(), rows * in, p);
            if (reduce_range)  // codes past 127 saturate (the range maps onto [0, 127] up to rounding)
              for (auto& c : expected_codes) c = std::min<std::uint8_t>(c, 127);
            ASSERT_TRUE(std::equal(expected_codes.begin(), expected_codes.end(), codes.begin() + r0 * in))
                << "codes, rows " << r0 << "+" << rows << " on " << kernels.isa;
            std::vector<std::int64_t> expected_acc(rows * out);
            squint::reference::gemm(
                squint::matrix_view<const std::uint8_t>::row_major(expected_codes.data(), rows, in), p.zero_point,
                squint::matrix_view<const std::int8_t>::row_major(wq.data(), out, in), nullptr, 0,
                squint::matrix_view<std::int64_t>::row_major(expected_acc.data(), rows, out));
            for (std::size_t i = 0; i < rows * out; ++i) {
              ASSERT_EQ(acc[r0 * out + i], expected_acc[i]) << "accumulator " << i << " on " << kernels.isa;
              const std::size_t j = i % out;
              // The output stage is squint::gemm's float one, bit for bit.
              const volatile float product = static_cast<float>(expected_acc[i]) * (p.scale * packed.scales()[j]);
              const float expected = product + bias[j];  // two roundings (no FMA)
              ASSERT_EQ(y[r0 * out + i], expected) << "output " << i << " on " << kernels.isa;
            }
          }
        }
      }
}

TEST(NnLinearTest, StaticInt8NeedsCalibrationAndFreezesTheObserverQparams) {
  const std::size_t in = 40, out = 8;
  const auto w = squint_test::normal(out * in, 0.0f, 0.3f, 12);
  squint::nn::linear_options o;
  o.mode = precision::int8_static;
  o.input_observer = squint::nn::observers::min_max();
  squint::nn::linear layer(w.data(), out, in, in, nullptr, o);
  const auto x = squint_test::normal(16 * in, 1.0f, 1.0f, 13);
  std::vector<float> y(16 * out);
  EXPECT_FALSE(layer.ready());
  EXPECT_THROW(layer.forward(x.data(), 16, y.data()), squint::error);
  EXPECT_THROW(layer.freeze(), squint::error);  // nothing observed yet
  const std::size_t float_bytes = layer.weight_bytes();
  layer.calibrate(x.data(), 16, y.data());
  layer.freeze();
  EXPECT_TRUE(layer.ready());
  EXPECT_EQ(layer.observer_name(), "minmax");
  EXPECT_EQ(layer.weight_bytes(), float_bytes);  // the float copy was never counted
  const auto [lo, hi] = std::minmax_element(x.begin(), x.end());
  const squint::qparams expected = squint::choose_qparams(*lo, *hi, squint::quant_spec{});
  EXPECT_EQ(layer.input_qparams()->scale, expected.scale);
  EXPECT_EQ(layer.input_qparams()->zero_point, expected.zero_point);
  EXPECT_THROW(layer.calibrate(x.data(), 16), squint::error);
  layer.forward(x.data(), 16, y.data());
  EXPECT_THROW(layer.set_input_qparams({0.0f, 0}), squint::error);
  squint::nn::linear dynamic(w.data(), out, in, in, nullptr, {precision::int8_dynamic});
  EXPECT_THROW(dynamic.set_input_qparams({0.1f, 3}), squint::error);
  EXPECT_THROW(dynamic.calibrate(x.data(), 16), squint::error);
}

// 7-bit activations: the default observer works on [0, 127], a user observer must too, the codes
// never pass 127 (values beyond the calibrated range saturate), and the frozen qparams are
// checked against the 7-bit range.
TEST(NnLinearTest, ReduceRangeGivesSevenBitCodes) {
  const std::size_t in = 40, out = 8, m = 16;
  const auto w = squint_test::normal(out * in, 0.0f, 0.3f, 12);
  const auto x = squint_test::normal(m * in, 1.0f, 1.0f, 13);
  squint::nn::linear_options o;
  o.mode = precision::int8_static;
  o.reduce_range = true;
  squint::nn::linear layer(w.data(), out, in, in, nullptr, o);
  layer.calibrate(x.data(), m);
  layer.freeze();
  const auto [lo, hi] = std::minmax_element(x.begin(), x.end());
  squint::quant_spec seven;
  seven.reduce_range = true;
  EXPECT_EQ(*layer.input_qparams(), squint::choose_qparams(*lo, *hi, seven));
  auto wider = x;
  for (float& v : wider) v *= 3.0f;  // beyond the calibrated range
  std::vector<std::uint8_t> codes(m * in);
  squint::qparams p;
  std::vector<std::int32_t> acc(m * out);
  layer.accumulate(wider.data(), m, codes.data(), &p, acc.data());
  EXPECT_EQ(*std::max_element(codes.begin(), codes.end()), 127);
  EXPECT_THROW(layer.set_input_qparams({0.1f, 200}), squint::error);  // zero point outside [0, 127]
  o.input_observer = squint::nn::observers::min_max();                  // a full-range observer
  EXPECT_THROW(squint::nn::linear(w.data(), out, in, in, nullptr, o), squint::error);
  o.input_observer = squint::nn::observers::entropy(seven);
  EXPECT_NO_THROW(squint::nn::linear(w.data(), out, in, in, nullptr, o));
}

// PyTorch's divisor for per-channel symmetric int8 weights: amax / 127.5 on [-128, 127], against
// squint's narrow amax / 127; the int8 precisions, and the integer stage stays exact on every
// kernel.
TEST(NnLinearTest, FullRangeWeightsUsePytorchsDivisor) {
  const std::size_t in = 65, out = 19, m = 5;
  auto w = squint_test::normal(out * in, 0.0f, 0.3f, 31);
  for (std::size_t j = 0; j < out; ++j) {
    w[j * in + j % in] = 2.0f;                  // sets each channel's amax: scale 2 / 127.5
    w[j * in + (j + 1) % in] = -2.0f * 0.999f;  // -127.37: rounds to -127
    w[j * in + (j + 2) % in] = -2.0f * 1.0f;    // -127.5 in exact arithmetic
  }
  const auto x = squint_test::normal(m * in, 0.5f, 1.0f, 32);
  for (precision mode : {precision::int8_dynamic, precision::int8_weight_only})
    for (const squint::nn::backend& kernels : {squint::nn::native_backend(), squint::runtime::backend()}) {
      squint::nn::linear_options o;
      o.mode = mode;
      o.kernels = kernels;
      o.weight_range = squint::nn::int8_weight_range::full;
      const squint::nn::linear full(w.data(), out, in, in, nullptr, o);
      const std::vector<float> values = full.weights();
      const squint::quant_spec pytorch{squint::dtype::int8, squint::qscheme::symmetric};  // [-128, 127]
      for (std::size_t j = 0; j < out; ++j) {
        const squint::qparams p = squint::choose_qparams(-2.0f, 2.0f, pytorch);
        ASSERT_EQ(p.scale, 2.0f / 127.5f);
        for (std::size_t i = 0; i < in; ++i) {
          const std::int32_t code = squint::reference::quantize_value(w[j * in + i], p, {-128, 127});
          ASSERT_EQ(values[j * in + i], static_cast<float>(code) * p.scale) << j << "," << i;
        }
      }
      if (mode != precision::int8_dynamic) continue;
      std::vector<std::uint8_t> codes(m * in);
      squint::qparams p;
      std::vector<std::int32_t> acc(m * out);
      full.accumulate(x.data(), m, codes.data(), &p, acc.data());
      std::vector<std::int8_t> wq(out * in);
      for (std::size_t i = 0; i < wq.size(); ++i)
        wq[i] = static_cast<std::int8_t>(std::nearbyint(values[i] / (2.0f / 127.5f)));
      std::vector<std::int64_t> expect(m * out);
      squint::reference::gemm(squint::matrix_view<const std::uint8_t>::row_major(codes.data(), m, in), p.zero_point,
                              squint::matrix_view<const std::int8_t>::row_major(wq.data(), out, in), nullptr, 0,
                              squint::matrix_view<std::int64_t>::row_major(expect.data(), m, out));
      for (std::size_t i = 0; i < acc.size(); ++i) ASSERT_EQ(acc[i], expect[i]) << i << " on " << kernels.isa;
    }
}

TEST(NnLinearTest, EveryObserverCalibratesAModelThatTracksFp32) {
  const auto layers = mlp();
  const auto x = squint_test::normal(64 * 96, 0.0f, 1.0f, 14);
  const auto reference = run(squint::nn::sequential(layers, {precision::fp32}), x);
  for (const squint::nn::observer& obs :
       {squint::nn::observers::min_max(), squint::nn::observers::moving_average(), squint::nn::observers::entropy(),
        squint::nn::observers::percentile(99.9), squint::nn::observers::mse(), squint::nn::observers::l2()}) {
    squint::nn::build_options o;
    o.mode = precision::int8_static;
    o.input_observer = obs;
    squint::nn::sequential model(layers, o);
    std::vector<std::pair<std::size_t, std::size_t>> progress;
    model.calibrate(x.data(), 64, 10, [&](std::size_t done, std::size_t total) { progress.emplace_back(done, total); });
    ASSERT_EQ(progress.size(), 7u);
    EXPECT_EQ(progress.back(), std::make_pair(std::size_t{7}, std::size_t{7}));
    model.freeze();
    EXPECT_EQ(model[1].observer_name(), obs.name());
    const auto y = run(model, x);
    EXPECT_GT(squint::nn::compare(reference.data(), y.data(), y.size()).sqnr_db, 20.0) << obs.name();
  }
  EXPECT_EQ(squint::nn::observers::percentile(99.9).name(), "percentile_99.9");
}

TEST(NnLinearTest, MixedPrecisionOverridesAndAutomaticAreHonoured) {
  const auto layers = mlp();
  squint::nn::build_options o;
  o.mode = precision::int8_dynamic;
  o.overrides = {{0, precision::fp32}, {2, precision::fp16}};
  const squint::nn::sequential model(layers, o);
  EXPECT_EQ(model[0].mode(), precision::fp32);
  EXPECT_EQ(model[1].mode(), precision::int8_dynamic);
  EXPECT_EQ(model[2].mode(), precision::fp16);
  o.overrides = {{3, precision::fp16}};
  EXPECT_THROW(squint::nn::sequential(layers, o), squint::error);

  squint::nn::backend slow = squint::nn::native_backend();
  slow.fast_int8 = false;
  squint::nn::backend fast = slow;
  fast.fast_int8 = true;
  EXPECT_EQ(squint::nn::sequential(layers, {precision::automatic, {}, false, std::nullopt, slow})[1].mode(),
            precision::fp16);
  EXPECT_EQ(squint::nn::sequential(layers, {precision::automatic, {}, false, std::nullopt, fast})[1].mode(),
            precision::int8_dynamic);
  EXPECT_EQ(squint::nn::precision_from_string("int8_weight_only"), precision::int8_weight_only);
  EXPECT_THROW(squint::nn::precision_from_string("int4"), squint::error);
}

TEST(NnLinearTest, WeightBytesShrinkWithPrecision) {
  const auto layers = mlp(784, 512, 10);
  const squint::nn::sequential fp32(layers, {precision::fp32});
  const double float_bytes = static_cast<double>(fp32.weight_bytes());
  EXPECT_EQ(fp32.weight_bytes(), (784u * 512u + 512u * 256u + 256u * 10u + 512u + 256u + 10u) * 4u);
  EXPECT_LT(squint::nn::sequential(layers, {precision::fp16}).weight_bytes() / float_bytes, 0.52);
  EXPECT_LT(squint::nn::sequential(layers, {precision::int8_dynamic}).weight_bytes() / float_bytes, 0.27);
  EXPECT_LT(squint::nn::sequential(layers, {precision::int8_weight_only}).weight_bytes() / float_bytes, 0.27);
}

TEST(NnLinearTest, ThreadsDoNotChangeResultsAndBatchOneWorks) {
  const auto layers = mlp(300, 256, 10);
  const auto x = squint_test::normal(64 * 300, 0.0f, 1.0f, 15);
  for (precision mode : all_modes) {
    const auto model = build(layers, mode, x, squint::runtime::backend());
    const auto one = run(model, x), two = run(model, x, squint::parallelism{2, nullptr});
    if (mode == precision::fp32) {  // Eigen blocks a column slice differently: same to rounding
      EXPECT_GT(squint::nn::compare(one.data(), two.data(), one.size()).sqnr_db, 100.0);
    } else {  // squint's kernels sum each column in the same order whatever the split
      EXPECT_EQ(one, two) << squint::nn::to_string(mode);
    }
    std::vector<float> row(10);
    model.forward(x.data(), 1, row.data());
    // Dynamic qparams depend on the batch; Eigen's GEMV sums in another order than its GEMM.
    if (mode != precision::int8_dynamic && mode != precision::fp32) {
      EXPECT_TRUE(std::equal(row.begin(), row.end(), one.begin())) << squint::nn::to_string(mode);
    }
  }
}

TEST(NnLinearTest, BadArgumentsAreRejected) {
  const std::vector<float> w(12, 0.5f);
  EXPECT_THROW(squint::nn::linear(nullptr, 3, 4, 4, nullptr), squint::error);
  EXPECT_THROW(squint::nn::linear(w.data(), 3, 4, 3, nullptr), squint::error);
  EXPECT_THROW(squint::nn::linear(w.data(), 0, 4, 4, nullptr), squint::error);
  const squint::nn::linear layer(w.data(), 3, 4, 4, nullptr, {precision::fp32});
  std::vector<float> y(3);
  EXPECT_THROW(layer.forward(nullptr, 1, y.data()), squint::error);
  EXPECT_THROW(layer.forward(w.data(), 1, nullptr), squint::error);
  layer.forward(nullptr, 0, nullptr);
  squint::nn::sequential model;
  EXPECT_THROW(model.forward(w.data(), 1, y.data()), squint::error);
  model.add(layer);
  EXPECT_THROW(model.add(squint::nn::linear(w.data(), 3, 4, 4, nullptr)), squint::error);
}

TEST(NnAnalysisTest, ReportsPerLayerErrorsIsolatedAndPropagated) {
  const auto layers = mlp();
  const auto x = squint_test::normal(32 * 96, 0.0f, 1.0f, 16);
  const squint::nn::sequential fp32(layers, {precision::fp32});
  const squint::nn::sequential fp16(layers, {precision::fp16});
  const squint::nn::sequential int8(layers, {precision::int8_dynamic});
  const auto report = squint::nn::analyze(fp32, {{"fp32", &fp32}, {"fp16", &fp16}, {"int8", &int8}}, x.data(), 32);
  ASSERT_EQ(report.rows.size(), 9u);
  for (std::size_t l = 0; l < 3; ++l) {
    EXPECT_TRUE(std::isinf(report.rows[l].isolated.sqnr_db));
    EXPECT_EQ(report.rows[l].isolated.max_abs, 0.0);
    EXPECT_GT(report.rows[3 + l].isolated.sqnr_db, report.rows[6 + l].isolated.sqnr_db);
    EXPECT_EQ(report.rows[6 + l].mode, precision::int8_dynamic);
  }
  // Error accumulates: the last layer is worse fed its own inputs than the reference's.
  EXPECT_LE(report.rows[8].propagated.sqnr_db, report.rows[8].isolated.sqnr_db + 1e-9);
  EXPECT_EQ(report.rows[6].isolated.mse, report.rows[6].propagated.mse);  // first layer: same input
  const std::string table = report.to_string();
  EXPECT_NE(table.find("sqnr_db"), std::string::npos);
  EXPECT_NE(table.find("int8_dynamic"), std::string::npos);
  const float a[] = {1.0f, -2.0f}, b[] = {1.5f, -2.0f};
  const auto e = squint::nn::compare(a, b, 2);
  EXPECT_DOUBLE_EQ(e.mse, 0.125);
  EXPECT_DOUBLE_EQ(e.max_abs, 0.5);
  EXPECT_NEAR(e.sqnr_db, 10.0 * std::log10(5.0 / 0.25), 1e-12);
}

TEST(NnSerializeTest, SaveThenLoadGivesIdenticalOutputsInEveryPrecision) {
  const auto layers = mlp();
  const auto x = squint_test::normal(33 * 96, 0.0f, 1.0f, 17);
  for (precision mode : all_modes)
    for (bool per_row : {false, true}) {
      squint::nn::build_options o;
      o.mode = mode;
      o.per_row = per_row;
      o.reduce_range = per_row;  // 7-bit activations travel with the file (flag bit 2)
      o.overrides = {{2, precision::fp16}};
      squint::nn::sequential model(layers, o);
      if (mode == precision::int8_static) {
        model.calibrate(x.data(), 33, 8);
        model.freeze();
      }
      std::stringstream file;
      squint::nn::save(model, file);
      const auto loaded = squint::nn::load(file);
      ASSERT_EQ(loaded.size(), 3u);
      EXPECT_EQ(loaded[0].mode(), mode);
      EXPECT_EQ(loaded[2].mode(), precision::fp16);
      EXPECT_EQ(loaded[0].per_row(), per_row);
      EXPECT_EQ(loaded[0].reduce_range(), model[0].reduce_range());
      if (mode == precision::int8_dynamic || mode == precision::int8_static) {
        EXPECT_EQ(model[0].reduce_range(), per_row);
      }
      EXPECT_EQ(loaded[1].act(), activation::relu);
      EXPECT_EQ(loaded.weight_bytes(), model.weight_bytes());
      EXPECT_EQ(run(loaded, x), run(model, x)) << squint::nn::to_string(mode);
      EXPECT_EQ(squint::nn::serialize(loaded), squint::nn::serialize(model));
    }
}

/// The message of the squint::error `f` throws ("" if none).
template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const squint::error& e) {
    return e.what();
  }
  return "";
}

TEST(NnSerializeTest, CorruptFilesAreRejectedWithTheReason) {
  const squint::nn::sequential model(mlp(), {precision::int8_dynamic});
  const std::vector<std::uint8_t> good = squint::nn::serialize(model);
  auto load = [](std::vector<std::uint8_t> bytes) { return [bytes] { squint::nn::deserialize(bytes); }; };
  EXPECT_EQ(error_of(load(good)), "");

  auto bad = good;
  bad[0] = 'X';
  EXPECT_NE(error_of(load(bad)).find("wrong magic"), std::string::npos);
  bad = good;
  bad[8] = 2;
  EXPECT_NE(error_of(load(bad)).find("version 2"), std::string::npos);
  bad = good;
  bad[16] = 9;  // first layer's precision code
  EXPECT_NE(error_of(load(bad)).find("precision code 9"), std::string::npos);
  bad = good;
  bad[good.size() / 2] ^= 0x10;  // a weight byte
  EXPECT_NE(error_of(load(bad)).find("checksum"), std::string::npos);
  bad = good;
  bad.push_back(0);
  EXPECT_NE(error_of(load(bad)).find("size mismatch"), std::string::npos);
  for (std::size_t cut : {std::size_t{0}, std::size_t{5}, std::size_t{20}, good.size() / 3, good.size() - 1}) {
    const std::vector<std::uint8_t> truncated(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(cut));
    EXPECT_NE(error_of(load(truncated)).find("truncated"), std::string::npos) << "cut at " << cut;
  }
  bad = good;
  bad[20] = 0xff;  // out = huge: refused before allocating
  bad[27] = 0x7f;
  EXPECT_NE(error_of(load(bad)).find("truncated"), std::string::npos);

  squint::nn::sequential unfrozen(mlp(), {precision::int8_static});
  std::stringstream file;
  EXPECT_NE(error_of([&] { squint::nn::save(unfrozen, file); }).find("frozen"), std::string::npos);
  EXPECT_NE(error_of([] { squint::nn::load(std::string("/nonexistent/model.sqnt")); }).find("cannot open"),
            std::string::npos);
}

}  // namespace

}  // namespace nn_test

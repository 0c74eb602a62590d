// SPDX-License-Identifier: Apache-2.0
// conv_test.cpp: the INT8 convolution (im2col tiles on the GEMM micro-kernels, 1x1 straight on
// them, depthwise kernels) on every ISA compiled in, bit for bit against the int64 reference.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "squint/conv/conv.hpp"
#include "squint/conv/float_conv.hpp"
#include "squint/dispatch.hpp"
#include "squint/reference/conv.hpp"
#include "squint/reference/convert.hpp"
#include "squint/reference/requantize.hpp"
#include "support/data.hpp"

namespace conv_test {

namespace {

using squint::activation;
using squint::conv2d_geometry;
using squint::conv2d_params;
using squint::filter_layout;
using squint::filter_shape;
using squint::image_shape;
using squint::packed_conv;
using squint::packed_float_conv;
using squint::padding_mode;
using squint::qparams;
namespace table = squint::runtime::detail;

/// Every ISA compiled into the tests that this CPU runs.
std::vector<const table::kernel_table*> runnable() {
  std::vector<const table::kernel_table*> out;
  for (const table::kernel_table& t : table::tables())
    if (t.available()) out.push_back(&t);
  return out;
}

struct conv_case {
  image_shape in;
  filter_shape f;
  conv2d_params p;
  std::string name;
};

conv2d_params params(std::size_t stride, std::size_t pad, std::size_t groups = 1, std::size_t dilation = 1) {
  conv2d_params p;
  p.stride_h = p.stride_w = stride;
  p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = pad;
  p.groups = groups;
  p.dilation_h = p.dilation_w = dilation;
  return p;
}

std::vector<conv_case> awkward_cases() {
  std::vector<conv_case> cases;
  auto add = [&](image_shape in, filter_shape f, conv2d_params p, const char* name) {
    cases.push_back({in, f, p, name});
  };
  add({1, 5, 7, 3}, {1, 3, 1, 1}, params(1, 0), "1x1 one channel out");
  add({2, 6, 5, 17}, {33, 17, 1, 1}, params(1, 0), "1x1 pointwise");
  add({1, 7, 7, 16}, {20, 16, 1, 1}, params(2, 0), "1x1 stride 2");
  add({1, 9, 8, 5}, {17, 5, 3, 3}, params(1, 1), "3x3 pad 1");
  add({2, 11, 10, 3}, {16, 3, 7, 7}, params(2, 3), "7x7/2 pad 3");
  add({1, 8, 9, 6}, {8, 3, 3, 3}, params(1, 1, 2), "groups 2");
  add({1, 6, 6, 12}, {12, 3, 3, 2}, params(2, 1, 4), "groups 4, 3x2, stride 2");
  add({1, 10, 9, 4}, {5, 4, 3, 3}, params(1, 2, 1, 2), "dilation 2");
  add({1, 3, 2, 4}, {6, 4, 5, 5}, params(1, 3), "kernel larger than the image, windows of padding only");
  for (std::size_t c : {1u, 7u, 8u, 15u, 16u, 17u, 31u, 32u, 33u, 64u, 65u}) {
    cases.push_back({{1, 6, 7, c}, {c, 1, 3, 3}, params(1, 1, c), "depthwise 3x3 C=" + std::to_string(c)});
    cases.push_back({{2, 7, 6, c}, {c, 1, 3, 3}, params(2, 1, c), "depthwise 3x3/2 C=" + std::to_string(c)});
  }
  add({1, 9, 9, 24}, {24, 1, 5, 5}, params(1, 2, 24), "depthwise 5x5");
  add({1, 5, 6, 18}, {18, 1, 2, 1}, params(1, 0, 18), "depthwise 2x1 (even taps)");
  add({1, 6, 6, 8}, {16, 1, 3, 3}, params(1, 1, 8), "depthwise multiplier 2");
  conv2d_params same = params(2, 0);
  same.padding = padding_mode::same_upper;
  add({1, 7, 8, 3}, {9, 3, 3, 3}, same, "same_upper stride 2");
  same.padding = padding_mode::same_lower;
  add({1, 7, 8, 3}, {9, 3, 4, 4}, same, "same_lower stride 2, even kernel");
  conv2d_params asym = params(1, 0);
  asym.pad_top = 2;
  asym.pad_right = 1;
  asym.stride_h = 2;
  add({1, 6, 9, 10}, {11, 10, 3, 2}, asym, "asymmetric pads and strides");
  // One input channel (a grey first layer) has an im2col of its own.
  add({2, 9, 11, 1}, {5, 1, 3, 3}, params(1, 2, 1, 2), "one channel, dilation 2");
  add({2, 11, 10, 1}, {8, 1, 7, 7}, params(2, 3), "one channel, 7x7/2 pad 3");
  add({1, 3, 2, 1}, {4, 1, 5, 5}, params(1, 3), "one channel, windows of padding only");
  add({1, 6, 9, 1}, {3, 1, 3, 2}, asym, "one channel, asymmetric pads and strides");
  return cases;
}

template <class TA>
void check_int32(const conv_case& c, const std::vector<TA>& x, std::int32_t zx, const std::vector<std::int8_t>& w,
                 const std::vector<std::int32_t>& zw, const char* what) {
  const packed_conv packed = packed_conv::from_int8(w.data(), c.f, filter_layout::ohwi, c.p,
                                                    std::vector<float>(1, 0.25f), zw);
  const conv2d_geometry g = packed.geometry(c.in);
  std::vector<std::int64_t> expect(g.out.size());
  squint::reference::conv2d(x.data(), g, zx, w.data(), zw.data(), zw.size(), expect.data());
  for (const table::kernel_table* t : runnable())
    for (unsigned threads : {1u, 3u}) {
      std::vector<std::int32_t> y(g.out.size(), 0x5a5a5a5a);
      const squint::parallelism par{threads};
      if constexpr (std::is_same_v<TA, std::int8_t>) t->conv_s8(x.data(), g, zx, packed, y.data(), par, nullptr);
      else t->conv_u8(x.data(), g, zx, packed, y.data(), par, nullptr);
      for (std::size_t i = 0; i < y.size(); ++i)
        ASSERT_EQ(y[i], expect[i]) << c.name << " (" << what << ") on " << t->name << ", " << threads
                                   << " threads, at " << i;
    }
}

TEST(ConvTest, MatchesReferenceOnEveryIsa) {
  unsigned seed = 1;
  for (const conv_case& c : awkward_cases()) {
    const std::size_t wn = c.f.out_channels * c.f.taps() * c.f.group_channels;
    const auto xu = squint_test::uniform_ints<std::uint8_t>(c.in.size(), 0, 255, ++seed);
    const auto xs = squint_test::uniform_ints<std::int8_t>(c.in.size(), -128, 127, ++seed);
    const auto narrow = squint_test::uniform_ints<std::int8_t>(wn, -127, 127, ++seed);
    const auto full = squint_test::uniform_ints<std::int8_t>(wn, -128, 127, ++seed);
    std::vector<std::int32_t> zw(c.f.out_channels);
    for (std::size_t o = 0; o < zw.size(); ++o) zw[o] = static_cast<std::int32_t>(o * 37 % 256) - 128;
    check_int32(c, xu, 0, narrow, {0}, "u8, symmetric narrow weights");
    check_int32(c, xu, 131, full, {0}, "u8 zero point 131, full-range weights");
    check_int32(c, xu, 255, full, zw, "u8 zero point 255, per-channel weight zero points");
    check_int32(c, xs, -7, narrow, zw, "s8 zero point -7");
  }
}

TEST(ConvTest, ExtremeCodes) {
  // 255 x -128 everywhere (the products AVX2's vpmaddubsw would saturate), deep and depthwise.
  const conv_case deep{{1, 5, 5, 64}, {40, 64, 3, 3}, params(1, 1), "3x3x64 extremes"};
  const conv_case dw{{1, 5, 5, 48}, {48, 1, 3, 3}, params(1, 1, 48), "depthwise extremes"};
  for (const conv_case& c : {deep, dw}) {
    const std::size_t wn = c.f.out_channels * c.f.taps() * c.f.group_channels;
    check_int32(c, std::vector<std::uint8_t>(c.in.size(), 255), 0, std::vector<std::int8_t>(wn, -128), {0}, "255 x -128");
    check_int32(c, std::vector<std::uint8_t>(c.in.size(), 0), 255, std::vector<std::int8_t>(wn, 127), {-128}, "-255 x 255");
    check_int32(c, std::vector<std::int8_t>(c.in.size(), -128), 127, std::vector<std::int8_t>(wn, -128), {127},
                "s8 -255 x -255");
  }
}

TEST(ConvTest, OihwAndUint8FiltersPackTheSameProduct) {
  const image_shape in{1, 6, 5, 6};
  const filter_shape f{4, 3, 3, 2};
  const conv2d_params p = params(1, 1, 2);
  const std::size_t wn = 4 * 3 * 3 * 2;
  const auto ohwi = squint_test::uniform_ints<std::int8_t>(wn, -128, 127, 3);
  std::vector<std::int8_t> oihw(wn);
  std::vector<std::uint8_t> oihw_u8(wn);
  for (std::size_t o = 0; o < 4; ++o)
    for (std::size_t t = 0; t < 6; ++t)
      for (std::size_t c = 0; c < 3; ++c) {
        oihw[(o * 3 + c) * 6 + t] = ohwi[(o * 6 + t) * 3 + c];
        oihw_u8[(o * 3 + c) * 6 + t] = static_cast<std::uint8_t>(ohwi[(o * 6 + t) * 3 + c] + 128);
      }
  const std::vector<float> s{0.5f};
  const auto a = packed_conv::from_int8(ohwi.data(), f, filter_layout::ohwi, p, s, {3});
  const auto b = packed_conv::from_int8(oihw.data(), f, filter_layout::oihw, p, s, {3});
  const auto u = packed_conv::from_uint8(oihw_u8.data(), f, filter_layout::oihw, p, s, {131});
  const auto x = squint_test::uniform_ints<std::uint8_t>(in.size(), 0, 255, 4);
  std::vector<std::int32_t> ya(a.geometry(in).out.size()), yb(ya.size()), yu(ya.size());
  squint::conv2d(x.data(), in, 9, a, ya.data());
  squint::conv2d(x.data(), in, 9, b, yb.data());
  squint::conv2d(x.data(), in, 9, u, yu.data());
  EXPECT_EQ(ya, yb);
  EXPECT_EQ(ya, yu);
  for (std::size_t o = 0; o < 4; ++o)
    for (std::size_t t = 0; t < 6; ++t)
      for (std::size_t c = 0; c < 3; ++c) ASSERT_EQ(a.code(o, t, c), ohwi[(o * 6 + t) * 3 + c]);
}

/// The float and requantized stages against the reference accumulators put through the GEMM's
/// documented formulas, for a GEMM-shaped and a depthwise filter, each activation.
TEST(ConvTest, FloatAndRequantizedStagesOnEveryIsa) {
  const conv_case cases[] = {{{2, 7, 6, 10}, {19, 10, 3, 3}, params(2, 1), "3x3/2"},
                             {{1, 7, 7, 40}, {40, 1, 3, 3}, params(1, 1, 40), "depthwise"}};
  for (const conv_case& c : cases) {
    const std::size_t wn = c.f.out_channels * c.f.taps() * c.f.group_channels;
    const auto x = squint_test::uniform_ints<std::uint8_t>(c.in.size(), 0, 255, 11);
    const auto w = squint_test::uniform_ints<std::int8_t>(wn, -127, 127, 12);
    std::vector<float> ws(c.f.out_channels);
    std::vector<float> fbias(c.f.out_channels);
    std::vector<std::int32_t> ibias(c.f.out_channels);
    for (std::size_t o = 0; o < ws.size(); ++o) {
      ws[o] = 0.001f * static_cast<float>(o + 1);
      fbias[o] = 0.37f * static_cast<float>(o % 5) - 0.8f;
      ibias[o] = static_cast<std::int32_t>(o * 911 % 4001) - 2000;
    }
    ibias[0] = 2147483647;  // does not fit the kernels' offsets: the saturating path
    const packed_conv packed = packed_conv::from_int8(w.data(), c.f, filter_layout::ohwi, c.p, ws, {0});
    const conv2d_geometry g = packed.geometry(c.in);
    std::vector<std::int64_t> acc(g.out.size());
    squint::reference::conv2d(x.data(), g, 120, w.data(), nullptr, 0, acc.data());
    const qparams xp{0.02f, 120}, yp{0.05f, 5};
    const squint::quant_range r8 = squint::full_range(squint::dtype::int8);
    const std::int32_t six = squint::reference::quantize_value(6.0f, yp, r8);
    for (activation act : {activation::none, activation::relu, activation::relu6}) {
      std::vector<float> fexpect(g.out.size());
      std::vector<std::int8_t> qexpect(g.out.size());
      for (std::size_t i = 0; i < acc.size(); ++i) {
        const std::size_t o = i % g.out.channels;
        const volatile float product = static_cast<float>(acc[i]) * (xp.scale * ws[o]);  // no FMA: two roundings
        float v = product + fbias[o];
        if (act != activation::none) v = !(v > 0.0f) ? 0.0f : (act == activation::relu6 ? std::min(v, 6.0f) : v);
        fexpect[i] = v;
        const std::int64_t biased = std::clamp<std::int64_t>(acc[i] + ibias[o], INT32_MIN, INT32_MAX);
        std::int32_t q = squint::reference::requantize_value(static_cast<std::int32_t>(biased),
                                                             xp.scale * ws[o] / yp.scale, yp.zero_point, r8);
        if (act != activation::none) q = std::clamp(q, yp.zero_point, act == activation::relu6 ? six : 127);
        qexpect[i] = static_cast<std::int8_t>(q);
      }
      for (const table::kernel_table* t : runnable()) {
        squint::runtime::force_isa(t->name);
        std::vector<float> fy(g.out.size());
        std::vector<std::int8_t> qy(g.out.size());
        squint::runtime::conv2d(x.data(), c.in, xp, packed, fbias.data(), act, fy.data(), {2});
        squint::runtime::conv2d(x.data(), c.in, xp, packed, ibias.data(), yp, act, qy.data(), {2});
        for (std::size_t i = 0; i < fy.size(); ++i) {
          ASSERT_EQ(fy[i], fexpect[i]) << c.name << " float on " << t->name << " at " << i;
          ASSERT_EQ(qy[i], qexpect[i]) << c.name << " codes on " << t->name << " at " << i;
        }
      }
      squint::runtime::force_isa(nullptr);
    }
  }
}

TEST(ConvTest, StaticDispatchMatchesRuntime) {
  const image_shape in{1, 8, 8, 32};
  const std::vector<float> w = squint_test::normal(32 * 9 * 32, 0.0f, 0.1f, 5);
  const conv2d_params p = params(1, 1);
  const packed_conv packed = packed_conv::from_float(w.data(), {32, 32, 3, 3}, filter_layout::oihw, p);
  const auto x = squint_test::uniform_ints<std::uint8_t>(in.size(), 0, 255, 6);
  std::vector<std::int32_t> a(packed.geometry(in).out.size()), b(a.size());
  squint::conv2d(x.data(), in, 128, packed, a.data());
  squint::runtime::conv2d(x.data(), in, 128, packed, b.data());
  EXPECT_EQ(a, b);
}

TEST(ConvTest, FloatFiltersQuantizePerOutputChannel) {
  // Output channel o's weights over (c, ky, kx) in OIHW share one symmetric scale amax / 127.
  const filter_shape f{3, 2, 2, 2};
  std::vector<float> w(3 * 2 * 4);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = std::sin(static_cast<float>(i)) * static_cast<float>(i / 8 + 1);
  const packed_conv packed = packed_conv::from_float(w.data(), f, filter_layout::oihw, params(1, 0));
  for (std::size_t o = 0; o < 3; ++o) {
    float amax = 0.0f;
    for (std::size_t i = 0; i < 8; ++i) amax = std::max(amax, std::fabs(w[o * 8 + i]));
    EXPECT_FLOAT_EQ(packed.scales()[o], amax / 127.0f);
    for (std::size_t c = 0; c < 2; ++c)
      for (std::size_t t = 0; t < 4; ++t)
        EXPECT_EQ(packed.code(o, t, c), static_cast<std::int8_t>(std::nearbyint(w[(o * 2 + c) * 4 + t] / packed.scales()[o])));
  }
}

void expect_error(const std::function<void()>& call, const std::string& needle) {
  try {
    call();
    FAIL() << "expected squint::error containing '" << needle << "'";
  } catch (const squint::error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(ConvTest, BadArgumentsThrowAndWriteNothing) {
  const filter_shape f{4, 3, 3, 3};
  const std::vector<std::int8_t> w(4 * 27, 1);
  const std::vector<float> s{1.0f};
  expect_error([&] { packed_conv::from_int8(w.data(), f, filter_layout::ohwi, params(0, 0), s, {0}); }, "stride");
  expect_error([&] { packed_conv::from_int8(w.data(), f, filter_layout::ohwi, params(1, 0, 3), s, {0}); }, "groups");
  expect_error([&] { packed_conv::from_int8(w.data(), f, filter_layout::ohwi, params(1, 0, 1, 0), s, {0}); },
               "dilation");
  expect_error([&] { packed_conv::from_int8(nullptr, f, filter_layout::ohwi, params(1, 0), s, {0}); }, "'w'");
  expect_error([&] { packed_conv::from_int8(w.data(), f, filter_layout::ohwi, params(1, 0), {0.0f}, {0}); },
               "scale");
  expect_error([&] { packed_conv::from_int8(w.data(), f, filter_layout::ohwi, params(1, 0), s, {200}); },
               "zero_point");
  expect_error([&] { packed_conv::from_int8(w.data(), {0, 3, 3, 3}, filter_layout::ohwi, params(1, 0), s, {0}); },
               "filter sizes");
  const packed_conv packed = packed_conv::from_int8(w.data(), f, filter_layout::ohwi, params(1, 0), s, {0});
  const std::vector<std::uint8_t> x(2 * 5 * 5 * 3, 7);
  std::vector<std::int32_t> y(2 * 3 * 3 * 4, 0x5a5a5a5a);
  const std::vector<std::int32_t> untouched = y;
  expect_error([&] { squint::conv2d(x.data(), {2, 5, 5, 4}, 0, packed, y.data()); }, "channels");
  expect_error([&] { squint::conv2d(x.data(), {2, 2, 5, 3}, 0, packed, y.data()); }, "smaller than the dilated kernel");
  expect_error([&] { squint::conv2d(x.data(), {2, 0, 5, 3}, 0, packed, y.data()); }, "height and width");
  expect_error([&] { squint::conv2d(x.data(), {2, 5, 5, 3}, 256, packed, y.data()); }, "x_zero_point");
  expect_error([&] { squint::conv2d<std::uint8_t>(nullptr, {2, 5, 5, 3}, 0, packed, y.data()); }, "'x'");
  expect_error([&] { squint::conv2d(x.data(), {2, 5, 5, 3}, 0, packed, static_cast<std::int32_t*>(nullptr)); },
               "'y'");
  expect_error([&] { squint::runtime::conv2d(x.data(), {2, 5, 5, 3}, qparams{0.0f, 0}, packed, nullptr,
                                             activation::relu, reinterpret_cast<float*>(y.data())); },
               "x_params");
  expect_error([&] { squint::runtime::conv2d(x.data(), {2, 5, 5, 3}, qparams{1.0f, 0}, packed, nullptr,
                                             qparams{1.0f, 300}, activation::none,
                                             reinterpret_cast<std::int8_t*>(y.data())); },
               "y_params");
  conv2d_params huge = params(1, 0);
  huge.pad_top = static_cast<std::size_t>(-2);
  const packed_conv padded = packed_conv::from_int8(w.data(), f, filter_layout::ohwi, huge, s, {0});
  expect_error([&] { squint::conv2d(x.data(), {2, 5, 5, 3}, 0, padded, y.data()); }, "overflows");
  EXPECT_EQ(y, untouched);
}

TEST(ConvTest, SamePaddingFollowsOnnx) {
  // ONNX: output ceil(in / stride); the odd pad at the end (SAME_UPPER) or the beginning.
  conv2d_params p = params(2, 0);
  p.padding = padding_mode::same_upper;
  const std::vector<std::int8_t> w(1 * 9, 1);
  const auto packed = packed_conv::from_int8(w.data(), {1, 1, 3, 3}, filter_layout::ohwi, p, {1.0f}, {0});
  const conv2d_geometry g = packed.geometry({1, 8, 7, 1});
  EXPECT_EQ(g.out.height, 4u);
  EXPECT_EQ(g.out.width, 4u);
  EXPECT_EQ(g.params.pad_top, 0u);
  EXPECT_EQ(g.params.pad_bottom, 1u);
  EXPECT_EQ(g.params.pad_left, 1u);
  EXPECT_EQ(g.params.pad_right, 1u);
  p.padding = padding_mode::same_lower;
  const auto lower = packed_conv::from_int8(w.data(), {1, 1, 3, 3}, filter_layout::ohwi, p, {1.0f}, {0});
  EXPECT_EQ(lower.geometry({1, 8, 7, 1}).params.pad_top, 1u);
  EXPECT_EQ(lower.geometry({1, 8, 7, 1}).params.pad_bottom, 0u);
}

}  // namespace

namespace {

/// The float convolutions against the double reference over the weights each form really
/// holds (fp16-rounded, or code x scale), within float accumulation error, on every ISA.
template <class Packed>
void check_float_conv(const conv_case& c, const std::vector<float>& effective_ohwi, const packed_float_conv<Packed>& w,
                      const std::vector<float>& x, const char* what) {
  const conv2d_geometry g = w.geometry(c.in);
  std::vector<float> bias(c.f.out_channels);
  for (std::size_t o = 0; o < bias.size(); ++o) bias[o] = 0.25f * static_cast<float>(o % 7) - 0.75f;
  std::vector<double> expect(g.out.size()), magnitude(g.out.size());
  squint::reference::conv2d_float(x.data(), g, effective_ohwi.data(), bias.data(), expect.data());
  std::vector<float> ax(x.size()), aw(effective_ohwi.size());
  for (std::size_t i = 0; i < x.size(); ++i) ax[i] = std::fabs(x[i]);
  for (std::size_t i = 0; i < aw.size(); ++i) aw[i] = std::fabs(effective_ohwi[i]);
  squint::reference::conv2d_float(ax.data(), g, aw.data(), nullptr, magnitude.data());
  for (activation act : {activation::none, activation::relu, activation::relu6})
    for (const table::kernel_table* t : runnable()) {
      squint::runtime::force_isa(t->name);
      std::vector<float> y(g.out.size(), -7.0f);
      squint::runtime::conv2d(x.data(), c.in, w, bias.data(), act, y.data(), {2});
      for (std::size_t i = 0; i < y.size(); ++i) {
        double e = expect[i];
        if (act != activation::none) e = std::max(e, 0.0);
        if (act == activation::relu6) e = std::min(e, 6.0);
        ASSERT_NEAR(y[i], e, 1e-5 * (magnitude[i] + 1.0)) << c.name << " " << what << " on " << t->name << " at " << i;
      }
    }
  squint::runtime::force_isa(nullptr);
}

TEST(FloatConvTest, Fp32Fp16AndWeightOnlyMatchTheReference) {
  const conv_case cases[] = {{{2, 6, 7, 5}, {17, 5, 3, 3}, params(1, 1), "3x3 pad 1"},
                             {{1, 9, 8, 8}, {8, 4, 3, 2}, params(2, 1, 2), "groups 2, 3x2 stride 2"},
                             {{1, 5, 5, 24}, {40, 24, 1, 1}, params(1, 0), "1x1"},
                             {{1, 7, 7, 12}, {12, 1, 3, 3}, params(1, 1, 12), "depthwise"}};
  for (const conv_case& c : cases) {
    const std::size_t depth = c.f.taps() * c.f.group_channels;
    const std::vector<float> w = squint_test::normal(c.f.out_channels * depth, 0.0f, 0.3f, 21);  // OHWI
    const std::vector<float> x = squint_test::normal(c.in.size(), 0.5f, 1.0f, 22);
    check_float_conv(c, w, squint::packed_conv_fp32::from_float(w.data(), c.f, filter_layout::ohwi, c.p), x, "fp32");
    std::vector<float> half(w.size());
    for (std::size_t i = 0; i < w.size(); ++i)
      half[i] = squint::reference::half_to_float(squint::reference::float_to_half(w[i]));
    check_float_conv(c, half, squint::packed_conv_half::from_float(w.data(), c.f, filter_layout::ohwi, c.p), x, "fp16");
    std::vector<std::int8_t> codes(w.size());
    std::vector<float> scale(c.f.out_channels), dequantized(w.size());
    squint::detail::quantize_rows_symmetric(w.data(), c.f.out_channels, depth, depth, codes.data(), scale.data());
    for (std::size_t i = 0; i < w.size(); ++i) dequantized[i] = static_cast<float>(codes[i]) * scale[i / depth];
    check_float_conv(c, dequantized, squint::packed_conv_weight_only::from_float(w.data(), c.f, filter_layout::ohwi, c.p),
                     x, "weight-only");
  }
}

TEST(FloatConvTest, BadArgumentsThrow) {
  const std::vector<float> w(4 * 27, 0.5f);
  expect_error([&] { squint::packed_conv_half::from_float(w.data(), {4, 3, 3, 3}, filter_layout::oihw, params(1, 0, 3)); },
               "groups");
  const auto packed = squint::packed_conv_fp32::from_float(w.data(), {4, 3, 3, 3}, filter_layout::oihw, params(1, 1));
  std::vector<float> x(5 * 5 * 3, 1.0f), y(5 * 5 * 4, 3.0f);
  const std::vector<float> untouched = y;
  expect_error([&] { squint::conv2d(x.data(), {1, 5, 5, 2}, packed, nullptr, activation::none, y.data()); },
               "channels");
  expect_error([&] { squint::conv2d(x.data(), {1, 5, 5, 3}, packed, nullptr, activation::none, nullptr); }, "'y'");
  EXPECT_EQ(y, untouched);
}

}  // namespace

}  // namespace conv_test

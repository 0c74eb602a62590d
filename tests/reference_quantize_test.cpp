// SPDX-License-Identifier: Apache-2.0
// reference_quantize_test.cpp: the scalar oracle's rounding, saturation, NaN and layout rules.
#include "squint/reference/quantize.hpp"

#include <gtest/gtest.h>

#include <cfenv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "support/data.hpp"

namespace reference_quantize_test {

namespace {

using squint::qparams;
using squint::quantize_mode;
namespace ref = squint::reference;

constexpr squint::quant_range u8{0, 255};
constexpr squint::quant_range s8{-128, 127};

TEST(ReferenceQuantizeTest, TiesRoundHalfToEven) {
  const qparams p{1.0f, 0};
  EXPECT_EQ(ref::quantize_value(2.5f, p, s8), 2);
  EXPECT_EQ(ref::quantize_value(3.5f, p, s8), 4);
  EXPECT_EQ(ref::quantize_value(-2.5f, p, s8), -2);
  EXPECT_EQ(ref::quantize_value(0.5f, p, s8), 0);
  EXPECT_EQ(ref::quantize_value(-0.5f, p, s8), 0);
  EXPECT_EQ(ref::quantize_value(126.5f, p, s8), 126);
  EXPECT_EQ(ref::quantize_value(5.0f, {2.0f, 10}, u8), 12);  // 2.5 -> 2, then + zero point
}

TEST(ReferenceQuantizeTest, DivideAndReciprocalDifferOnNearTies) {
  // In float32, x / s = 127.49999 but x * (1 / s) = 127.5, which rounds to even 128.
  const float s = 0.00214854861f, x = 0.273939937f;
  ASSERT_NE(x / s, x * (1.0f / s));
  EXPECT_EQ(ref::quantize_value(x, {s, 0}, u8, quantize_mode::divide), 127);
  EXPECT_EQ(ref::quantize_value(x, {s, 0}, u8, quantize_mode::reciprocal), 128);
}

TEST(ReferenceQuantizeTest, NaNIsZeroPointInfinitiesSaturate) {
  const float inf = std::numeric_limits<float>::infinity();
  const qparams p{0.1f, 3};
  EXPECT_EQ(ref::quantize_value(std::numeric_limits<float>::quiet_NaN(), p, u8), 3);
  EXPECT_EQ(ref::quantize_value(inf, p, u8), 255);
  EXPECT_EQ(ref::quantize_value(-inf, p, u8), 0);
  EXPECT_EQ(ref::quantize_value(1e9f, p, s8), 127);
  EXPECT_EQ(ref::quantize_value(-1e9f, p, s8), -128);
  EXPECT_EQ(ref::quantize_value(std::numeric_limits<float>::max(), {1e-30f, 0}, s8), 127);  // x / s = inf
  EXPECT_EQ(ref::quantize_value(-0.0f, p, u8), 3);
}

TEST(ReferenceQuantizeTest, SaturatesExactlyAtTheBounds) {
  const qparams p{1.0f, 0};
  EXPECT_EQ(ref::quantize_value(127.0f, p, s8), 127);
  EXPECT_EQ(ref::quantize_value(127.5f, p, s8), 127);
  EXPECT_EQ(ref::quantize_value(-128.5f, p, s8), -128);
  EXPECT_EQ(ref::quantize_value(-129.0f, p, s8), -128);
  EXPECT_EQ(ref::quantize_value(254.5f, p, u8), 254);
  EXPECT_EQ(ref::quantize_value(255.5f, p, u8), 255);
}

TEST(ReferenceQuantizeTest, IndependentOfTheRoundingMode) {
  std::vector<float> x = squint_test::edge_values();
  for (float v : squint_test::normal(2000, 0.0f, 50.0f)) x.push_back(v);
  for (int k = -300; k < 300; ++k) x.push_back(static_cast<float>(k) + 0.5f);
  std::vector<std::int8_t> expected(x.size()), got(x.size());
  const qparams p{0.75f, -3};
  ref::quantize(x.data(), expected.data(), x.size(), p);
  const int saved = std::fegetround();
  for (int mode : {FE_DOWNWARD, FE_UPWARD, FE_TOWARDZERO}) {
    std::fesetround(mode);
    ref::quantize(x.data(), got.data(), x.size(), p);
    std::fesetround(saved);
    EXPECT_EQ(got, expected) << "rounding mode " << mode;
  }
}

TEST(ReferenceQuantizeTest, DequantizeIsExactFloatProduct) {
  const std::vector<std::uint8_t> q{0, 3, 128, 255};
  std::vector<float> x(4);
  ref::dequantize(q.data(), x.data(), q.size(), {2.0f, 128});
  EXPECT_EQ(x, (std::vector<float>{-256.0f, -250.0f, 0.0f, 254.0f}));
  const std::int8_t m = -128;
  float y = 0.0f;
  ref::dequantize(&m, &y, 1, {0.1f, 127});
  EXPECT_EQ(y, static_cast<float>(-255) * 0.1f);
}

TEST(ReferenceQuantizeTest, PerChannelUsesTheAxisChannel) {
  const squint::shape s{2, 3, 4};
  const auto x = squint_test::normal(s.numel(), 0.0f, 3.0f);
  for (int axis : {0, 1, 2, -1}) {
    const auto split = squint::split_at(s, axis);
    std::vector<float> scale(split.channels);
    std::vector<std::int32_t> zp(split.channels);
    for (std::size_t c = 0; c < split.channels; ++c) {
      scale[c] = 0.01f + 0.02f * static_cast<float>(c);
      zp[c] = static_cast<std::int32_t>(c) * 5 - 7;
    }
    std::vector<std::int8_t> q(x.size());
    ref::quantize_per_channel(x.data(), q.data(), split, scale.data(), zp.data());
    std::vector<float> back(x.size());
    ref::dequantize_per_channel(q.data(), back.data(), split, scale.data(), zp.data());
    const std::size_t a = static_cast<std::size_t>(axis < 0 ? axis + 3 : axis);
    for (std::size_t i = 0; i < 2; ++i)
      for (std::size_t j = 0; j < 3; ++j)
        for (std::size_t k = 0; k < 4; ++k) {
          const std::size_t index[3] = {i, j, k};
          const std::size_t c = index[a], offset = (i * 3 + j) * 4 + k;
          const qparams p{scale[c], zp[c]};
          ASSERT_EQ(q[offset], ref::quantize_value(x[offset], p, s8)) << "axis " << axis;
          ASSERT_EQ(back[offset], ref::dequantize_value(q[offset], p));
        }
  }
}

TEST(ReferenceQuantizeTest, FakeQuantizeClampsToTheGivenRange) {
  const std::vector<float> x{-10.0f, -0.26f, 0.0f, 0.24f, 0.25f, 10.0f};
  std::vector<float> y(x.size());
  ref::fake_quantize(x.data(), y.data(), x.size(), {0.5f, 0}, {-127, 127});
  EXPECT_EQ(y, (std::vector<float>{-10.0f, -0.5f, 0.0f, 0.0f, 0.0f, 10.0f}));
  ref::fake_quantize(x.data(), y.data(), x.size(), {0.5f, 0}, {-4, 3});
  EXPECT_EQ(y, (std::vector<float>{-2.0f, -0.5f, 0.0f, 0.0f, 0.0f, 1.5f}));
}

}  // namespace

}  // namespace reference_quantize_test

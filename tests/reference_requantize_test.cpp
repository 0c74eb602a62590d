// SPDX-License-Identifier: Apache-2.0
// reference_requantize_test.cpp: float and fixed-point requantization of int32 accumulators.
#include "squint/reference/requantize.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace reference_requantize_test {

namespace {

namespace ref = squint::reference;
using squint::fixed_point_multiplier;
using squint::quantize_multiplier;

constexpr squint::quant_range s8{-128, 127};
constexpr squint::quant_range u8{0, 255};

TEST(ReferenceRequantizeTest, FloatFormRoundsHalfToEvenThenAddsZeroPoint) {
  EXPECT_EQ(ref::requantize_value(5, 0.5f, 0, s8), 2);    // 2.5 -> 2
  EXPECT_EQ(ref::requantize_value(7, 0.5f, 0, s8), 4);    // 3.5 -> 4
  EXPECT_EQ(ref::requantize_value(-5, 0.5f, 0, s8), -2);  // -2.5 -> -2
  EXPECT_EQ(ref::requantize_value(5, 0.5f, 10, u8), 12);
  EXPECT_EQ(ref::requantize_value(1 << 30, 1.0f, 0, s8), 127);
  EXPECT_EQ(ref::requantize_value(std::numeric_limits<std::int32_t>::min(), 1.0f, 0, s8), -128);
  EXPECT_EQ(ref::requantize_value(-1000, 0.01f, 128, u8), 118);
}

TEST(ReferenceRequantizeTest, QuantizeMultiplierDecomposes) {
  EXPECT_EQ(quantize_multiplier(0.5).multiplier, 1 << 30);
  EXPECT_EQ(quantize_multiplier(0.5).shift, 0);
  EXPECT_EQ(quantize_multiplier(0.25).shift, -1);
  EXPECT_EQ(quantize_multiplier(1.0).shift, 1);
  EXPECT_EQ(quantize_multiplier(0.75).multiplier, 0x60000000);
  EXPECT_EQ(quantize_multiplier(0.0).multiplier, 0);
  EXPECT_EQ(quantize_multiplier(1e-12).multiplier, 0);  // below 2^-31
  // A mantissa that rounds up to 2^31 moves to the next exponent.
  const auto m = quantize_multiplier(std::nextafter(1.0, 0.0));
  EXPECT_EQ(m.multiplier, 1 << 30);
  EXPECT_EQ(m.shift, 1);
  EXPECT_THROW(quantize_multiplier(-0.5), squint::error);
  EXPECT_THROW(quantize_multiplier(std::nan("")), squint::error);
  EXPECT_THROW(quantize_multiplier(4e9), squint::error);
}

TEST(ReferenceRequantizeTest, FixedPointPrimitivesRoundLikeGemmlowp) {
  const std::int32_t min = std::numeric_limits<std::int32_t>::min();
  EXPECT_EQ(ref::saturating_rounding_doubling_high_mul(min, min), std::numeric_limits<std::int32_t>::max());
  EXPECT_EQ(ref::saturating_rounding_doubling_high_mul(1 << 30, 1 << 30), 1 << 29);
  EXPECT_EQ(ref::rounding_divide_by_pot(5, 1), 3);
  EXPECT_EQ(ref::rounding_divide_by_pot(-5, 1), -3);
  EXPECT_EQ(ref::rounding_divide_by_pot(4, 1), 2);
  EXPECT_EQ(ref::rounding_divide_by_pot(7, 2), 2);
  EXPECT_EQ(ref::rounding_divide_by_pot(-6, 2), -2);
  // The high multiply rounds ties upward: 1.5 -> 2 but -1.5 -> -1.
  EXPECT_EQ(ref::multiply_by_quantized_multiplier(3, quantize_multiplier(0.5)), 2);
  EXPECT_EQ(ref::multiply_by_quantized_multiplier(-3, quantize_multiplier(0.5)), -1);
  // Below 0.5 a second rounding follows (gemmlowp's double rounding): 5 * 0.25 = high multiply gives round(2.5) = 3, then 3 / 2 = 1.5 -> 2.
  EXPECT_EQ(ref::multiply_by_quantized_multiplier(5, quantize_multiplier(0.25)), 2);
  EXPECT_EQ(ref::multiply_by_quantized_multiplier(1000, quantize_multiplier(3.0)), 3000);
}

TEST(ReferenceRequantizeTest, FixedPointTracksTheRealProduct) {
  std::mt19937 rng(3);
  std::uniform_int_distribution<std::int32_t> acc(-(1 << 24), 1 << 24);
  std::uniform_real_distribution<double> real(1e-6, 0.999);
  for (int t = 0; t < 20000; ++t) {
    const std::int32_t a = acc(rng);
    const double m = real(rng);
    const fixed_point_multiplier f = quantize_multiplier(m);
    const std::int32_t got = ref::multiply_by_quantized_multiplier(a, f);
    // Never more than one step away from the real product, whatever the double rounding does.
    ASSERT_LE(std::fabs(got - static_cast<double>(a) * m), 1.0) << a << " * " << m;
    if (f.shift == 0) {
      // With no shift the result is exactly floor((a * M + 2^30) / 2^31): round half up.
      const std::int64_t num = static_cast<std::int64_t>(a) * f.multiplier + (std::int64_t{1} << 30);
      const std::int64_t floor_div = num >= 0 ? num >> 31 : -((-num + (std::int64_t{1} << 31) - 1) >> 31);
      ASSERT_EQ(got, floor_div) << a << " * " << m;
    }
  }
}

TEST(ReferenceRequantizeTest, PerChannelMultipliersFollowTheSplit) {
  const std::vector<std::int32_t> acc{100, 100, 100, -100, -100, -100};
  const std::vector<float> m{0.1f, 0.2f, 0.3f};
  std::vector<std::int8_t> q(6);
  ref::requantize(acc.data(), q.data(), squint::axis_split{2, 3, 1}, m.data(), 1);
  EXPECT_EQ(q, (std::vector<std::int8_t>{11, 21, 31, -9, -19, -29}));
  const std::vector<fixed_point_multiplier> f{quantize_multiplier(0.1), quantize_multiplier(0.2),
                                              quantize_multiplier(0.3)};
  std::vector<std::int8_t> g(6);
  ref::requantize(acc.data(), g.data(), squint::axis_split{2, 3, 1}, f.data(), 1);
  EXPECT_EQ(g, q);
}

}  // namespace

}  // namespace reference_requantize_test

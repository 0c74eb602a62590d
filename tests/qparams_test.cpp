// SPDX-License-Identifier: Apache-2.0
// qparams_test.cpp: code ranges, choose_qparams (PyTorch / ONNX arithmetic), spec validation.
#include "squint/qparams.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "squint/reference/quantize.hpp"
#include "support/data.hpp"

namespace qparams_test {

namespace {

using squint::choose_qparams;
using squint::dtype;
using squint::quant_range;
using squint::quant_spec;
using squint::qscheme;

TEST(QparamsTest, RangesFollowPyTorch) {
  EXPECT_EQ(squint::range_of({}), (quant_range{0, 255}));
  EXPECT_EQ(squint::range_of({dtype::int8}), (quant_range{-128, 127}));
  EXPECT_EQ(squint::range_of({dtype::uint8, qscheme::affine, true}), (quant_range{0, 127}));
  EXPECT_EQ(squint::range_of({dtype::int8, qscheme::affine, true}), (quant_range{-64, 63}));
  EXPECT_EQ(squint::range_of({dtype::int8, qscheme::symmetric, false, true}), (quant_range{-127, 127}));
  EXPECT_EQ(squint::range_of({dtype::uint8, qscheme::affine, false, true}), (quant_range{1, 255}));
  quant_spec custom{dtype::int8, qscheme::symmetric, true};
  custom.custom_range = quant_range{-127, 127};
  EXPECT_EQ(squint::range_of(custom), (quant_range{-64, 63}));  // floor halving, as `// 2`
}

TEST(QparamsTest, InvalidSpecsAreRejected) {
  quant_spec s{dtype::int8};
  s.custom_range = quant_range{-129, 127};
  EXPECT_THROW(squint::range_of(s), squint::error);
  s.custom_range = quant_range{5, 5};
  EXPECT_THROW(squint::range_of(s), squint::error);
  quant_spec e;
  e.eps = 0.0f;
  EXPECT_THROW(choose_qparams(-1.0f, 1.0f, e), squint::error);
  e.eps = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(choose_qparams(-1.0f, 1.0f, e), squint::error);
}

TEST(QparamsTest, AffineMatchesHandComputation) {
  const auto p = choose_qparams(-1.0f, 3.0f);
  EXPECT_EQ(p.scale, 4.0f / 255.0f);
  EXPECT_EQ(p.zero_point, 64);  // 0 - round(-1 / (4/255)) = round(63.75)
  const auto q = choose_qparams(-1.0f, 3.0f, {dtype::int8});
  EXPECT_EQ(q.scale, 4.0f / 255.0f);
  EXPECT_EQ(q.zero_point, -64);
}

TEST(QparamsTest, ZeroPointTieRoundsHalfToEven) {
  // scale = 255 / 255 = 1 and min / scale = -2.5: half-to-even gives 2, half-away gives 3.
  EXPECT_EQ(choose_qparams(-2.5f, 252.5f).zero_point, 2);
  EXPECT_EQ(choose_qparams(-3.5f, 251.5f).zero_point, 4);
}

TEST(QparamsTest, SymmetricZeroPoints) {
  const auto s8 = choose_qparams(-1.0f, 3.0f, {dtype::int8, qscheme::symmetric});
  EXPECT_EQ(s8.scale, 3.0f / 127.5f);
  EXPECT_EQ(s8.zero_point, 0);
  EXPECT_EQ(choose_qparams(-1.0f, 3.0f, {dtype::uint8, qscheme::symmetric}).zero_point, 128);
  quant_spec custom{dtype::uint8, qscheme::symmetric};
  custom.custom_range = quant_range{0, 127};
  const auto c = choose_qparams(-1.0f, 3.0f, custom);
  EXPECT_EQ(c.zero_point, 63);  // PyTorch: rounded-down midpoint of a custom range
  EXPECT_EQ(c.scale, 3.0f / 63.5f);
}

TEST(QparamsTest, RangeIsWidenedToIncludeZeroAndZeroIsExact) {
  const auto positive = choose_qparams(2.0f, 5.0f);
  EXPECT_EQ(positive.scale, 5.0f / 255.0f);
  EXPECT_EQ(positive.zero_point, 0);
  const auto negative = choose_qparams(-5.0f, -2.0f);
  EXPECT_EQ(negative.zero_point, 255);
  // Over many ranges and specs, 0.0 quantizes exactly to the zero point.
  const auto lo = squint_test::normal(500, -3.0f, 4.0f, 1);
  const auto hi = squint_test::normal(500, 3.0f, 4.0f, 2);
  for (const quant_spec& spec : {quant_spec{}, quant_spec{dtype::int8}, quant_spec{dtype::int8, qscheme::symmetric},
                                 quant_spec{dtype::uint8, qscheme::affine, true}}) {
    for (std::size_t i = 0; i < lo.size(); ++i) {
      const auto p = choose_qparams(std::min(lo[i], hi[i]), std::max(lo[i], hi[i]), spec);
      const auto r = squint::range_of(spec);
      ASSERT_GE(p.zero_point, r.qmin);
      ASSERT_LE(p.zero_point, r.qmax);
      ASSERT_EQ(squint::reference::quantize_value(0.0f, p, r), p.zero_point);
      ASSERT_EQ(squint::reference::dequantize_value(p.zero_point, p), 0.0f);
    }
  }
}

TEST(QparamsTest, DegenerateRangesGiveValidScale) {
  const float eps = std::numeric_limits<float>::epsilon();
  const auto zeros = choose_qparams(0.0f, 0.0f);
  EXPECT_EQ(zeros.scale, eps);  // PyTorch: max(0 / 255, eps)
  EXPECT_EQ(zeros.zero_point, 0);
  const auto constant = choose_qparams(3.25f, 3.25f, {dtype::int8});
  EXPECT_TRUE(std::isfinite(constant.scale));
  EXPECT_GT(constant.scale, 0.0f);
  EXPECT_EQ(choose_qparams(1e-9f, 1e-9f).scale, eps);
  EXPECT_EQ(choose_qparams(-1e-9f, 1e-9f, {dtype::int8, qscheme::symmetric}).scale, eps);
}

TEST(QparamsTest, InvalidRangesAreRejected) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(choose_qparams(nan, 1.0f), squint::error);
  EXPECT_THROW(choose_qparams(-1.0f, inf), squint::error);
  EXPECT_THROW(choose_qparams(-inf, 1.0f), squint::error);
  try {
    choose_qparams(2.0f, 1.0f);
    FAIL() << "min > max accepted";
  } catch (const squint::error& e) {
    EXPECT_NE(std::string(e.what()).find("min=2"), std::string::npos) << e.what();
  }
}

TEST(QparamsTest, PerChannelChoosesEachChannel) {
  const auto p = choose_qparams(std::vector<float>{-1.0f, 0.0f}, std::vector<float>{3.0f, 2.0f}, 1);
  ASSERT_EQ(p.channels(), 2u);
  EXPECT_EQ(p.axis, 1);
  EXPECT_EQ(p[0], choose_qparams(-1.0f, 3.0f));
  EXPECT_EQ(p[1], choose_qparams(0.0f, 2.0f));
  EXPECT_THROW(choose_qparams(std::vector<float>{0.0f}, std::vector<float>{1.0f, 2.0f}, 0), squint::error);
}

TEST(QparamsTest, ValidateNamesTheProblem) {
  EXPECT_NO_THROW(squint::validate({0.5f, 3}, {0, 255}));
  EXPECT_THROW(squint::validate({0.0f, 3}, {0, 255}), squint::error);
  EXPECT_THROW(squint::validate({-1.0f, 3}, {0, 255}), squint::error);
  EXPECT_THROW(squint::validate({std::numeric_limits<float>::infinity(), 3}, {0, 255}), squint::error);
  try {
    squint::validate({0.5f, 300}, {0, 255}, "quantize");
    FAIL();
  } catch (const squint::error& e) {
    EXPECT_NE(std::string(e.what()).find("zero_point 300"), std::string::npos) << e.what();
  }
}

}  // namespace

}  // namespace qparams_test

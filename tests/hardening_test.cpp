// SPDX-License-Identifier: Apache-2.0
// hardening_test.cpp: regression tests for edge cases found by fuzzing and by deliberately bad
// calls: each case either equals the reference (on every compiled arch where a kernel is
// involved) or is rejected with squint::error before anything is written.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "squint/gemm/gemm.hpp"
#include "squint/gemm/weight_only.hpp"
#include "squint/observers/histogram.hpp"
#include "squint/observers/minmax.hpp"
#include "squint/quantize.hpp"
#include "squint/reference/quantize.hpp"
#include "support/archs.hpp"
#include "support/data.hpp"

namespace hardening_test {

namespace {

using squint::qparams;
using squint::qscheme;
using squint::quant_range;
using squint::quant_spec;
constexpr float flt_max = std::numeric_limits<float>::max();
constexpr std::int32_t i32_min = std::numeric_limits<std::int32_t>::min();
constexpr std::int32_t i32_max = std::numeric_limits<std::int32_t>::max();

/// Expects squint::error whose message contains `needle`.
template <class F>
void expect_error(F f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no squint::error (expected one mentioning '" << needle << "')";
  } catch (const squint::error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

// A: a range wider than FLT_MAX gets the float64 quotient; a scale above FLT_MAX is rejected.
TEST(HardeningTest, ScaleOfARangeWiderThanFltMaxIsFinite) {
  const qparams p = squint::choose_qparams(-3e38f, 3e38f);
  EXPECT_EQ(p.scale, static_cast<float>((3e38 + 3e38) / 255.0));
  EXPECT_EQ(p.zero_point, 128);
  const qparams s = squint::choose_qparams(-flt_max, flt_max, {squint::dtype::int8, qscheme::symmetric});
  EXPECT_TRUE(std::isfinite(s.scale));
  // Ordinary ranges keep their float32 arithmetic (PyTorch's bits).
  EXPECT_EQ(squint::choose_qparams(-1.0f, 3.0f).scale, 4.0f / 255.0f);

  quant_spec two_codes{squint::dtype::int8, qscheme::symmetric};
  two_codes.custom_range = quant_range{0, 1};
  EXPECT_EQ(squint::choose_qparams(-1.0f, 1.0f, two_codes).scale, 2.0f);
  expect_error([&] { squint::choose_qparams(-3e38f, 3e38f, two_codes); }, "overflows float32");

  // Observers and dynamic quantization pass a finite scale on for finite input.
  squint::min_max_observer<> observer;
  const std::vector<float> wide{-3e38f, 0.0f, 3e38f};
  observer.observe({wide.data(), wide.size()});
  EXPECT_EQ(observer.qparams(), p);
  std::vector<std::uint8_t> q(wide.size());
  EXPECT_EQ(squint::dynamic_quantize({wide.data(), wide.size()}, {q.data(), q.size()}), p);
  EXPECT_EQ(q, (std::vector<std::uint8_t>{0, 128, 255}));
}

// B: fake-quantize over custom ranges as wide as int32 equals the reference on every arch.
template <class Arch>
class HardeningArchTest : public squint_test::arch_test<Arch> {};
TYPED_TEST_SUITE(HardeningArchTest, squint_test::compiled_archs, squint_test::arch_names);

TYPED_TEST(HardeningArchTest, FakeQuantizeOnInt32WideRangesEqualsTheReference) {
  std::vector<float> x = squint_test::edge_values();
  for (float v : {3e9f, -3e9f, 2147483520.0f, 2147483648.0f, -2147483648.0f, 4.3e9f, -4.3e9f, 1e12f}) x.push_back(v);
  const std::vector<quant_range> ranges{{i32_min, i32_max}, {0, i32_max}, {i32_min, 0}, {-5, i32_max}};
  for (const quant_range r : ranges)
    for (std::int32_t zp : {0, 1, -1, 7})
      for (float scale : {1.0f, 0.37f, 3e-3f})
        for (bool reciprocal : {false, true}) {
          if (zp < r.qmin || zp > r.qmax) continue;
          std::vector<float> got(x.size()), expect(x.size());
          squint::kernels::quantize_kernel<TypeParam, std::int8_t>::fake(x.data(), got.data(), x.size(), scale, zp,
                                                                          r.qmin, r.qmax, reciprocal);
          squint::reference::fake_quantize(x.data(), expect.data(), x.size(), {scale, zp}, r,
                                           reciprocal ? squint::quantize_mode::reciprocal
                                                      : squint::quantize_mode::divide);
          for (std::size_t i = 0; i < x.size(); ++i)
            ASSERT_EQ(std::signbit(got[i]), std::signbit(expect[i]))
                << "x=" << x[i] << " zp=" << zp << " range [" << r.qmin << ", " << r.qmax << "]";
          ASSERT_EQ(got, expect) << "zp=" << zp << " range [" << r.qmin << ", " << r.qmax << "] scale " << scale;
        }
  std::vector<float> y(1);
  const float big = 3e9f;
  squint::fake_quantize({&big, 1}, {y.data(), 1}, {1.0f, 0}, {0, i32_max});
  EXPECT_EQ(y[0], 2147483648.0f);
}

// G: a subnormal scale in reciprocal mode: 1 / scale is inf and 0 * inf is NaN, which both the
// reference and the kernels map to the zero point.
TYPED_TEST(HardeningArchTest, SubnormalScaleInReciprocalModeGivesTheZeroPoint) {
  const float scale = std::numeric_limits<float>::denorm_min();
  const std::vector<float> x{0.0f, -0.0f, 1e-30f, -1e-30f, 1.0f};
  for (std::int32_t zp : {0, 5, -3}) {
    std::vector<std::int8_t> got(x.size()), expect(x.size());
    squint::kernels::quantize_kernel<TypeParam, std::int8_t>::per_tensor(x.data(), got.data(), x.size(), scale, zp,
                                                                         true);
    for (std::size_t i = 0; i < x.size(); ++i)
      expect[i] = static_cast<std::int8_t>(squint::reference::quantize_value(x[i], {scale, zp}, {-128, 127},
                                                                             squint::quantize_mode::reciprocal));
    EXPECT_EQ(got, expect) << "zp=" << zp;
    EXPECT_EQ(expect[0], zp);
    EXPECT_EQ(expect[4], 127);
  }
}

// C: a symmetric int8 range must hold its zero point 0.
TEST(HardeningTest, SymmetricInt8RangeWithoutZeroIsRejected) {
  quant_spec spec{squint::dtype::int8, qscheme::symmetric};
  spec.custom_range = quant_range{10, 20};
  expect_error([&] { squint::choose_qparams(-1.0f, 1.0f, spec); }, "zero point 0");
  expect_error([&] { squint::min_max_observer<> observer(spec); }, "zero point 0");
  expect_error([&] { squint::histogram_observer<> observer(spec); }, "zero point 0");
  spec.custom_range = quant_range{0, 20};
  spec.narrow_range = true;  // [1, 20]
  expect_error([&] { squint::choose_qparams(-1.0f, 1.0f, spec); }, "zero point 0");
  spec.narrow_range = false;
  EXPECT_EQ(squint::choose_qparams(-1.0f, 1.0f, spec).zero_point, 0);
}

// D: constant data above every candidate threshold collapses to the threshold, for every method,
// per tensor and on a constant channel of a per-channel observer.
TEST(HardeningTest, HistogramMethodsOnConstantData) {
  for (auto method : {squint::calibration_method::entropy, squint::calibration_method::percentile,
                      squint::calibration_method::mse, squint::calibration_method::l2})
    for (float value : {1000.0f, 2.5f, -7.0f, 0.0f}) {
      const std::vector<float> x(256, value);
      for (quant_spec spec : {quant_spec{}, quant_spec{squint::dtype::int8, qscheme::symmetric}}) {
        squint::histogram_observer<> observer(spec, {method});
        observer.observe({x.data(), x.size()});
        const auto [lo, hi] = observer.clip_range();
        EXPECT_LE(lo, hi) << "value " << value << " method " << static_cast<int>(method);
        const qparams p = observer.qparams();
        EXPECT_TRUE(std::isfinite(p.scale) && p.scale > 0.0f);
        // The constant itself is not clipped by more than its own bin width.
        if (value != 0.0f) {
          EXPECT_NEAR(std::fabs(value), std::max(std::fabs(lo), std::fabs(hi)), std::fabs(value) / 1024.0f);
        }
      }
      std::vector<float> w(4 * 64);
      for (std::size_t i = 0; i < w.size(); ++i) w[i] = i < 64 ? value : static_cast<float>(i % 17) - 8.0f;
      squint::histogram_observer<squint::granularity::per_channel> per_channel(
          {squint::dtype::int8, qscheme::symmetric}, 0, {method});
      per_channel.observe({w.data(), squint::shape{4, 64}});
      const squint::per_channel_qparams p = per_channel.qparams();
      for (float s : p.scale) EXPECT_TRUE(std::isfinite(s) && s > 0.0f);
    }
}

// E: an element count that overflows size_t is rejected where the shape is made.
TEST(HardeningTest, ShapeElementCountOverflowIsRejected) {
  const std::size_t half = std::size_t{1} << 63;
  expect_error([&] { squint::shape s{2, half}; }, "overflows size_t");
  expect_error([&] { squint::shape s{half, 4, 1}; }, "overflows size_t");
  EXPECT_EQ((squint::shape{half, half, 0}.numel()), 0u);  // a zero extent: no elements at all
  EXPECT_EQ((squint::shape{half, 1}.numel()), half);
}

// F: packing sizes whose product overflows give squint::error, not bad_alloc or a crash.
TEST(HardeningTest, PackingSizesThatOverflowAreRejected) {
  const std::size_t n = std::size_t{1} << 33, k = std::size_t{1} << 31;
  expect_error([&] { squint::packed_weights::from_int8(nullptr, n, k, k, {1.0f}, {0}); }, "overflows size_t");
  expect_error([&] { squint::packed_weights::from_float(nullptr, n, k, k); }, "overflows size_t");
  expect_error([&] { squint::packed_weight_only::from_int8(nullptr, n, k, k, {1.0f}); }, "overflows size_t");
  expect_error([&] { squint::packed_half_weights::from_float(nullptr, n, k, k); }, "overflows size_t");
  // The extent with the leading dimension counts too.
  expect_error([&] { squint::packed_weights::from_int8(nullptr, 3, 1, std::size_t{1} << 63, {1.0f}, {0}); },
               "overflows size_t");
  const auto b = squint::packed_weights::from_int8(nullptr, 0, 4, 4, {1.0f}, {0});
  std::int32_t c = 0;
  expect_error([&] { squint::gemm<std::uint8_t>(nullptr, std::size_t{1} << 62, 8, 0, b, &c, 0); }, "overflows");
}

// H and I: the int32 bias of the requantized GEMM saturates instead of wrapping, and still counts
// when K = 0.
TEST(HardeningTest, RequantizedGemmBiasSaturatesAndCountsAtKZero) {
  const std::size_t m = 3, n = 20, k = 5;
  const auto a = squint_test::uniform_ints<std::uint8_t>(m * k, 0, 255, 3);
  const auto w = squint_test::uniform_ints<std::int8_t>(n * k, -127, 127, 4);
  const auto b = squint::packed_weights::from_int8(w.data(), n, k, k, {0.02f}, {0});
  std::vector<std::int32_t> bias(n);
  for (std::size_t j = 0; j < n; ++j) bias[j] = j % 3 == 0 ? i32_max - static_cast<std::int32_t>(j) : j % 3 == 1 ? i32_min + 7 : 100;
  std::vector<std::int32_t> acc(m * n);
  squint::gemm(a.data(), m, k, 3, b, acc.data(), n);
  const qparams ap{0.5f, 3}, cp{1e5f, 2};  // multiplier 1e-7: INT32_MAX maps to code 217
  for (const bool runtime : {false, true}) {
    std::vector<std::uint8_t> c(m * n);
    if (runtime) squint::runtime::gemm(a.data(), m, k, ap, b, bias.data(), cp, false, c.data(), n);
    else squint::gemm(a.data(), m, k, ap, b, bias.data(), cp, false, c.data(), n);
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = 0; j < n; ++j) {
        const std::int64_t sum = static_cast<std::int64_t>(acc[i * n + j]) + bias[j];
        const auto saturated = static_cast<std::int32_t>(std::clamp<std::int64_t>(sum, i32_min, i32_max));
        const float mult = ap.scale * 0.02f / cp.scale;
        ASSERT_EQ(c[i * n + j], squint::reference::requantize_value(saturated, mult, cp.zero_point, {0, 255}))
            << i << "," << j;
      }
    EXPECT_GT(c[0], 200);  // bias near INT32_MAX: a high code, never a wrapped-around bottom one
    EXPECT_EQ(c[1], 0);
  }
  // K = 0: the output is the requantized bias alone.
  const auto empty = squint::packed_weights::from_int8(nullptr, 2, 0, 0, {1.0f}, {0});
  const std::int32_t bias0[2] = {58, -3};
  std::uint8_t c0[2] = {0, 0};
  squint::gemm<std::uint8_t, std::uint8_t>(nullptr, 1, 0, {1.0f, 0}, empty, bias0, {1.0f, 10}, false, c0, 2);
  EXPECT_EQ(c0[0], 68);
  EXPECT_EQ(c0[1], 7);
}

// The float GEMM rejects scales whose product overflows instead of writing inf.
TEST(HardeningTest, FloatGemmScaleProductOverflowIsRejected) {
  const std::int8_t w[4] = {1, 2, 3, 4};
  const auto b = squint::packed_weights::from_int8(w, 1, 4, 4, {1e30f}, {0});
  const std::uint8_t a[4] = {1, 2, 3, 4};
  float c = -1.0f;
  expect_error([&] { squint::gemm(a, 1, 4, qparams{1e10f, 0}, b, nullptr, false, &c, 1); }, "overflows float32");
  EXPECT_EQ(c, -1.0f);  // nothing written
}

}  // namespace

}  // namespace hardening_test

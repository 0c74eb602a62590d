// SPDX-License-Identifier: Apache-2.0
// fp8_test.cpp: FP8 E4M3FN and E5M2. The reference against the formats' definitions (every code
// round trips, every boundary between neighbouring values rounds to nearest even, overflow and
// saturation, signed zero, NaN), every compiled arch's kernel against the reference bit for bit
// on every code, every midpoint and its neighbouring floats, edge values and awkward sizes, and
// the checked entry points; the FP8 weight-only GEMM's packing and arguments (its kernels:
// gemm_test.cpp, its nn precision: nn_test.cpp).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "squint/fp8.hpp"
#include "support/archs.hpp"
#include "support/data.hpp"

namespace fp8_test {

namespace {

namespace ref = squint::reference;
using squint::fp8_format;

const fp8_format formats[] = {fp8_format::e4m3fn, fp8_format::e5m2};

bool is_nan_code(std::uint8_t c, fp8_format f) {
  return f == fp8_format::e4m3fn ? (c & 0x7F) == 0x7F : (c & 0x7F) > 0x7C;
}

/// The finite non-negative values of a format, in increasing order (codes 0x00 up).
std::vector<float> finite_values(fp8_format f) {
  std::vector<float> v;
  for (int c = 0; c < 128; ++c) {
    const float x = ref::fp8_to_float(static_cast<std::uint8_t>(c), f);
    if (std::isfinite(x)) v.push_back(x);
  }
  return v;
}

TEST(Fp8Reference, FormatsDecodeAsDefined) {
  EXPECT_EQ(ref::fp8_to_float(0x7E, fp8_format::e4m3fn), 448.0f);
  EXPECT_EQ(ref::fp8_to_float(0x01, fp8_format::e4m3fn), std::ldexp(1.0f, -9));
  EXPECT_EQ(ref::fp8_to_float(0x08, fp8_format::e4m3fn), std::ldexp(1.0f, -6));
  EXPECT_EQ(ref::fp8_to_float(0x38, fp8_format::e4m3fn), 1.0f);
  EXPECT_TRUE(std::isnan(ref::fp8_to_float(0xFF, fp8_format::e4m3fn)));
  EXPECT_EQ(ref::fp8_to_float(0x7B, fp8_format::e5m2), 57344.0f);
  EXPECT_EQ(ref::fp8_to_float(0x01, fp8_format::e5m2), std::ldexp(1.0f, -16));
  EXPECT_EQ(ref::fp8_to_float(0x3C, fp8_format::e5m2), 1.0f);
  EXPECT_EQ(ref::fp8_to_float(0xFC, fp8_format::e5m2), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(ref::fp8_to_float(0x7D, fp8_format::e5m2)));
  EXPECT_TRUE(std::signbit(ref::fp8_to_float(0x80, fp8_format::e4m3fn)));
}

TEST(Fp8Reference, EveryCodeRoundTripsAndEveryBoundaryRoundsToEven) {
  for (fp8_format f : formats) {
    for (int c = 0; c < 256; ++c) {
      const auto code = static_cast<std::uint8_t>(c);
      const float x = ref::fp8_to_float(code, f);
      if (is_nan_code(code, f)) {
        EXPECT_TRUE(std::isnan(x));
        continue;
      }
      for (bool saturate : {false, true}) {
        if (std::isinf(x)) continue;  // E5M2's infinities: see OverflowAndSaturation
        EXPECT_EQ(ref::float_to_fp8(x, f, saturate), code) << c;
      }
    }
    const std::vector<float> v = finite_values(f);
    for (std::size_t i = 0; i + 1 < v.size(); ++i) {
      const float mid = (v[i] + v[i + 1]) / 2;  // exact: a few bits more than the format has
      const auto lo = static_cast<std::uint8_t>(i), hi = static_cast<std::uint8_t>(i + 1);
      EXPECT_EQ(ref::float_to_fp8(mid, f), (i % 2 == 0) ? lo : hi) << "tie between codes " << i << " and " << i + 1;
      EXPECT_EQ(ref::float_to_fp8(std::nextafter(mid, 0.0f), f), lo) << i;
      EXPECT_EQ(ref::float_to_fp8(std::nextafter(mid, 1e30f), f), hi) << i;
      EXPECT_EQ(ref::float_to_fp8(-mid, f), static_cast<std::uint8_t>(0x80 | ((i % 2 == 0) ? lo : hi))) << i;
    }
  }
}

TEST(Fp8Reference, OverflowAndSaturation) {
  const float inf = std::numeric_limits<float>::infinity();
  // E4M3FN: 464 is the tie between 448 and the missing 480 and rounds to even (448); above it
  // the value overflows: saturated to 448, else NaN.
  EXPECT_EQ(ref::float_to_fp8(464.0f, fp8_format::e4m3fn, false), 0x7E);
  EXPECT_EQ(ref::float_to_fp8(std::nextafter(464.0f, 1e30f), fp8_format::e4m3fn, false), 0x7F);
  EXPECT_EQ(ref::float_to_fp8(std::nextafter(464.0f, 1e30f), fp8_format::e4m3fn, true), 0x7E);
  EXPECT_EQ(ref::float_to_fp8(-inf, fp8_format::e4m3fn, true), 0xFE);
  EXPECT_EQ(ref::float_to_fp8(inf, fp8_format::e4m3fn, false), 0x7F);
  // E5M2: 61440 is the tie between 57344 (odd mantissa) and 65536: it overflows.
  EXPECT_EQ(ref::float_to_fp8(61440.0f, fp8_format::e5m2, false), 0x7C);
  EXPECT_EQ(ref::float_to_fp8(std::nextafter(61440.0f, 0.0f), fp8_format::e5m2, false), 0x7B);
  EXPECT_EQ(ref::float_to_fp8(61440.0f, fp8_format::e5m2, true), 0x7B);
  EXPECT_EQ(ref::float_to_fp8(-inf, fp8_format::e5m2, false), 0xFC);
  EXPECT_EQ(ref::float_to_fp8(inf, fp8_format::e5m2, true), 0x7B);
  EXPECT_EQ(ref::float_to_fp8(std::numeric_limits<float>::quiet_NaN(), fp8_format::e5m2), 0x7F);
  EXPECT_EQ(ref::float_to_fp8(-0.0f, fp8_format::e4m3fn), 0x80);
  // Below half the smallest subnormal: zero (the tie at exactly half rounds to even, zero).
  EXPECT_EQ(ref::float_to_fp8(std::ldexp(1.0f, -10), fp8_format::e4m3fn), 0x00);
  EXPECT_EQ(ref::float_to_fp8(std::nextafter(std::ldexp(1.0f, -10), 1.0f), fp8_format::e4m3fn), 0x01);
  EXPECT_EQ(ref::float_to_fp8(std::numeric_limits<float>::denorm_min(), fp8_format::e5m2), 0x00);
}

/// Every code's value, every midpoint and its float neighbours (both signs), edge values and
/// noise, for a format: the inputs every kernel must encode exactly.
std::vector<float> boundary_inputs(fp8_format f) {
  std::vector<float> x = squint_test::edge_values();
  const std::vector<float> v = finite_values(f);
  for (std::size_t i = 0; i < v.size(); ++i) {
    for (float s : {1.0f, -1.0f}) {
      x.push_back(s * v[i]);
      if (i + 1 < v.size()) {
        const float mid = (v[i] + v[i + 1]) / 2;
        x.push_back(s * mid);
        x.push_back(s * std::nextafter(mid, 0.0f));
        x.push_back(s * std::nextafter(mid, 1e30f));
      }
    }
  }
  const float top = v.back(), next = f == fp8_format::e4m3fn ? 480.0f : 65536.0f;
  for (float b : {(top + next) / 2, std::nextafter((top + next) / 2, 0.0f), std::nextafter((top + next) / 2, 1e30f)})
    x.push_back(b), x.push_back(-b);
  const auto noise = squint_test::normal(3001, 0.0f, 3.0f, 17);
  x.insert(x.end(), noise.begin(), noise.end());
  return x;
}

template <class Arch>
class Fp8KernelTest : public squint_test::arch_test<Arch> {};
TYPED_TEST_SUITE(Fp8KernelTest, squint_test::compiled_archs, squint_test::arch_names);

TYPED_TEST(Fp8KernelTest, QuantizeMatchesReferenceOnEveryBoundary) {
  for (fp8_format f : formats)
    for (bool saturate : {true, false})
      for (float scale : {1.0f, 0.37f, 1e-30f, 3e25f}) {
        const std::vector<float> x = boundary_inputs(f);
        // Every prefix length up to a few blocks, then the whole set (tails through padding).
        for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{3}, std::size_t{15}, std::size_t{17},
                              std::size_t{63}, std::size_t{65}, x.size()}) {
          std::vector<std::uint8_t> got(n + 8, 0xA5), expect(n);
          squint::kernels::fp8_kernel<TypeParam>::quantize(x.data(), got.data(), n, scale, f == fp8_format::e5m2, saturate);
          for (std::size_t i = 0; i < n; ++i) expect[i] = ref::quantize_fp8_value(x[i], scale, f, saturate);
          for (std::size_t i = 0; i < n; ++i)
            ASSERT_EQ(got[i], expect[i]) << "x=" << x[i] << " scale=" << scale << " format=" << static_cast<int>(f)
                                         << " saturate=" << saturate;
          for (std::size_t i = n; i < n + 8; ++i) ASSERT_EQ(got[i], 0xA5) << "wrote past the end";
        }
      }
}

TYPED_TEST(Fp8KernelTest, DequantizeMatchesReferenceOnEveryCode) {
  for (fp8_format f : formats)
    for (float scale : {1.0f, 0.37f, 1e-30f, 3e37f}) {
      std::vector<std::uint8_t> codes;
      for (int rep = 0; rep < 3; ++rep)
        for (int c = 0; c < 256; ++c) codes.push_back(static_cast<std::uint8_t>(c));
      for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{5}, std::size_t{255}, codes.size()}) {
        std::vector<float> got(n), expect(n);
        squint::kernels::fp8_kernel<TypeParam>::dequantize(codes.data(), got.data(), n, scale, f == fp8_format::e5m2);
        for (std::size_t i = 0; i < n; ++i) expect[i] = ref::dequantize_fp8_value(codes[i], scale, f);
        ASSERT_TRUE(n == 0 || std::memcmp(got.data(), expect.data(), n * sizeof(float)) == 0)
            << "format " << static_cast<int>(f) << " scale " << scale;
      }
    }
}

TEST(Fp8Api, PerChannelAndChecks) {
  const auto x = squint_test::normal(4 * 30, 0.0f, 50.0f, 5);
  const squint::shape s{4, 30};
  const std::vector<float> scale{0.5f, 1.0f, 2.0f, 0.125f};
  std::vector<std::uint8_t> q(x.size()), one(30);
  squint::quantize_fp8({x.data(), s}, {q.data(), s}, scale, 0, fp8_format::e4m3fn);
  for (std::size_t c = 0; c < 4; ++c) {
    squint::quantize_fp8({x.data() + c * 30, 30}, {one.data(), 30}, scale[c], fp8_format::e4m3fn);
    EXPECT_TRUE(std::equal(one.begin(), one.end(), q.begin() + static_cast<std::ptrdiff_t>(c * 30))) << c;
  }
  std::vector<std::uint8_t> dispatched(x.size());
  squint::runtime::quantize_fp8({x.data(), s}, {dispatched.data(), s}, scale, 0, fp8_format::e4m3fn);
  EXPECT_EQ(dispatched, q);
  std::vector<float> y(x.size());
  squint::runtime::dequantize_fp8({q.data(), s}, {y.data(), s}, scale, 0, fp8_format::e4m3fn);
  for (std::size_t i = 0; i < x.size(); ++i)
    EXPECT_EQ(y[i], ref::dequantize_fp8_value(q[i], scale[i / 30], fp8_format::e4m3fn)) << i;
  EXPECT_FLOAT_EQ(squint::fp8_scale(896.0f, fp8_format::e4m3fn), 2.0f);
  EXPECT_EQ(squint::fp8_scale(0.0f, fp8_format::e5m2), 1.0f);

  std::vector<std::uint8_t> untouched(x.size(), 0x5A);
  EXPECT_THROW(squint::quantize_fp8({x.data(), s}, {untouched.data(), s}, 0.0f, fp8_format::e5m2), squint::error);
  EXPECT_THROW(squint::quantize_fp8({x.data(), s}, {untouched.data(), s}, {1.0f, 1.0f}, 0, fp8_format::e5m2),
               squint::error);
  EXPECT_THROW(squint::quantize_fp8({x.data(), s}, {untouched.data(), s}, {1.0f, 1.0f, NAN, 1.0f}, 0,
                                    fp8_format::e5m2),
               squint::error);
  EXPECT_THROW(squint::quantize_fp8({x.data(), s}, {untouched.data(), 7}, 1.0f, fp8_format::e5m2), squint::error);
  for (std::uint8_t v : untouched) EXPECT_EQ(v, 0x5A);
  EXPECT_THROW(squint::dequantize_fp8({q.data(), s}, {y.data(), s}, -1.0f, fp8_format::e4m3fn), squint::error);
}

}  // namespace

namespace {

TEST(Fp8GemmApi, PackingAndArguments) {
  const auto w = squint_test::normal(37 * 19, 0.0f, 2.0f, 8);
  const auto b = squint::packed_fp8_weights::from_float(w.data(), 37, 19, 19);
  for (std::size_t j = 0; j < 37; ++j) {
    float amax = 0.0f;
    for (std::size_t i = 0; i < 19; ++i) amax = std::fmax(amax, std::fabs(w[j * 19 + i]));
    EXPECT_EQ(b.scales()[j], amax / 448.0f) << j;
    for (std::size_t i = 0; i < 19; ++i)
      ASSERT_EQ(b.at(j, i), ref::quantize_fp8_value(w[j * 19 + i], b.scales()[j], fp8_format::e4m3fn)) << j << "," << i;
  }
  EXPECT_EQ(b.bytes(), 37u * 19u + 37u * 4u);
  const auto a = squint_test::normal(2 * 19, 0.0f, 1.0f, 9);
  std::vector<float> c(2 * 37), threaded(2 * 37);
  EXPECT_THROW(squint::gemm_fp8(a.data(), 2, 18, b, nullptr, false, c.data(), 37), squint::error);
  EXPECT_THROW(squint::gemm_fp8(a.data(), 2, 19, b, nullptr, false, c.data(), 36), squint::error);
  const std::uint8_t nan_code[2] = {0x10, 0x7F};
  EXPECT_THROW(squint::packed_fp8_weights::from_fp8(nan_code, 1, 2, 2, {1.0f}), squint::error);
  EXPECT_THROW(squint::packed_fp8_weights::from_fp8(nan_code, 1, 1, 1, {0.0f}), squint::error);
  EXPECT_THROW(squint::packed_fp8_weights::from_fp8(nan_code, 1, 1, 1, {3e38f}), squint::error);
  squint::runtime::gemm_fp8(a.data(), 2, 19, b, nullptr, false, c.data(), 37);
  squint::gemm_fp8(a.data(), 2, 19, b, nullptr, false, threaded.data(), 37, squint::parallelism{2, nullptr},
                   squint::runtime::backend().gemm_fp8);
  EXPECT_EQ(c, threaded);
}

}  // namespace

}  // namespace fp8_test

// SPDX-License-Identifier: Apache-2.0
// grouped_test.cpp: the per-group weight-only GEMM (gemm/grouped.hpp) on both its layouts, INT4
// (W4A16) and INT8 (W8A16): every compiled arch's kernel against float64 on the dequantized
// weights on awkward sizes and group counts (partial groups and panels, 8-, 4- and 1-row
// blocks), and bit-exact where every partial sum is exact in float. INT8's packing (codes, the
// panel layout byte by byte, fp32 and fp16 scales, RTN), the accuracy its group scales buy over
// per-channel ones, threads, dispatch, and bad arguments (nothing written). INT4's packing and
// entry point: int4_test.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "squint/dispatch.hpp"
#include "squint/gemm/int4.hpp"
#include "squint/gemm/int8_grouped.hpp"
#include "squint/gemm/weight_only.hpp"
#include "support/archs.hpp"
#include "support/data.hpp"

namespace grouped_test {

namespace {

using squint::group_scale_format;
using squint::packed_int8_grouped_weights;

TEST(Int8GroupedPacking, PanelLayoutCodesScalesAndRoundToNearest) {
  const std::size_t n = 19, k = 70, group = 32;  // groups of 32, 32 and 6; a partial second panel
  auto w = squint_test::normal(n * k, 0.0f, 1.0f, 3);
  for (std::size_t i = 64; i < 70; ++i) w[2 * k + i] = 0.0f;  // an all-zero group: scale 1
  w[4 * k + 9] = std::numeric_limits<float>::infinity();      // left out of amax, saturates
  const auto b = packed_int8_grouped_weights::from_float(w.data(), n, k, k, group);
  EXPECT_EQ(b.bits(), 8);
  EXPECT_EQ(b.groups(), 3u);
  EXPECT_EQ(b.bytes(), n * k + n * 3 * sizeof(float));
  for (std::size_t j = 0; j < n; ++j)
    for (std::size_t g = 0; g < 3; ++g) {
      float amax = 0.0f;
      for (std::size_t i = g * group; i < std::min(k, (g + 1) * group); ++i)
        if (std::isfinite(w[j * k + i])) amax = std::fmax(amax, std::fabs(w[j * k + i]));
      const float s = amax > 0.0f ? amax / 127.0f : 1.0f;
      ASSERT_EQ(b.scale(j, g), s) << j << "," << g;
      for (std::size_t i = g * group; i < std::min(k, (g + 1) * group); ++i)
        ASSERT_EQ(b.at(j, i), squint::reference::quantize_value(w[j * k + i], {s, 0}, {-127, 127})) << j << "," << i;
    }
  EXPECT_EQ(b.at(4, 9), 127);
  // The layout, byte by byte: panel p, depth i, lane j at (p * k + i) * 16 + j; padding lanes 0.
  std::vector<std::int8_t> codes(n * k);
  for (std::size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<std::int8_t>(static_cast<int>(i * 37 % 256) - 128);
  const auto c = packed_int8_grouped_weights::from_int8(codes.data(), n, k, k, 16, std::vector<float>(n * 5, 0.5f));
  for (std::size_t p = 0; p < 2; ++p)
    for (std::size_t i = 0; i < k; ++i)
      for (std::size_t lane = 0; lane < 16; ++lane) {
        const std::size_t j = p * 16 + lane;
        const std::uint8_t expected = j < n ? static_cast<std::uint8_t>(codes[j * k + i]) : 0;
        ASSERT_EQ(c.data()[(p * k + i) * 16 + lane], expected) << j << "," << i;
      }
  for (std::size_t j = 0; j < n; ++j)
    for (std::size_t i = 0; i < k; ++i) ASSERT_EQ(c.at(j, i), codes[j * k + i]);  // -128 included
}

TEST(Int8GroupedPacking, HalfScalesAreRoundedOnceAndTheCodesUseThem) {
  const std::size_t n = 5, k = 96, group = 64;
  const auto w = squint_test::normal(n * k, 0.0f, 3.0f, 11);
  const auto b = packed_int8_grouped_weights::from_float(w.data(), n, k, k, group, group_scale_format::fp16);
  EXPECT_EQ(b.scale_format(), group_scale_format::fp16);
  EXPECT_EQ(b.scale_data(), nullptr);
  EXPECT_NE(b.half_scale_data(), nullptr);
  EXPECT_EQ(b.bytes(), n * k + n * 2 * 2);
  for (std::size_t j = 0; j < n; ++j)
    for (std::size_t g = 0; g < 2; ++g) {
      float amax = 0.0f;
      for (std::size_t i = g * group; i < std::min(k, (g + 1) * group); ++i) amax = std::fmax(amax, std::fabs(w[j * k + i]));
      const float s = squint::reference::half_to_float(squint::reference::float_to_half(amax / 127.0f));
      ASSERT_EQ(b.scale(j, g), s) << j << "," << g;
      for (std::size_t i = g * group; i < std::min(k, (g + 1) * group); ++i)
        ASSERT_EQ(b.at(j, i), squint::reference::quantize_value(w[j * k + i], {s, 0}, {-127, 127})) << j << "," << i;
    }
}

TEST(Int8GroupedPacking, BadArgumentsAreRefused) {
  const std::size_t n = 3, k = 40;
  const std::vector<std::int8_t> codes(n * k, -5);
  const std::vector<float> scales(n * 3, 0.25f);  // group 16: 3 groups
  EXPECT_NO_THROW(packed_int8_grouped_weights::from_int8(codes.data(), n, k, k, 16, scales));
  EXPECT_THROW(packed_int8_grouped_weights::from_int8(codes.data(), n, k, k, 24, scales), squint::error);  // group
  EXPECT_THROW(packed_int8_grouped_weights::from_int8(codes.data(), n, k, k, 0, scales), squint::error);
  EXPECT_THROW(packed_int8_grouped_weights::from_int8(codes.data(), n, k, k, 32, scales), squint::error);  // count
  EXPECT_THROW(packed_int8_grouped_weights::from_int8(codes.data(), n, k, k - 1, 16, scales), squint::error);  // ldw
  EXPECT_THROW(packed_int8_grouped_weights::from_int8(nullptr, n, k, k, 16, scales), squint::error);
  for (float bad : {0.0f, -1.0f, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    std::vector<float> s = scales;
    s[4] = bad;
    EXPECT_THROW(packed_int8_grouped_weights::from_int8(codes.data(), n, k, k, 16, s), squint::error) << bad;
  }
  std::vector<float> s = scales;
  s[2] = 1e6f;  // finite in float, infinite in fp16
  EXPECT_NO_THROW(packed_int8_grouped_weights::from_int8(codes.data(), n, k, k, 16, s));
  EXPECT_THROW(packed_int8_grouped_weights::from_int8(codes.data(), n, k, k, 16, s, group_scale_format::fp16),
               squint::error);
  EXPECT_THROW(packed_int8_grouped_weights::from_float(nullptr, n, k, k), squint::error);
  const std::vector<float> wf(n * k, 1.0f);
  EXPECT_THROW(packed_int8_grouped_weights::from_float(wf.data(), n, k, k, 8), squint::error);
}

template <class Arch>
class GroupedGemmTest : public squint_test::arch_test<Arch> {};
TYPED_TEST_SUITE(GroupedGemmTest, squint_test::compiled_archs, squint_test::arch_names);

/// Each layout's packing and its product on Arch's kernel.
template <class Arch>
struct int4_layout {
  static squint::packed_int4_weights pack(const float* w, std::size_t n, std::size_t k, std::size_t group,
                                          group_scale_format format) {
    return squint::packed_int4_weights::from_float(w, n, k, k, group, format);
  }
  static void gemm(const float* a, std::size_t m, std::size_t k, const squint::packed_int4_weights& b, const float* bias,
                   bool relu, float* c, std::size_t ldc) {
    squint::gemm_int4(a, m, k, b, bias, relu, c, ldc, {}, &squint::kernels::int4_gemm_kernel<Arch>::run);
  }
};
template <class Arch>
struct int8_layout {
  static packed_int8_grouped_weights pack(const float* w, std::size_t n, std::size_t k, std::size_t group,
                                          group_scale_format format) {
    return packed_int8_grouped_weights::from_float(w, n, k, k, group, format);
  }
  static void gemm(const float* a, std::size_t m, std::size_t k, const packed_int8_grouped_weights& b, const float* bias,
                   bool relu, float* c, std::size_t ldc) {
    squint::gemm_int8_grouped(a, m, k, b, bias, relu, c, ldc, {}, &squint::kernels::int8_group_gemm_kernel<Arch>::run);
  }
};

/// Against float64 on the dequantized weights: each group's sum rounds in fp32 (bound
/// (group + 2) 2^-24 of its magnitude), then the scaled group sums add up (one rounding each).
template <class Layout>
void expect_float64_results() {
  for (std::size_t m : {1u, 2u, 4u, 5u, 9u, 13u, 16u})  // 8-, 4- and 1-row blocks
    for (std::size_t n : {1u, 15u, 16u, 17u, 64u, 70u})
      for (std::size_t k : {1u, 16u, 47u, 128u, 301u})
        for (std::size_t group : {16u, 32u, 128u}) {
          const auto a = squint_test::normal(m * k, 0.0f, 1.0f, static_cast<unsigned>(m * k + 3));
          const auto w = squint_test::normal(n * k, 0.0f, 0.5f, static_cast<unsigned>(n * k + 4));
          std::vector<float> bias(n);
          for (std::size_t j = 0; j < n; ++j) bias[j] = 0.25f * static_cast<float>(j % 5) - 0.5f;
          const auto format = (m + n + k) % 2 ? group_scale_format::fp16 : group_scale_format::fp32;
          const auto b = Layout::pack(w.data(), n, k, group, format);
          const std::size_t ldc = n + 2;
          std::vector<float> c(m * ldc, 12345.0f);
          const bool relu = m % 2 == 1;
          Layout::gemm(a.data(), m, k, b, bias.data(), relu, c.data(), ldc);
          for (std::size_t i = 0; i < m; ++i) {
            for (std::size_t j = 0; j < n; ++j) {
              double sum = 0.0, magnitude = 0.0;
              for (std::size_t kk = 0; kk < k; ++kk) {
                const double v = static_cast<double>(a[i * k + kk]) * b.at(j, kk) * b.scale(j, kk / group);
                sum += v;
                magnitude += std::fabs(v);
              }
              double exact = sum + bias[j];
              if (relu) exact = exact > 0.0 ? exact : 0.0;
              const double tolerance =
                  (static_cast<double>(group + b.groups() + 3) * magnitude + std::fabs(bias[j])) * std::ldexp(1.0, -24) +
                  1e-30;
              ASSERT_NEAR(c[i * ldc + j], exact, tolerance)
                  << b.bits() << "-bit " << m << "x" << n << "x" << k << " group " << group << " at " << i << "," << j;
            }
            for (std::size_t j = n; j < ldc; ++j) ASSERT_EQ(c[i * ldc + j], 12345.0f) << "wrote past n";
          }
        }
}

TYPED_TEST(GroupedGemmTest, Int4MatchesFloat64ReferenceOnTheDequantizedWeights) {
  expect_float64_results<int4_layout<TypeParam>>();
}

TYPED_TEST(GroupedGemmTest, Int8MatchesFloat64ReferenceOnTheDequantizedWeights) {
  expect_float64_results<int8_layout<TypeParam>>();
}

/// Small integer activations and power-of-two scales keep every product, group sum and total
/// exact in float (|sum| < 2^24): then every arch must return the exact value, bit for bit, for
/// both per-group layouts — the decoding of each code (sign, nibble order, lane order) and each
/// group's scale are checked without a tolerance to hide behind.
TYPED_TEST(GroupedGemmTest, ExactWhereFloatIsExactForBothLayouts) {
  for (std::size_t m : {1u, 3u, 6u, 13u})
    for (std::size_t n : {1u, 17u, 50u})
      for (std::size_t k : {1u, 33u, 160u})
        for (std::size_t group : {16u, 32u}) {
          const std::size_t groups = (k + group - 1) / group;
          std::vector<float> a(m * k), scales(n * groups);
          for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>(static_cast<int>(i * 5 % 9) - 4);
          for (std::size_t i = 0; i < scales.size(); ++i) scales[i] = std::ldexp(1.0f, static_cast<int>(i % 7) - 3);
          std::vector<std::int8_t> w8(n * k), w4(n * k);
          for (std::size_t i = 0; i < w8.size(); ++i) {
            w8[i] = static_cast<std::int8_t>(static_cast<int>(i * 101 % 256) - 128);
            w4[i] = static_cast<std::int8_t>(static_cast<int>(i * 11 % 16) - 8);
          }
          const auto format = k % 2 ? group_scale_format::fp16 : group_scale_format::fp32;
          const auto b8 = packed_int8_grouped_weights::from_int8(w8.data(), n, k, k, group, scales, format);
          const auto b4 = squint::packed_int4_weights::from_int4(w4.data(), n, k, k, group, scales, format);
          std::vector<float> c8(m * n), c4(m * n);
          squint::gemm_int8_grouped(a.data(), m, k, b8, nullptr, false, c8.data(), n, {},
                                    &squint::kernels::int8_group_gemm_kernel<TypeParam>::run);
          squint::gemm_int4(a.data(), m, k, b4, nullptr, false, c4.data(), n, {},
                            &squint::kernels::int4_gemm_kernel<TypeParam>::run);
          for (std::size_t i = 0; i < m; ++i)
            for (std::size_t j = 0; j < n; ++j) {
              double e8 = 0.0, e4 = 0.0;
              for (std::size_t kk = 0; kk < k; ++kk) {
                const double s = scales[j * groups + kk / group];
                e8 += a[i * k + kk] * static_cast<double>(w8[j * k + kk]) * s;
                e4 += a[i * k + kk] * static_cast<double>(w4[j * k + kk]) * s;
              }
              ASSERT_EQ(c8[i * n + j], static_cast<float>(e8)) << m << "x" << n << "x" << k << " at " << i << "," << j;
              ASSERT_EQ(c4[i * n + j], static_cast<float>(e4)) << m << "x" << n << "x" << k << " at " << i << "," << j;
            }
        }
}

/// What the groups are for: one large weight per row costs a per-channel scale the resolution of
/// every other weight in the row, a per-group scale only that of its group: the squared error
/// falls about k / group = 16-fold.
TEST(Int8GroupedGemm, GroupsConfineOutliersThatPerChannelScalesSpread) {
  const std::size_t m = 4, n = 32, k = 512;
  const auto a = squint_test::normal(m * k, 0.0f, 1.0f, 5);
  auto w = squint_test::normal(n * k, 0.0f, 0.02f, 6);
  for (std::size_t j = 0; j < n; ++j) w[j * k + (j * 61) % k] = 4.0f;  // one outlier per row
  std::vector<double> exact(m * n);
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j)
      for (std::size_t kk = 0; kk < k; ++kk) exact[i * n + j] += double{a[i * k + kk]} * w[j * k + kk];
  const auto error = [&](const std::vector<float>& c) {
    double e = 0.0;
    for (std::size_t i = 0; i < c.size(); ++i) e += (c[i] - exact[i]) * (c[i] - exact[i]);
    return e;
  };
  std::vector<float> grouped(m * n), channel(m * n);
  squint::runtime::gemm_int8_grouped(a.data(), m, k, packed_int8_grouped_weights::from_float(w.data(), n, k, k, 32),
                                     nullptr, false, grouped.data(), n);
  squint::runtime::gemm_weight_only(a.data(), m, k, squint::packed_weight_only::from_float(w.data(), n, k, k), nullptr,
                                    false, channel.data(), n);
  EXPECT_LT(error(grouped) * 8.0, error(channel));
}

TEST(Int8GroupedGemm, ThreadsDispatchAndArguments) {
  const std::size_t m = 3, n = 200, k = 256;
  const auto a = squint_test::normal(m * k, 0.0f, 1.0f, 1);
  const auto w = squint_test::normal(n * k, 0.0f, 1.0f, 2);
  const auto b = packed_int8_grouped_weights::from_float(w.data(), n, k, k, 64);
  std::vector<float> one(m * n), two(m * n), table(m * n);
  squint::runtime::gemm_int8_grouped(a.data(), m, k, b, nullptr, false, one.data(), n);
  squint::runtime::gemm_int8_grouped(a.data(), m, k, b, nullptr, false, two.data(), n, squint::parallelism{2, nullptr});
  EXPECT_EQ(one, two);
  squint::gemm_int8_grouped(a.data(), m, k, b, nullptr, false, table.data(), n, {},
                            squint::runtime::detail::active().gemm_int8_grouped);
  EXPECT_EQ(one, table);
  std::vector<float> c(m * n, 7.0f);
  EXPECT_THROW(squint::gemm_int8_grouped(a.data(), m, k - 1, b, nullptr, false, c.data(), n), squint::error);
  EXPECT_THROW(squint::gemm_int8_grouped(a.data(), m, k, b, nullptr, false, c.data(), n - 1), squint::error);
  EXPECT_THROW(squint::gemm_int8_grouped(nullptr, m, k, b, nullptr, false, c.data(), n), squint::error);
  EXPECT_THROW(squint::runtime::gemm_int8_grouped(a.data(), m, k, b, nullptr, false, nullptr, n), squint::error);
  EXPECT_EQ(c, std::vector<float>(m * n, 7.0f)) << "a refused call wrote";
}

}  // namespace

}  // namespace grouped_test

// SPDX-License-Identifier: Apache-2.0
// int4_test.cpp: INT4 per-group weight-only GEMM. Packing (codes, nibble order, scales, RTN),
// threads, and the checked entry points (every arch's kernel: grouped_test.cpp; its nn
// precision: nn_test.cpp).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "squint/gemm/int4.hpp"
#include "squint/dispatch.hpp"
#include "support/data.hpp"

namespace int4_test {

namespace {

TEST(Int4Packing, CodesScalesAndRoundToNearest) {
  const std::size_t n = 19, k = 70, group = 32;  // groups of 32, 32 and 6
  auto w = squint_test::normal(n * k, 0.0f, 1.0f, 3);
  w[5] = 0.0f;
  for (std::size_t i = 64; i < 70; ++i) w[2 * k + i] = 0.0f;  // an all-zero group: scale 1
  const auto b = squint::packed_int4_weights::from_float(w.data(), n, k, k, group);
  EXPECT_EQ(b.groups(), 3u);
  EXPECT_EQ(b.bytes(), (n * k + 1) / 2 + n * 3 * sizeof(float));
  for (std::size_t j = 0; j < n; ++j)
    for (std::size_t g = 0; g < 3; ++g) {
      float amax = 0.0f;
      for (std::size_t i = g * group; i < std::min(k, (g + 1) * group); ++i) amax = std::fmax(amax, std::fabs(w[j * k + i]));
      const float s = amax > 0.0f ? amax / 7.0f : 1.0f;
      ASSERT_EQ(b.scale(j, g), s) << j << "," << g;
      for (std::size_t i = g * group; i < std::min(k, (g + 1) * group); ++i)
        ASSERT_EQ(b.at(j, i), squint::reference::quantize_value(w[j * k + i], {s, 0}, {-7, 7})) << j << "," << i;
    }
  // External codes: the full [-8, 7] range survives packing, in channel order.
  std::vector<std::int8_t> codes(n * k);
  for (std::size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<std::int8_t>(static_cast<int>(i * 7 % 16) - 8);
  const auto c = squint::packed_int4_weights::from_int4(codes.data(), n, k, k, 16, std::vector<float>(n * 5, 0.5f));
  for (std::size_t j = 0; j < n; ++j)
    for (std::size_t i = 0; i < k; ++i) ASSERT_EQ(c.at(j, i), codes[j * k + i]);
  EXPECT_THROW(squint::packed_int4_weights::from_int4(codes.data(), n, k, k, 24, std::vector<float>(n * 3, 0.5f)),
               squint::error);
  EXPECT_THROW(squint::packed_int4_weights::from_int4(codes.data(), n, k, k, 32, std::vector<float>(n * 2, 0.5f)),
               squint::error);
  EXPECT_THROW(squint::packed_int4_weights::from_int4(codes.data(), n, k, k, 32, std::vector<float>(n * 3, 0.0f)),
               squint::error);
  codes[7] = 8;
  EXPECT_THROW(squint::packed_int4_weights::from_int4(codes.data(), n, k, k, 16, std::vector<float>(n * 5, 0.5f)),
               squint::error);
  EXPECT_THROW(squint::packed_int4_weights::from_float(nullptr, n, k, k), squint::error);
}

TEST(Int4Packing, HalfScalesAreRoundedOnceAndTheCodesUseThem) {
  const std::size_t n = 19, k = 70, group = 32;
  auto w = squint_test::normal(n * k, 0.0f, 1.0f, 5);
  for (std::size_t i = 0; i < 32; ++i) w[3 * k + i] = 1e-9f * static_cast<float>(i);  // amax / 7 below fp16's range
  const auto half = squint::packed_int4_weights::from_float(w.data(), n, k, k, group, squint::group_scale_format::fp16);
  EXPECT_EQ(half.scale_format(), squint::group_scale_format::fp16);
  EXPECT_EQ(half.scale_data(), nullptr);
  EXPECT_EQ(half.bytes(), (n * k + 1) / 2 + n * 3 * 2);
  for (std::size_t j = 0; j < n; ++j)
    for (std::size_t g = 0; g < 3; ++g) {
      float amax = 0.0f;
      for (std::size_t i = g * group; i < std::min(k, (g + 1) * group); ++i) amax = std::fmax(amax, std::fabs(w[j * k + i]));
      const float s = squint::reference::half_to_float(squint::reference::float_to_half(std::fmax(amax / 7.0f, 0x1p-24f)));
      ASSERT_EQ(half.scale(j, g), s) << j << "," << g;
      for (std::size_t i = g * group; i < std::min(k, (g + 1) * group); ++i)
        ASSERT_EQ(half.at(j, i), squint::reference::quantize_value(w[j * k + i], {s, 0}, {-7, 7})) << j << "," << i;
    }
  // External scales: rounded to fp16 once; ones that leave fp16's finite positive range are refused.
  const std::vector<std::int8_t> codes(2 * 16, 3);
  const auto b = squint::packed_w4a8_weights::from_int4(codes.data(), 2, 16, 16, 16, {0.1f, 3.0f},
                                                        squint::group_scale_format::fp16);
  EXPECT_EQ(b.scale(0, 0), squint::reference::half_to_float(squint::reference::float_to_half(0.1f)));
  EXPECT_EQ(b.scale(1, 0), 3.0f);
  EXPECT_THROW(squint::packed_int4_weights::from_int4(codes.data(), 2, 16, 16, 16, {0.1f, 1e-9f},
                                                      squint::group_scale_format::fp16),
               squint::error);
  EXPECT_THROW(squint::packed_w4a8_weights::from_int4(codes.data(), 2, 16, 16, 16, {1e6f, 0.1f},
                                                      squint::group_scale_format::fp16),
               squint::error);
  EXPECT_NO_THROW(squint::packed_int4_weights::from_int4(codes.data(), 2, 16, 16, 16, {1e6f, 1e-9f}));
}

TEST(Int4GemmApi, ThreadsDispatchAndArguments) {
  const std::size_t m = 3, n = 200, k = 256;
  const auto a = squint_test::normal(m * k, 0.0f, 1.0f, 1);
  const auto w = squint_test::normal(n * k, 0.0f, 1.0f, 2);
  const auto b = squint::packed_int4_weights::from_float(w.data(), n, k, k, 64);
  std::vector<float> one(m * n), two(m * n), native(m * n);
  squint::runtime::gemm_int4(a.data(), m, k, b, nullptr, false, one.data(), n);
  squint::runtime::gemm_int4(a.data(), m, k, b, nullptr, false, two.data(), n, squint::parallelism{2, nullptr});
  EXPECT_EQ(one, two);
  EXPECT_THROW(squint::gemm_int4(a.data(), m, k - 1, b, nullptr, false, native.data(), n), squint::error);
  EXPECT_THROW(squint::gemm_int4(a.data(), m, k, b, nullptr, false, native.data(), n - 1), squint::error);
  EXPECT_THROW(squint::gemm_int4(nullptr, m, k, b, nullptr, false, native.data(), n), squint::error);
}

}  // namespace

}  // namespace int4_test

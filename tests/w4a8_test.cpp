// SPDX-License-Identifier: Apache-2.0
// w4a8_test.cpp: the W4A8 GEMM (int4 group weights x int8 per-row activations). Packing (codes
// of both nibbles, scales, the RTN codes of the int4 weight-only form), the numeric contract of
// gemm/w4a8.hpp written out independently, every GEMM arch's kernel bit for bit against the
// portable one on awkward sizes (partial groups and panels, odd k, extreme and non-finite
// activations, full [-8, 7] codes), threads and the checked entry points.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "squint/dispatch.hpp"
#include "squint/gemm/w4a8.hpp"
#include "squint/reference/quantize.hpp"
#include "support/archs.hpp"
#include "support/data.hpp"

namespace w4a8_test {

namespace {

using squint::packed_w4a8_weights;

std::vector<std::uint32_t> bits_of(const std::vector<float>& x) {
  std::vector<std::uint32_t> out(x.size());
  std::memcpy(out.data(), x.data(), x.size() * sizeof(float));
  return out;
}

/// Codes over the whole [-8, 7] range and scales that differ per channel and group.
struct int4_case {
  std::vector<std::int8_t> codes;
  std::vector<float> scales;
  int4_case(std::size_t n, std::size_t k, std::size_t group, unsigned seed)
      : codes(squint_test::uniform_ints<std::int8_t>(n * k, -8, 7, seed)), scales(n * ((k + group - 1) / group)) {
    for (std::size_t s = 0; s < scales.size(); ++s) scales[s] = 0.01f * static_cast<float>(s % 13 + 1);
  }
};

TEST(W4a8Packing, CodesScalesAndTheInt4Rtn) {
  const std::size_t n = 19, k = 70, group = 32;
  const int4_case x(n, k, group, 3);
  const auto b = packed_w4a8_weights::from_int4(x.codes.data(), n, k, k, group, x.scales);
  EXPECT_EQ(b.groups(), 3u);
  EXPECT_EQ(b.bytes(), (n * k + 1) / 2 + n * 3 * sizeof(float));
  for (std::size_t j = 0; j < n; ++j) {
    for (std::size_t i = 0; i < k; ++i) ASSERT_EQ(b.at(j, i), x.codes[j * k + i]) << j << "," << i;
    for (std::size_t g = 0; g < 3; ++g) ASSERT_EQ(b.scale(j, g), x.scales[j * 3 + g]);
  }
  // from_float gives the int4 weight-only form's round-to-nearest codes and scales.
  const auto w = squint_test::normal(n * k, 0.0f, 1.0f, 4);
  const auto rtn = packed_w4a8_weights::from_float(w.data(), n, k, k, group);
  const auto int4 = squint::packed_int4_weights::from_float(w.data(), n, k, k, group);
  for (std::size_t j = 0; j < n; ++j) {
    for (std::size_t i = 0; i < k; ++i) ASSERT_EQ(rtn.at(j, i), int4.at(j, i));
    for (std::size_t g = 0; g < 3; ++g) ASSERT_EQ(rtn.scale(j, g), int4.scale(j, g));
  }
  auto bad = x.codes;
  bad[11] = 8;
  EXPECT_THROW(packed_w4a8_weights::from_int4(bad.data(), n, k, k, group, x.scales), squint::error);
  EXPECT_THROW(packed_w4a8_weights::from_int4(x.codes.data(), n, k, k, 24, x.scales), squint::error);
  EXPECT_THROW(packed_w4a8_weights::from_int4(x.codes.data(), n, k, k, 16 * 1024, std::vector<float>(n, 1.0f)),
               squint::error);
  EXPECT_THROW(packed_w4a8_weights::from_int4(x.codes.data(), n, k, k, group, std::vector<float>(n * 2, 1.0f)),
               squint::error);
  EXPECT_THROW(packed_w4a8_weights::from_int4(x.codes.data(), n, k, k, group, std::vector<float>(n * 3, -1.0f)),
               squint::error);
  EXPECT_THROW(packed_w4a8_weights::from_float(w.data(), n, k, k - 1, group), squint::error);
}

/// Activations with every awkward value: large and tiny magnitudes, a zero row, infinities, NaN.
std::vector<float> awkward_rows(std::size_t m, std::size_t k, unsigned seed) {
  auto a = squint_test::normal(m * k, 0.0f, 1.0f, seed);
  for (std::size_t i = 0; i < m; ++i) {
    if (i % 4 == 1)
      for (std::size_t d = 0; d < k; ++d) a[i * k + d] = 0.0f;
    if (i % 4 == 2 && k > 3) {
      a[i * k] = HUGE_VALF;
      a[i * k + 1] = -HUGE_VALF;
      a[i * k + 2] = std::numeric_limits<float>::quiet_NaN();
    }
    if (i % 4 == 3)
      for (std::size_t d = 0; d < k; ++d) a[i * k + d] *= d % 2 ? 1e30f : 1e-30f;
  }
  return a;
}

// The header's contract, computed here on its own: per-row int8 codes, exact group sums,
// an FMA per group in group order, then scale, bias and ReLU with two roundings.
TEST(W4a8Gemm, PortableKernelFollowsTheContract) {
  const std::size_t m = 6, n = 37, k = 100, group = 32, groups = 4;
  const int4_case x(n, k, group, 5);
  const auto b = packed_w4a8_weights::from_int4(x.codes.data(), n, k, k, group, x.scales);
  const auto a = awkward_rows(m, k, 6);
  std::vector<float> bias(n);
  for (std::size_t j = 0; j < n; ++j) bias[j] = 0.5f * static_cast<float>(j % 7) - 1.5f;
  for (bool relu : {false, true}) {
    std::vector<float> got(m * n);
    squint::gemm_w4a8(a.data(), m, k, b, bias.data(), relu, got.data(), n, {},
                      &squint::kernels::w4a8_gemm_kernel<squint::arch::scalar>::run);
    for (std::size_t i = 0; i < m; ++i) {
      float amax = 0.0f;
      for (std::size_t d = 0; d < k; ++d)
        if (std::isfinite(a[i * k + d])) amax = std::fmax(amax, std::fabs(a[i * k + d]));
      const float scale = amax > 0.0f ? amax / 127.0f : 1.0f;
      for (std::size_t j = 0; j < n; ++j) {
        float total = 0.0f;
        for (std::size_t g = 0; g < groups; ++g) {
          std::int64_t isum = 0;
          for (std::size_t d = g * group; d < std::min(k, (g + 1) * group); ++d)
            isum += squint::reference::quantize_value(a[i * k + d], {scale, 0}, {-128, 127}) * x.codes[j * k + d];
          total = std::fma(static_cast<float>(isum), x.scales[j * groups + g], total);
        }
        const volatile float scaled = total * scale;
        const float v = scaled + bias[j];
        ASSERT_EQ(got[i * n + j], relu && !(v > 0.0f) ? 0.0f : v) << i << "," << j << (relu ? " relu" : "");
      }
    }
  }
}

template <class Arch>
class W4a8GemmTest : public squint_test::arch_test<Arch> {};
using gemm_archs = ::testing::Types<SQUINT_DISPATCH_GEMM_TYPES>;
TYPED_TEST_SUITE(W4a8GemmTest, gemm_archs, squint_test::arch_names);

TYPED_TEST(W4a8GemmTest, MatchesThePortableKernelBitForBit) {
  for (std::size_t m : {1u, 2u, 3u, 4u, 5u, 9u})
    for (std::size_t n : {1u, 15u, 16u, 17u, 33u, 70u, 130u})
      for (std::size_t k : {1u, 7u, 8u, 9u, 31u, 33u, 100u, 257u})
        for (std::size_t group : {16u, 32u, 128u}) {
          const int4_case x(n, k, group, static_cast<unsigned>(n * k + group));
          const auto format = (m + n + k) % 2 ? squint::group_scale_format::fp16 : squint::group_scale_format::fp32;
          const auto b = packed_w4a8_weights::from_int4(x.codes.data(), n, k, k, group, x.scales, format);
          const auto a = awkward_rows(m, k, static_cast<unsigned>(m * k + 1));
          std::vector<float> bias(n);
          for (std::size_t j = 0; j < n; ++j) bias[j] = 0.25f * static_cast<float>(j % 5) - 0.5f;
          const std::size_t ldc = n + 2;
          const bool relu = (m + k) % 2 == 1;
          const float* bias_or_null = n % 2 ? bias.data() : nullptr;
          std::vector<float> got(m * ldc, 12345.0f), expect(m * ldc, 12345.0f);
          squint::gemm_w4a8(a.data(), m, k, b, bias_or_null, relu, got.data(), ldc, {},
                            &squint::kernels::w4a8_gemm_kernel<TypeParam>::run);
          squint::gemm_w4a8(a.data(), m, k, b, bias_or_null, relu, expect.data(), ldc, {},
                            &squint::kernels::w4a8_gemm_kernel<squint::arch::scalar>::run);
          ASSERT_EQ(bits_of(got), bits_of(expect))
              << m << "x" << n << "x" << k << " group " << group << (format == squint::group_scale_format::fp16 ? " fp16" : "");
        }
}

TEST(W4a8GemmApi, ThreadsDispatchAccuracyAndArguments) {
  const std::size_t m = 3, n = 200, k = 256;
  const auto a = squint_test::normal(m * k, 0.0f, 1.0f, 1);
  const auto w = squint_test::normal(n * k, 0.0f, 1.0f, 2);
  const auto b = packed_w4a8_weights::from_float(w.data(), n, k, k, 64);
  std::vector<float> one(m * n), two(m * n), native(m * n);
  squint::runtime::gemm_w4a8(a.data(), m, k, b, nullptr, false, one.data(), n);
  squint::runtime::gemm_w4a8(a.data(), m, k, b, nullptr, false, two.data(), n, squint::parallelism{2, nullptr});
  squint::gemm_w4a8(a.data(), m, k, b, nullptr, false, native.data(), n);
  EXPECT_EQ(bits_of(one), bits_of(two));
  EXPECT_EQ(bits_of(one), bits_of(native));
  // Against float64 on the int4 weights and float activations: only the activations' int8
  // rounding (half a step of amax / 127 per element) separates them.
  for (std::size_t i = 0; i < m; ++i) {
    // A float max, not std::fmax on doubles: GCC 12's AArch64 vectorizer crashes on that reduction.
    float amax = 0.0f;
    for (std::size_t d = 0; d < k; ++d) amax = std::max(amax, std::fabs(a[i * k + d]));
    for (std::size_t j = 0; j < n; ++j) {
      double exact = 0.0, bound = 0.0;
      for (std::size_t d = 0; d < k; ++d) {
        const double wv = static_cast<double>(b.at(j, d)) * b.scale(j, d / 64);
        exact += static_cast<double>(a[i * k + d]) * wv;
        bound += std::fabs(wv) * amax / 254.0;
      }
      ASSERT_NEAR(one[i * n + j], exact, bound * 1.01 + 1e-4) << i << "," << j;
    }
  }
  EXPECT_THROW(squint::gemm_w4a8(a.data(), m, k - 1, b, nullptr, false, native.data(), n), squint::error);
  EXPECT_THROW(squint::gemm_w4a8(a.data(), m, k, b, nullptr, false, native.data(), n - 1), squint::error);
  EXPECT_THROW(squint::gemm_w4a8(nullptr, m, k, b, nullptr, false, native.data(), n), squint::error);
}

}  // namespace

}  // namespace w4a8_test

// SPDX-License-Identifier: Apache-2.0
// reference_gemm_test.cpp: the int64-exact integer GEMM oracle with zero points.
#include "squint/reference/gemm.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "support/data.hpp"

namespace reference_gemm_test {

namespace {

using squint::matrix_view;

TEST(ReferenceGemmTest, HandComputedWithZeroPoints) {
  const std::vector<std::uint8_t> a{1, 2, 3, 4, 5, 6};      // 2 x 3
  const std::vector<std::int8_t> b{1, 0, -1, 2, 2, 2};      // 2 x 3 (rows = output channels)
  const std::int32_t b_zp[2] = {0, 1};
  std::vector<std::int64_t> c(4);
  squint::reference::gemm(matrix_view<const std::uint8_t>::row_major(a.data(), 2, 3), 1,
                          matrix_view<const std::int8_t>::row_major(b.data(), 2, 3), b_zp, 2,
                          matrix_view<std::int64_t>::row_major(c.data(), 2, 2));
  // (a - 1) = [0 1 2; 3 4 5]; (b - zp) = [1 0 -1; 1 1 1].
  EXPECT_EQ(c, (std::vector<std::int64_t>{-2, 3, -2, 12}));
}

TEST(ReferenceGemmTest, ExtremeOperandsAreExactBeyondInt32) {
  const std::size_t k = 70000;  // 255 * -128 * 70000 = -2.28e9 < INT32_MIN
  const std::vector<std::uint8_t> a(k, 255);
  const std::vector<std::int8_t> b(k, -128);
  std::int64_t c = 0;
  squint::reference::gemm(matrix_view<const std::uint8_t>::row_major(a.data(), 1, k), 0,
                          matrix_view<const std::int8_t>::row_major(b.data(), 1, k), nullptr, 0,
                          matrix_view<std::int64_t>::row_major(&c, 1, 1));
  EXPECT_EQ(c, std::int64_t{255} * -128 * static_cast<std::int64_t>(k));
}

TEST(ReferenceGemmTest, TransposedAndStridedViewsMatchCopies) {
  const std::size_t m = 3, n = 5, k = 7, lda = 9;
  const auto a = squint_test::uniform_ints<std::int8_t>(m * lda, -128, 127, 1);
  const auto b_kn = squint_test::uniform_ints<std::uint8_t>(k * n, 0, 255, 2);  // K x N, ONNX layout
  std::vector<std::uint8_t> b_nk(n * k);
  for (std::size_t i = 0; i < k; ++i)
    for (std::size_t j = 0; j < n; ++j) b_nk[j * k + i] = b_kn[i * n + j];
  std::vector<std::int32_t> zp{3, 250, 0, 128, 17};
  std::vector<std::int64_t> c1(m * n), c2(m * n);
  const auto av = matrix_view<const std::int8_t>::row_major(a.data(), m, k, lda);
  squint::reference::gemm(av, -5, matrix_view<const std::uint8_t>::row_major(b_kn.data(), k, n).transposed(),
                          zp.data(), n, matrix_view<std::int64_t>::row_major(c1.data(), m, n));
  squint::reference::gemm(av, -5, matrix_view<const std::uint8_t>::row_major(b_nk.data(), n, k), zp.data(), n,
                          matrix_view<std::int64_t>::row_major(c2.data(), m, n));
  EXPECT_EQ(c1, c2);
  std::int64_t expect = 0;
  for (std::size_t i = 0; i < k; ++i) expect += (a[2 * lda + i] + 5) * (b_nk[4 * k + i] - 17);
  EXPECT_EQ(c1[2 * n + 4], expect);
}

}  // namespace

}  // namespace reference_gemm_test

// SPDX-License-Identifier: Apache-2.0
// eigen_test.cpp: squint/eigen.hpp on row-major, column-major and block arguments.
#include <gtest/gtest.h>

#include <Eigen/Core>

#include "squint/eigen.hpp"
#include "squint/nn/linear.hpp"
#include "support/data.hpp"

namespace eigen_test {

namespace {

Eigen::MatrixXf random_matrix(Eigen::Index rows, Eigen::Index cols, unsigned seed) {
  const auto v = squint_test::normal(static_cast<std::size_t>(rows * cols), 0.0f, 1.0f, seed);
  return Eigen::Map<const Eigen::MatrixXf>(v.data(), rows, cols);
}

TEST(EigenTest, ColumnMajorRowMajorAndBlocksPackTheSameWeights) {
  const Eigen::MatrixXf w = random_matrix(37, 29, 1);  // column-major: copied once
  const squint::eigen::row_major<float> wr = w;
  const Eigen::MatrixXf wide = random_matrix(40, 35, 2);
  squint::eigen::row_major<float> big = wide;
  big.block(1, 3, 37, 29) = wr;
  const auto a = squint::eigen::pack(w), b = squint::eigen::pack(wr), c = squint::eigen::pack(big.block(1, 3, 37, 29));
  ASSERT_EQ(a.n(), 37u);
  ASSERT_EQ(a.k(), 29u);
  for (std::size_t j = 0; j < 37; ++j)
    for (std::size_t i = 0; i < 29; ++i) {
      ASSERT_EQ(a.at(j, i), b.at(j, i));
      ASSERT_EQ(a.at(j, i), c.at(j, i));
    }
  const auto h = squint::eigen::pack_half(w);
  EXPECT_EQ(h.at(5, 7), squint::reference::half_to_float(squint::reference::float_to_half(w(5, 7))));
}

TEST(EigenTest, GemmAndLinearMatchTheRawPointerApi) {
  const Eigen::MatrixXf w = random_matrix(24, 50, 3), x = random_matrix(5, 50, 4);
  const auto packed = squint::eigen::pack(w);
  squint::eigen::row_major<std::uint8_t> codes(5, 50);
  for (Eigen::Index i = 0; i < codes.size(); ++i) codes.data()[i] = static_cast<std::uint8_t>(i * 37 % 256);
  const auto c = squint::eigen::gemm<std::uint8_t>(codes, 131, packed);
  std::vector<std::int32_t> expected(5 * 24);
  squint::gemm(codes.data(), 5, 50, 131, packed, expected.data(), 24);
  EXPECT_TRUE(std::equal(expected.begin(), expected.end(), c.data()));

  const std::vector<float> bias(24, 0.25f);
  const Eigen::MatrixXf y = squint::eigen::linear_dynamic(x, packed, bias.data(), true);  // into column-major
  squint::nn::linear_options o;
  o.mode = squint::nn::precision::int8_dynamic;
  o.act = squint::nn::activation::relu;
  const squint::eigen::row_major<float> wr = w, xr = x;
  const squint::nn::linear layer(wr.data(), 24, 50, 50, bias.data(), o);
  squint::eigen::row_major<float> ref(5, 24);
  layer.forward(xr.data(), 5, ref.data());
  EXPECT_TRUE(y.isApprox(Eigen::MatrixXf(ref), 1e-6f));
  EXPECT_GT(y.minCoeff(), -1e-30f);

  const Eigen::MatrixXf yh = squint::eigen::linear_half(x, squint::eigen::pack_half(w));
  EXPECT_TRUE(yh.isApprox(x * w.transpose(), 1e-3f));
  EXPECT_THROW(squint::eigen::linear_dynamic(x.leftCols(49), packed), squint::error);
  EXPECT_THROW(squint::eigen::linear_half(x.leftCols(49), squint::eigen::pack_half(w)), squint::error);
  EXPECT_THROW(squint::eigen::gemm<std::uint8_t>(codes.leftCols(10), 0, packed), squint::error);
}

}  // namespace

}  // namespace eigen_test

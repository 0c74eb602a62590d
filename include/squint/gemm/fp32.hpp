// SPDX-License-Identifier: Apache-2.0
// gemm/fp32.hpp: the FP32 GEMM every quantized path is measured against, on Eigen's GEMM.
#pragma once

#include <Eigen/Core>

#include <cstddef>
#include <vector>

#include "squint/error.hpp"
#include "squint/gemm/parallel.hpp"

SQUINT_NAMESPACE_BEGIN

/// Float weights (one row per output channel), for gemm_float: immutable, shareable.
class packed_float_weights {
 public:
  /// Copies w (n x k, row stride ldw >= k).
  /// @throws squint::error on null data with elements or ldw < k.
  static packed_float_weights from_float(const float* w, std::size_t n, std::size_t k, std::size_t ldw) {
    detail::require_matrix("packed_float_weights::from_float", "w", w, n, k, ldw);
    detail::require(ldw >= k, "packed_float_weights::from_float: ldw ", ldw, " is smaller than k ", k);
    packed_float_weights p;
    p.n_ = n;
    p.k_ = k;
    p.data_.resize(n * k);
    for (std::size_t j = 0; j < n; ++j)
      for (std::size_t i = 0; i < k; ++i) p.data_[j * k + i] = w[j * ldw + i];
    return p;
  }

  std::size_t n() const { return n_; }
  std::size_t k() const { return k_; }
  std::size_t bytes() const { return data_.size() * sizeof(float); }
  /// The n x k weights, row-major.
  const std::vector<float>& values() const { return data_; }

 private:
  std::vector<float> data_;
  std::size_t n_ = 0, k_ = 0;
};

/// C = A . B^T + bias (then max(0, .) with relu), all float: A m x k (row stride lda), C m x n
/// (row stride ldc); bias has n entries or is null. Threads split the output channels.
/// @throws squint::error on null pointers with elements, lda < k or ldc < n.
inline void gemm_float(const float* a, std::size_t m, std::size_t lda, const packed_float_weights& b, const float* bias,
                       bool relu, float* c, std::size_t ldc, const parallelism& par = {}) {
  const std::size_t n = b.n(), k = b.k();
  detail::require_matrix("gemm_float", "a", a, m, k, lda);
  detail::require_matrix("gemm_float", "c", c, m, n, ldc);
  detail::require(m <= 1 || lda >= k, "gemm_float: lda ", lda, " is smaller than k ", k);
  detail::require(m <= 1 || ldc >= n, "gemm_float: ldc ", ldc, " is smaller than n ", n);
  if (m == 0 || n == 0) return;
  using row_major = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using strided = Eigen::OuterStride<>;
  const Eigen::Map<const row_major, 0, strided> x(a, static_cast<Eigen::Index>(m), static_cast<Eigen::Index>(k),
                                                  strided(static_cast<Eigen::Index>(m > 1 ? lda : k)));
  const Eigen::Map<const row_major> w(b.values().data(), static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(k));
  detail::split_columns(par, m, n, k, 16, [&](std::size_t j0, std::size_t j1) {
    const auto cols = static_cast<Eigen::Index>(j1 - j0);
    Eigen::Map<row_major, 0, strided> y(c + j0, static_cast<Eigen::Index>(m), cols,
                                        strided(static_cast<Eigen::Index>(m > 1 ? ldc : n)));
    y.noalias() = x * w.middleRows(static_cast<Eigen::Index>(j0), cols).transpose();
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = j0; j < j1; ++j) {
        const float v = c[i * ldc + j] + (bias ? bias[j] : 0.0f);
        c[i * ldc + j] = relu && !(v > 0.0f) ? 0.0f : v;
      }
  });
}

SQUINT_NAMESPACE_END

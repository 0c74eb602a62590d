// SPDX-License-Identifier: Apache-2.0
// gemm/fp32.hpp: squint's FP32 GEMM, the baseline every quantized path is measured against: the
// float-panel kernels of gemm/fp16.hpp (AVX-512, AVX2 with FMA, portable) on float panels, so
// the FP32 path runs the CPU's widest kernel through runtime dispatch like the others, whatever
// flags the caller's code is built with. Each output sums in k order.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

#include "squint/error.hpp"
#include "squint/gemm/fp16.hpp"
#include "squint/gemm/parallel.hpp"

namespace squint::kernels {

/// float A x float panels -> float C, with optional bias and ReLU.
template <class Arch>
struct float_gemm_kernel {
  static void run(const float* a, std::size_t m, std::size_t k, std::size_t lda, const float* packed, std::size_t n,
                  const float* bias, bool relu, float* c, std::size_t ldc) noexcept;
};

template <class Arch>
void float_gemm_kernel<Arch>::run(const float* a, std::size_t m, std::size_t k, std::size_t lda, const float* packed,
                                  std::size_t n, const float* bias, bool relu, float* c, std::size_t ldc) noexcept {
  detail_panel::run<Arch>(a, m, k, lda, packed, n, nullptr, bias, relu, c, ldc);
}

}  // namespace squint::kernels

SQUINT_NAMESPACE_BEGIN

/// Float weights in float-panel order, for gemm_float: immutable, shareable.
class packed_float_weights {
 public:
  static constexpr std::size_t panel_width = kernels::detail_panel::width;

  /// Packs w (n x k, row stride ldw >= k).
  /// @throws squint::error on null data with elements or ldw < k.
  static packed_float_weights from_float(const float* w, std::size_t n, std::size_t k, std::size_t ldw) {
    detail::require_matrix("packed_float_weights::from_float", "w", w, n, k, ldw);
    detail::require(ldw >= k, "packed_float_weights::from_float: ldw ", ldw, " is smaller than k ", k);
    packed_float_weights p;
    p.n_ = n;
    p.k_ = k;
    p.data_.assign(detail::panel_elements(n, k), 0.0f);
    // In the packed order (panel, depth, channel), so the writes stream: QAT packs at every step.
    float* out = p.data_.data();
    for (std::size_t j0 = 0; j0 < n; j0 += panel_width)
      for (std::size_t i = 0; i < k; ++i, out += panel_width)
        for (std::size_t c = 0; c < panel_width && j0 + c < n; ++c) out[c] = w[(j0 + c) * ldw + i];
    return p;
  }

  /// Packs the transpose of w (k x n, row stride ldw >= n): B[j][i] = w[i][j], so gemm_float
  /// computes A . w (a backward pass's dX = dY . W, or dW = dY^T . X with A = dY^T).
  /// @throws squint::error on null data with elements or ldw < n.
  static packed_float_weights from_float_transposed(const float* w, std::size_t k, std::size_t n, std::size_t ldw) {
    detail::require_matrix("packed_float_weights::from_float_transposed", "w", w, k, n, ldw);
    detail::require(ldw >= n, "packed_float_weights::from_float_transposed: ldw ", ldw, " is smaller than n ", n);
    packed_float_weights p;
    p.n_ = n;
    p.k_ = k;
    p.data_.assign(detail::panel_elements(n, k), 0.0f);
    float* out = p.data_.data();
    for (std::size_t j0 = 0; j0 < n; j0 += panel_width) {
      const std::size_t width = n - j0 < panel_width ? n - j0 : panel_width;
      for (std::size_t i = 0; i < k; ++i, out += panel_width) std::copy(w + i * ldw + j0, w + i * ldw + j0 + width, out);
    }
    return p;
  }

  std::size_t n() const { return n_; }
  std::size_t k() const { return k_; }
  std::size_t bytes() const { return n_ * k_ * sizeof(float); }
  const float* data() const { return data_.data(); }
  /// The weight of channel j at depth i.
  float at(std::size_t j, std::size_t i) const { return data_[detail::panel_index(j, i, k_)]; }
  /// The n x k weights, row-major.
  std::vector<float> values() const {
    std::vector<float> w(n_ * k_);
    for (std::size_t j = 0; j < n_; ++j)
      for (std::size_t i = 0; i < k_; ++i) w[j * k_ + i] = at(j, i);
    return w;
  }

 private:
  std::vector<float> data_;
  std::size_t n_ = 0, k_ = 0;
};

/// The float-panel FP32 kernel (float_gemm_kernel::run).
using float_gemm_fn = void (*)(const float*, std::size_t, std::size_t, std::size_t, const float*, std::size_t,
                               const float*, bool, float*, std::size_t) noexcept;

/// C = A . B^T + bias (then max(0, .) with relu), all float: A m x k (row stride lda), C m x n
/// (row stride ldc); bias has n entries or is null. Threads split the output channels. `kernel`
/// is this translation unit's own unless a dispatched one is passed (squint::runtime does).
/// @throws squint::error on null pointers with elements, lda < k or ldc < n.
inline void gemm_float(const float* a, std::size_t m, std::size_t lda, const packed_float_weights& b, const float* bias,
                       bool relu, float* c, std::size_t ldc, const parallelism& par = {},
                       float_gemm_fn kernel = &kernels::float_gemm_kernel<arch::native>::run) {
  detail::check_panel_gemm("gemm_float", a, m, lda, b.k(), b.n(), c, ldc);
  detail::run_panels(kernel, a, m, b.k(), lda, b.data(), b.n(), bias, relu, c, ldc, par);
}

SQUINT_NAMESPACE_END

// SPDX-License-Identifier: Apache-2.0
// gemm/weight_only.hpp: weight-only INT8 — weights stored as int8 codes with a scale per output
// channel (a quarter of float's bytes), activations and arithmetic in float. For batch-1
// decoding, where a GEMV is bound by reading the weights and quantizing the activations buys
// nothing. Runs the float-panel kernel of gemm/fp16.hpp with int8 panels.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "squint/gemm/fp16.hpp"
#include "squint/gemm/pack.hpp"

namespace squint::kernels {

/// float A x int8 panels (scaled per channel) -> float C, with optional bias and ReLU.
template <class Arch>
struct weight_only_gemm_kernel {
  static void run(const float* a, std::size_t m, std::size_t k, std::size_t lda, const std::int8_t* packed,
                  std::size_t n, const float* scale, const float* bias, bool relu, float* c,
                  std::size_t ldc) noexcept;
};

// Defined out of the class, like every kernel: an in-class (inline) definition stays
// instantiable, and inlinable, in translation units that only declare it (extern template),
// which would then call per-ISA code their flags do not define.
template <class Arch>
void weight_only_gemm_kernel<Arch>::run(const float* a, std::size_t m, std::size_t k, std::size_t lda,
                                        const std::int8_t* packed, std::size_t n, const float* scale,
                                        const float* bias, bool relu, float* c, std::size_t ldc) noexcept {
  detail_panel::run<Arch>(a, m, k, lda, packed, n, scale, bias, relu, c, ldc);
}

}  // namespace squint::kernels

SQUINT_NAMESPACE_BEGIN

/// Int8 weights with per-channel scales, packed in float-panel order: immutable, shareable.
class packed_weight_only {
 public:
  static constexpr std::size_t panel_width = kernels::detail_panel::width;

  /// Packs codes w (n x k, row stride ldw >= k) with one scale per row (or one for all);
  /// the weight of channel j is scale[j] * w[j][i] (symmetric: no zero point).
  /// @throws squint::error on null data with elements, ldw < k, a wrong scale count, or a
  ///         scale that is not finite and > 0.
  static packed_weight_only from_int8(const std::int8_t* w, std::size_t n, std::size_t k, std::size_t ldw,
                                      const std::vector<float>& scale) {
    detail::require_matrix("packed_weight_only::from_int8", "w", w, n, k, ldw);
    detail::require(ldw >= k, "packed_weight_only::from_int8: ldw ", ldw, " is smaller than k ", k);
    detail::check_channel_scales("packed_weight_only::from_int8", scale, n);
    packed_weight_only p;
    p.n_ = n;
    p.k_ = k;
    p.data_.assign(detail::panel_elements(n, k), 0);
    p.scale_.assign(detail::panel_elements(n, 1), 0.0f);
    for (std::size_t j = 0; j < n; ++j) {
      p.scale_[j] = scale.size() == 1 ? scale[0] : scale[j];
      for (std::size_t i = 0; i < k; ++i) p.data_[p.offset(j, i)] = w[j * ldw + i];
    }
    return p;
  }

  /// Quantizes float weights per output channel, symmetric narrow range [-127, 127] (the same
  /// codes and scales as packed_weights::from_float), and packs them.
  /// @throws squint::error on null data with elements or ldw < k.
  static packed_weight_only from_float(const float* w, std::size_t n, std::size_t k, std::size_t ldw,
                                       quant_spec spec = {dtype::int8, qscheme::symmetric, false, true}) {
    detail::require_matrix("packed_weight_only::from_float", "w", w, n, k, ldw);
    detail::require(ldw >= k, "packed_weight_only::from_float: ldw ", ldw, " is smaller than k ", k);
    detail::require(spec.type == dtype::int8 && spec.scheme == qscheme::symmetric,
                    "packed_weight_only::from_float: weights are quantized symmetric int8");
    std::vector<std::int8_t> q(n * k);
    std::vector<float> scale(n);
    detail::quantize_rows_symmetric(w, n, k, ldw, q.data(), scale.data(), spec);
    return from_int8(q.data(), n, k, k, scale);
  }

  std::size_t n() const { return n_; }
  std::size_t k() const { return k_; }
  /// Bytes held: the codes and the scales.
  std::size_t bytes() const { return data_.size() + scale_.size() * sizeof(float); }
  const std::int8_t* data() const { return data_.data(); }
  /// n scales (padded with zeros to whole panels).
  const float* scales() const { return scale_.data(); }
  /// The code of channel j at depth i.
  std::int8_t at(std::size_t j, std::size_t i) const { return data_[offset(j, i)]; }

 private:
  std::size_t offset(std::size_t j, std::size_t i) const { return detail::panel_index(j, i, k_); }
  std::vector<std::int8_t> data_;
  std::vector<float> scale_;
  std::size_t n_ = 0, k_ = 0;
};

namespace detail {

template <class Run>
void run_weight_only(Run run, const float* a, std::size_t m, std::size_t lda, const packed_weight_only& b,
                     const float* bias, bool relu, float* c, std::size_t ldc, const parallelism& par) {
  const std::size_t k = b.k();
  split_columns(par, m, b.n(), k, packed_weight_only::panel_width, [&](std::size_t j0, std::size_t j1) {
    run(a, m, k, lda, b.data() + j0 * k, j1 - j0, b.scales() + j0, bias ? bias + j0 : nullptr, relu, c + j0, ldc);
  });
}

}  // namespace detail

/// C = A . (scale * Q)^T + bias (then max(0, .) with relu): float A (m x k, row stride lda),
/// int8 weights, fp32 accumulation, float C (m x n, row stride ldc); bias has n entries or is null.
/// @throws squint::error on null pointers with elements, lda < k or ldc < n.
inline void gemm_weight_only(const float* a, std::size_t m, std::size_t lda, const packed_weight_only& b,
                             const float* bias, bool relu, float* c, std::size_t ldc, const parallelism& par = {}) {
  detail::check_panel_gemm("gemm_weight_only", a, m, lda, b.k(), b.n(), c, ldc);
  detail::run_weight_only(&kernels::weight_only_gemm_kernel<arch::native>::run, a, m, lda, b, bias, relu, c, ldc, par);
}

SQUINT_NAMESPACE_END

// SPDX-License-Identifier: Apache-2.0
// gemm/fp8.hpp: FP8 weight-only GEMM — weights stored as E4M3FN codes with a scale per output
// channel (a quarter of float's bytes, like weight-only INT8, with a float format's relative
// precision), decoded to float in registers, activations and arithmetic in float. Runs the
// float-panel kernel of gemm/fp16.hpp with fp8 panels.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "squint/fp8.hpp"
#include "squint/gemm/fp16.hpp"
#include "squint/gemm/pack.hpp"

namespace squint::kernels {

/// float A x E4M3FN panels (scaled per channel) -> float C, with optional bias and ReLU.
template <class Arch>
struct fp8_gemm_kernel {
  static void run(const float* a, std::size_t m, std::size_t k, std::size_t lda, const std::uint8_t* packed,
                  std::size_t n, const float* scale, const float* bias, bool relu, float* c,
                  std::size_t ldc) noexcept;
};

template <class Arch>
void fp8_gemm_kernel<Arch>::run(const float* a, std::size_t m, std::size_t k, std::size_t lda,
                                const std::uint8_t* packed, std::size_t n, const float* scale, const float* bias,
                                bool relu, float* c, std::size_t ldc) noexcept {
  detail_panel::run<Arch>(a, m, k, lda, reinterpret_cast<const fp8_e4m3_code*>(packed), n, scale, bias, relu, c, ldc);
}

}  // namespace squint::kernels

SQUINT_NAMESPACE_BEGIN

/// E4M3FN weights with per-channel scales, packed in float-panel order: immutable, shareable.
class packed_fp8_weights {
 public:
  static constexpr std::size_t panel_width = kernels::detail_panel::width;

  /// Packs E4M3FN codes w (n x k, row stride ldw >= k) with one scale per row (or one for all):
  /// the weight of channel j is scale[j] * fp8_to_float(w[j][i]).
  /// @throws squint::error on null data with elements, ldw < k, a wrong scale count, a scale
  ///         that is not finite and > 0 (or overflows once the decoding's 2^8 is folded in), or
  ///         a NaN code.
  static packed_fp8_weights from_fp8(const std::uint8_t* w, std::size_t n, std::size_t k, std::size_t ldw,
                                     const std::vector<float>& scale) {
    detail::require_matrix("packed_fp8_weights::from_fp8", "w", w, n, k, ldw);
    detail::require(ldw >= k, "packed_fp8_weights::from_fp8: ldw ", ldw, " is smaller than k ", k);
    detail::check_channel_scales("packed_fp8_weights::from_fp8", scale, n);
    for (float s : scale)
      detail::require(std::isfinite(s / kernels::detail_panel::fp8_e4m3_decode_factor),
                      "packed_fp8_weights::from_fp8: scale ", s, " overflows float once multiplied by 256");
    packed_fp8_weights p;
    p.n_ = n;
    p.k_ = k;
    p.data_.assign(detail::panel_elements(n, k), 0);
    p.scale_.assign(n, 0.0f);
    p.kernel_scale_.assign(detail::panel_elements(n, 1), 0.0f);
    for (std::size_t j = 0; j < n; ++j) {
      p.scale_[j] = scale.size() == 1 ? scale[0] : scale[j];
      p.kernel_scale_[j] = p.scale_[j] / kernels::detail_panel::fp8_e4m3_decode_factor;
      for (std::size_t i = 0; i < k; ++i) {
        const std::uint8_t c = w[j * ldw + i];
        detail::require((c & 0x7F) != 0x7F, "packed_fp8_weights::from_fp8: weight (", j, ", ", i,
                        ") is a NaN code");
        p.data_[detail::panel_index(j, i, k)] = c;
      }
    }
    return p;
  }

  /// Quantizes float weights per output channel, scale amax / 448 (fp8_scale), saturating
  /// E4M3FN codes, and packs them. Non-finite weights are left out of amax and saturate.
  /// @throws squint::error on null data with elements or ldw < k.
  static packed_fp8_weights from_float(const float* w, std::size_t n, std::size_t k, std::size_t ldw) {
    detail::require_matrix("packed_fp8_weights::from_float", "w", w, n, k, ldw);
    detail::require(ldw >= k, "packed_fp8_weights::from_float: ldw ", ldw, " is smaller than k ", k);
    std::vector<std::uint8_t> q(n * k);
    std::vector<float> scale(n);
    for (std::size_t j = 0; j < n; ++j) {
      float amax = 0.0f;
      for (std::size_t i = 0; i < k; ++i)
        if (std::isfinite(w[j * ldw + i])) amax = std::fmax(amax, std::fabs(w[j * ldw + i]));
      scale[j] = fp8_scale(amax, fp8_format::e4m3fn);
      for (std::size_t i = 0; i < k; ++i) {
        const float v = w[j * ldw + i];
        // NaN weights become 0: a weight-only GEMM's weights are finite (from_fp8 refuses NaN).
        q[j * k + i] = v == v ? reference::quantize_fp8_value(v, scale[j], fp8_format::e4m3fn) : 0;
      }
    }
    return from_fp8(q.data(), n, k, k, scale);
  }

  std::size_t n() const { return n_; }
  std::size_t k() const { return k_; }
  /// Bytes held: the codes and the per-channel scales.
  std::size_t bytes() const { return n_ * k_ + n_ * sizeof(float); }
  const std::uint8_t* data() const { return data_.data(); }
  /// The n per-channel scales.
  const std::vector<float>& scales() const { return scale_; }
  /// The scales as the kernel applies them (times 2^8, the decoding's factor; padded to panels).
  const float* kernel_scales() const { return kernel_scale_.data(); }
  /// The code of channel j at depth i.
  std::uint8_t at(std::size_t j, std::size_t i) const { return data_[detail::panel_index(j, i, k_)]; }

 private:
  std::vector<std::uint8_t> data_;
  std::vector<float> scale_, kernel_scale_;
  std::size_t n_ = 0, k_ = 0;
};

/// The FP8 panel kernel (fp8_gemm_kernel::run).
using fp8_gemm_fn = void (*)(const float*, std::size_t, std::size_t, std::size_t, const std::uint8_t*, std::size_t,
                             const float*, const float*, bool, float*, std::size_t) noexcept;

/// C = A . (scale * fp8(Q))^T + bias (then max(0, .) with relu): float A (m x k, row stride lda),
/// E4M3FN weights decoded in registers, fp32 accumulation, float C (m x n, row stride ldc); bias
/// has n entries or is null. `kernel` is this translation unit's own unless a dispatched one is
/// passed (squint::runtime does).
/// @throws squint::error on null pointers with elements, lda < k or ldc < n.
inline void gemm_fp8(const float* a, std::size_t m, std::size_t lda, const packed_fp8_weights& b, const float* bias,
                     bool relu, float* c, std::size_t ldc, const parallelism& par = {},
                     fp8_gemm_fn kernel = &kernels::fp8_gemm_kernel<arch::native>::run) {
  detail::check_panel_gemm("gemm_fp8", a, m, lda, b.k(), b.n(), c, ldc);
  const std::size_t k = b.k();
  detail::split_columns(par, m, b.n(), k, packed_fp8_weights::panel_width, [&](std::size_t j0, std::size_t j1) {
    kernel(a, m, k, lda, b.data() + j0 * k, j1 - j0, b.kernel_scales() + j0, bias ? bias + j0 : nullptr, relu, c + j0,
           ldc);
  });
}

SQUINT_NAMESPACE_END

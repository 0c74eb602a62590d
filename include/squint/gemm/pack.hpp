// SPDX-License-Identifier: Apache-2.0
// gemm/pack.hpp: int8 weights packed once for the GEMM micro-kernels.
//
// Layout: the N x K weight matrix (one row per output channel) is cut into panels of 16 output
// channels; a panel stores K rounded up to a multiple of 4 as groups of 4 consecutive k for
// each of its 16 channels: byte [(k / 4) * 64 + column * 4 + k % 4]. One 64-byte group is what
// AVX-512 VNNI's vpdpbusd consumes per 16 int32 lanes, two 32-byte halves are what AVX2's
// vpmaddubsw + vpmaddwd consume, and NEON's sdot reads the same 4-k groups, so one layout serves
// every ISA and a packed object never needs repacking for another CPU. Padding (k beyond K,
// channels beyond N) is zero, so it adds nothing to any sum.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "squint/qparams.hpp"
#include "squint/reference/quantize.hpp"

SQUINT_NAMESPACE_BEGIN

namespace detail {

/// Per-row symmetric quantization of float weights w (n x k, row stride ldw) into q (n x k,
/// dense) and scale (n): each row's finite range through choose_qparams with `spec`
/// (int8, symmetric; narrow range [-127, 127] by default).
inline void quantize_rows_symmetric(const float* w, std::size_t n, std::size_t k, std::size_t ldw, std::int8_t* q,
                                    float* scale, quant_spec spec = {dtype::int8, qscheme::symmetric, false, true}) {
  const quant_range range = range_of(spec);
  for (std::size_t j = 0; j < n; ++j) {
    float lo = 0.0f, hi = 0.0f;
    for (std::size_t i = 0; i < k; ++i) {
      const float v = w[j * ldw + i];
      if (!std::isfinite(v)) continue;
      lo = v < lo ? v : lo;
      hi = v > hi ? v : hi;
    }
    const qparams p = choose_qparams(lo, hi, spec);
    scale[j] = p.scale;
    for (std::size_t i = 0; i < k; ++i)
      q[j * k + i] = static_cast<std::int8_t>(reference::quantize_value(w[j * ldw + i], p, range));
  }
}

/// Per-channel scales for n channels: n of them or one for all, each finite and > 0.
inline void check_channel_scales(const char* function, const std::vector<float>& scale, std::size_t n) {
  require(scale.size() == n || scale.size() == 1, function, ": ", scale.size(), " scales for ", n, " channels");
  for (float s : scale) require(std::isfinite(s) && s > 0.0f, function, ": scale must be finite and > 0, got ", s);
}

}  // namespace detail

/// Immutable packed weights for C = A . B^T: safe to share between threads.
class packed_weights {
 public:
  static constexpr std::size_t panel_width = 16;  ///< output channels per panel
  static constexpr std::size_t k_group = 4;       ///< consecutive k per 32-bit lane

  /// Packs int8 weights w (n x k, row stride ldw >= k) with per-channel scales and zero points
  /// (one each per row of w, or a single one for all).
  /// @throws squint::error on null data, zero sizes with data, ldw < k, wrong parameter counts,
  ///         scales not finite and > 0, or zero points outside [-128, 127].
  static packed_weights from_int8(const std::int8_t* w, std::size_t n, std::size_t k, std::size_t ldw,
                                  const std::vector<float>& scale, const std::vector<std::int32_t>& zero_point) {
    detail::require_matrix("packed_weights::from_int8", "w", w, n, k, ldw);
    detail::require(ldw >= k, "packed_weights::from_int8: ldw ", ldw, " is smaller than k ", k);
    detail::check_channel_scales("packed_weights::from_int8", scale, n);
    detail::require(zero_point.size() == n || zero_point.size() == 1, "packed_weights::from_int8: ",
                    zero_point.size(), " zero points for ", n, " channels");
    for (std::int32_t z : zero_point)
      detail::require(z >= -128 && z <= 127, "packed_weights::from_int8: zero_point ", z, " is outside [-128, 127]");
    packed_weights p;
    p.n_ = n;
    p.k_ = k;
    p.k_groups_ = (k + k_group - 1) / k_group;
    p.panels_ = (n + panel_width - 1) / panel_width;
    p.data_.assign(p.panels_ * p.k_groups_ * panel_width * k_group, 0);
    p.column_sum_.assign(p.panels_ * panel_width, 0);
    p.scale_.resize(n);
    p.zero_point_.resize(n);
    for (std::size_t j = 0; j < n; ++j) {
      p.scale_[j] = scale.size() == 1 ? scale[0] : scale[j];
      p.zero_point_[j] = zero_point.size() == 1 ? zero_point[0] : zero_point[j];
      std::int32_t sum = 0, lowest = 0;
      for (std::size_t i = 0; i < k; ++i) {
        sum += w[j * ldw + i];
        lowest = w[j * ldw + i] < lowest ? w[j * ldw + i] : lowest;
      }
      p.column_sum_[j] = sum;
      p.narrow_ = p.narrow_ && lowest != -128;
    }
    // In the packed order (panel, k group, channel, 4 depths), so the writes stream: QAT packs
    // its weights at every training step.
    std::int8_t* out = p.data_.data();
    for (std::size_t panel = 0; panel < p.panels_; ++panel)
      for (std::size_t g = 0; g < p.k_groups_; ++g, out += panel_width * k_group) {
        const std::size_t i0 = g * k_group, depth = k - i0 < k_group ? k - i0 : k_group;
        for (std::size_t c = 0; c < panel_width && panel * panel_width + c < n; ++c) {
          const std::int8_t* row = w + (panel * panel_width + c) * ldw + i0;
          if (depth == k_group) std::memcpy(out + c * k_group, row, k_group);
          else std::memcpy(out + c * k_group, row, depth);
        }
      }
    return p;
  }

  /// Packs uint8 weights (ONNX MatMulInteger / QLinearMatMul with a uint8 B) with zero points in
  /// [0, 255]: codes and zero points are both shifted by -128, which leaves every difference
  /// b - b_zp and so every result unchanged, and the int8 kernels run them as they are (at()
  /// returns the shifted code). Codes 0 become -128, so on AVX2 / AVX-512BW without VNNI such
  /// weights take the scalar kernel (see narrow()).
  /// @throws squint::error as from_int8, or on zero points outside [0, 255].
  static packed_weights from_uint8(const std::uint8_t* w, std::size_t n, std::size_t k, std::size_t ldw,
                                   const std::vector<float>& scale, const std::vector<std::int32_t>& zero_point) {
    detail::require_matrix("packed_weights::from_uint8", "w", w, n, k, ldw);
    detail::require(ldw >= k, "packed_weights::from_uint8: ldw ", ldw, " is smaller than k ", k);
    std::vector<std::int32_t> shifted(zero_point.size());
    for (std::size_t j = 0; j < zero_point.size(); ++j) {
      detail::require(zero_point[j] >= 0 && zero_point[j] <= 255, "packed_weights::from_uint8: zero_point ",
                      zero_point[j], " is outside [0, 255]");
      shifted[j] = zero_point[j] - 128;
    }
    std::vector<std::int8_t> codes(n * k);
    for (std::size_t j = 0; j < n; ++j)
      for (std::size_t i = 0; i < k; ++i) codes[j * k + i] = static_cast<std::int8_t>(w[j * ldw + i] - 128);
    return from_int8(codes.data(), n, k, k, scale, shifted);
  }

  /// Quantizes float weights per output channel (symmetric, zero point 0; narrow range
  /// [-127, 127] by default, which keeps AVX2's fast path exact) and packs them.
  /// @throws squint::error on null data, ldw < k, or a spec that is not symmetric int8.
  static packed_weights from_float(const float* w, std::size_t n, std::size_t k, std::size_t ldw,
                                   quant_spec spec = {dtype::int8, qscheme::symmetric, false, true}) {
    detail::require_matrix("packed_weights::from_float", "w", w, n, k, ldw);
    detail::require(ldw >= k, "packed_weights::from_float: ldw ", ldw, " is smaller than k ", k);
    detail::require(spec.type == dtype::int8 && spec.scheme == qscheme::symmetric,
                    "packed_weights::from_float: weights are quantized symmetric int8");
    std::vector<std::int8_t> q(n * k);
    std::vector<float> scale(n);
    detail::quantize_rows_symmetric(w, n, k, ldw, q.data(), scale.data(), spec);
    return from_int8(q.data(), n, k, k, scale, std::vector<std::int32_t>(1, 0));
  }

  std::size_t n() const { return n_; }
  std::size_t k() const { return k_; }
  std::size_t panels() const { return panels_; }
  std::size_t k_groups() const { return k_groups_; }
  /// Bytes held by the packed weights and their per-channel terms.
  std::size_t bytes() const {
    return data_.size() + column_sum_.size() * sizeof(std::int32_t) + scale_.size() * sizeof(float) +
           zero_point_.size() * sizeof(std::int32_t);
  }
  /// True when no weight is -128 (AVX2's vpmaddubsw path is exact only then).
  bool narrow() const { return narrow_; }
  bool symmetric() const {
    for (std::int32_t z : zero_point_)
      if (z != 0) return false;
    return true;
  }
  const std::int8_t* panel(std::size_t p) const { return data_.data() + p * k_groups_ * panel_width * k_group; }
  /// Sum over k of channel j's codes (zero past n).
  const std::int32_t* column_sums() const { return column_sum_.data(); }
  const std::vector<float>& scales() const { return scale_; }
  const std::vector<std::int32_t>& zero_points() const { return zero_point_; }
  /// The code of channel j at depth i.
  std::int8_t at(std::size_t j, std::size_t i) const { return data_[offset(j, i)]; }

 private:
  std::size_t offset(std::size_t j, std::size_t i) const {
    return (j / panel_width) * k_groups_ * panel_width * k_group + (i / k_group) * panel_width * k_group +
           (j % panel_width) * k_group + i % k_group;
  }

  std::vector<std::int8_t> data_;
  std::vector<std::int32_t> column_sum_;
  std::vector<float> scale_;
  std::vector<std::int32_t> zero_point_;
  std::size_t n_ = 0, k_ = 0, k_groups_ = 0, panels_ = 0;
  bool narrow_ = true;
};

SQUINT_NAMESPACE_END

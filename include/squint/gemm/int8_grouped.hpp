// SPDX-License-Identifier: Apache-2.0
// gemm/int8_grouped.hpp: INT8 weight-only GEMM with per-group scales (W8A16 / W8F32) — weights
// stored as int8 codes with a scale (fp32 or fp16) per output channel and group of `group`
// consecutive depths (a quarter of float's bytes plus the scales; llama.cpp's Q8_0 with group
// 32), decoded to float in registers by the per-group kernel of gemm/grouped.hpp; activations
// and arithmetic in float. Where per-channel scales (gemm/weight_only.hpp) lose accuracy to a
// few large weights, a scale per group confines each outlier to its group.
//
// Panel rows: for each depth 16 bytes, byte j holding channel j's code (two's complement).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "squint/gemm/grouped.hpp"

#if defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#endif

namespace squint::kernels {

template <class Arch>
struct int8_group_gemm_kernel {
  static void run(const grouped_gemm_params& p) noexcept;
};

namespace detail_int8_grouped {

/// The int8 panel rows (the layout contract of gemm/grouped.hpp).
template <class Arch>
struct rows {
  static constexpr std::size_t bytes = 16;

  static int code(const std::uint8_t* row, std::size_t j) { return static_cast<std::int8_t>(row[j]); }

#if XSIMD_WITH_AVX2
  static void pair(const std::uint8_t* at, __m128i& first, __m128i& second) {
    first = _mm_loadu_si128(reinterpret_cast<const __m128i*>(at));
    second = _mm_loadu_si128(reinterpret_cast<const __m128i*>(at + bytes));
  }
  static __m128i one(const std::uint8_t* row) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(row)); }
#endif

#if defined(__aarch64__) && defined(__ARM_NEON)
  static void decode(const std::uint8_t* row, float32x4_t (&out)[4]) {
    detail_grouped::widen_codes<Arch>(vld1q_s8(reinterpret_cast<const std::int8_t*>(row)), out);
  }
#endif
};

}  // namespace detail_int8_grouped

template <class Arch>
void int8_group_gemm_kernel<Arch>::run(const grouped_gemm_params& p) noexcept {
  detail_grouped::run<Arch, detail_int8_grouped::rows>(p);
}

}  // namespace squint::kernels

SQUINT_NAMESPACE_BEGIN

/// INT8 weights with a scale per output channel and group of depths, packed for the per-group
/// kernel (see the top of this header): immutable, shareable.
class packed_int8_grouped_weights : public detail::grouped_weights {
 public:
  /// Packs codes w (n x k, row stride ldw >= k) with scales (n x groups, row-major; groups =
  /// ceil(k / group)): the weight of channel j at depth i is scale[j][i / group] * w[j][i]. With
  /// `format` fp16 each scale is kept rounded to fp16 (nearest, ties to even), which must leave
  /// it finite and > 0.
  /// @throws squint::error on null data with elements, ldw < k, a group that is 0 or not a
  ///         multiple of 16, a wrong scale count, or a scale not finite and > 0 (in fp16 too,
  ///         for fp16 scales).
  static packed_int8_grouped_weights from_int8(const std::int8_t* w, std::size_t n, std::size_t k, std::size_t ldw,
                                               std::size_t group, const std::vector<float>& scale,
                                               group_scale_format format = group_scale_format::fp32) {
    static_assert(panel_width == kernels::detail_grouped::width, "int8 per-group panels are 16 channels wide");
    constexpr std::size_t row_bytes = kernels::detail_int8_grouped::rows<arch::scalar>::bytes;
    packed_int8_grouped_weights p;
    p.init("packed_int8_grouped_weights::from_int8", w, n, k, ldw, 8, group, static_cast<std::size_t>(-1), scale,
           format);
    p.data_.assign(p.panels() * k * row_bytes, 0);  // padding channels: code 0
    for (std::size_t j = 0; j < n; ++j) {
      std::uint8_t* out = p.data_.data() + j / panel_width * k * row_bytes + j % panel_width;
      for (std::size_t i = 0; i < k; ++i) out[i * row_bytes] = static_cast<std::uint8_t>(w[j * ldw + i]);
    }
    return p;
  }

  /// Round-to-nearest (RTN) quantization of float weights per channel and group: symmetric,
  /// codes in [-127, 127], scale amax / 127 of each group's finite values (detail::quantize_groups).
  /// @throws squint::error as from_int8.
  static packed_int8_grouped_weights from_float(const float* w, std::size_t n, std::size_t k, std::size_t ldw,
                                                std::size_t group = 32,
                                                group_scale_format format = group_scale_format::fp32) {
    const detail::group_codes q =
        detail::quantize_groups("packed_int8_grouped_weights::from_float", w, n, k, ldw, group, format, 127);
    return from_int8(q.codes.data(), n, k, k, group, q.scales, format);
  }

  const std::uint8_t* data() const { return data_.data(); }
  /// The code of channel j at depth i.
  int at(std::size_t j, std::size_t i) const {
    using rows = kernels::detail_int8_grouped::rows<arch::scalar>;
    return rows::code(data_.data() + (j / panel_width * k() + i) * rows::bytes, j % panel_width);
  }

 private:
  std::vector<std::uint8_t> data_;
};

/// C = A . W^T + bias (then max(0, .) with relu) with W the int8 weights times their group
/// scales: float A (m x k, row stride lda), fp32 accumulation, float C (m x n, row stride ldc);
/// bias has n entries or is null. `kernel` is this translation unit's own unless a dispatched
/// one is passed (squint::runtime does).
/// @throws squint::error on null pointers with elements, lda < k or ldc < n.
inline void gemm_int8_grouped(const float* a, std::size_t m, std::size_t lda, const packed_int8_grouped_weights& b,
                              const float* bias, bool relu, float* c, std::size_t ldc, const parallelism& par = {},
                              grouped_gemm_fn kernel = &kernels::int8_group_gemm_kernel<arch::native>::run) {
  detail::run_grouped("gemm_int8_grouped", a, m, lda, b, kernels::detail_int8_grouped::rows<arch::scalar>::bytes, bias,
                      relu, c, ldc, par, kernel);
}

SQUINT_NAMESPACE_END

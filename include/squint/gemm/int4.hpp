// SPDX-License-Identifier: Apache-2.0
// gemm/int4.hpp: INT4 weight-only GEMM with per-group scales (W4A16 / W4F32) — weights stored as
// 4-bit codes, two per byte, with a scale (fp32 or fp16) per output channel and group of `group`
// consecutive depths (an eighth of float's bytes plus the scales), decoded to float in
// registers by the per-group kernel of gemm/grouped.hpp; activations and arithmetic in float.
//
// Panel rows: for each depth 8 bytes, byte b holding channel 2b in its low nibble and 2b + 1 in
// its high nibble, codes offset by 8 (nibble = code + 8, codes in [-8, 7]).
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
struct int4_gemm_kernel {
  static void run(const grouped_gemm_params& p) noexcept;
};

namespace detail_int4 {

/// The int4 panel rows (the layout contract of gemm/grouped.hpp).
template <class Arch>
struct rows {
  static constexpr std::size_t bytes = 8;

  static int code(const std::uint8_t* row, std::size_t j) { return ((row[j / 2] >> (4 * (j % 2))) & 0xF) - 8; }

#if XSIMD_WITH_AVX2
  /// Two consecutive rows (16 bytes): one load and one nibble split serve 32 weights.
  static void pair(const std::uint8_t* at, __m128i& first, __m128i& second) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(at));
    const __m128i mask = _mm_set1_epi8(0x0F), offset = _mm_set1_epi8(8);
    const __m128i lo = _mm_sub_epi8(_mm_and_si128(v, mask), offset);
    const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(v, 4), mask), offset);
    first = _mm_unpacklo_epi8(lo, hi);
    second = _mm_unpackhi_epi8(lo, hi);
  }
  /// One row (the odd last depth of a group).
  static __m128i one(const std::uint8_t* row) {
    const __m128i v = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(row));
    const __m128i lo = _mm_and_si128(v, _mm_set1_epi8(0x0F));
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(v, 4), _mm_set1_epi8(0x0F));
    return _mm_sub_epi8(_mm_unpacklo_epi8(lo, hi), _mm_set1_epi8(8));
  }
#endif

#if defined(__aarch64__) && defined(__ARM_NEON)
  static void decode(const std::uint8_t* row, float32x4_t (&out)[4]) {
    const uint8x8_t v = vld1_u8(row);
    const uint8x8_t lo = vand_u8(v, vdup_n_u8(0x0F)), hi = vshr_n_u8(v, 4);
    detail_grouped::widen_codes<Arch>(
        vsubq_s8(vreinterpretq_s8_u8(vcombine_u8(vzip1_u8(lo, hi), vzip2_u8(lo, hi))), vdupq_n_s8(8)), out);
  }
#endif
};

}  // namespace detail_int4

template <class Arch>
void int4_gemm_kernel<Arch>::run(const grouped_gemm_params& p) noexcept {
  detail_grouped::run<Arch, detail_int4::rows>(p);
}

}  // namespace squint::kernels

SQUINT_NAMESPACE_BEGIN

namespace detail {

/// Round-to-nearest (RTN) int4 codes in [-7, 7] per channel and group (quantize_groups): the
/// codes every int4 weight form packs.
/// @throws squint::error as quantize_groups.
inline group_codes quantize_int4_groups(const char* function, const float* w, std::size_t n, std::size_t k,
                                        std::size_t ldw, std::size_t group,
                                        group_scale_format format = group_scale_format::fp32) {
  return quantize_groups(function, w, n, k, ldw, group, format, 7);
}

}  // namespace detail

/// INT4 weights with a scale per output channel and group of depths, packed for the int4 kernel
/// (see the top of this header): immutable, shareable.
class packed_int4_weights : public detail::grouped_weights {
 public:
  /// Packs codes w (n x k, row stride ldw >= k, each in [-8, 7]) with scales (n x groups,
  /// row-major; groups = ceil(k / group)): the weight of channel j at depth i is
  /// scale[j][i / group] * w[j][i]. With `format` fp16 each scale is kept rounded to fp16
  /// (nearest, ties to even), which must leave it finite and > 0.
  /// @throws squint::error on null data with elements, ldw < k, a group that is 0 or not a
  ///         multiple of 16, a wrong scale count, a scale not finite and > 0 (in fp16 too, for
  ///         fp16 scales), or a code outside [-8, 7].
  static packed_int4_weights from_int4(const std::int8_t* w, std::size_t n, std::size_t k, std::size_t ldw,
                                       std::size_t group, const std::vector<float>& scale,
                                       group_scale_format format = group_scale_format::fp32) {
    static_assert(panel_width == kernels::detail_grouped::width, "int4 panels are 16 channels wide");
    packed_int4_weights p;
    p.init("packed_int4_weights::from_int4", w, n, k, ldw, 4, group, static_cast<std::size_t>(-1), scale, format);
    constexpr std::size_t row_bytes = kernels::detail_int4::rows<arch::scalar>::bytes;
    p.data_.assign(p.panels() * k * row_bytes, 0x88);  // padding channels: code 0
    // Each byte once: channel j in the low nibble, j + 1 (or padding) in the high one.
    for (std::size_t j = 0; j < n; j += 2) {
      std::uint8_t* out = p.data_.data() + j / panel_width * k * row_bytes + j % panel_width / 2;
      const std::int8_t* lo = w + j * ldw;
      const std::int8_t* hi = j + 1 < n ? lo + ldw : nullptr;
      for (std::size_t i = 0; i < k; ++i)
        out[i * row_bytes] = static_cast<std::uint8_t>((lo[i] + 8) | (hi ? hi[i] + 8 : 8) << 4);
    }
    return p;
  }

  /// Round-to-nearest (RTN) quantization of float weights per channel and group (see
  /// detail::quantize_int4_groups).
  /// @throws squint::error as from_int4.
  static packed_int4_weights from_float(const float* w, std::size_t n, std::size_t k, std::size_t ldw,
                                        std::size_t group = 32, group_scale_format format = group_scale_format::fp32) {
    const detail::group_codes q = detail::quantize_int4_groups("packed_int4_weights::from_float", w, n, k, ldw, group, format);
    return from_int4(q.codes.data(), n, k, k, group, q.scales, format);
  }

  const std::uint8_t* data() const { return data_.data(); }
  /// The code of channel j at depth i.
  int at(std::size_t j, std::size_t i) const {
    using rows = kernels::detail_int4::rows<arch::scalar>;
    return rows::code(data_.data() + (j / panel_width * k() + i) * rows::bytes, j % panel_width);
  }

 private:
  std::vector<std::uint8_t> data_;
};

/// C = A . W^T + bias (then max(0, .) with relu) with W the int4 weights times their group
/// scales: float A (m x k, row stride lda), fp32 accumulation, float C (m x n, row stride ldc);
/// bias has n entries or is null. `kernel` is this translation unit's own unless a dispatched
/// one is passed (squint::runtime does).
/// @throws squint::error on null pointers with elements, lda < k or ldc < n.
inline void gemm_int4(const float* a, std::size_t m, std::size_t lda, const packed_int4_weights& b, const float* bias,
                      bool relu, float* c, std::size_t ldc, const parallelism& par = {},
                      grouped_gemm_fn kernel = &kernels::int4_gemm_kernel<arch::native>::run) {
  detail::run_grouped("gemm_int4", a, m, lda, b, kernels::detail_int4::rows<arch::scalar>::bytes, bias, relu, c, ldc,
                      par, kernel);
}

SQUINT_NAMESPACE_END

// SPDX-License-Identifier: Apache-2.0
// gemm/gemm.hpp: exact INT8 GEMM C = (A - a_zp) . (B - b_zp)^T on packed weights, with int32,
// float and requantized outputs.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "squint/gemm/microkernels.hpp"
#include "squint/gemm/pack.hpp"
#include "squint/gemm/parallel.hpp"
#include "squint/quantize.hpp"

SQUINT_NAMESPACE_BEGIN

/// Largest K for which int32 accumulation is exact for any codes and zero points: each product
/// (a - a_zp)(b - b_zp) is at most 255 * 255 in magnitude, and 33025 * 65025 < 2^31. Larger K is
/// rejected with squint::error (split the product along K and add the int32 results yourself).
inline constexpr std::size_t gemm_max_k = 2147483647u / (255u * 255u);

namespace detail {

/// The GEMM micro-kernel static dispatch uses in this translation unit.
#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
using gemm_native = arch::avx512_vnni;
#elif defined(__AVX512BW__) && defined(__AVX512VL__)
using gemm_native = arch::avx512bw;
#elif defined(__AVXVNNI__) && defined(__AVX2__)
using gemm_native = arch::avx2_vnni;
#elif XSIMD_WITH_AVX2 && defined(__FMA__) && defined(__F16C__)
using gemm_native = arch::avx2;
#elif defined(__aarch64__) && defined(__ARM_FEATURE_MATMUL_INT8)
using gemm_native = arch::neon64_i8mm;
#elif defined(__aarch64__) && defined(__ARM_FEATURE_DOTPROD)
using gemm_native = arch::neon64_dotprod;
#elif defined(__aarch64__) && defined(__ARM_NEON)
using gemm_native = arch::neon64;
#else
using gemm_native = arch::scalar;
#endif

template <class TA>
void check_gemm(const char* function, const TA* a, std::size_t m, std::size_t lda, std::int32_t a_zero_point,
                const packed_weights& b, const void* c, std::size_t ldc) {
  const std::size_t k = b.k();
  require(a != nullptr || m * k == 0, function, ": argument 'a' is null with ", m, " x ", k, " elements");
  require(c != nullptr || m * b.n() == 0, function, ": argument 'c' is null with ", m, " x ", b.n(), " elements");
  require(m <= 1 || lda >= k, function, ": lda ", lda, " is smaller than k ", k);
  require(m <= 1 || ldc >= b.n(), function, ": ldc ", ldc, " is smaller than n ", b.n());
  require(k <= gemm_max_k, function, ": k = ", k, " exceeds ", gemm_max_k,
          ", the largest depth int32 accumulation is exact for; split the product along k");
  const quant_range r = full_range(dtype_of<TA>());
  require(a_zero_point >= r.qmin && a_zero_point <= r.qmax, function, ": a_zero_point ", a_zero_point,
          " is outside [", r.qmin, ", ", r.qmax, "]");
}

/// Zero-point terms for rows [i0, i1) and columns [j0, j1) of C:
/// - b_zp[j] * rowsum_i(a) - a_zp * colsum_j(b) + k * a_zp * b_zp[j], in wrapping 32-bit
/// arithmetic: the true result fits int32 (k is bounded), so overflows of the partial terms
/// cancel modulo 2^32 and the loop vectorizes.
template <class TA>
void compensate(const TA* a, std::size_t lda, std::int32_t a_zero_point, const packed_weights& b, std::int32_t* c,
                std::size_t ldc, std::size_t i0, std::size_t i1, std::size_t j0, std::size_t j1) {
  const bool symmetric = b.symmetric();
  if (a_zero_point == 0 && symmetric) return;
  const std::size_t k = b.k();
  const std::vector<std::int32_t>& b_zp = b.zero_points();
  const std::int32_t* colsum = b.column_sums();
  std::vector<std::uint32_t> column_term(j1 - j0);
  for (std::size_t j = j0; j < j1; ++j)
    column_term[j - j0] = static_cast<std::uint32_t>(-static_cast<std::int64_t>(a_zero_point) * colsum[j] +
                                                     static_cast<std::int64_t>(k) * a_zero_point * b_zp[j]);
  for (std::size_t i = i0; i < i1; ++i) {
    std::uint32_t rowsum = 0;
    if (!symmetric)
      for (std::size_t kk = 0; kk < k; ++kk) rowsum += static_cast<std::uint32_t>(static_cast<std::int32_t>(a[i * lda + kk]));
    auto* row = reinterpret_cast<std::uint32_t*>(c + i * ldc);
    for (std::size_t j = j0; j < j1; ++j)
      row[j] += column_term[j - j0] - static_cast<std::uint32_t>(b_zp[j]) * rowsum;
  }
}

/// Unchecked int32 GEMM on the kernel of `Arch` (weights holding -128 run the scalar kernel
/// where Arch's is exact for narrow weights only), split into `par.threads` tasks over panel
/// pairs or rows.
template <class Arch, class TA>
void gemm_s32(const TA* a, std::size_t m, std::size_t lda, std::int32_t a_zero_point, const packed_weights& b,
              std::int32_t* c, std::size_t ldc, const parallelism& par = {}) {
  const std::size_t n = b.n(), k = b.k();
  if (m == 0 || n == 0) return;
  if (k == 0) {
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = 0; j < n; ++j) c[i * ldc + j] = 0;
    return;
  }
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(a);
  constexpr bool a_signed = std::is_same_v<TA, std::int8_t>;
  const bool fallback = kernels::gemm_kernel_needs_narrow<Arch>() && !b.narrow();
  auto block = [&](std::size_t i0, std::size_t i1, std::size_t j0, std::size_t j1) {
    const std::size_t panel_bytes = b.k_groups() * packed_weights::panel_width * packed_weights::k_group;
    const std::int8_t* panels = b.panel(0) + (j0 / packed_weights::panel_width) * panel_bytes;
    (fallback ? &kernels::gemm_kernel<arch::scalar>::run : &kernels::gemm_kernel<Arch>::run)(
        bytes + i0 * lda, i1 - i0, k, lda, a_signed, panels, b.column_sums() + j0, j1 - j0, b.k_groups(),
        c + i0 * ldc + j0, ldc);
    compensate(a, lda, a_zero_point, b, c, ldc, i0, i1, j0, j1);
  };
  // Never more tasks than panel pairs (the micro-kernel's widest step, 32 channels) or rows to
  // share out.
  const std::size_t pairs = (b.panels() + 1) / 2;
  const std::size_t tasks = task_count(par, std::max(pairs, m), m, n, k);
  if (tasks == 1) {
    block(0, m, 0, n);
  } else if (pairs >= tasks) {  // split the output channels, in whole panel pairs
    split_columns(par, m, n, k, 32, [&](std::size_t j0, std::size_t j1) { block(0, m, j0, j1); });
  } else {  // few channels, many rows: split the rows
    run_tasks(par, tasks, [&](std::size_t t) {
      const std::size_t i0 = m * t / tasks, i1 = m * (t + 1) / tasks;
      if (i0 < i1) block(i0, i1, 0, n);
    });
  }
}

/// The float output stage: c[i][j] = float(acc[i][j]) * multiplier[j] + bias[j] (bias may be
/// null), then max(0, .) with relu, for `rows` rows of n accumulators (row stride ldacc).
inline void accumulators_to_float(const std::int32_t* acc, std::size_t rows, std::size_t n, std::size_t ldacc,
                                  const float* multiplier, const float* bias, bool relu, float* c, std::size_t ldc) {
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      const float v = static_cast<float>(acc[i * ldacc + j]) * multiplier[j] + (bias ? bias[j] : 0.0f);
      c[i * ldc + j] = relu && !(v > 0.0f) ? 0.0f : v;
    }
}

/// Float output stage over an int32 GEMM `s32(a, m, lda, zp, b, acc, ldacc, par)`.
template <class TA, class S32>
void gemm_to_float(S32 s32, const TA* a, std::size_t m, std::size_t lda, qparams a_params, const packed_weights& b,
                   const float* bias, bool relu, float* c, std::size_t ldc, const parallelism& par) {
  check_gemm("gemm", a, m, lda, a_params.zero_point, b, c, ldc);
  validate(a_params, full_range(dtype_of<TA>()), "gemm: a_params");
  const std::size_t n = b.n();
  std::vector<std::int32_t> acc(m * n);
  s32(a, m, lda, a_params.zero_point, b, acc.data(), n, par);
  std::vector<float> multiplier(n);
  for (std::size_t j = 0; j < n; ++j) multiplier[j] = a_params.scale * b.scales()[j];
  const nearest_rounding_scope rounding;
  accumulators_to_float(acc.data(), m, n, n, multiplier.data(), bias, relu, c, ldc);
}

/// Requantized output stage over an int32 GEMM.
template <class TA, class TC, class S32>
void gemm_to_codes(S32 s32, const TA* a, std::size_t m, std::size_t lda, qparams a_params, const packed_weights& b,
                   const std::int32_t* bias, qparams c_params, bool relu, TC* c, std::size_t ldc,
                   const parallelism& par) {
  check_gemm("gemm", a, m, lda, a_params.zero_point, b, c, ldc);
  validate(a_params, full_range(dtype_of<TA>()), "gemm: a_params");
  validate(c_params, full_range(dtype_of<TC>()), "gemm: c_params");
  const std::size_t n = b.n();
  std::vector<float> multiplier(n);
  for (std::size_t j = 0; j < n; ++j) {
    multiplier[j] = a_params.scale * b.scales()[j] / c_params.scale;
    require(std::isfinite(multiplier[j]) && multiplier[j] > 0.0f, "gemm: output multiplier of channel ", j, " is ",
            multiplier[j]);
  }
  std::vector<std::int32_t> acc(m * n);
  s32(a, m, lda, a_params.zero_point, b, acc.data(), n, par);
  if (bias)
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = 0; j < n; ++j) acc[i * n + j] += bias[j];
  const nearest_rounding_scope rounding;
  for (std::size_t i = 0; i < m; ++i) {
    kernels::requantize_kernel<arch::native, TC>::run(acc.data() + i * n, c + i * ldc, 1, n, 1, multiplier.data(),
                                                      c_params.zero_point);
    if (relu)
      for (std::size_t j = 0; j < n; ++j)
        if (c[i * ldc + j] < c_params.zero_point) c[i * ldc + j] = static_cast<TC>(c_params.zero_point);
  }
}

template <class TA>
void gemm_s32_native(const TA* a, std::size_t m, std::size_t lda, std::int32_t a_zero_point, const packed_weights& b,
                     std::int32_t* c, std::size_t ldc, const parallelism& par) {
  gemm_s32<gemm_native>(a, m, lda, a_zero_point, b, c, ldc, par);
}

}  // namespace detail

/// C (m x n, int32, row stride ldc) = (A - a_zero_point) . (B - b_zero_point)^T, exact.
/// A is m x k uint8 or int8 with row stride lda; B holds k and n. Results are identical on
/// every ISA. Static dispatch: the kernel this translation unit's
/// flags allow (squint/dispatch.hpp's runtime::gemm picks per CPU).
/// @throws squint::error on null pointers with elements, lda < k, ldc < n, k > gemm_max_k or a
///         zero point outside A's range. Nothing is written on error.
template <class TA>
void gemm(const TA* a, std::size_t m, std::size_t lda, std::int32_t a_zero_point, const packed_weights& b,
          std::int32_t* c, std::size_t ldc, const parallelism& par = {}) {
  detail::check_gemm("gemm", a, m, lda, a_zero_point, b, c, ldc);
  detail::gemm_s32_native(a, m, lda, a_zero_point, b, c, ldc, par);
}

/// Float output: C[i][j] = float(acc) * (a.scale * b.scale[j]) + bias[j], then max(0, .) with
/// `relu`. `bias` has n entries or is null.
template <class TA>
void gemm(const TA* a, std::size_t m, std::size_t lda, qparams a_params, const packed_weights& b, const float* bias,
          bool relu, float* c, std::size_t ldc, const parallelism& par = {}) {
  detail::gemm_to_float(&detail::gemm_s32_native<TA>, a, m, lda, a_params, b, bias, relu, c, ldc, par);
}

/// Requantized output: C[i][j] = clamp(round_half_even(float(acc + bias[j]) * a.scale * b.scale[j] /
/// c.scale) + c.zero_point) in TC, then at least c.zero_point with `relu`. `bias` (int32, in
/// accumulator units, n entries) may be null.
template <class TA, class TC>
void gemm(const TA* a, std::size_t m, std::size_t lda, qparams a_params, const packed_weights& b,
          const std::int32_t* bias, qparams c_params, bool relu, TC* c, std::size_t ldc,
          const parallelism& par = {}) {
  detail::gemm_to_codes(&detail::gemm_s32_native<TA>, a, m, lda, a_params, b, bias, c_params, relu, c, ldc, par);
}

SQUINT_NAMESPACE_END

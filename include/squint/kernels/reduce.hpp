// SPDX-License-Identifier: Apache-2.0
// kernels/reduce.hpp: the observers' hot loops — finite min/max, per tensor and per column.
//
// Non-finite values are replaced by +inf (for the min) and -inf (for the max) before the
// compare, so x86's and NEON's different NaN rules for min/max never come into play, and they
// are counted. Min and max are exact, so every arch returns the scalar loop's values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cmath>

#include "squint/arch/ops.hpp"

namespace squint::kernels {

template <class Arch>
struct reduce_kernel {
  /// Folds the finite values of x[0..n) into *min / *max and adds the others to *nonfinite.
  static void min_max(const float* x, std::size_t n, float* min, float* max, std::size_t* nonfinite) noexcept;
  /// Channels-last: folds rows x channels values into min[c] / max[c] column by column.
  static void min_max_columns(const float* x, std::size_t rows, std::size_t channels, float* min, float* max,
                              std::size_t* nonfinite) noexcept;
};

namespace detail_reduce {

/// Careful path: skips and counts non-finite values lane by lane.
template <class Arch>
inline void min_max_checked(const float* x, std::size_t n, float& lo, float& hi, std::size_t& bad) {
  for (std::size_t i = 0; i < n; ++i) {
    const float v = x[i];
    if (!(v - v == 0.0f)) {
      ++bad;
      continue;
    }
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
  }
}

}  // namespace detail_reduce

template <class Arch>
void reduce_kernel<Arch>::min_max(const float* x, std::size_t n, float* min, float* max,
                                  std::size_t* nonfinite) noexcept {
  float lo = *min, hi = *max;
  std::size_t bad = 0, i = 0;
  if constexpr (!std::is_same<Arch, arch::scalar>::value) {
    // Fast path per chunk: plain min/max in four independent chains, plus a running sum of
    // v - v, which is 0 for finite v and NaN otherwise. Only a chunk whose sum ends up NaN
    // (it held a NaN or an infinity) is redone with the careful path, so the fast min/max
    // never has to care how an ISA's min treats NaN.
    using O = ops<Arch>;
    using vf = typename O::vf;
    constexpr std::size_t L = O::lanes, chunk = 256 * L;
    alignas(64) float lanes[L];
    while (i + 4 * L <= n) {
      const std::size_t end = i + chunk <= n ? i + chunk : n - (n - i) % (4 * L);
      vf vlo[4], vhi[4], poison[4];
      for (std::size_t j = 0; j < 4; ++j) {
        vlo[j] = vhi[j] = vf::load_unaligned(x + i + j * L);
        poison[j] = vf(0.0f);
      }
      for (std::size_t k = i + 4 * L; k < end; k += 4 * L)
        for (std::size_t j = 0; j < 4; ++j) {
          const vf v = vf::load_unaligned(x + k + j * L);
          vlo[j] = xsimd::min(vlo[j], v);
          vhi[j] = xsimd::max(vhi[j], v);
          poison[j] = poison[j] + (v - v);
        }
      for (std::size_t j = 0; j < 4; ++j) poison[j] = poison[j] + (vlo[j] - vlo[j]) + (vhi[j] - vhi[j]);
      const vf all_poison = (poison[0] + poison[1]) + (poison[2] + poison[3]);
      if (!xsimd::all(all_poison == vf(0.0f))) {
        detail_reduce::min_max_checked<Arch>(x + i, end - i, lo, hi, bad);
      } else {
        xsimd::min(xsimd::min(vlo[0], vlo[1]), xsimd::min(vlo[2], vlo[3])).store_unaligned(lanes);
        for (std::size_t k = 0; k < L; ++k) lo = lanes[k] < lo ? lanes[k] : lo;
        xsimd::max(xsimd::max(vhi[0], vhi[1]), xsimd::max(vhi[2], vhi[3])).store_unaligned(lanes);
        for (std::size_t k = 0; k < L; ++k) hi = lanes[k] > hi ? lanes[k] : hi;
      }
      i = end;
    }
  }
  detail_reduce::min_max_checked<Arch>(x + i, n - i, lo, hi, bad);
  *min = lo;
  *max = hi;
  *nonfinite += bad;
}

template <class Arch>
void reduce_kernel<Arch>::min_max_columns(const float* x, std::size_t rows, std::size_t channels, float* min,
                                          float* max, std::size_t* nonfinite) noexcept {
  std::size_t bad = 0, c0 = 0;
  if constexpr (!std::is_same<Arch, arch::scalar>::value) {
    using O = ops<Arch>;
    using vf = typename O::vf;
    constexpr std::size_t L = O::lanes;
    const vf inf(HUGE_VALF);  // a builtin constant: numeric_limits::infinity() is a weak function at -O0
    for (; c0 + L <= channels; c0 += L) {
      vf vlo = vf::load_unaligned(min + c0), vhi = vf::load_unaligned(max + c0);
      for (std::size_t r = 0; r < rows; ++r) {
        const float* row = x + r * channels + c0;
        const vf v = vf::load_unaligned(row);
        const auto finite = (v - v) == vf(0.0f);
        if (!xsimd::all(finite))
          for (std::size_t k = 0; k < L; ++k) bad += !(row[k] - row[k] == 0.0f);
        vlo = xsimd::min(vlo, xsimd::select(finite, v, inf));
        vhi = xsimd::max(vhi, xsimd::select(finite, v, -inf));
      }
      vlo.store_unaligned(min + c0);
      vhi.store_unaligned(max + c0);
    }
  }
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = c0; c < channels; ++c) {
      const float v = x[r * channels + c];
      if (!(v - v == 0.0f)) {
        ++bad;
        continue;
      }
      min[c] = v < min[c] ? v : min[c];
      max[c] = v > max[c] ? v : max[c];
    }
  *nonfinite += bad;
}

}  // namespace squint::kernels

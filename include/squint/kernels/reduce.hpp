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
  /// Histogram binning of the finite values of x (of |x| with `magnitude`): bin
  /// clamp(floor((v - lo) / width), 0, bins - 1), computed in double; values >= hi are also
  /// counted in *top_edge. width > 0. Non-finite values are skipped.
  static void histogram(const float* x, std::size_t n, bool magnitude, double lo, double width, double hi,
                        std::size_t bins, std::uint64_t* counts, std::uint64_t* top_edge) noexcept;
};

template <class Arch>
void reduce_kernel<Arch>::histogram(const float* x, std::size_t n, bool magnitude, double lo, double width,
                                    double hi, std::size_t bins, std::uint64_t* counts,
                                    std::uint64_t* top_edge) noexcept {
  const double last = static_cast<double>(bins - 1);
  std::uint64_t top = 0;
  std::size_t i = 0;
  if constexpr (!std::is_same<Arch, arch::scalar>::value) {
    // Indices in vectors (the same IEEE double operations as the scalar loop; clamping before
    // the truncating conversion equals floor-then-clamp), increments in scalar code.
    using O = ops<Arch>;
    using vd = typename O::vd;
    constexpr std::size_t D = O::lanes / 2;
    const vd vlo(lo), vwidth(width), vhi(hi), vlast(last), zero(0.0), one(1.0);
    vd tops(0.0);  // per-lane count of values on or above the top edge
    alignas(64) std::int32_t index[2 * D];
    for (; i + 2 * D <= n; i += 2 * D) {
      bool finite = true;
      for (std::size_t j = 0; j < 2; ++j) {
        vd v = O::load_widen_double(x + i + j * D);
        const auto lane_finite = (v - v) == zero;
        finite = finite && xsimd::all(lane_finite);
        if (magnitude) v = xsimd::abs(v);
        tops = tops + xsimd::select((v >= vhi) && lane_finite, one, zero);
        O::store_truncated(index + j * D, xsimd::min(xsimd::max((v - vlo) / vwidth, zero), vlast));
      }
      if (finite) {
        for (std::size_t k = 0; k < 2 * D; ++k) ++counts[index[k]];
      } else {
        for (std::size_t k = 0; k < 2 * D; ++k) {
          const float v = x[i + k];
          if (v - v == 0.0f) ++counts[index[k]];
        }
      }
    }
    alignas(64) double lanes[D];
    tops.store_unaligned(lanes);
    for (std::size_t k = 0; k < D; ++k) top += static_cast<std::uint64_t>(lanes[k]);
  }
  for (; i < n; ++i) {
    const float f = x[i];
    if (!(f - f == 0.0f)) continue;
    const double v = magnitude ? static_cast<double>(f < 0.0f ? -f : f) : static_cast<double>(f);
    double position = (v - lo) / width;
    position = position < 0.0 ? 0.0 : (position > last ? last : position);
    ++counts[static_cast<std::size_t>(position)];
    top += v >= hi ? 1 : 0;
  }
  *top_edge += top;
}

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

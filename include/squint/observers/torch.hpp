// SPDX-License-Identifier: Apache-2.0
// observers/torch.hpp: torch's CPU float32 operators where calibration results depend on them,
// ported to the bit: histc's binning and the bin edges of linspace and arange, which PyTorch's
// HistogramObserver and pytorch-quantization's HistogramCalibrator (TensorRT) build on.
//
// linspace and arange are vectorized in torch, and a vector's lanes are computed from its first
// element, so the rounding of each edge depends on the vector width of the kernel torch
// dispatches to. These follow torch's default x86 dispatch (AVX2, 8 float lanes; torch 1.13 to
// 2.x choose it on AVX-512 machines too unless ATEN_CPU_CAPABILITY says otherwise), with at
// least two intra-op threads (a linspace above 32768 points is split between two of them).
#pragma once

#include <cmath>
#include <cstddef>
#include <vector>

#include "squint/observers/granularity.hpp"

SQUINT_NAMESPACE_BEGIN
namespace detail {

/// Lanes of torch's float vectors under its default x86 dispatch (AVX2).
inline constexpr std::size_t torch_lanes = 8;

/// torch.linspace(start, end, steps) in float32: step = (end - start) / (steps - 1); each vector
/// of 8 starts at start + step * i (i below steps / 2) or end - step * (steps - 1 - i) (the other
/// half), a fused multiply-add in torch's AVX2 build, and its lanes add j * step rounded on its
/// own; the points after the last pair of vectors of a thread's share take the fused formula.
inline std::vector<float> torch_linspace(float start, float end, std::size_t steps) {
  std::vector<float> out(steps);
  if (steps == 0) return out;
  if (steps == 1) {
    out[0] = start;
    return out;
  }
  const float step = rounded(rounded(end - start) / static_cast<float>(steps - 1));
  const std::size_t halfway = steps / 2;
  const auto fused = [&](std::size_t i) {
    return i < halfway ? std::fma(step, static_cast<float>(i), start)
                       : std::fma(-step, static_cast<float>(steps - 1 - i), end);
  };
  // at::parallel_for hands each of two threads half the points once there are more than its
  // grain (32768); each share runs pairs of vectors from its own first point.
  const std::size_t shares = steps > 32768 ? 2 : 1, share = (steps + shares - 1) / shares;
  for (std::size_t begin = 0; begin < steps; begin += share) {
    const std::size_t n = std::min(share, steps - begin);
    const std::size_t vectorized = n / (2 * torch_lanes) * (2 * torch_lanes);
    for (std::size_t i = 0; i < vectorized; i += torch_lanes) {
      const float base = fused(begin + i);
      for (std::size_t j = 0; j < torch_lanes; ++j)
        out[begin + i + j] = rounded(base + rounded(static_cast<float>(j) * step));
    }
    for (std::size_t i = vectorized; i < n; ++i) out[begin + i] = fused(begin + i);
  }
  return out;
}

/// torch.arange(0, end, step) in float32 with end and step float32 values: ceil(end / step)
/// points computed in double; a vector of 8 starts at step * i rounded to float32 and its
/// lanes add j * step in double, rounded to float32; the points after the last pair of vectors
/// are step * i rounded once.
inline std::vector<float> torch_arange(float end, float step) {
  const auto size = static_cast<std::size_t>(std::ceil(static_cast<double>(end) / static_cast<double>(step)));
  std::vector<float> out(size);
  const auto s = static_cast<double>(step);
  const std::size_t vectorized = size / (2 * torch_lanes) * (2 * torch_lanes);
  for (std::size_t i = 0; i < vectorized; i += torch_lanes) {
    const auto base = static_cast<double>(static_cast<float>(s * static_cast<double>(i)));
    for (std::size_t j = 0; j < torch_lanes; ++j)
      out[i + j] = static_cast<float>(base + rounded(static_cast<double>(j) * s));
  }
  for (std::size_t i = vectorized; i < size; ++i) out[i] = static_cast<float>(s * static_cast<double>(i));
  return out;
}

/// The bin torch.histc(x, bins, lo, hi) puts v in, floor((v - lo) / (hi - lo) * bins) in
/// float32 with v == hi in the last bin; `bins` (no bin) for v outside [lo, hi]. lo < hi.
inline std::size_t torch_histc_bin(float v, float lo, float hi, std::size_t bins) {
  if (!(v >= lo && v <= hi)) return bins;
  const float position = rounded(rounded(rounded(v - lo) / rounded(hi - lo)) * static_cast<float>(bins));
  // A range wider than FLT_MAX makes the quotient NaN (torch's int64 cast is then undefined): bin 0.
  if (!(position >= 0.0f)) return 0;
  return position < static_cast<float>(bins) ? static_cast<std::size_t>(position) : bins - 1;
}

/// torch.histc's range for data [lo, hi] asked for [min, max]: the data's own when min == max,
/// widened by 1 each side when that is a single value too.
inline void torch_histc_range(float& min, float& max, float data_lo, float data_hi) {
  if (min != max) return;
  min = data_lo;
  max = data_hi;
  if (min == max) {
    min = rounded(min - 1.0f);
    max = rounded(max + 1.0f);
  }
}

}  // namespace detail
SQUINT_NAMESPACE_END

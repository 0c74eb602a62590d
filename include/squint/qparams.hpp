// SPDX-License-Identifier: Apache-2.0
// qparams.hpp: quantized types, schemes, quantization parameters and choose_qparams.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <type_traits>
#include <vector>

#include "squint/error.hpp"
#include "squint/reference/convert.hpp"

SQUINT_NAMESPACE_BEGIN

/// Storage type of quantized values.
enum class dtype : std::uint8_t { int8, uint8 };

/// The C++ element type that stores `dtype` D.
template <dtype D>
using storage_t = std::conditional_t<D == dtype::int8, std::int8_t, std::uint8_t>;

/// The dtype stored in C++ type T (int8_t or uint8_t).
template <class T>
constexpr dtype dtype_of() {
  static_assert(std::is_same_v<T, std::int8_t> || std::is_same_v<T, std::uint8_t>,
                "squint quantizes to std::int8_t or std::uint8_t");
  return std::is_same_v<T, std::int8_t> ? dtype::int8 : dtype::uint8;
}

constexpr const char* name(dtype type) { return type == dtype::int8 ? "int8" : "uint8"; }

/// Inclusive range of quantized codes [qmin, qmax].
struct quant_range {
  std::int32_t qmin;
  std::int32_t qmax;
  friend constexpr bool operator==(quant_range a, quant_range b) {
    return a.qmin == b.qmin && a.qmax == b.qmax;
  }
};

/// All codes of a dtype: int8 [-128, 127], uint8 [0, 255].
constexpr quant_range full_range(dtype type) {
  return type == dtype::int8 ? quant_range{-128, 127} : quant_range{0, 255};
}

/// Affine maps [min, max] onto the whole range; symmetric maps [-a, a] with a = max(|min|, |max|)
/// and a fixed zero point (0 for int8, the range's midpoint for uint8).
enum class qscheme : std::uint8_t { affine, symmetric };

/// Whose conventions turn a range into quantization parameters: the stack a model will be
/// deployed on, so that what is measured with squint is what ships.
///   pytorch      torch.ao.quantization's _calculate_qparams (float32, eps floor, zero point
///                clamped; symmetric divisor (qmax - qmin) / 2)
///   tensorrt     NVIDIA pytorch-quantization / TensorRT: symmetric, zero point 0,
///                scale = amax / qmax in float32 (int8 [-127, 127], unsigned [0, 255]), amax 0 -> 1
///   onnxruntime  ONNX Runtime's compute_scale_zp: its integer ranges (symmetric int8 [-127, 127],
///                uint8 [0, 254] with zero point 127; reduce_range int8 [-64, 64], uint8 [0, 127]),
///                the scale in float64 rounded once, no eps (a scale below FLT_MIN gives 1, 0)
enum class calibration_profile : std::uint8_t { pytorch, tensorrt, onnxruntime };

constexpr const char* name(calibration_profile p) {
  return p == calibration_profile::pytorch ? "pytorch" : p == calibration_profile::tensorrt ? "tensorrt" : "onnxruntime";
}

/// How quantization parameters are chosen: the target type, the scheme and range options.
/// The defaults are PyTorch's MinMaxObserver defaults (quint8, per-tensor affine).
struct quant_spec {
  dtype type = dtype::uint8;
  qscheme scheme = qscheme::affine;
  /// Drop one bit of range (int8 [-64, 63], uint8 [0, 127]) so that two products plus an
  /// accumulator cannot saturate AVX2's vpmaddubsw; PyTorch's reduce_range.
  bool reduce_range = false;
  /// Drop the lowest code so the range is symmetric around 0 (int8 [-127, 127], uint8 [1, 255]).
  bool narrow_range = false;
  /// PyTorch's custom quant_min / quant_max; reduce_range still halves it (rounding down).
  std::optional<quant_range> custom_range = std::nullopt;
  /// Smallest scale ever returned (PyTorch's eps, float32 machine epsilon; the pytorch profile).
  float eps = std::numeric_limits<float>::epsilon();
  /// The conventions of the deployment stack (see calibration_profile).
  calibration_profile profile = calibration_profile::pytorch;
  /// Make the observed range symmetric, [-m, m] with m = max(|min|, |max|), before anything else
  /// (ONNX Runtime's calibrators with symmetric=True, which may feed uint8 affine qparams).
  bool symmetric_range = false;
  /// Widen max to at least min + min_real_range (ONNX Runtime's min_real_range), after the range
  /// was widened to include 0.
  std::optional<float> min_real_range = std::nullopt;
};

/// How x / scale is computed before rounding. `divide` is ONNX QuantizeLinear's float32
/// division; `reciprocal` is PyTorch's and FBGEMM's x * (1.0f / scale). The two differ in the last
/// ulp, which flips the rounding of values within an ulp of a tie.
enum class quantize_mode : std::uint8_t { divide, reciprocal };

/// Quantization parameters of one tensor or channel: real = scale * (q - zero_point).
struct qparams {
  float scale = 1.0f;
  std::int32_t zero_point = 0;
  friend constexpr bool operator==(const qparams& a, const qparams& b) {
    return a.scale == b.scale && a.zero_point == b.zero_point;
  }
};

/// Per-channel quantization parameters along axis `axis` of a tensor (one entry per channel).
struct per_channel_qparams {
  std::vector<float> scale;
  std::vector<std::int32_t> zero_point;
  int axis = 0;
  std::size_t channels() const { return scale.size(); }
  qparams operator[](std::size_t c) const { return {scale[c], zero_point[c]}; }
};

/// How per-group (block) scales are stored: fp32, or fp16 (half the scale bytes, as llama.cpp's
/// blocks, ONNX Runtime's MatMulNBits and fp16 ONNX models keep them). An fp16 scale is used as
/// the float it converts to exactly, so every computation with it stays in float32.
enum class group_scale_format { fp32, fp16 };

namespace detail {

/// A group scale as `format` stores it: fp32 as it is, fp16 rounded to nearest even.
inline float stored_scale(float s, group_scale_format format) {
  return format == group_scale_format::fp16 ? reference::half_to_float(reference::float_to_half(s)) : s;
}

/// A scale the library chose, as `format` stores it: for fp16 first kept within fp16's positive
/// finite range [2^-24, 65504], so that it never rounds to 0 or infinity.
inline float stored_chosen_scale(float s, group_scale_format format) {
  return format == group_scale_format::fp16 ? stored_scale(std::fmin(std::fmax(s, 0x1p-24f), 65504.0f), format) : s;
}

}  // namespace detail

/// The effective code range of `spec`.
/// @throws squint::error if the custom range is empty or outside the dtype's codes.
inline quant_range range_of(const quant_spec& spec) {
  const quant_range full = full_range(spec.type);
  quant_range r = spec.custom_range.value_or(full);
  if (!spec.custom_range && spec.profile == calibration_profile::onnxruntime) {
    // get_qmin_qmax_for_qType: reduce_range first, then symmetric ranges, else the full type.
    if (spec.reduce_range) return spec.type == dtype::int8 ? quant_range{-64, 64} : quant_range{0, 127};
    if (spec.scheme == qscheme::symmetric)  // already narrow: narrow_range changes nothing here
      return spec.type == dtype::int8 ? quant_range{-127, 127} : quant_range{0, 254};
  }
  if (spec.custom_range) {
    detail::require(r.qmin < r.qmax && r.qmin >= full.qmin && r.qmax <= full.qmax,
                    "quant_spec: custom_range [", r.qmin, ", ", r.qmax,
                    "] must satisfy qmin < qmax within the ", name(spec.type), " range [",
                    full.qmin, ", ", full.qmax, "]");
  }
  if (spec.reduce_range) {
    // Floor division, as PyTorch's `quant_min // 2`.
    auto floor_half = [](std::int32_t v) { return v >= 0 ? v / 2 : -((-v + 1) / 2); };
    r = {floor_half(r.qmin), floor_half(r.qmax)};
  }
  // tensor_quant's int8 range is always narrow (its CUDA path ignores narrow_range=False).
  const bool tensorrt_int8 = spec.profile == calibration_profile::tensorrt && spec.type == dtype::int8;
  if (spec.narrow_range || tensorrt_int8) r.qmin += 1;
  detail::require(r.qmin < r.qmax, "quant_spec: reduce_range/narrow_range leave an empty range [",
                  r.qmin, ", ", r.qmax, "]");
  return r;
}

namespace detail {

/// Round half to even, independent of the floating-point environment's rounding mode.
inline double round_half_even(double v) {
  const double f = std::floor(v);
  const double diff = v - f;
  if (diff > 0.5) return f + 1.0;
  if (diff < 0.5) return f;
  return std::fmod(f, 2.0) == 0.0 ? f : f + 1.0;
}

/// clamp(round_half_even(v) + zero_point, lo, T's largest code): a float already in code units
/// (NaN gives the zero point) as a code of T. In float, without fmod: round_half_even's result
/// for every float, since v - floor(v) is exact and floats from 2^23 up are integers (the sum
/// with the zero point only errs where the clamp decides anyway, for 8-bit T).
template <class T>
T round_to_code(float v, std::int32_t zero_point, std::int32_t lo) {
  static_assert(sizeof(T) == 1, "round_to_code: 8-bit codes only");
  const float hi = static_cast<float>(std::numeric_limits<T>::max());
  if (v != v) return static_cast<T>(std::clamp<float>(static_cast<float>(zero_point), static_cast<float>(lo), hi));
  const float f = std::floor(v), fraction = v - f, half = f * 0.5f;
  const bool up = fraction > 0.5f || (fraction == 0.5f && std::floor(half) != half);
  const float q = (up ? f + 1.0f : f) + static_cast<float>(zero_point);
  return static_cast<T>(std::clamp<float>(q, static_cast<float>(lo), hi));
}

}  // namespace detail

/// Zero point of the symmetric scheme: 0 for int8; for uint8, 128 on the full range (PyTorch)
/// and the rounded-down midpoint of any other range. The tensorrt profile uses 0, the
/// onnxruntime profile the midpoint rounded half to even (127 on [0, 254]).
inline std::int32_t symmetric_zero_point(const quant_spec& spec, quant_range r) {
  if (spec.profile == calibration_profile::tensorrt) return 0;
  if (spec.profile == calibration_profile::onnxruntime)  // rne((qmin + qmax) / 2): 0, 127, 64
    return static_cast<std::int32_t>(detail::round_half_even((static_cast<double>(r.qmin) + r.qmax) / 2.0));
  if (spec.type == dtype::int8) return 0;
  if (r == full_range(dtype::uint8)) return 128;
  return (r.qmin + r.qmax) / 2;
}

namespace detail {

inline void validate_spec(const quant_spec& spec) {
  detail::require(spec.eps > 0.0f && std::isfinite(spec.eps), "quant_spec: eps must be finite and > 0, got ",
                  spec.eps);
  detail::require(!spec.min_real_range || (std::isfinite(*spec.min_real_range) && *spec.min_real_range >= 0.0f),
                  "quant_spec: min_real_range must be finite and >= 0, got ", spec.min_real_range.value_or(0.0f));
  detail::require(spec.profile != calibration_profile::tensorrt || spec.scheme == qscheme::symmetric,
                  "quant_spec: the tensorrt profile quantizes symmetrically (zero point 0); set "
                  "scheme = qscheme::symmetric");
  const quant_range r = range_of(spec);
  const bool zero_point_0 = spec.profile == calibration_profile::tensorrt || spec.type == dtype::int8;
  detail::require(spec.scheme != qscheme::symmetric || !zero_point_0 || (r.qmin <= 0 && r.qmax >= 0),
                  "quant_spec: symmetric ", name(spec.type), " has zero point 0, outside its code range [", r.qmin,
                  ", ", r.qmax, "]");
}

/// A float64 scale rounded once to float32, or squint::error naming the range when it exceeds
/// FLT_MAX (such a range cannot be quantized).
inline float checked_scale(double scale, float min, float max, quant_range r) {
  detail::require(scale <= static_cast<double>(std::numeric_limits<float>::max()), "choose_qparams: the range [",
                  min, ", ", max, "] needs scale ", scale, " on the ", r.qmax - r.qmin + 1,
                  " codes, which overflows float32; narrow the input range or widen the code range");
  return static_cast<float>(scale);
}

/// The scale of a finite range whose float32 formula overflowed in an intermediate (a width
/// above FLT_MAX, as [-3e38, 3e38] has): the same quotient in float64, rounded once to float32.
inline float wide_range_scale(double width, double codes, float min, float max, quant_range r) {
  return checked_scale(width / codes, min, max, r);
}

/// ONNX Runtime's compute_scale_zp on a range that already holds 0: float32 range, float64 scale
/// rounded once, no eps; a scale below FLT_MIN (an all-zero range) gives scale 1, zero point 0.
inline qparams onnxruntime_qparams(float min_neg, float max_pos, const quant_spec& spec, quant_range r) {
  if (spec.scheme == qscheme::symmetric) {
    const float m = std::max(-min_neg, max_pos);
    min_neg = -m;
    max_pos = m;
  }
  const auto codes = static_cast<double>(r.qmax - r.qmin);
  const float width = max_pos - min_neg;
  const double scale = std::isinf(width) ? (static_cast<double>(max_pos) - min_neg) / codes : width / codes;
  // ORT's zero point 0 here; clamped into a custom range that excludes it (ORT has none such).
  if (scale < static_cast<double>(std::numeric_limits<float>::min())) return {1.0f, std::clamp(0, r.qmin, r.qmax)};
  qparams p;
  p.scale = checked_scale(scale, min_neg, max_pos, r);
  p.zero_point = spec.scheme == qscheme::symmetric
                     ? symmetric_zero_point(spec, r)
                     : static_cast<std::int32_t>(round_half_even(static_cast<double>(r.qmin) - min_neg / scale));
  return p;
}

/// pytorch-quantization's export of a calibrated amax: scale = amax / qmax in float32 (amax 0
/// gives 1, as does an amax whose quotient underflows to 0), zero point 0.
inline qparams tensorrt_qparams(float min_neg, float max_pos, const quant_spec&, quant_range r) {
  const float amax = std::max(-min_neg, max_pos);
  const float scale = amax / static_cast<float>(r.qmax);
  if (scale == 0.0f) return {1.0f, 0};  // amax 0, or so small the quotient underflows: as amax 0
  require(std::isfinite(scale), "choose_qparams: amax ", amax, " over ", r.qmax, " codes overflows float32");
  return {scale, 0};
}

}  // namespace detail

/// Checks that `p` can quantize to `type` within `range`.
/// @throws squint::error naming `what` if the scale is not finite and > 0 or the zero point is
///         outside the range.
inline void validate(const qparams& p, quant_range range, const char* what = "qparams") {
  detail::require(std::isfinite(p.scale) && p.scale > 0.0f, what, ": scale must be finite and > 0, got ",
                  p.scale);
  detail::require(p.zero_point >= range.qmin && p.zero_point <= range.qmax, what,
                  ": zero_point ", p.zero_point, " is outside [", range.qmin, ", ", range.qmax,
                  "]");
}

/// Chooses scale and zero point so that [min, max] (widened to include 0) maps onto the spec's
/// code range. Bit-for-bit PyTorch's `_calculate_qparams` (float32 arithmetic, eps floor, zero
/// point rounded half to even and clamped) and, for uint8 affine, ONNX DynamicQuantizeLinear.
///   affine:    scale = (max(max,0) - min(min,0)) / (qmax - qmin);  zp = qmin - round(min(min,0) / scale)
///   symmetric: scale = max(-min(min,0), max(max,0)) / ((qmax - qmin) / 2);  zp = symmetric_zero_point
/// The real value 0 is always exactly representable; a degenerate range (all zeros, a constant)
/// still gives a finite scale >= eps. A range wider than FLT_MAX (where float32 arithmetic would
/// give an infinite scale) takes the float64 quotient rounded to float32.
/// @throws squint::error if min or max is not finite, min > max, the spec is invalid (a symmetric
///         int8 range must hold its zero point 0), or the scale itself exceeds FLT_MAX.
inline qparams choose_qparams(float min, float max, const quant_spec& spec = {}) {
  detail::validate_spec(spec);
  detail::require(std::isfinite(min) && std::isfinite(max),
                  "choose_qparams: min and max must be finite, got min=", min, " max=", max);
  detail::require(min <= max, "choose_qparams: min must be <= max, got min=", min, " max=", max);
  const quant_range r = range_of(spec);
  if (spec.symmetric_range) {  // ONNX Runtime's calibrators symmetrize before compute_scale_zp
    max = std::max(std::fabs(min), std::fabs(max));
    min = -max;
  }
  const float min_neg = std::min(min, 0.0f);
  float max_pos = std::max(max, 0.0f);
  if (spec.min_real_range) max_pos = std::max(max_pos, min_neg + *spec.min_real_range);
  if (spec.profile == calibration_profile::onnxruntime) return detail::onnxruntime_qparams(min_neg, max_pos, spec, r);
  if (spec.profile == calibration_profile::tensorrt) return detail::tensorrt_qparams(min_neg, max_pos, spec, r);
  qparams p;
  if (spec.scheme == qscheme::symmetric) {
    const float amax = std::max(-min_neg, max_pos);
    const double half_codes = static_cast<double>(r.qmax - r.qmin) / 2.0;
    p.scale = std::max(amax / static_cast<float>(half_codes), spec.eps);
    if (std::isinf(p.scale)) p.scale = std::max(detail::wide_range_scale(amax, half_codes, min, max, r), spec.eps);
    p.zero_point = symmetric_zero_point(spec, r);
  } else {
    const auto codes = static_cast<float>(r.qmax - r.qmin);
    p.scale = std::max((max_pos - min_neg) / codes, spec.eps);
    if (std::isinf(p.scale))
      p.scale = std::max(detail::wide_range_scale(static_cast<double>(max_pos) - min_neg, codes, min, max, r),
                         spec.eps);
    const float shifted = min_neg / p.scale;  // float32 division, as torch computes it
    const double zp = static_cast<double>(r.qmin) - detail::round_half_even(shifted);
    p.zero_point = static_cast<std::int32_t>(
        std::clamp(zp, static_cast<double>(r.qmin), static_cast<double>(r.qmax)));
  }
  return p;
}

/// choose_qparams for each channel c on [min[c], max[c]].
/// @throws squint::error if the lengths differ or any channel's range is invalid.
inline per_channel_qparams choose_qparams(const std::vector<float>& min, const std::vector<float>& max,
                                          int axis, const quant_spec& spec = {}) {
  detail::require(min.size() == max.size(), "choose_qparams: min has ", min.size(),
                  " channels but max has ", max.size());
  per_channel_qparams out;
  out.axis = axis;
  out.scale.reserve(min.size());
  out.zero_point.reserve(min.size());
  for (std::size_t c = 0; c < min.size(); ++c) {
    const qparams p = choose_qparams(min[c], max[c], spec);
    out.scale.push_back(p.scale);
    out.zero_point.push_back(p.zero_point);
  }
  return out;
}

SQUINT_NAMESPACE_END

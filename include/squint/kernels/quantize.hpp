// SPDX-License-Identifier: Apache-2.0
// kernels/quantize.hpp: SIMD quantize, dequantize, fake-quantize and requantize.
//
// Written once on xsimd batches plus the per-ISA `ops`; integer results equal the scalar
// reference's bit for bit (tests/kernels_quantize_test.cpp checks every compiled arch). The
// pipeline for a float v = x / scale (or x * (1 / scale), or float(acc) * multiplier):
//   NaN -> 0; clamp to [qmin - zp, qmax - zp]; round half to even; + zp; truncate to int32;
//   narrow. Clamping to integer bounds before rounding equals rounding then saturating, and
//   leaves every value in range, so the narrowing needs no saturation. Tails run the same
//   vector body on a zero-padded stack block (no scalar remainder loop to diverge, and no
//   non-arch-templated helper in the object). Kernels are noexcept and unchecked: the
//   public entry points validate first. They must run under round-to-nearest (the entry points
//   guarantee it): x / scale itself is rounded by the FP environment.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "squint/arch/ops.hpp"
#include "squint/reference/quantize.hpp"
#include "squint/reference/requantize.hpp"

namespace squint::kernels {

/// Code bounds of T: kernels always saturate to the full type range.
template <class T>
struct code_range {
  static constexpr std::int32_t min = std::is_same<T, std::int8_t>::value ? -128 : 0;
  static constexpr std::int32_t max = std::is_same<T, std::int8_t>::value ? 127 : 255;
};

/// Float -> int8/uint8. `Arch` is a kernel family (arch::family_t of a tag).
template <class Arch, class T>
struct quantize_kernel {
  /// q[i] = quantize(x[i]) with one scale and zero point; `reciprocal` selects x * (1 / scale).
  static void per_tensor(const float* x, T* q, std::size_t n, float scale, std::int32_t zero_point,
                         bool reciprocal) noexcept;
  /// Element (o, c, i) of an outer x channels x inner tensor uses scale[c], zero_point[c].
  static void per_channel(const float* x, T* q, std::size_t outer, std::size_t channels, std::size_t inner,
                          const float* scale, const std::int32_t* zero_point, bool reciprocal) noexcept;
  /// y[i] = (clamp(round(x[i] / scale) + zp, qmin, qmax) - zp) * scale with codes in [qmin, qmax].
  static void fake(const float* x, float* y, std::size_t n, float scale, std::int32_t zero_point, std::int32_t qmin,
                   std::int32_t qmax, bool reciprocal) noexcept;
};

/// int8/uint8 -> float.
template <class Arch, class T>
struct dequantize_kernel {
  static void per_tensor(const T* q, float* x, std::size_t n, float scale, std::int32_t zero_point) noexcept;
  static void per_channel(const T* q, float* x, std::size_t outer, std::size_t channels, std::size_t inner,
                          const float* scale, const std::int32_t* zero_point) noexcept;
};

/// int32 accumulators -> int8/uint8 with float multipliers (per channel along the split).
template <class Arch, class T>
struct requantize_kernel {
  static void run(const std::int32_t* acc, T* q, std::size_t outer, std::size_t channels, std::size_t inner,
                  const float* multiplier, std::int32_t zero_point) noexcept;
  /// The GEMM / convolution output stage's form: n accumulators with a multiplier each, codes
  /// clamped to [lo, hi] (a sub-range of T's; lo = zero point is a fused ReLU).
  static void row(const std::int32_t* acc, T* q, std::size_t n, const float* multiplier, std::int32_t zero_point,
                  std::int32_t lo, std::int32_t hi) noexcept;
};

/// The float output stage of the GEMM and the convolution: y[i] = float(acc[i]) * multiplier[i]
/// + bias[i] (bias may be null), two roundings (SQUINT_NO_FP_CONTRACT, and kernel translation
/// units build with -ffp-contract=off: no ISA fuses them), then with relu 0 for anything not above 0 (NaN
/// included) and at most cap (6 for ReLU6, +inf for ReLU).
template <class Arch>
struct float_stage_kernel {
  static void row(const std::int32_t* acc, float* y, std::size_t n, const float* multiplier, const float* bias,
                  bool relu, float cap) noexcept;
};

namespace detail_quantize {

/// One element of the float output stage (the scalar family's and every ISA's tail).
template <class Arch>
SQUINT_NO_FP_CONTRACT inline float stage_value(std::int32_t acc, float multiplier, const float* bias, bool relu,
                                               float cap) {
  const float scaled = static_cast<float>(acc) * multiplier;
  const float v = bias ? scaled + *bias : scaled;
  return relu ? (!(v > 0.0f) ? 0.0f : (cap < v ? cap : v)) : v;
}

/// Outputs at least this many codes are written with non-temporal stores (where the ISA has
/// them): 4 MB of codes from 16 MB of floats cannot stay in cache anyway, and skipping the
/// read-for-ownership of every output line lifts quantize to the read bandwidth (22 -> 28.7 GB/s
/// on Zen 4 with AVX-512 at 16M floats). Smaller outputs stay cached for whatever reads them next.
constexpr std::size_t stream_threshold = std::size_t{1} << 22;

/// One block of 4 * lanes values through the pipeline. `Load` yields the scaled float batch j.
template <class Arch, class T, class Load, bool Stream = false>
inline void block(T* q, Load load, typename ops<Arch>::vf lo, typename ops<Arch>::vf hi,
                  typename ops<Arch>::vf zp, std::integral_constant<bool, Stream> = {}) {
  using O = ops<Arch>;
  using vf = typename O::vf;
  // Unrolled by hand: GCC -O2 keeps a loop over j and spills the four results to the stack.
  auto one = [&](int j) {
    vf v = load(j);
    v = xsimd::select(v == v, v, vf(0.0f));
    v = xsimd::min(xsimd::max(v, lo), hi);
    return O::to_int(O::round_even(v) + zp);
  };
  const auto r0 = one(0), r1 = one(1), r2 = one(2), r3 = one(3);
  if constexpr (Stream) O::template stream_narrow<T>(q, r0, r1, r2, r3);
  else O::template store_narrow<T>(q, r0, r1, r2, r3);
}

/// Runs `body(in, out)` over n elements in blocks of `step`, the tail through padded buffers.
template <class Arch, class In, class Out, std::size_t Step, class Body>
inline void blocks(const In* in, Out* out, std::size_t n, Body body) {
  std::size_t i = 0;
  for (; i + Step <= n; i += Step) body(in + i, out + i);
  if (i == n) return;
  In in_tail[Step] = {};
  Out out_tail[Step];
  for (std::size_t k = 0; i + k < n; ++k) in_tail[k] = in[i + k];
  body(in_tail, out_tail);
  for (std::size_t k = 0; i + k < n; ++k) out[i + k] = out_tail[k];
}

/// Channels-last sibling of blocks(): body(in, out, s, z) over `channels` elements with
/// per-element parameters s (float) and z (int32, or null), the tail through padded buffers
/// (padding: scale 1, zero point 0, so no lane divides by zero).
template <std::size_t Step, class In, class Out, class Body>
inline void channel_blocks(const In* in, Out* out, std::size_t channels, const float* s, const std::int32_t* z,
                           Body body) {
  std::size_t c = 0;
  for (; c + Step <= channels; c += Step) body(in + c, out + c, s + c, z ? z + c : nullptr);
  if (c == channels) return;
  In in_tail[Step] = {};
  Out out_tail[Step];
  float s_tail[Step];
  std::int32_t z_tail[Step] = {};
  for (std::size_t k = 0; k < Step; ++k) s_tail[k] = 1.0f;
  for (std::size_t k = 0; c + k < channels; ++k) {
    in_tail[k] = in[c + k];
    s_tail[k] = s[c + k];
    if (z) z_tail[k] = z[c + k];
  }
  body(in_tail, out_tail, s_tail, z ? z_tail : nullptr);
  for (std::size_t k = 0; c + k < channels; ++k) out[c + k] = out_tail[k];
}

template <class Arch, class T, bool Reciprocal>
inline void quantize_row(const float* x, T* q, std::size_t n, float scale, std::int32_t zero_point) {
  using O = ops<Arch>;
  using vf = typename O::vf;
  constexpr std::size_t L = O::lanes;
  const vf factor(Reciprocal ? 1.0f / scale : scale);
  const vf lo(static_cast<float>(code_range<T>::min - zero_point));
  const vf hi(static_cast<float>(code_range<T>::max - zero_point));
  const vf zp(static_cast<float>(zero_point));
  auto load_from = [&](const float* in) {
    return [in, &factor](int j) {
      const vf v = vf::load_unaligned(in + j * L);
      return Reciprocal ? v * factor : O::div(v, factor);
    };
  };
  std::size_t done = 0;
  if constexpr (O::has_stream) {
    if (n >= stream_threshold) {
      // Ordinary stores up to the first aligned output block, then streaming stores.
      constexpr std::size_t B = 4 * L;
      const std::size_t head = (B - reinterpret_cast<std::uintptr_t>(q) % B) % B;
      blocks<Arch, float, T, B>(x, q, head, [&](const float* in, T* out) { block<Arch, T>(out, load_from(in), lo, hi, zp); });
      done = head + (n - head) / B * B;
      for (std::size_t i = head; i < done; i += B)
        block<Arch, T>(q + i, load_from(x + i), lo, hi, zp, std::true_type{});
      O::stream_fence();
    }
  }
  blocks<Arch, float, T, 4 * L>(x + done, q + done, n - done,
                                [&](const float* in, T* out) { block<Arch, T>(out, load_from(in), lo, hi, zp); });
}

/// Channels-last layout (inner == 1): scales and zero points are loaded as vectors.
template <class Arch, class T, bool Reciprocal>
inline void quantize_channels_last(const float* x, T* q, std::size_t channels, const float* scale,
                                   const std::int32_t* zero_point) {
  using O = ops<Arch>;
  using vf = typename O::vf;
  using vi = typename O::vi;
  constexpr std::size_t L = O::lanes, B = 4 * L;
  channel_blocks<B>(x, q, channels, scale, zero_point, [](const float* in, T* out, const float* s, const std::int32_t* z) {
    typename O::vi r[4];
    for (std::size_t j = 0; j < 4; ++j) {
      const vf factor = vf::load_unaligned(s + j * L);
      const vf zp = O::to_float(vi::load_unaligned(z + j * L));
      const vf v0 = vf::load_unaligned(in + j * L);
      vf v = Reciprocal ? v0 * O::div(vf(1.0f), factor) : O::div(v0, factor);
      v = xsimd::select(v == v, v, vf(0.0f));
      v = xsimd::min(xsimd::max(v, vf(static_cast<float>(code_range<T>::min)) - zp),
                     vf(static_cast<float>(code_range<T>::max)) - zp);
      r[j] = O::to_int(O::round_even(v) + zp);
    }
    O::template store_narrow<T>(out, r[0], r[1], r[2], r[3]);
  });
}

}  // namespace detail_quantize

template <class Arch, class T>
void quantize_kernel<Arch, T>::per_tensor(const float* x, T* q, std::size_t n, float scale, std::int32_t zero_point,
                                          bool reciprocal) noexcept {
  if (reciprocal) detail_quantize::quantize_row<Arch, T, true>(x, q, n, scale, zero_point);
  else detail_quantize::quantize_row<Arch, T, false>(x, q, n, scale, zero_point);
}

template <class Arch, class T>
void quantize_kernel<Arch, T>::per_channel(const float* x, T* q, std::size_t outer, std::size_t channels,
                                           std::size_t inner, const float* scale, const std::int32_t* zero_point,
                                           bool reciprocal) noexcept {
  if (inner == 1) {
    for (std::size_t o = 0; o < outer; ++o) {
      const std::size_t offset = o * channels;
      if (reciprocal)
        detail_quantize::quantize_channels_last<Arch, T, true>(x + offset, q + offset, channels, scale, zero_point);
      else
        detail_quantize::quantize_channels_last<Arch, T, false>(x + offset, q + offset, channels, scale, zero_point);
    }
    return;
  }
  for (std::size_t o = 0; o < outer; ++o)
    for (std::size_t c = 0; c < channels; ++c) {
      const std::size_t offset = (o * channels + c) * inner;
      per_tensor(x + offset, q + offset, inner, scale[c], zero_point[c], reciprocal);
    }
}

template <class Arch, class T>
void quantize_kernel<Arch, T>::fake(const float* x, float* y, std::size_t n, float scale, std::int32_t zero_point,
                                    std::int32_t qmin, std::int32_t qmax, bool reciprocal) noexcept {
  using O = ops<Arch>;
  using vf = typename O::vf;
  constexpr std::size_t L = O::lanes;
  const vf factor(reciprocal ? 1.0f / scale : scale);
  const vf s(scale);
  // The bounds in int64: a custom range may span all of int32, and qmin - zp would overflow.
  const vf lo(static_cast<float>(static_cast<std::int64_t>(qmin) - zero_point));
  const vf hi(static_cast<float>(static_cast<std::int64_t>(qmax) - zero_point));
  detail_quantize::blocks<Arch, float, float, L>(x, y, n, [&](const float* in, float* out) {
    const vf v0 = vf::load_unaligned(in);
    vf v = reciprocal ? v0 * factor : O::div(v0, factor);
    v = xsimd::select(v == v, v, vf(0.0f));
    v = xsimd::min(xsimd::max(v, lo), hi);
    // + 0 turns a rounded -0 into +0, as float(q - zp) does; no int32 round trip, which the
    // bounds of a wide custom range (up to 2^32 codes) would overflow. Float rounding is
    // monotonic, so clamping to the rounded bounds equals rounding the clamped integer.
    ((O::round_even(v) + vf(0.0f)) * s).store_unaligned(out);
  });
}

template <class Arch, class T>
void dequantize_kernel<Arch, T>::per_tensor(const T* q, float* x, std::size_t n, float scale,
                                            std::int32_t zero_point) noexcept {
  using O = ops<Arch>;
  using vf = typename O::vf;
  using vi = typename O::vi;
  constexpr std::size_t L = O::lanes;
  const vi zp(zero_point);
  const vf s(scale);
  detail_quantize::blocks<Arch, T, float, 4 * L>(q, x, n, [&](const T* in, float* out) {
    vi w[4];
    O::template load_widen<T>(in, w);
    for (std::size_t j = 0; j < 4; ++j) (O::to_float(w[j] - zp) * s).store_unaligned(out + j * L);
  });
}

template <class Arch, class T>
void dequantize_kernel<Arch, T>::per_channel(const T* q, float* x, std::size_t outer, std::size_t channels,
                                             std::size_t inner, const float* scale,
                                             const std::int32_t* zero_point) noexcept {
  if (inner == 1) {
    using O = ops<Arch>;
    using vf = typename O::vf;
    using vi = typename O::vi;
    constexpr std::size_t L = O::lanes, B = 4 * L;
    for (std::size_t o = 0; o < outer; ++o)
      detail_quantize::channel_blocks<B>(
          q + o * channels, x + o * channels, channels, scale, zero_point,
          [](const T* in, float* out, const float* s, const std::int32_t* z) {
            vi w[4];
            O::template load_widen<T>(in, w);
            for (std::size_t j = 0; j < 4; ++j)
              (O::to_float(w[j] - vi::load_unaligned(z + j * L)) * vf::load_unaligned(s + j * L))
                  .store_unaligned(out + j * L);
          });
    return;
  }
  for (std::size_t o = 0; o < outer; ++o)
    for (std::size_t c = 0; c < channels; ++c) {
      const std::size_t offset = (o * channels + c) * inner;
      per_tensor(q + offset, x + offset, inner, scale[c], zero_point[c]);
    }
}

template <class Arch, class T>
void requantize_kernel<Arch, T>::run(const std::int32_t* acc, T* q, std::size_t outer, std::size_t channels,
                                     std::size_t inner, const float* multiplier, std::int32_t zero_point) noexcept {
  using O = ops<Arch>;
  using vf = typename O::vf;
  using vi = typename O::vi;
  constexpr std::size_t L = O::lanes;
  const vf lo(static_cast<float>(code_range<T>::min - zero_point));
  const vf hi(static_cast<float>(code_range<T>::max - zero_point));
  const vf zp(static_cast<float>(zero_point));
  if (inner == 1 && channels > 1) {  // a GEMM output with per-column multipliers
    for (std::size_t o = 0; o < outer; ++o)
      row(acc + o * channels, q + o * channels, channels, multiplier, zero_point, code_range<T>::min,
          code_range<T>::max);
    return;
  }
  for (std::size_t o = 0; o < outer; ++o)
    for (std::size_t c = 0; c < channels; ++c) {
      const std::size_t offset = (o * channels + c) * inner;
      const vf m(multiplier[c]);
      detail_quantize::blocks<Arch, std::int32_t, T, 4 * L>(
          acc + offset, q + offset, inner, [&](const std::int32_t* in, T* out) {
            detail_quantize::block<Arch, T>(
                out, [&](int j) { return O::to_float(vi::load_unaligned(in + j * L)) * m; }, lo, hi, zp);
          });
    }
}

template <class Arch, class T>
void requantize_kernel<Arch, T>::row(const std::int32_t* acc, T* q, std::size_t n, const float* multiplier,
                                     std::int32_t zero_point, std::int32_t lo_code, std::int32_t hi_code) noexcept {
  using O = ops<Arch>;
  using vf = typename O::vf;
  using vi = typename O::vi;
  constexpr std::size_t L = O::lanes;
  // Clamping before rounding to the integers lo - zp and hi - zp is clamping the codes after it.
  const vf lo(static_cast<float>(lo_code - zero_point)), hi(static_cast<float>(hi_code - zero_point));
  const vf zp(static_cast<float>(zero_point));
  detail_quantize::channel_blocks<4 * L>(
      acc, q, n, multiplier, nullptr, [&](const std::int32_t* in, T* out, const float* m, const std::int32_t*) {
        detail_quantize::block<Arch, T>(
            out, [&](int j) { return O::to_float(vi::load_unaligned(in + j * L)) * vf::load_unaligned(m + j * L); },
            lo, hi, zp);
      });
}

template <class Arch>
SQUINT_NO_FP_CONTRACT void float_stage_kernel<Arch>::row(const std::int32_t* acc, float* y, std::size_t n,
                                                         const float* multiplier, const float* bias, bool relu,
                                                         float cap) noexcept {
  std::size_t i = 0;
  if constexpr (!std::is_same<Arch, arch::scalar>::value) {
    using O = ops<Arch>;
    using vf = typename O::vf;
    using vi = typename O::vi;
    constexpr std::size_t L = O::lanes;
    const vf zero(0.0f), top(cap);
    for (; i + L <= n; i += L) {
      vf v = O::to_float(vi::load_unaligned(acc + i)) * vf::load_unaligned(multiplier + i);
      if (bias) v = v + vf::load_unaligned(bias + i);
      if (relu) v = xsimd::select(top < v, top, xsimd::select(v > zero, v, zero));
      v.store_unaligned(y + i);
    }
  }
  for (; i < n; ++i) y[i] = detail_quantize::stage_value<Arch>(acc[i], multiplier[i], bias ? bias + i : nullptr, relu, cap);
}

/// The scalar family: the reference loops themselves, so it is equal to them by construction.
template <class T>
struct quantize_kernel<arch::scalar, T> {
  static void per_tensor(const float* x, T* q, std::size_t n, float scale, std::int32_t zero_point,
                         bool reciprocal) noexcept {
    reference::quantize(x, q, n, {scale, zero_point}, reciprocal ? quantize_mode::reciprocal : quantize_mode::divide);
  }
  static void per_channel(const float* x, T* q, std::size_t outer, std::size_t channels, std::size_t inner,
                          const float* scale, const std::int32_t* zero_point, bool reciprocal) noexcept {
    reference::quantize_per_channel(x, q, {outer, channels, inner}, scale, zero_point,
                                    reciprocal ? quantize_mode::reciprocal : quantize_mode::divide);
  }
  static void fake(const float* x, float* y, std::size_t n, float scale, std::int32_t zero_point, std::int32_t qmin,
                   std::int32_t qmax, bool reciprocal) noexcept {
    reference::fake_quantize(x, y, n, {scale, zero_point}, {qmin, qmax},
                             reciprocal ? quantize_mode::reciprocal : quantize_mode::divide);
  }
};

template <class T>
struct dequantize_kernel<arch::scalar, T> {
  static void per_tensor(const T* q, float* x, std::size_t n, float scale, std::int32_t zero_point) noexcept {
    reference::dequantize(q, x, n, {scale, zero_point});
  }
  static void per_channel(const T* q, float* x, std::size_t outer, std::size_t channels, std::size_t inner,
                          const float* scale, const std::int32_t* zero_point) noexcept {
    reference::dequantize_per_channel(q, x, {outer, channels, inner}, scale, zero_point);
  }
};

template <class T>
struct requantize_kernel<arch::scalar, T> {
  static void run(const std::int32_t* acc, T* q, std::size_t outer, std::size_t channels, std::size_t inner,
                  const float* multiplier, std::int32_t zero_point) noexcept {
    reference::requantize(acc, q, {outer, channels, inner}, multiplier, zero_point);
  }
  static void row(const std::int32_t* acc, T* q, std::size_t n, const float* multiplier, std::int32_t zero_point,
                  std::int32_t lo, std::int32_t hi) noexcept {
    const quant_range range{lo, hi};
    for (std::size_t i = 0; i < n; ++i)
      q[i] = static_cast<T>(reference::requantize_value(acc[i], multiplier[i], zero_point, range));
  }
};

}  // namespace squint::kernels

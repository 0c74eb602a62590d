// SPDX-License-Identifier: Apache-2.0
// fuzz_gemm.cpp: packing (int8 and uint8 weights) and the GEMM with int32, float and requantized
// outputs, on every compiled micro-kernel and through the checked and runtime entry points,
// against the int64 reference GEMM and the output stages' formulas; the FP16-weight and
// weight-only INT8 GEMMs against float64 within the fp32 accumulation bound.
#include <algorithm>
#include <limits>
#include <optional>

#include "fuzz_support.hpp"
#include "squint/dispatch.hpp"
#include "squint/gemm/gemm.hpp"
#include "squint/reference/gemm.hpp"
#include "squint/reference/requantize.hpp"

using namespace squint;

namespace {

template <class TA>
void gemm_case(squint_fuzz::input& in) {
  const std::size_t m = in.below(9), n = in.below(70), k = in.below(140);
  const bool uint8_weights = in.flag(), per_channel = in.flag();
  std::vector<TA> a = in.codes<TA>(m * k);
  std::vector<std::int32_t> zb(per_channel ? n : 1);
  std::vector<float> scale(zb.size());
  for (std::size_t j = 0; j < zb.size(); ++j) {
    zb[j] = uint8_weights ? in.zero_point(0, 255) : in.zero_point(-128, 127);
    scale[j] = in.scale();
  }
  const std::int32_t za = in.zero_point(full_range(dtype_of<TA>()).qmin, full_range(dtype_of<TA>()).qmax);

  // Weights as the reference sees them: int8 codes and zero points (uint8 ones shifted by -128,
  // which leaves every difference b - zb unchanged).
  std::vector<std::int8_t> w(n * k);
  packed_weights b;
  bool packed = false;
  if (uint8_weights) {
    const std::vector<std::uint8_t> u = in.codes<std::uint8_t>(n * k);
    for (std::size_t i = 0; i < u.size(); ++i) w[i] = static_cast<std::int8_t>(u[i] - 128);
    packed = !squint_fuzz::rejected([&] { b = packed_weights::from_uint8(u.data(), n, k, k, scale, zb); });
    if (packed)
      for (std::int32_t& z : zb) z -= 128;
  } else {
    w = in.codes<std::int8_t>(n * k);
    if (in.flag())
      for (std::int8_t& v : w) v = std::max<std::int8_t>(v, -127);  // narrow: AVX2's fast path
    packed = !squint_fuzz::rejected([&] { b = packed_weights::from_int8(w.data(), n, k, k, scale, zb); });
  }
  if (!packed) return;
  std::vector<std::int64_t> acc(m * n);
  reference::gemm(matrix_view<const TA>::row_major(a.data(), m, k), za,
                  matrix_view<const std::int8_t>::row_major(w.data(), n, k), zb.data(), zb.size(),
                  matrix_view<std::int64_t>::row_major(acc.data(), m, n));
  std::vector<std::int32_t> expect(acc.begin(), acc.end());  // k <= 139: exact in int32

  const parallelism par{1u + static_cast<unsigned>(in.below(2))};
  std::vector<std::int32_t> c(m * n, 0x5a5a5a5a);
  const std::vector<std::int32_t> c_sentinel = c;
  if (squint_fuzz::rejected([&] { runtime::gemm(a.data(), m, k, za, b, c.data(), n, par); })) {
    SQUINT_FUZZ_CHECK(c == c_sentinel);
    return;
  }
  SQUINT_FUZZ_CHECK(c == expect);
  squint_fuzz::for_each_gemm_arch([&](auto arch) {
    std::vector<std::int32_t> got(m * n, 0x5a5a5a5a);
    detail::gemm_s32<decltype(arch)>(a.data(), m, k, za, b, got.data(), n, par);
    SQUINT_FUZZ_CHECK(got == expect);
  });

  // Float output: float(acc) * (a.scale * b.scale[j]) + bias[j], then ReLU.
  const qparams ap{in.scale(), za};
  const bool relu = in.flag();
  std::vector<float> bias(n);
  for (float& v : bias) v = static_cast<float>(in.take<std::int8_t>()) / 8.0f;
  std::vector<float> out(m * n, -9.0f);
  const std::vector<float> out_sentinel = out;
  if (squint_fuzz::rejected([&] { gemm(a.data(), m, k, ap, b, bias.data(), relu, out.data(), n, par); })) {
    SQUINT_FUZZ_CHECK(squint_fuzz::same_bits(out, out_sentinel));
  } else {
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = 0; j < n; ++j) {
        const volatile float product = static_cast<float>(expect[i * n + j]) * (ap.scale * b.scales()[j]);
        const float v = product + bias[j];  // two roundings, as the stage (no FMA)
        const float e = relu && !(v > 0.0f) && !std::isnan(v) ? 0.0f : v;
        SQUINT_FUZZ_CHECK(squint_fuzz::same_bits({out[i * n + j]}, {e}));
      }
  }

  // Requantized uint8 output with an int32 bias (sometimes near the int32 limits): acc + bias
  // saturates to int32, then float(.) * a.scale * b.scale[j] / c.scale, rounded, + c.zero_point.
  std::vector<std::int32_t> ibias(n);
  for (std::int32_t& v : ibias) v = in.flag() ? in.take<std::int32_t>() : in.take<std::int16_t>();
  const qparams cp{in.scale(), in.zero_point(0, 255)};
  std::vector<std::uint8_t> q(m * n, 0x77);
  const std::vector<std::uint8_t> q_sentinel = q;
  if (squint_fuzz::rejected([&] { gemm(a.data(), m, k, ap, b, ibias.data(), cp, relu, q.data(), n, par); })) {
    SQUINT_FUZZ_CHECK(q == q_sentinel);
    return;
  }
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      const std::int64_t sum = acc[i * n + j] + ibias[j];
      const auto s32 = static_cast<std::int32_t>(std::clamp<std::int64_t>(
          sum, std::numeric_limits<std::int32_t>::min(), std::numeric_limits<std::int32_t>::max()));
      std::int32_t e = reference::requantize_value(s32, ap.scale * b.scales()[j] / cp.scale, cp.zero_point, {0, 255});
      if (relu) e = std::max(e, cp.zero_point);
      SQUINT_FUZZ_CHECK(q[i * n + j] == e);
    }
}

/// FP16-weight and weight-only INT8 GEMMs: every arch within the fp32 accumulation bound of the
/// float64 product on the stored weights, or squint::error with C untouched.
void float_gemm_case(squint_fuzz::input& in) {
  const std::size_t m = in.below(9), n = in.below(40), k = in.below(100);
  const bool weight_only = in.flag(), relu = in.flag();
  std::vector<float> a(m * k), w(n * k), bias(n);
  for (float& v : a) v = static_cast<float>(in.take<std::int16_t>()) / 256.0f;
  for (float& v : w) v = static_cast<float>(in.take<std::int16_t>()) / 4096.0f;
  for (float& v : bias) v = static_cast<float>(in.take<std::int8_t>()) / 16.0f;
  const std::size_t ldc = n + in.below(3);
  std::vector<float> c(m * ldc, 77.0f);
  const std::vector<float> sentinel = c;
  // The weights as the product sees them, and the stored form's kernel per arch.
  std::vector<double> stored(n * k), scale(n, 1.0);
  std::optional<packed_half_weights> half;
  std::optional<packed_weight_only> quantized;
  if (weight_only) {
    quantized = packed_weight_only::from_float(w.data(), n, k, k);
    for (std::size_t j = 0; j < n; ++j) {
      scale[j] = quantized->scales()[j];
      for (std::size_t i = 0; i < k; ++i) stored[j * k + i] = quantized->at(j, i);
    }
  } else {
    half = packed_half_weights::from_float(w.data(), n, k, k);
    for (std::size_t j = 0; j < n; ++j)
      for (std::size_t i = 0; i < k; ++i) stored[j * k + i] = half->at(j, i);
  }
  const std::size_t lda = k + in.below(2);
  std::vector<float> a_ld(m * lda, 0.0f);
  for (std::size_t i = 0; i < m; ++i) std::copy(a.begin() + static_cast<std::ptrdiff_t>(i * k), a.begin() + static_cast<std::ptrdiff_t>((i + 1) * k), a_ld.begin() + static_cast<std::ptrdiff_t>(i * lda));
  if (squint_fuzz::rejected([&] {
        if (weight_only) runtime::gemm_weight_only(a_ld.data(), m, lda, *quantized, bias.data(), relu, c.data(), ldc);
        else runtime::gemm_half(a_ld.data(), m, lda, *half, bias.data(), relu, c.data(), ldc);
      })) {
    SQUINT_FUZZ_CHECK(squint_fuzz::same_bits(c, sentinel));
    return;
  }
  auto check = [&](const std::vector<float>& got) {
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = 0; j < ldc; ++j) {
        if (j >= n) {
          SQUINT_FUZZ_CHECK(got[i * ldc + j] == 77.0f);  // nothing past n
          continue;
        }
        double sum = 0.0, magnitude = 0.0;
        for (std::size_t kk = 0; kk < k; ++kk) {
          sum += static_cast<double>(a[i * k + kk]) * stored[j * k + kk];
          magnitude += std::fabs(static_cast<double>(a[i * k + kk]) * stored[j * k + kk]);
        }
        double exact = sum * scale[j] + bias[j];
        if (relu) exact = exact > 0.0 ? exact : 0.0;
        const double bound = (static_cast<double>(k + 3) * magnitude * scale[j] + std::fabs(bias[j])) * std::ldexp(1.0, -24) + 1e-30;
        SQUINT_FUZZ_CHECK(std::fabs(got[i * ldc + j] - exact) <= bound);
      }
  };
  check(c);
  squint_fuzz::for_each_arch([&](auto arch) {
    std::vector<float> got(m * ldc, 77.0f);
    if (m == 0 || n == 0) return;
    if (weight_only)
      kernels::weight_only_gemm_kernel<decltype(arch)>::run(a_ld.data(), m, k, lda, quantized->data(), n,
                                                            quantized->scales(), bias.data(), relu, got.data(), ldc);
    else
      kernels::half_gemm_kernel<decltype(arch)>::run(a_ld.data(), m, k, lda, half->data(), n, bias.data(), relu,
                                                     got.data(), ldc);
    check(got);
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  squint_fuzz::input in(data, size);
  switch (in.take<std::uint8_t>() % 3) {
    case 0: gemm_case<std::uint8_t>(in); break;
    case 1: gemm_case<std::int8_t>(in); break;
    default: float_gemm_case(in); break;
  }
  return 0;
}

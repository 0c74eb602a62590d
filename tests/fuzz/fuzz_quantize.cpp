// SPDX-License-Identifier: Apache-2.0
// fuzz_quantize.cpp: quantize, dequantize, fake-quantize and requantize (per tensor and per
// channel, float and fixed-point multipliers), dynamic quantization, finite_min_max and the
// fp16 / bfloat16 and FP8 conversions, QAT's fake-quant backward, through the checked entry points and
// every compiled arch's kernels, against the scalar reference.
#include <algorithm>
#include <cmath>

#include "fuzz_support.hpp"
#include "squint/fp8.hpp"
#include "squint/qat/fake_quant.hpp"
#include "squint/quantize.hpp"
#include "squint/reference/fake_quant.hpp"
#include "squint/reference/fp8.hpp"
#include "squint/reference/quantize.hpp"
#include "squint/reference/convert.hpp"
#include "squint/reference/requantize.hpp"

namespace {

using namespace squint;
using squint_fuzz::rejected;

template <class T>
void quantize_case(squint_fuzz::input& in) {
  const bool per_channel = in.flag();
  const quantize_mode mode = in.flag() ? quantize_mode::reciprocal : quantize_mode::divide;
  const std::size_t outer = in.below(3), channels = in.below(40), inner = in.below(40);
  const shape s{outer, channels, inner};
  const std::vector<float> x = in.floats(s.numel());
  const quant_range range = full_range(dtype_of<T>());
  per_channel_qparams p;
  p.axis = static_cast<int>(in.below(4)) - 1;  // -1..3, 3 is out of range
  for (std::size_t c = 0; c < (per_channel ? channels : 1); ++c) {
    p.scale.push_back(in.scale());
    p.zero_point.push_back(in.zero_point(range.qmin, range.qmax));
  }
  if (per_channel && in.flag() && !p.scale.empty()) p.scale.pop_back();  // a wrong count now and then
  std::vector<T> q(x.size(), T(0x5a)), expect(x.size());
  const T* before = q.data();
  const std::vector<T> sentinel = q;
  const bool bad = rejected([&] {
    if (per_channel) quantize(tensor_view<const float>(x.data(), s), tensor_view<T>(q.data(), s), p, mode);
    else quantize(tensor_view<const float>(x.data(), s), tensor_view<T>(q.data(), s), p[0], mode);
  });
  SQUINT_FUZZ_CHECK(q.data() == before);
  if (bad) {
    SQUINT_FUZZ_CHECK(q == sentinel);
    return;
  }
  const axis_split split = per_channel ? split_at(s, p.axis) : axis_split{1, 1, x.size()};
  reference::quantize_per_channel(x.data(), expect.data(), split, p.scale.data(), p.zero_point.data(), mode);
  SQUINT_FUZZ_CHECK(q == expect);
  squint_fuzz::for_each_arch([&](auto arch) {
    std::vector<T> got(x.size());
    kernels::quantize_kernel<decltype(arch), T>::per_channel(x.data(), got.data(), split.outer, split.channels,
                                                             split.inner, p.scale.data(), p.zero_point.data(),
                                                             mode == quantize_mode::reciprocal);
    SQUINT_FUZZ_CHECK(got == expect);
  });

  // Dequantize the codes back with the same parameters.
  std::vector<float> y(x.size(), 7.0f), y_expect(x.size());
  const std::vector<float> y_sentinel = y;
  if (rejected([&] {
        if (per_channel) dequantize(tensor_view<const T>(q.data(), s), tensor_view<float>(y.data(), s), p);
        else dequantize(tensor_view<const T>(q.data(), s), tensor_view<float>(y.data(), s), p[0]);
      })) {
    SQUINT_FUZZ_CHECK(squint_fuzz::same_bits(y, y_sentinel));
    return;
  }
  reference::dequantize_per_channel(q.data(), y_expect.data(), split, p.scale.data(), p.zero_point.data());
  SQUINT_FUZZ_CHECK(squint_fuzz::same_bits(y, y_expect));
  squint_fuzz::for_each_arch([&](auto arch) {
    std::vector<float> got(x.size());
    kernels::dequantize_kernel<decltype(arch), T>::per_channel(q.data(), got.data(), split.outer, split.channels,
                                                               split.inner, p.scale.data(), p.zero_point.data());
    SQUINT_FUZZ_CHECK(squint_fuzz::same_bits(got, y_expect));
  });
}

/// The straight-through gradient bit for bit, and the scale / zero-point sums within the
/// reordering error of their terms (where no float lane can overflow), on every arch.
void fake_quantize_backward_case(squint_fuzz::input& in, const std::vector<float>& x, qparams p, quant_range range,
                                 quantize_mode mode) {
  const std::size_t n = x.size();
  const std::vector<float> dy = in.floats(n);
  std::vector<float> dx(n, 5.0f);
  const std::vector<float> sentinel = dx;
  reference::fake_quant_sums sums;
  if (rejected([&] { sums = qat::fake_quantize_backward({x.data(), n}, {dy.data(), n}, {dx.data(), n}, p, range, mode); })) {
    SQUINT_FUZZ_CHECK(squint_fuzz::same_bits(dx, sentinel));
    return;
  }
  std::vector<float> expect(n);
  reference::fake_quant_sums total;
  double magnitude_s = 0.0, magnitude_z = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    reference::fake_quant_sums one;
    expect[i] = reference::fake_quantize_grad(x[i], dy[i], p, range, mode, one);
    total.scale += one.scale, total.zero_point += one.zero_point;
    magnitude_s += std::fabs(one.scale), magnitude_z += std::fabs(one.zero_point);
  }
  SQUINT_FUZZ_CHECK(squint_fuzz::same_bits(dx, expect));
  auto close = [](double got, double want, double magnitude) {
    return !(magnitude < 1e30) || std::fabs(got - want) <= 1e-6 * magnitude + 1e-30;
  };
  SQUINT_FUZZ_CHECK(close(sums.scale, total.scale, magnitude_s) && close(sums.zero_point, total.zero_point, magnitude_z));
  squint_fuzz::for_each_arch([&](auto arch) {
    std::vector<float> got(n), y(n), y_expect(n);
    kernels::fake_quant_params k;
    k.x = x.data();
    k.dy = dy.data();
    k.y = y.data();
    k.dx = got.data();
    k.n = n;
    k.scale = p.scale;
    k.zero_point = p.zero_point;
    k.qmin = range.qmin;
    k.qmax = range.qmax;
    k.reciprocal = mode == quantize_mode::reciprocal;
    const reference::fake_quant_sums s = kernels::fake_quant_kernel<decltype(arch)>::run(k);
    reference::fake_quantize(x.data(), y_expect.data(), n, p, range, mode);
    SQUINT_FUZZ_CHECK(squint_fuzz::same_bits(got, expect) && squint_fuzz::same_bits(y, y_expect));
    SQUINT_FUZZ_CHECK(close(s.scale, total.scale, magnitude_s) && close(s.zero_point, total.zero_point, magnitude_z));
  });
}

void fake_quantize_case(squint_fuzz::input& in) {
  const quantize_mode mode = in.flag() ? quantize_mode::reciprocal : quantize_mode::divide;
  const std::size_t n = in.below(300);
  const std::vector<float> x = in.floats(n);
  quant_range range{in.take<std::int32_t>(), in.take<std::int32_t>()};
  if (in.flag()) range = {static_cast<std::int8_t>(range.qmin), static_cast<std::int8_t>(range.qmax)};
  const qparams p{in.scale(), in.zero_point(range.qmin, range.qmax)};
  std::vector<float> y(n, 3.0f);
  const std::vector<float> sentinel = y;
  if (rejected([&] { fake_quantize({x.data(), n}, {y.data(), n}, p, range, mode); })) {
    SQUINT_FUZZ_CHECK(squint_fuzz::same_bits(y, sentinel));
    return;
  }
  std::vector<float> expect(n);
  reference::fake_quantize(x.data(), expect.data(), n, p, range, mode);
  SQUINT_FUZZ_CHECK(squint_fuzz::same_bits(y, expect));
  squint_fuzz::for_each_arch([&](auto arch) {
    std::vector<float> got(n);
    kernels::quantize_kernel<decltype(arch), std::int8_t>::fake(x.data(), got.data(), n, p.scale, p.zero_point,
                                                                range.qmin, range.qmax,
                                                                mode == quantize_mode::reciprocal);
    SQUINT_FUZZ_CHECK(squint_fuzz::same_bits(got, expect));
  });
  fake_quantize_backward_case(in, x, p, range, mode);
}

template <class T>
void requantize_case(squint_fuzz::input& in) {
  const std::size_t rows = in.below(5), cols = in.below(70);
  const shape s{rows, cols};
  const std::vector<std::int32_t> acc = in.codes<std::int32_t>(s.numel());
  const bool per_channel = in.flag();
  std::vector<float> multiplier(per_channel ? cols : 1);
  for (float& m : multiplier) m = in.scale();
  const std::int32_t zp = in.zero_point(full_range(dtype_of<T>()).qmin, full_range(dtype_of<T>()).qmax);
  std::vector<T> q(acc.size(), T(0x33));
  const std::vector<T> sentinel = q;
  if (rejected([&] { requantize(tensor_view<const std::int32_t>(acc.data(), s), tensor_view<T>(q.data(), s), multiplier, zp); })) {
    SQUINT_FUZZ_CHECK(q == sentinel);
    return;
  }
  std::vector<T> expect(acc.size());
  const axis_split split = multiplier.size() == 1 ? axis_split{1, 1, acc.size()} : axis_split{rows, cols, 1};
  reference::requantize(acc.data(), expect.data(), split, multiplier.data(), zp);
  SQUINT_FUZZ_CHECK(q == expect);
  squint_fuzz::for_each_arch([&](auto arch) {
    std::vector<T> got(acc.size());
    kernels::requantize_kernel<decltype(arch), T>::run(acc.data(), got.data(), split.outer, split.channels,
                                                       split.inner, multiplier.data(), zp);
    SQUINT_FUZZ_CHECK(got == expect);
  });
}

/// fp16 and bfloat16 conversions both ways on every arch: the reference's bits, and a NaN for a
/// NaN (the hardware quiets signalling NaNs; the contract promises NaN, not its payload).
/// FP8 quantize / dequantize with a fuzzed scale, format and saturation: the checked entry
/// point and every arch's kernel against the reference, bit for bit.
void fp8_case(squint_fuzz::input& in, const std::vector<float>& x) {
  const std::size_t n = x.size();
  const fp8_format format = in.flag() ? fp8_format::e5m2 : fp8_format::e4m3fn;
  const bool saturate = in.flag();
  const float scale = in.scale();  // now and then not finite or <= 0
  std::vector<std::uint8_t> q(n, 0x5a);
  const std::vector<std::uint8_t> sentinel = q;
  if (rejected([&] { quantize_fp8({x.data(), n}, {q.data(), n}, scale, format, saturate); })) {
    SQUINT_FUZZ_CHECK(q == sentinel);
    return;
  }
  std::vector<std::uint8_t> expect(n);
  std::vector<float> y_expect(n);
  for (std::size_t i = 0; i < n; ++i) {
    expect[i] = reference::quantize_fp8_value(x[i], scale, format, saturate);
    y_expect[i] = reference::dequantize_fp8_value(expect[i], scale, format);
  }
  SQUINT_FUZZ_CHECK(q == expect);
  squint_fuzz::for_each_arch([&](auto arch) {
    using K = kernels::fp8_kernel<decltype(arch)>;
    std::vector<std::uint8_t> got(n);
    std::vector<float> y(n);
    K::quantize(x.data(), got.data(), n, scale, format == fp8_format::e5m2, saturate);
    K::dequantize(expect.data(), y.data(), n, scale, format == fp8_format::e5m2);
    SQUINT_FUZZ_CHECK(got == expect && squint_fuzz::same_bits(y, y_expect));
  });
}

void convert_case(squint_fuzz::input& in) {
  const std::size_t n = in.below(200);
  const std::vector<float> x = in.floats(n);
  const std::vector<std::uint16_t> h = in.codes<std::uint16_t>(n);
  auto same_half = [](std::uint16_t a, std::uint16_t b, bool bf16) {
    const float fa = bf16 ? reference::bfloat16_to_float(a) : reference::half_to_float(a);
    const float fb = bf16 ? reference::bfloat16_to_float(b) : reference::half_to_float(b);
    return a == b || (std::isnan(fa) && std::isnan(fb));
  };
  squint_fuzz::for_each_arch([&](auto arch) {
    using K = kernels::convert_kernel<decltype(arch)>;
    std::vector<std::uint16_t> half(n), bf(n);
    std::vector<float> from_half(n), from_bf(n);
    K::float_to_half(x.data(), half.data(), n);
    K::float_to_bfloat16(x.data(), bf.data(), n);
    K::half_to_float(h.data(), from_half.data(), n);
    K::bfloat16_to_float(h.data(), from_bf.data(), n);
    for (std::size_t i = 0; i < n; ++i) {
      SQUINT_FUZZ_CHECK(same_half(half[i], reference::float_to_half(x[i]), false));
      SQUINT_FUZZ_CHECK(same_half(bf[i], reference::float_to_bfloat16(x[i]), true));
      const float half_ref = reference::half_to_float(h[i]), bf_ref = reference::bfloat16_to_float(h[i]);
      SQUINT_FUZZ_CHECK(std::isnan(half_ref) ? std::isnan(from_half[i]) : squint_fuzz::same_bits({from_half[i]}, {half_ref}));
      SQUINT_FUZZ_CHECK(std::isnan(bf_ref) ? std::isnan(from_bf[i]) : squint_fuzz::same_bits({from_bf[i]}, {bf_ref}));
    }
  });
  fp8_case(in, x);
}

/// ONNX DynamicQuantizeLinear and the finite range it starts from, static and dispatched.
void dynamic_case(squint_fuzz::input& in) {
  const std::size_t n = in.below(300);
  const std::vector<float> x = in.floats(n);
  float lo = HUGE_VALF, hi = -HUGE_VALF;
  for (float v : x)
    if (std::isfinite(v)) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  const auto range = finite_min_max({x.data(), n});
  SQUINT_FUZZ_CHECK(range.first == lo && range.second == hi);
  SQUINT_FUZZ_CHECK(runtime::finite_min_max({x.data(), n}) == range);
  std::vector<std::uint8_t> q(n, 0x11);
  qparams p;
  if (squint_fuzz::rejected([&] { p = dynamic_quantize({x.data(), n}, {q.data(), n}); })) {
    SQUINT_FUZZ_CHECK(std::vector<std::uint8_t>(n, 0x11) == q);
    return;
  }
  const qparams expect_p = lo > hi ? choose_qparams(0.0f, 0.0f) : choose_qparams(lo, hi);
  SQUINT_FUZZ_CHECK(p == expect_p);
  std::vector<std::uint8_t> expect(n);
  reference::quantize(x.data(), expect.data(), n, p);
  SQUINT_FUZZ_CHECK(q == expect);
}

/// Integer-only requantization with multipliers from quantize_multiplier.
template <class T>
void fixed_point_case(squint_fuzz::input& in) {
  const std::size_t rows = in.below(4), cols = in.below(40);
  const shape s{rows, cols};
  const std::vector<std::int32_t> acc = in.codes<std::int32_t>(s.numel());
  std::vector<fixed_point_multiplier> m(in.flag() ? cols : 1);
  for (fixed_point_multiplier& f : m) {
    const double real = static_cast<double>(in.scale());
    if (squint_fuzz::rejected([&] { f = quantize_multiplier(real); })) {
      SQUINT_FUZZ_CHECK(!(std::isfinite(real) && real >= 0.0 && real < 2147483648.0));
      f = {in.take<std::int32_t>(), in.take<std::int8_t>()};  // maybe not a valid multiplier at all
    }
  }
  const std::int32_t zp = in.zero_point(full_range(dtype_of<T>()).qmin, full_range(dtype_of<T>()).qmax);
  std::vector<T> q(acc.size(), T(0x22));
  const std::vector<T> sentinel = q;
  if (rejected([&] {
        requantize_fixed_point(tensor_view<const std::int32_t>(acc.data(), s), tensor_view<T>(q.data(), s), m, zp);
      })) {
    SQUINT_FUZZ_CHECK(q == sentinel);
    return;
  }
  std::vector<T> expect(acc.size());
  const axis_split split = m.size() == 1 ? axis_split{1, 1, acc.size()} : axis_split{rows, cols, 1};
  reference::requantize(acc.data(), expect.data(), split, m.data(), zp);
  SQUINT_FUZZ_CHECK(q == expect);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  squint_fuzz::input in(data, size);
  switch (in.take<std::uint8_t>() % 10) {
    case 6: convert_case(in); break;
    case 7: dynamic_case(in); break;
    case 8: fixed_point_case<std::int8_t>(in); break;
    case 9: fixed_point_case<std::uint8_t>(in); break;
    case 0: quantize_case<std::int8_t>(in); break;
    case 1: quantize_case<std::uint8_t>(in); break;
    case 2: fake_quantize_case(in); break;
    case 3: requantize_case<std::int8_t>(in); break;
    case 4: requantize_case<std::uint8_t>(in); break;
    default: {
      // Shapes whose element count overflows are rejected where they are made.
      const std::size_t a = in.take<std::uint64_t>(), b = in.take<std::uint64_t>();
      bool overflows = false;
      try {
        const shape s{a, b};
        SQUINT_FUZZ_CHECK(s.numel() / (b ? b : 1) == (b ? a : s.numel()));
      } catch (const squint::error&) {
        overflows = true;
      }
      SQUINT_FUZZ_CHECK(overflows == (a != 0 && b > SIZE_MAX / a));
    }
  }
  return 0;
}

// SPDX-License-Identifier: Apache-2.0
// fuzz_quantize.cpp: quantize, dequantize, fake-quantize and requantize (per tensor and per
// channel) through the checked entry points and every compiled arch's kernels, against the
// scalar reference.
#include <algorithm>

#include "fuzz_support.hpp"
#include "squint/quantize.hpp"
#include "squint/reference/quantize.hpp"
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

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  squint_fuzz::input in(data, size);
  switch (in.take<std::uint8_t>() % 6) {
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

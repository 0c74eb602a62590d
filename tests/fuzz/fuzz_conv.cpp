// SPDX-License-Identifier: Apache-2.0
// fuzz_conv.cpp: the convolution's geometry (stride, padding of every mode, dilation, groups,
// depthwise), filter packing (int8 / uint8, OIHW / OHWI) and its int32, float and requantized
// outputs on every compiled ISA, against the int64 reference convolution and the output stages'
// formulas; and the quantized pooling ops on the same windows. Invalid arguments must throw
// squint::error and write nothing.
#include <algorithm>
#include <limits>

#include "fuzz_support.hpp"
#include "squint/conv/conv.hpp"
#include "squint/dispatch.hpp"
#include "squint/ops/pool.hpp"
#include "squint/reference/conv.hpp"
#include "squint/reference/requantize.hpp"

using namespace squint;

namespace {

conv2d_params draw_params(squint_fuzz::input& in) {
  conv2d_params p;
  p.stride_h = in.below(3);  // 0 is invalid on purpose
  p.stride_w = 1 + in.below(2);
  p.dilation_h = 1 + in.below(2);
  p.dilation_w = in.below(2) + (in.flag() ? 1 : 0);
  p.pad_top = in.below(3);
  p.pad_left = in.below(3);
  p.pad_bottom = in.below(3);
  p.pad_right = in.flag() ? in.below(3) : std::numeric_limits<std::size_t>::max() - in.below(2);
  p.padding = static_cast<padding_mode>(in.below(2));
  return p;
}

template <class TA>
void conv_case(squint_fuzz::input& in) {
  conv2d_params p = draw_params(in);
  const bool depthwise = in.flag();
  image_shape shape{in.below(2), in.below(8), in.below(8), 1 + in.below(19)};
  filter_shape f{1 + in.below(20), 1 + in.below(6), 1 + in.below(3), 1 + in.below(3)};
  p.groups = 1 + in.below(3);
  if (depthwise) {
    p.groups = shape.channels;
    f.group_channels = 1;
    f.out_channels = shape.channels;
  } else if (in.flag()) {
    shape.channels = f.group_channels * p.groups;  // usually consistent
  }
  const bool uint8_weights = in.flag(), per_channel = in.flag();
  const std::size_t wn = f.out_channels * f.taps() * f.group_channels;
  std::vector<std::int32_t> zw(per_channel ? f.out_channels : 1);
  std::vector<float> scale(zw.size());
  for (std::size_t o = 0; o < zw.size(); ++o) {
    zw[o] = uint8_weights ? in.zero_point(0, 255) : in.zero_point(-128, 127);
    scale[o] = in.scale();
  }
  std::vector<std::int8_t> w = in.codes<std::int8_t>(wn);  // OHWI int8 as the reference sees it
  packed_conv packed;
  bool ok = false;
  if (uint8_weights) {
    std::vector<std::uint8_t> u(wn);
    for (std::size_t i = 0; i < wn; ++i) u[i] = static_cast<std::uint8_t>(w[i] + 128);
    ok = !squint_fuzz::rejected([&] { packed = packed_conv::from_uint8(u.data(), f, filter_layout::ohwi, p, scale, zw); });
    if (ok)
      for (std::int32_t& z : zw) z -= 128;
  } else {
    ok = !squint_fuzz::rejected([&] { packed = packed_conv::from_int8(w.data(), f, filter_layout::ohwi, p, scale, zw); });
  }
  if (!ok) return;
  const std::int32_t zx = in.zero_point(full_range(dtype_of<TA>()).qmin, full_range(dtype_of<TA>()).qmax);
  const std::vector<TA> x = in.codes<TA>(shape.size() < 4096 ? shape.size() : 0);
  if (x.size() != shape.size()) return;
  conv2d_geometry g;
  if (squint_fuzz::rejected([&] { g = packed.geometry(shape); })) {
    std::vector<std::int32_t> y(4, 7);
    SQUINT_FUZZ_CHECK(squint_fuzz::rejected([&] { runtime::conv2d(x.data(), shape, zx, packed, y.data()); }));
    SQUINT_FUZZ_CHECK(y == std::vector<std::int32_t>(4, 7));
    return;
  }
  if (g.out.size() > 20000) return;
  std::vector<std::int64_t> acc(g.out.size());
  reference::conv2d(x.data(), g, zx, w.data(), zw.data(), zw.size(), acc.data());
  const std::vector<std::int32_t> expect(acc.begin(), acc.end());  // small depth: exact in int32
  const parallelism par{1u + static_cast<unsigned>(in.below(2))};
  std::vector<std::int32_t> y(g.out.size(), 0x5a5a5a5a);
  const std::vector<std::int32_t> sentinel = y;
  if (squint_fuzz::rejected([&] { runtime::conv2d(x.data(), shape, zx, packed, y.data(), par); })) {
    SQUINT_FUZZ_CHECK(y == sentinel);
    return;
  }
  SQUINT_FUZZ_CHECK(y == expect);
  for (const auto& t : runtime::detail::tables()) {
    if (!t.available()) continue;
    std::vector<std::int32_t> got(g.out.size(), 0x5a5a5a5a);
    if constexpr (std::is_same_v<TA, std::int8_t>) t.conv_s8(x.data(), g, zx, packed, got.data(), par, nullptr);
    else t.conv_u8(x.data(), g, zx, packed, got.data(), par, nullptr);
    SQUINT_FUZZ_CHECK(got == expect);
  }

  // Requantized output: requantize(saturate(acc + bias)), then the activation's clamp.
  const qparams xp{in.scale(), zx}, yp{in.scale(), in.zero_point(-128, 127)};
  const auto act = static_cast<activation>(in.below(2));
  std::vector<std::int32_t> bias(f.out_channels);
  for (std::int32_t& b : bias) b = in.flag() ? in.take<std::int32_t>() : in.take<std::int16_t>();
  std::vector<std::int8_t> q(g.out.size(), 11);
  const std::vector<std::int8_t> q_sentinel = q;
  if (squint_fuzz::rejected([&] { runtime::conv2d(x.data(), shape, xp, packed, bias.data(), yp, act, q.data(), par); })) {
    SQUINT_FUZZ_CHECK(q == q_sentinel);
    return;
  }
  const quant_range r8 = full_range(dtype::int8);
  const std::int32_t six = reference::quantize_value(6.0f, yp, r8);
  for (std::size_t i = 0; i < q.size(); ++i) {
    const std::size_t o = i % g.out.channels;
    const auto biased = static_cast<std::int32_t>(std::clamp<std::int64_t>(acc[i] + bias[o], INT32_MIN, INT32_MAX));
    std::int32_t e = reference::requantize_value(biased, xp.scale * packed.scales()[o] / yp.scale, yp.zero_point, r8);
    if (act != activation::none) e = std::clamp(e, yp.zero_point, act == activation::relu6 ? std::max(six, yp.zero_point) : 127);
    SQUINT_FUZZ_CHECK(q[i] == e);
  }
}

template <class T>
void pool_case(squint_fuzz::input& in) {
  pool2d_params p;
  p.kernel_h = in.below(3);
  p.kernel_w = 1 + in.below(3);
  p.window = draw_params(in);
  p.count_include_pad = in.flag();
  const image_shape shape{in.below(2), in.below(7), in.below(7), in.below(12)};
  const std::vector<T> x = in.codes<T>(shape.size());
  const qparams xp{in.scale(), in.zero_point(full_range(dtype_of<T>()).qmin, full_range(dtype_of<T>()).qmax)};
  const qparams yp{in.scale(), in.zero_point(full_range(dtype_of<T>()).qmin, full_range(dtype_of<T>()).qmax)};
  std::vector<T> y(4096, 5);
  const std::vector<T> sentinel = y;
  conv2d_geometry g;
  if (squint_fuzz::rejected([&] { g = detail::pool_geometry("pool", shape, p); })) {
    SQUINT_FUZZ_CHECK(squint_fuzz::rejected([&] { max_pool2d(x.data(), shape, p, y.data()); }));
    SQUINT_FUZZ_CHECK(squint_fuzz::rejected([&] { avg_pool2d(x.data(), shape, xp, p, yp, y.data()); }));
    SQUINT_FUZZ_CHECK(y == sentinel);
    return;
  }
  if (g.out.size() > y.size()) return;
  max_pool2d(x.data(), shape, p, y.data());
  // Every output is one of its window's codes, or the padding's (T's minimum).
  for (std::size_t i = 0; i < g.out.size(); ++i)
    SQUINT_FUZZ_CHECK(y[i] == std::numeric_limits<T>::min() || std::find(x.begin(), x.end(), y[i]) != x.end());
  std::vector<T> avg(g.out.size(), 5);
  const std::vector<T> avg_sentinel = avg;
  if (squint_fuzz::rejected([&] { avg_pool2d(x.data(), shape, xp, p, yp, avg.data()); }))
    SQUINT_FUZZ_CHECK(avg == avg_sentinel);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  squint_fuzz::input in(data, size);
  switch (in.below(3)) {
    case 0: conv_case<std::uint8_t>(in); break;
    case 1: conv_case<std::int8_t>(in); break;
    default:
      if (in.flag()) pool_case<std::uint8_t>(in);
      else pool_case<std::int8_t>(in);
  }
  return 0;
}

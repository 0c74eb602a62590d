// SPDX-License-Identifier: Apache-2.0
// block_quantize_test.cpp: block (per-group) quantization against a scalar loop over the
// reference on every axis position, partial last blocks and int8 / uint8 / int4 / uint4 ranges;
// min-max block parameters with fp32 or fp16 scales; int4 packing; bad arguments change nothing.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "squint/block_quantize.hpp"
#include "support/data.hpp"

namespace block_quantize_test {

namespace {

using squint::block_qparams;
using squint::quant_range;
using squint::shape;

/// The parameter index of element e of a tensor of shape s, blocked along p.axis.
std::size_t param_of(const shape& s, const block_qparams& p, std::size_t e) {
  const squint::axis_split split = squint::split_at(s, p.axis);
  const std::size_t r = e % split.inner, i = e / split.inner % split.channels, o = e / split.inner / split.channels;
  const std::size_t blocks = (split.channels + p.block_size - 1) / p.block_size;
  return (o * blocks + i / p.block_size) * split.inner + r;
}

template <class T>
void check_blocked(const shape& s, int axis, std::size_t block, quant_range range,
                   squint::group_scale_format format = squint::group_scale_format::fp32) {
  const auto x = squint_test::normal(s.numel(), 0.3f, 2.0f, static_cast<unsigned>(s.numel() + block));
  squint::quant_spec spec;
  spec.type = squint::dtype_of<T>();
  spec.custom_range = range;
  const block_qparams p = squint::choose_block_qparams({x.data(), s}, axis, block, spec, format);
  std::vector<T> q(x.size());
  squint::quantize_blocked<T>({x.data(), s}, {q.data(), s}, p, range);
  std::vector<float> y(x.size());
  squint::dequantize_blocked<T>({q.data(), s}, {y.data(), s}, p);
  for (std::size_t e = 0; e < x.size(); ++e) {
    const std::size_t b = param_of(s, p, e);
    const squint::qparams qp{p.scale[b], p.zero_point[b]};
    ASSERT_EQ(q[e], squint::reference::quantize_value(x[e], qp, range)) << "element " << e << " axis " << axis;
    ASSERT_EQ(y[e], squint::reference::dequantize_value(q[e], qp)) << e;
  }
}

TEST(BlockQuantize, MatchesTheReferenceOnEveryAxisAndRange) {
  for (const shape& s : {shape{5, 70}, shape{3, 37, 9}, shape{70}, shape{2, 3, 4, 33}})
    for (int axis = 0; axis < static_cast<int>(s.rank()); ++axis)
      for (std::size_t block : {1u, 4u, 16u, 32u}) {
        check_blocked<std::int8_t>(s, axis, block, {-128, 127});
        check_blocked<std::int8_t>(s, axis, block, {-8, 7});  // int4
        check_blocked<std::uint8_t>(s, axis, block, {0, 255});
        check_blocked<std::uint8_t>(s, axis, block, {0, 15});  // uint4
        check_blocked<std::int8_t>(s, axis, block, {-8, 7}, squint::group_scale_format::fp16);
        check_blocked<std::uint8_t>(s, axis, block, {0, 255}, squint::group_scale_format::fp16);
      }
}

float as_half(float v) { return squint::reference::half_to_float(squint::reference::float_to_half(v)); }

TEST(BlockQuantize, Fp16ScalesAreRoundedOnceAndKeptThroughTheirBits) {
  // Rows of ordinary, tiny and huge values: fp16 keeps each chosen scale rounded to nearest,
  // within [2^-24, 65504]; zero points stay the fp32 choice's.
  std::vector<float> x = squint_test::normal(3 * 64, 0.1f, 1.5f, 11);
  for (std::size_t i = 64; i < 128; ++i) x[i] *= 1e-9f;
  for (std::size_t i = 128; i < 192; ++i) x[i] *= 1e9f;
  const shape s{3, 64};
  squint::quant_spec spec;
  spec.custom_range = quant_range{0, 15};
  spec.eps = 1e-12f;  // below fp16's smallest subnormal, so that the clamp shows
  const block_qparams p32 = squint::choose_block_qparams({x.data(), s}, 1, 32, spec);
  const block_qparams p16 =
      squint::choose_block_qparams({x.data(), s}, 1, 32, spec, squint::group_scale_format::fp16);
  ASSERT_EQ(p16.scale.size(), 6u);
  EXPECT_EQ(p16.scale_format, squint::group_scale_format::fp16);
  EXPECT_EQ(p16.zero_point, p32.zero_point);
  for (std::size_t b = 0; b < 2; ++b) EXPECT_EQ(p16.scale[b], as_half(p32.scale[b])) << b;
  for (std::size_t b = 2; b < 4; ++b) {
    EXPECT_LT(p32.scale[b], 0x1p-24f);
    EXPECT_EQ(p16.scale[b], 0x1p-24f) << b;
  }
  for (std::size_t b = 4; b < 6; ++b) {
    EXPECT_GT(p32.scale[b], 65504.0f);
    EXPECT_EQ(p16.scale[b], 65504.0f) << b;
  }
  // The bits an fp16 model stores, and parameters read back from them: the same codes.
  const std::vector<std::uint16_t> bits = squint::half_scales(p16);
  for (std::size_t b = 0; b < bits.size(); ++b) EXPECT_EQ(squint::reference::half_to_float(bits[b]), p16.scale[b]);
  const block_qparams back = squint::block_qparams_from_half(bits, p16.zero_point, 1, 32);
  EXPECT_EQ(back.scale, p16.scale);
  EXPECT_EQ(back.scale_format, squint::group_scale_format::fp16);
  std::vector<std::uint8_t> q16(x.size()), qback(x.size());
  squint::quantize_blocked<std::uint8_t>({x.data(), s}, {q16.data(), s}, p16, {0, 15});
  squint::quantize_blocked<std::uint8_t>({x.data(), s}, {qback.data(), s}, back, {0, 15});
  EXPECT_EQ(q16, qback);
  for (std::size_t e = 0; e < 64; ++e)
    ASSERT_EQ(q16[e], squint::reference::quantize_value(x[e], {p16.scale[e / 32], p16.zero_point[e / 32]}, {0, 15})) << e;
}

TEST(BlockQuantize, Fp16ScalesRefuseValuesTheyCannotHold) {
  const auto x = squint_test::normal(24, 0.0f, 1.0f, 5);
  std::vector<std::int8_t> q(24, 42);
  squint::quant_spec spec;
  spec.type = squint::dtype::int8;
  block_qparams p = squint::choose_block_qparams({x.data(), shape{4, 6}}, 1, 4, spec, squint::group_scale_format::fp16);
  p.scale[1] = 0.1f;  // not an fp16 value
  try {
    squint::quantize_blocked<std::int8_t>({x.data(), shape{4, 6}}, {q.data(), shape{4, 6}}, p);
    ADD_FAILURE() << "expected squint::error";
  } catch (const squint::error& e) {
    EXPECT_NE(std::string(e.what()).find("scale 1 (0.1) is not an fp16 value"), std::string::npos) << e.what();
  }
  for (std::int8_t v : q) EXPECT_EQ(v, 42);
  p.scale[1] = as_half(0.1f);
  EXPECT_NO_THROW(squint::quantize_blocked<std::int8_t>({x.data(), shape{4, 6}}, {q.data(), shape{4, 6}}, p));
  EXPECT_THROW(squint::half_scales(squint::choose_block_qparams({x.data(), shape{4, 6}}, 1, 4)), squint::error);
  EXPECT_THROW(squint::block_qparams_from_half({0x3C00, 0x7C00}, {0, 0}, 1, 4), squint::error);  // 1, inf
  EXPECT_THROW(squint::block_qparams_from_half({0x3C00, 0x0000}, {0, 0}, 1, 4), squint::error);  // 1, 0
  EXPECT_THROW(squint::block_qparams_from_half({0x3C00, 0xBC00}, {0, 0}, 1, 4), squint::error);  // 1, -1
  EXPECT_THROW(squint::block_qparams_from_half({0x3C00}, {0, 0}, 1, 4), squint::error);
}

TEST(BlockQuantize, HandWorkedBlocks) {
  // x 3 x 4, blocks of 2 along axis 1: parameters 3 x 2, e.g. 12 / 4.9 = 2.45 -> 2 + 3 = 5.
  const std::vector<float> x{6.0f, 12.0f, 50.0f, 5.0f, -6.0f, -8.0f, -42.0f, 12.0f, 3.0f, 7.0f, 0.0f, 20.0f};
  block_qparams p{{1.5f, 2.5f, 3.0f, 4.9f, 5.0f, 6.0f}, {0, 1, 2, 3, 4, 5}, 1, 2};
  std::vector<std::int8_t> q(12);
  squint::quantize_blocked<std::int8_t>({x.data(), shape{3, 4}}, {q.data(), shape{3, 4}}, p);
  const std::vector<std::int8_t> expect{4, 8, 21, 3, 0, -1, -6, 5, 5, 5, 5, 8};
  EXPECT_EQ(q, expect);
}

TEST(BlockQuantize, Int4PackingRoundTripsLowNibbleFirst) {
  const std::vector<std::int8_t> codes{-8, 7, 0, -1, 3};
  const auto packed = squint::pack_int4<std::int8_t>({codes.data(), codes.size()});
  ASSERT_EQ(packed.size(), 3u);
  EXPECT_EQ(packed[0], 0x78);  // -8 -> 0x8 low, 7 -> 0x7 high
  EXPECT_EQ(packed[1], 0xF0);
  EXPECT_EQ(packed[2], 0x03);
  std::vector<std::int8_t> back(5);
  squint::unpack_int4<std::int8_t>(packed, {back.data(), back.size()});
  EXPECT_EQ(back, codes);
  const std::vector<std::uint8_t> u{15, 0, 9};
  std::vector<std::uint8_t> ub(3);
  squint::unpack_int4<std::uint8_t>(squint::pack_int4<std::uint8_t>({u.data(), 3}), {ub.data(), 3});
  EXPECT_EQ(ub, u);
  const std::vector<std::int8_t> bad{9};
  EXPECT_THROW(squint::pack_int4<std::int8_t>({bad.data(), 1}), squint::error);
  EXPECT_THROW(squint::unpack_int4<std::int8_t>(packed, {back.data(), 7}), squint::error);
}

TEST(BlockQuantize, BadArgumentsThrowAndChangeNothing) {
  const auto x = squint_test::normal(24, 0.0f, 1.0f, 3);
  std::vector<std::int8_t> q(24, 42);
  const block_qparams ok = squint::choose_block_qparams({x.data(), shape{4, 6}}, 1, 4);
  block_qparams p = ok;
  p.scale.pop_back();
  EXPECT_THROW(squint::quantize_blocked<std::int8_t>({x.data(), shape{4, 6}}, {q.data(), shape{4, 6}}, p), squint::error);
  p = ok;
  p.block_size = 0;
  EXPECT_THROW(squint::quantize_blocked<std::int8_t>({x.data(), shape{4, 6}}, {q.data(), shape{4, 6}}, p), squint::error);
  p = ok;
  p.axis = 2;
  EXPECT_THROW(squint::quantize_blocked<std::int8_t>({x.data(), shape{4, 6}}, {q.data(), shape{4, 6}}, p), squint::error);
  p = ok;
  p.zero_point[0] = 200;
  EXPECT_THROW(squint::quantize_blocked<std::int8_t>({x.data(), shape{4, 6}}, {q.data(), shape{4, 6}}, p), squint::error);
  EXPECT_THROW(squint::quantize_blocked<std::int8_t>({x.data(), shape{4, 6}}, {q.data(), shape{4, 6}}, ok, {-8, 200}),
               squint::error);
  for (std::int8_t v : q) EXPECT_EQ(v, 42);
}

}  // namespace

}  // namespace block_quantize_test

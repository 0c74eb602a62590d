// SPDX-License-Identifier: Apache-2.0
// block_quantize_test.cpp: block (per-group) quantization against a scalar loop over the
// reference on every axis position, partial last blocks and int8 / uint8 / int4 / uint4 ranges;
// min-max block parameters; int4 packing; bad arguments change nothing.
#include <gtest/gtest.h>

#include <cstdint>
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
void check_blocked(const shape& s, int axis, std::size_t block, quant_range range) {
  const auto x = squint_test::normal(s.numel(), 0.3f, 2.0f, static_cast<unsigned>(s.numel() + block));
  squint::quant_spec spec;
  spec.type = squint::dtype_of<T>();
  spec.custom_range = range;
  const block_qparams p = squint::choose_block_qparams({x.data(), s}, axis, block, spec);
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
      }
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

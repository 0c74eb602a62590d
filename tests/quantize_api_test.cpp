// SPDX-License-Identifier: Apache-2.0
// quantize_api_test.cpp: the checked entry points — results, bad input, nothing written on error.
#include "squint/quantize.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "support/data.hpp"

namespace quantize_api_test {

namespace {

using squint::per_channel_qparams;
using squint::qparams;
using squint::shape;
using squint::tensor_view;

constexpr std::int8_t sentinel = 0x5a;

template <class F>
void expect_rejected(F&& call, const std::vector<std::int8_t>& out, const std::string& needle) {
  try {
    call();
    ADD_FAILURE() << "accepted; expected an error mentioning '" << needle << "'";
  } catch (const squint::error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
  for (std::int8_t v : out) ASSERT_EQ(v, sentinel) << "output written before the error";
}

TEST(QuantizeApiTest, MatchesReferenceAndRoundTrips) {
  const auto x = squint_test::normal(1000, 0.5f, 2.0f);
  const qparams p = squint::choose_qparams(-6.0f, 7.0f, {squint::dtype::int8});
  std::vector<std::int8_t> q(x.size()), expect(x.size());
  squint::quantize<std::int8_t>({x.data(), x.size()}, {q.data(), q.size()}, p);
  squint::reference::quantize(x.data(), expect.data(), x.size(), p);
  EXPECT_EQ(q, expect);
  std::vector<float> back(x.size());
  squint::dequantize<std::int8_t>({q.data(), q.size()}, {back.data(), back.size()}, p);
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (x[i] < -6.0f || x[i] > 7.0f) continue;
    ASSERT_LE(std::fabs(back[i] - x[i]), p.scale / 2 * 1.0001f) << i;
  }
}

TEST(QuantizeApiTest, PointerFormsDeduceTheType) {
  const std::vector<float> x{-1.0f, 0.25f, 1e9f};
  std::vector<std::uint8_t> q(3);
  squint::quantize(x.data(), q.data(), x.size(), {0.5f, 10});
  EXPECT_EQ(q, (std::vector<std::uint8_t>{8, 10, 255}));
  std::vector<float> y(3);
  squint::dequantize(q.data(), y.data(), q.size(), {0.5f, 10});
  EXPECT_EQ(y, (std::vector<float>{-1.0f, 0.0f, 122.5f}));
  EXPECT_THROW(squint::quantize(x.data(), static_cast<std::uint8_t*>(nullptr), 3, {0.5f, 10}), squint::error);
}

TEST(QuantizeApiTest, EmptyAndNullWithoutElementsAreFine) {
  squint::quantize<std::int8_t>({nullptr, 0}, tensor_view<std::int8_t>{nullptr, 0}, {1.0f, 0});
  squint::dequantize<std::uint8_t>({nullptr, shape{0, 4}}, tensor_view<float>{nullptr, shape{0, 4}}, {1.0f, 0});
}

TEST(QuantizeApiTest, BadPerTensorInputIsRejected) {
  std::vector<float> x(8, 1.0f);
  std::vector<std::int8_t> q(8, sentinel);
  auto run = [&](tensor_view<const float> in, tensor_view<std::int8_t> out, qparams p) {
    return [=] { squint::quantize(in, out, p); };
  };
  expect_rejected(run({x.data(), 8}, {q.data(), 7}, {1.0f, 0}), q, "shape");
  expect_rejected(run({x.data(), shape{2, 4}}, {q.data(), shape{4, 2}}, {1.0f, 0}), q, "shape");
  expect_rejected(run({nullptr, 8}, {q.data(), 8}, {1.0f, 0}), q, "'input' is null");
  expect_rejected(run({x.data(), 8}, {nullptr, 8}, {1.0f, 0}), q, "'output' is null");
  expect_rejected(run({x.data(), 8}, {q.data(), 8}, {0.0f, 0}), q, "scale");
  expect_rejected(run({x.data(), 8}, {q.data(), 8}, {-2.0f, 0}), q, "scale");
  expect_rejected(run({x.data(), 8}, {q.data(), 8}, {std::numeric_limits<float>::quiet_NaN(), 0}), q, "scale");
  expect_rejected(run({x.data(), 8}, {q.data(), 8}, {std::numeric_limits<float>::infinity(), 0}), q, "scale");
  expect_rejected(run({x.data(), 8}, {q.data(), 8}, {1.0f, 128}), q, "zero_point 128");
  expect_rejected(run({x.data(), 8}, {q.data(), 8}, {1.0f, -129}), q, "zero_point -129");
}

TEST(QuantizeApiTest, BadPerChannelInputIsRejected) {
  std::vector<float> x(12, 1.0f);
  std::vector<std::int8_t> q(12, sentinel);
  const shape s{3, 4};
  auto run = [&](per_channel_qparams p) {
    return [&, p] { squint::quantize<std::int8_t>({x.data(), s}, {q.data(), s}, p); };
  };
  expect_rejected(run({{1.0f, 1.0f}, {0, 0}, 0}), q, "3 channels");
  expect_rejected(run({{1.0f, 1.0f, 1.0f}, {0, 0}, 0}), q, "2 zero points");
  expect_rejected(run({{1.0f, 1.0f, 1.0f}, {0, 0, 0}, 2}), q, "axis 2");
  expect_rejected(run({{1.0f, 1.0f, 1.0f}, {0, 0, 0}, -3}), q, "axis -3");
  expect_rejected(run({{1.0f, 0.0f, 1.0f}, {0, 0, 0}, 0}), q, "scale");
  expect_rejected(run({{1.0f, 1.0f, 1.0f}, {0, 200, 0}, 0}), q, "zero_point 200");
  squint::quantize<std::int8_t>({x.data(), s}, {q.data(), s}, per_channel_qparams{{1.0f, 1.0f, 1.0f, 1.0f}, {0, 0, 0, 0}, -1});
  EXPECT_EQ(q[0], 1);
}

TEST(QuantizeApiTest, FakeQuantizeAndRequantizeReject) {
  std::vector<float> x(4, 1.0f), y(4, 0.0f);
  EXPECT_THROW(squint::fake_quantize({x.data(), 4}, {y.data(), 4}, {1.0f, 0}, {5, 5}), squint::error);
  EXPECT_THROW(squint::fake_quantize({x.data(), 4}, {y.data(), 4}, {1.0f, 9}, {0, 7}), squint::error);
  EXPECT_EQ(y, std::vector<float>(4, 0.0f));
  std::vector<std::int32_t> acc{1, 2, 3, 4};
  std::vector<std::int8_t> q(4, sentinel);
  const shape s{2, 2};
  expect_rejected([&] { squint::requantize<std::int8_t>({acc.data(), s}, {q.data(), s}, {0.0f}, 0); }, q,
                  "multiplier");
  expect_rejected([&] { squint::requantize<std::int8_t>({acc.data(), s}, {q.data(), s}, {1.0f, 1.0f, 1.0f}, 0, 1); },
                  q, "3 multipliers");
  expect_rejected([&] { squint::requantize<std::int8_t>({acc.data(), s}, {q.data(), s}, {1.0f}, 300); }, q,
                  "zero_point 300");
  squint::requantize<std::int8_t>({acc.data(), s}, {q.data(), s}, {0.5f, 1.0f}, 0, 1);
  EXPECT_EQ(q, (std::vector<std::int8_t>{0, 2, 2, 4}));  // 0.5 -> 0, 1.5 -> 2 (half to even)
  std::vector<std::int8_t> f(4);
  squint::requantize_fixed_point<std::int8_t>({acc.data(), s}, {f.data(), s}, {squint::quantize_multiplier(0.5)}, 0);
  EXPECT_EQ(f, (std::vector<std::int8_t>{1, 1, 2, 2}));  // 0.5 -> 1, 1.5 -> 2 (half away from zero)
}

TEST(QuantizeApiTest, DynamicQuantizeSkipsNonFiniteInTheRange) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  const std::vector<float> x{0.0f, 2.5f, 3.5f, 255.0f, nan, inf, -inf};
  std::vector<std::uint8_t> q(x.size());
  const qparams p = squint::dynamic_quantize({x.data(), x.size()}, {q.data(), q.size()});
  EXPECT_EQ(p.scale, 1.0f);
  EXPECT_EQ(p.zero_point, 0);
  EXPECT_EQ(q, (std::vector<std::uint8_t>{0, 2, 4, 255, 0, 255, 0}));
  const std::vector<float> none{nan, nan};
  std::vector<std::uint8_t> z(2);
  EXPECT_EQ(squint::dynamic_quantize({none.data(), 2}, {z.data(), 2}).scale, std::numeric_limits<float>::epsilon());
}

}  // namespace

}  // namespace quantize_api_test

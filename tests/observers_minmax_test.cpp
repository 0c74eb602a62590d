// SPDX-License-Identifier: Apache-2.0
// observers_minmax_test.cpp: min-max and moving-average observers (PyTorch parity is in
// torch_vectors_test.cpp; this file covers the rules PyTorch leaves open).
#include "squint/observers/minmax.hpp"

#include <gtest/gtest.h>

#include <limits>
#include <vector>

#include "support/data.hpp"

namespace observers_minmax_test {

namespace {

using squint::granularity;
using squint::min_max_observer;
using squint::moving_average_observer;
using squint::quant_spec;
using squint::shape;

const float nan = std::numeric_limits<float>::quiet_NaN();
const float inf = std::numeric_limits<float>::infinity();

TEST(MinMaxObserverTest, TracksRunningRange) {
  min_max_observer<> o;
  const std::vector<float> a{-1.0f, 2.0f}, b{0.5f, 4.0f};
  o.observe({a.data(), 2});
  o.observe({b.data(), 2});
  EXPECT_EQ(o.min(), -1.0f);
  EXPECT_EQ(o.max(), 4.0f);
  EXPECT_EQ(o.count(), 4u);
  EXPECT_EQ(o.qparams(), squint::choose_qparams(-1.0f, 4.0f));
}

TEST(MinMaxObserverTest, NonFiniteValuesAreSkippedAndCounted) {
  min_max_observer<> o;
  const std::vector<float> x{nan, 1.0f, -2.0f, inf, -inf};
  o.observe({x.data(), x.size()});
  EXPECT_EQ(o.min(), -2.0f);
  EXPECT_EQ(o.max(), 1.0f);
  EXPECT_EQ(o.count(), 2u);
  EXPECT_EQ(o.nonfinite_count(), 3u);
  EXPECT_TRUE(std::isfinite(o.qparams().scale));
}

TEST(MinMaxObserverTest, EmptyAndDegenerateInputs) {
  min_max_observer<> o({squint::dtype::uint8, squint::qscheme::affine, false, true});
  EXPECT_EQ(o.qparams(), (squint::qparams{1.0f, 1}));  // PyTorch's (1, 0), clamped into [1, 255]
  o.observe({nullptr, 0});
  EXPECT_EQ(o.batches(), 0u);
  const std::vector<float> only_nan{nan, nan};
  o.observe({only_nan.data(), 2});
  EXPECT_EQ(o.qparams().scale, 1.0f);
  const std::vector<float> single{-0.731f};
  o.observe({single.data(), 1});
  EXPECT_EQ(o.qparams(), squint::choose_qparams(-0.731f, -0.731f, o.spec()));
  min_max_observer<> zeros;
  const std::vector<float> z(10, 0.0f);
  zeros.observe({z.data(), z.size()});
  EXPECT_EQ(zeros.qparams().scale, std::numeric_limits<float>::epsilon());
}

TEST(MinMaxObserverTest, MergeEqualsObservingEverything) {
  const auto x = squint_test::normal(300, 0.2f, 3.0f);
  min_max_observer<granularity::per_channel> all(quant_spec{}, 1), left(quant_spec{}, 1), right(quant_spec{}, 1);
  all.observe({x.data(), shape{30, 10}});
  left.observe({x.data(), shape{15, 10}});
  right.observe({x.data() + 150, shape{15, 10}});
  left.merge(right);
  EXPECT_EQ(left.min(), all.min());
  EXPECT_EQ(left.max(), all.max());
  EXPECT_EQ(left.count(), all.count());
  min_max_observer<granularity::per_channel> empty(quant_spec{}, 1);
  empty.merge(all);
  EXPECT_EQ(empty.qparams().scale, all.qparams().scale);
  min_max_observer<granularity::per_channel> other_axis(quant_spec{}, 0);
  EXPECT_THROW(left.merge(other_axis), squint::error);
}

TEST(MinMaxObserverTest, PerChannelRejectsChangedChannelCountUnchanged) {
  min_max_observer<granularity::per_channel> o(quant_spec{squint::dtype::int8, squint::qscheme::symmetric}, -1);
  const auto x = squint_test::normal(24);
  o.observe({x.data(), shape{4, 6}});
  const auto before = o.qparams();
  EXPECT_THROW(o.observe({x.data(), shape{6, 4}}), squint::error);
  EXPECT_THROW(o.observe({x.data(), shape{}}), squint::error);  // rank 0 has no axis -1
  EXPECT_EQ(o.qparams().scale, before.scale);
  EXPECT_EQ(o.batches(), 1u);
  ASSERT_EQ(before.channels(), 6u);
  EXPECT_EQ(before.axis, -1);
  for (std::size_t c = 0; c < 6; ++c) EXPECT_EQ(before.zero_point[c], 0);
  o.reset();
  EXPECT_EQ(o.count(), 0u);
  o.observe({x.data(), shape{6, 4}});
  EXPECT_EQ(o.qparams().channels(), 4u);
}

TEST(MovingAverageObserverTest, FirstBatchSetsLaterBatchesMove) {
  moving_average_observer<> o(quant_spec{}, 0.5f);
  const std::vector<float> a{-2.0f, 2.0f}, b{-4.0f, 6.0f};
  o.observe({a.data(), 2});
  EXPECT_EQ(o.min(), -2.0f);
  o.observe({b.data(), 2});
  EXPECT_EQ(o.min(), -3.0f);
  EXPECT_EQ(o.max(), 4.0f);
  EXPECT_THROW(moving_average_observer<>(quant_spec{}, 0.0f), squint::error);
  EXPECT_THROW(moving_average_observer<>(quant_spec{}, 1.5f), squint::error);
}

TEST(MovingAverageObserverTest, MergeWeighsByBatches) {
  moving_average_observer<> a(quant_spec{}, 0.5f), b(quant_spec{}, 0.5f), c(quant_spec{}, 0.25f);
  const std::vector<float> x{-1.0f, 1.0f}, y{-4.0f, 4.0f};
  a.observe({x.data(), 2});
  a.observe({x.data(), 2});
  a.observe({x.data(), 2});
  b.observe({y.data(), 2});
  a.merge(b);
  EXPECT_FLOAT_EQ(a.min(), (-1.0f * 3 - 4.0f) / 4);
  EXPECT_EQ(a.batches(), 4u);
  EXPECT_THROW(a.merge(c), squint::error);
}

}  // namespace

}  // namespace observers_minmax_test

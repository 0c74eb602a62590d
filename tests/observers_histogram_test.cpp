// SPDX-License-Identifier: Apache-2.0
// observers_histogram_test.cpp: the growing histogram, the four threshold searches, the observer.
#include "squint/observers/histogram.hpp"
#include "squint/observers/onnxruntime_histogram.hpp"
#include "squint/reference/calibration.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "support/data.hpp"

namespace observers_histogram_test {

namespace {

using squint::calibration_method;
using squint::granularity;
using squint::histogram;
using squint::histogram_observer;
using squint::quant_spec;
using squint::shape;
namespace cal = squint::calibration;

TEST(HistogramTest, GrowingMergesBinsExactly) {
  // Dyadic values keep every edge exact, so the grown histogram must equal one built directly
  // on its final layout: no count may move to a neighbouring bin.
  std::vector<double> values;
  for (int i = 0; i < 4096; ++i) values.push_back(static_cast<double>((i * 37) % 512) / 8.0 - 3.0);
  histogram grown(256);
  std::size_t done = 0;
  for (std::size_t batch : {64u, 1000u, 32u, 3000u}) {
    double lo = values[done], hi = values[done];
    for (std::size_t i = done; i < done + batch && i < values.size(); ++i) {
      lo = std::min(lo, values[i]);
      hi = std::max(hi, values[i]);
    }
    grown.cover(lo, hi);
    for (std::size_t i = done; i < done + batch && i < values.size(); ++i) grown.add(values[i]);
    done += batch;
  }
  ASSERT_EQ(grown.total(), values.size());
  histogram direct(256);
  direct.cover(grown.lo(), grown.hi());
  ASSERT_EQ(direct.width(), grown.width());
  for (double v : values) direct.add(v);
  EXPECT_EQ(direct.counts(), grown.counts());
  EXPECT_LE(grown.lo(), -3.0);
  EXPECT_GE(grown.hi(), 60.875);
}

TEST(HistogramTest, ScalarBinningIsTheDefinition) {
  // The binning kernel (any ISA) against the definition, floor((v - lo) / width) clamped.
  const auto x = squint_test::normal(5000, 0.0f, 2.0f, 4);
  histogram h(256);
  h.cover(-3.0, 3.0);
  h.add(x.data(), x.size(), x.size(), false);
  std::vector<std::uint64_t> expect(256);
  for (float v : x) {
    const double p = std::floor((static_cast<double>(v) + 3.0) / h.width());
    ++expect[static_cast<std::size_t>(std::min(std::max(p, 0.0), 255.0))];
  }
  EXPECT_EQ(h.counts(), expect);
}

TEST(HistogramTest, SingleValueThenGrowth) {
  histogram h(256);
  h.cover(2.0, 2.0);
  h.add(2.0, 5);
  EXPECT_EQ(h.width(), 0.0);
  h.cover(-2.0, 6.0);
  h.add(-2.0);
  h.add(6.0);
  EXPECT_EQ(h.total(), 7u);
  EXPECT_EQ(h.lo(), -2.0);
  EXPECT_EQ(h.counts()[128], 5u);  // 2.0 is the middle of [-2, 6]
  EXPECT_EQ(h.counts()[255], 1u);  // the top edge belongs to the last bin
}

TEST(CalibrationTest, EntropyKeepsTheFullRangeOfUniformData) {
  const std::vector<std::uint64_t> uniform(2048, 100);
  EXPECT_EQ(cal::entropy_threshold(uniform, 0.5, 128), 2048 * 0.5);
}

TEST(CalibrationTest, EntropyClipsAFarTail) {
  std::vector<std::uint64_t> counts(2048, 0);
  for (std::size_t i = 0; i < 400; ++i) counts[i] = 100000 / (1 + i / 40);  // decaying body
  counts[2047] = 1;                                                        // a lone outlier
  const double amax = cal::entropy_threshold(counts, 1.0, 128);
  EXPECT_GE(amax, 128.0);
  EXPECT_LE(amax, 600.0);
}

// pytorch-quantization and ONNX Runtime return edges[idx], the left edge of the bin where the
// cumulative share reaches p: 100 % stays below the top edge.
TEST(CalibrationTest, PercentileUsesTheLeftEdge) {
  const std::vector<std::uint64_t> counts(100, 1);
  EXPECT_EQ(cal::percentile_threshold(counts, 2.0, 50.0), 98.0);
  EXPECT_EQ(cal::percentile_threshold(counts, 2.0, 100.0), 198.0);
  EXPECT_EQ(cal::percentile_threshold(counts, 2.0, 0.5), 0.0);
  EXPECT_EQ(cal::percentile_threshold(std::vector<std::uint64_t>(8, 0), 1.0, 50.0), 0.0);
}

TEST(CalibrationTest, MseBalancesClippingAgainstResolution) {
  std::vector<std::uint64_t> counts(2048, 0);
  for (std::size_t i = 0; i < 256; ++i) counts[i] = 1000000;
  counts[2047] = 1;
  const double amax = cal::mse_threshold(counts, 1.0, 128, false);
  EXPECT_GE(amax, 128.0);
  EXPECT_LT(amax, 1000.0);
  counts[2047] = 1000000000;  // a heavy tail must be kept
  EXPECT_GT(cal::mse_threshold(counts, 1.0, 128, false), 2000.0);
}

// The prefix-sum searches pick exactly the plain searches' thresholds (reference/calibration.hpp)
// on histograms of every shape: smooth, heavy-tailed, uniform, a few spikes, one full bin, sparse
// weights, tiny and huge counts, ties.
TEST(CalibrationTest, FastSearchesEqualThePlainSearches) {
  std::mt19937_64 rng(11);
  for (int t = 0; t < 48; ++t) {
    const std::size_t nbins = t % 4 == 0 ? 512 : 256 + 2 * (rng() % 200);
    std::vector<std::uint64_t> counts(nbins, 0);
    const std::size_t samples = t % 3 == 0 ? 1 + rng() % 300 : 1 + rng() % 200000;
    std::normal_distribution<double> normal(0.0, static_cast<double>(nbins) / (2.0 + static_cast<double>(rng() % 8)));
    std::cauchy_distribution<double> cauchy(0.0, static_cast<double>(nbins) / 50.0);
    for (std::size_t s = 0; s < samples; ++s) {
      const int kind = t % 6;
      const double v = kind == 0   ? std::fabs(normal(rng))
                       : kind == 1 ? std::fabs(cauchy(rng))
                       : kind == 2 ? static_cast<double>(rng() % nbins)
                       : kind == 3 ? static_cast<double>(rng() % 5) * 100.0
                       : kind == 4 ? static_cast<double>(nbins - 1)
                                   : std::fabs(normal(rng)) * 0.2;
      ++counts[std::min(nbins - 1, static_cast<std::size_t>(v))];
    }
    const double width = 0.001 * static_cast<double>(1 + rng() % 100);
    for (std::size_t levels : {64u, 100u, 128u, 256u}) {
      EXPECT_EQ(cal::entropy_threshold(counts, width, levels), squint::reference::entropy_threshold(counts, width, levels))
          << "case " << t << " levels " << levels;
      for (bool unsigned_data : {false, true})
        EXPECT_EQ(cal::mse_threshold(counts, width, levels, unsigned_data),
                  squint::reference::mse_threshold(counts, width, levels, unsigned_data))
            << "case " << t << " levels " << levels;
    }
  }
}

TEST(CalibrationTest, L2KeepsUniformAndDropsSparseTails) {
  const std::vector<std::uint64_t> uniform(2048, 1000);
  const auto full = cal::l2_range(uniform, -1.0, 1.0 / 1024, 256);
  EXPECT_NEAR(full.first, -1.0, 0.01);
  EXPECT_NEAR(full.second, 1.0, 0.01);
  std::vector<std::uint64_t> tailed(2048, 0);
  for (std::size_t i = 0; i < 256; ++i) tailed[i] = 100000;
  tailed[2047] = 1;
  const auto clipped = cal::l2_range(tailed, 0.0, 1.0, 256);
  EXPECT_EQ(clipped.first, 0.0);
  EXPECT_LT(clipped.second, 2048.0);
}

TEST(HistogramObserverTest, MethodsClipOutliersOnGaussianData) {
  auto x = squint_test::normal(200000, 0.0f, 1.0f, 11);
  x[17] = 60.0f;
  for (auto method : {calibration_method::entropy, calibration_method::percentile}) {
    histogram_observer<> o(quant_spec{squint::dtype::int8, squint::qscheme::symmetric}, {method});
    o.observe({x.data(), 100000});
    o.observe({x.data() + 100000, 100000});
    const auto [lo, hi] = o.clip_range();
    EXPECT_GT(hi, 2.5f) << static_cast<int>(method);
    EXPECT_LT(hi, 8.0f) << static_cast<int>(method);
    EXPECT_LT(lo, -2.5f);
    EXPECT_GE(lo, -hi);  // [max(min, -amax), min(max, amax)]
    const auto p = o.qparams();
    EXPECT_EQ(p.zero_point, 0);
    EXPECT_EQ(p.scale, squint::choose_qparams(lo, hi, o.spec()).scale);
  }
}

TEST(HistogramObserverTest, PostReluDataUsesTheWholeAffineRange) {
  auto x = squint_test::normal(50000, 1.0f, 1.0f, 5);
  for (float& v : x) v = std::max(v, 0.0f);
  for (auto method : {calibration_method::entropy, calibration_method::percentile, calibration_method::mse,
                      calibration_method::l2}) {
    histogram_observer<> o(quant_spec{}, {method});
    o.observe({x.data(), x.size()});
    EXPECT_EQ(o.clip_range().first, 0.0f);
    EXPECT_EQ(o.qparams().zero_point, 0);
    EXPECT_GT(o.clip_range().second, 2.0f);
  }
}

// PyTorch's HistogramObserver searches onto 2^bits bins whatever the range: reduce_range changes
// the qparams' code range but not the clipping range the L2 search picks.
TEST(HistogramObserverTest, L2SearchUsesTwoToTheBitsBinsUnderReduceRange) {
  auto x = squint_test::normal(20000, 0.3f, 1.0f, 9);
  for (int i = 0; i < 20; ++i) x.push_back(8.0f + static_cast<float>(i));
  quant_spec reduced;
  reduced.reduce_range = true;
  histogram_observer<> full(quant_spec{}, {calibration_method::l2}), half(reduced, {calibration_method::l2});
  full.observe({x.data(), x.size()});
  half.observe({x.data(), x.size()});
  EXPECT_EQ(full.clip_range(), half.clip_range());
  const auto [lo, hi] = half.clip_range();
  EXPECT_EQ(half.qparams(), squint::choose_qparams(lo, hi, reduced));
}

TEST(HistogramObserverTest, NonFiniteSkippedEmptyDefaults) {
  histogram_observer<> o;
  EXPECT_EQ(o.qparams(), (squint::qparams{1.0f, 0}));
  const std::vector<float> x{std::numeric_limits<float>::quiet_NaN(), 1.0f, -1.0f,
                             std::numeric_limits<float>::infinity()};
  o.observe({x.data(), x.size()});
  EXPECT_EQ(o.count(), 2u);
  EXPECT_EQ(o.nonfinite_count(), 2u);
  EXPECT_TRUE(std::isfinite(o.qparams().scale));
  o.reset();
  EXPECT_EQ(o.channels(), 0u);
  const std::vector<float> c(5, 3.25f);
  o.observe({c.data(), c.size()});
  EXPECT_GT(o.qparams().scale, 0.0f);
}

TEST(HistogramObserverTest, PerChannelKeepsChannelsApart) {
  auto x = squint_test::normal(4000, 0.0f, 1.0f, 9);
  for (std::size_t i = 0; i < x.size(); i += 2) x[i] *= 10.0f;  // channel 0 of axis 1 is 10x wider
  histogram_observer<granularity::per_channel> o(quant_spec{squint::dtype::int8, squint::qscheme::symmetric}, 1,
                                                  {calibration_method::percentile, 2048, 99.9});
  o.observe({x.data(), shape{2000, 2}});
  const auto p = o.qparams();
  ASSERT_EQ(p.channels(), 2u);
  EXPECT_GT(p.scale[0] / p.scale[1], 7.0f);
  EXPECT_LT(p.scale[0] / p.scale[1], 13.0f);
  EXPECT_THROW(o.observe({x.data(), shape{1000, 4}}), squint::error);
}

TEST(HistogramObserverTest, MergeOfAlignedObserversIsExact) {
  auto x = squint_test::normal(20000, 0.0f, 1.0f, 21);
  x[0] = x[10000] = -5.0f;  // both halves start on the same range, hence the same layout
  x[1] = x[10001] = 5.0f;
  histogram_observer<> all({}, {calibration_method::entropy}), a({}, {calibration_method::entropy}),
      b({}, {calibration_method::entropy});
  a.observe({x.data(), 10000});
  b.observe({x.data() + 10000, 10000});
  a.merge(b);
  all.observe({x.data(), 10000});
  all.observe({x.data() + 10000, 10000});
  EXPECT_EQ(a.histogram().counts(), all.histogram().counts());
  EXPECT_EQ(a.qparams(), all.qparams());
  histogram_observer<> other({}, {calibration_method::percentile});
  EXPECT_THROW(a.merge(other), squint::error);
}

// PyTorch's and pytorch-quantization's running histograms depend on the order of the batches:
// merging them is refused (and changes nothing); pytorch-quantization's per-channel weight
// histograms are made from all of a channel's values at the end, so those merge exactly.
TEST(HistogramObserverTest, ProfileHistogramsMergeOnlyWhereOrderCannotMatter) {
  auto x = squint_test::normal(4000, 0.0f, 1.0f, 23);
  histogram_observer<> l2({}, {calibration_method::l2}), l2_other({}, {calibration_method::l2});
  l2.observe({x.data(), 2000});
  l2_other.observe({x.data() + 2000, 2000});
  const squint::qparams before = l2.qparams();
  EXPECT_THROW(l2.merge(l2_other), squint::error);
  EXPECT_EQ(l2.qparams(), before);
  EXPECT_THROW(l2.histogram(), squint::error);  // it keeps PyTorch's float32 histogram instead

  quant_spec trt{squint::dtype::int8, squint::qscheme::symmetric};
  trt.profile = squint::calibration_profile::tensorrt;
  histogram_observer<> t(trt, {calibration_method::entropy}), t_other(trt, {calibration_method::entropy});
  t.observe({x.data(), 2000});
  EXPECT_THROW(t.merge(t_other), squint::error);

  histogram_observer<granularity::per_channel> w(trt, 0, {calibration_method::mse}),
      w_b(trt, 0, {calibration_method::mse});
  w.observe({x.data(), shape{4, 1000}});
  std::vector<float> rest;
  for (std::size_t c = 0; c < 4; ++c) rest.insert(rest.end(), x.begin() + c * 1000 + 400, x.begin() + (c + 1) * 1000);
  std::vector<float> first;
  for (std::size_t c = 0; c < 4; ++c) first.insert(first.end(), x.begin() + c * 1000, x.begin() + c * 1000 + 400);
  histogram_observer<granularity::per_channel> split(trt, 0, {calibration_method::mse});
  split.observe({first.data(), shape{4, 400}});
  w_b.observe({rest.data(), shape{4, 600}});
  split.merge(w_b);
  const auto p = w.qparams(), q = split.qparams();
  EXPECT_EQ(p.scale, q.scale);
  EXPECT_EQ(p.zero_point, q.zero_point);
}

// pytorch-quantization's and ONNX Runtime's histograms grow by bins of their first batch's
// width: a tiny first range then a wide (or near-FLT_MAX) batch would need billions of bins, or
// an edge past float32. squint refuses with squint::error and changes nothing.
TEST(HistogramObserverTest, RunawayProfileGrowthIsRefused) {
  quant_spec trt{squint::dtype::int8, squint::qscheme::symmetric};
  trt.profile = squint::calibration_profile::tensorrt;
  const std::vector<float> narrow{1.0f, 1.000001f, 0.5f}, fits{10.0f}, wide{1e6f, -3.0f}, huge{3.4e38f};
  for (bool torch_hist : {true, false}) {
    squint::histogram_options options{calibration_method::percentile};
    options.tensorrt_torch_hist = torch_hist;
    histogram_observer<> o(trt, options);
    o.observe({narrow.data(), narrow.size()});
    o.observe({fits.data(), fits.size()});  // some 10^4 bins of the first width: grown
    const squint::qparams before = o.qparams();
    for (const std::vector<float>* x : {&wide, &huge}) {
      EXPECT_THROW(o.observe({x->data(), x->size()}), squint::error) << torch_hist;
      EXPECT_EQ(o.count(), 4u);
      EXPECT_EQ(o.qparams(), before);
    }
  }
  quant_spec ort;
  ort.profile = squint::calibration_profile::onnxruntime;
  squint::onnxruntime_histogram_observer r(ort);
  r.observe({narrow.data(), narrow.size()});
  r.end_call();
  const auto range = r.clip_range();
  r.observe({wide.data(), wide.size()});
  EXPECT_THROW(r.end_call(), squint::error);  // 6.4e7 bins of the first call's stride
  EXPECT_EQ(r.count(), 5u);                   // the call's values stay pending
  EXPECT_THROW(r.qparams(), squint::error);
  r.reset();
  r.observe({narrow.data(), narrow.size()});
  r.end_call();
  EXPECT_EQ(r.clip_range(), range);
}

TEST(HistogramObserverTest, InvalidOptionsAreRejected) {
  EXPECT_THROW(histogram_observer<>({}, {calibration_method::entropy, 255}), squint::error);
  EXPECT_THROW(histogram_observer<>({}, {calibration_method::entropy, 128}), squint::error);
  EXPECT_THROW(histogram_observer<>({}, {calibration_method::percentile, 2048, 0.0}), squint::error);
  EXPECT_THROW(histogram_observer<>({}, {calibration_method::percentile, 2048, 100.5}), squint::error);
}

}  // namespace

}  // namespace observers_histogram_test

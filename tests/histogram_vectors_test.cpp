// SPDX-License-Identifier: Apache-2.0
// histogram_vectors_test.cpp: histogram_observer under the pytorch profile (L2) and the tensorrt
// profile (entropy, percentile, MSE; per tensor and per channel) against
// tests/data/histogram_vectors.txt, made by tests/data/make_histogram_vectors.py from ports of
// PyTorch's HistogramObserver and pytorch-quantization's HistogramCalibrator run on torch's own
// operators: the same range (or amax), scale bits and zero point on every case.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "squint/observers/histogram.hpp"
#include "squint/observers/torch.hpp"
#include "support/tokens.hpp"

namespace histogram_vectors_test {

namespace {

using squint::calibration_method;
using squint::calibration_profile;
using squint::qparams;
using squint::quant_spec;
using squint_test::tokens;

float bits(tokens& t) {
  const auto b = static_cast<std::uint32_t>(std::stoul(t.word(), nullptr, 16));
  float v;
  std::memcpy(&v, &b, sizeof v);
  return v;
}

std::vector<std::vector<float>> batches(tokens& t) {
  std::vector<std::vector<float>> out(t.count());
  for (auto& b : out) {
    b.resize(t.count());
    for (float& v : b) v = bits(t);
  }
  return out;
}

void expect_word(tokens& t, const char* w) {
  if (t.word() != w) throw std::runtime_error(std::string("histogram vectors: expected '") + w + "'");
}

calibration_method method_of(const std::string& m) {
  return m == "entropy" ? calibration_method::entropy
         : m == "percentile" ? calibration_method::percentile
                             : calibration_method::mse;
}

std::vector<std::string> records_of(const char* kind) {
  std::vector<std::string> out;
  for (const std::string& r : squint_test::records("histogram_vectors.txt"))
    if (r.compare(0, r.find(' '), kind) == 0) out.push_back(r);
  return out;
}

/// FNV-1a 64 of the float32 bits, little-endian bytes.
std::uint64_t fnv(const std::vector<float>& v) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (float x : v) {
    std::uint32_t b;
    std::memcpy(&b, &x, sizeof b);
    for (int k = 0; k < 4; ++k) h = (h ^ ((b >> (8 * k)) & 0xFFu)) * 0x100000001b3ull;
  }
  return h;
}

}  // namespace

// torch's vectorized linspace and arange, whose roundings depend on its vector width and, above
// 32768 points, its thread split: every bit of every point.
TEST(HistogramVectorsTest, TorchLinspaceAndArangeBitExact) {
  const auto linspaces = records_of("linspace"), aranges = records_of("arange");
  ASSERT_GE(linspaces.size(), 20u);
  ASSERT_GE(aranges.size(), 20u);
  for (const std::string& r : linspaces) {
    tokens t(r);
    t.word();
    const float start = bits(t), end = bits(t);
    const std::size_t steps = t.count();
    const std::uint64_t expect = std::stoull(t.word(), nullptr, 16);
    EXPECT_EQ(fnv(squint::detail::torch_linspace(start, end, steps)), expect) << r;
  }
  for (const std::string& r : aranges) {
    tokens t(r);
    t.word();
    const float end = bits(t), step = bits(t);
    const std::size_t size = t.count();
    const std::uint64_t expect = std::stoull(t.word(), nullptr, 16);
    const std::vector<float> got = squint::detail::torch_arange(end, step);
    EXPECT_EQ(got.size(), size) << r;
    EXPECT_EQ(fnv(got), expect) << r;
  }
}

// PyTorch's HistogramObserver: histc binning, growth through 16 sub-bins, the L2 search and the
// float32 range.
TEST(HistogramVectorsTest, PytorchL2RangeBitExact) {
  const auto records = records_of("l2");
  ASSERT_GE(records.size(), 90u);
  for (std::size_t r = 0; r < records.size(); ++r) {
    tokens t(records[r]);
    t.word();
    quant_spec spec;
    spec.type = t.word() == "int8" ? squint::dtype::int8 : squint::dtype::uint8;
    spec.scheme = t.word() == "symmetric" ? squint::qscheme::symmetric : squint::qscheme::affine;
    spec.reduce_range = t.integer() != 0;
    squint::histogram_options options;
    options.method = calibration_method::l2;
    options.bins = t.count();
    squint::histogram_observer<> o(spec, options);
    for (const auto& b : batches(t)) o.observe({b.data(), b.size()});
    expect_word(t, "range");
    const float lo = bits(t), hi = bits(t);
    expect_word(t, "expect");
    const qparams expect{bits(t), static_cast<std::int32_t>(t.integer())};
    const auto range = o.clip_range();
    EXPECT_EQ(range.first, lo) << "case " << r;
    EXPECT_EQ(range.second, hi) << "case " << r;
    EXPECT_EQ(o.qparams(), expect) << "case " << r;
  }
}

// pytorch-quantization's HistogramCalibrator: histc of |x| with linspace edges, growth by arange,
// and its entropy, percentile and MSE amax; and its numpy path (torch_hist=False).
TEST(HistogramVectorsTest, TensorRtAmaxBitExact) {
  for (const char* kind : {"tensorrt", "tensorrt_numpy"}) {
    const auto records = records_of(kind);
    ASSERT_GE(records.size(), std::string(kind) == "tensorrt" ? 130u : 40u) << kind;
    for (std::size_t r = 0; r < records.size(); ++r) {
      tokens t(records[r]);
      t.word();
      squint::histogram_options options;
      options.method = method_of(t.word());
      options.tensorrt_torch_hist = std::string(kind) == "tensorrt";
      quant_spec spec{t.word() == "int8" ? squint::dtype::int8 : squint::dtype::uint8, squint::qscheme::symmetric};
      spec.profile = calibration_profile::tensorrt;
      spec.reduce_range = t.integer() != 0;
      options.bins = t.count();
      options.percentile = std::strtod(t.word().c_str(), nullptr);
      squint::histogram_observer<> o(spec, options);
      for (const auto& b : batches(t)) o.observe({b.data(), b.size()});
      expect_word(t, "amax");
      const float amax = bits(t);
      expect_word(t, "expect");
      const qparams expect{bits(t), static_cast<std::int32_t>(t.integer())};
      EXPECT_EQ(o.clip_range().second, amax) << kind << " case " << r << ": " << records[r].substr(0, 40);
      EXPECT_EQ(o.qparams(), expect) << kind << " case " << r << ": " << records[r].substr(0, 40);
    }
  }
}

// calibrate_weights: per channel, np.histogram of |w_c| on [0, max |w_c|], percentile or MSE.
TEST(HistogramVectorsTest, TensorRtPerChannelWeightsBitExact) {
  const auto records = records_of("tensorrt_weights");
  ASSERT_GE(records.size(), 20u);
  for (std::size_t r = 0; r < records.size(); ++r) {
    tokens t(records[r]);
    t.word();
    squint::histogram_options options;
    options.method = method_of(t.word());
    quant_spec spec{t.word() == "int8" ? squint::dtype::int8 : squint::dtype::uint8, squint::qscheme::symmetric};
    spec.profile = calibration_profile::tensorrt;
    options.bins = t.count();
    options.percentile = std::strtod(t.word().c_str(), nullptr);
    const std::size_t channels = t.count(), per_channel = t.count();
    std::vector<float> w(channels * per_channel);
    for (float& v : w) v = bits(t);
    expect_word(t, "expect");
    squint::histogram_observer<squint::granularity::per_channel> o(spec, 0, options);
    // In two batches along the other axis: the channel's values are kept until qparams().
    const std::size_t half = per_channel / 2;
    std::vector<float> first, second;
    for (std::size_t c = 0; c < channels; ++c) {
      first.insert(first.end(), w.begin() + c * per_channel, w.begin() + c * per_channel + half);
      second.insert(second.end(), w.begin() + c * per_channel + half, w.begin() + (c + 1) * per_channel);
    }
    if (half > 0) o.observe({first.data(), squint::shape{channels, half}});
    o.observe({second.data(), squint::shape{channels, per_channel - half}});
    const squint::per_channel_qparams p = o.qparams();
    ASSERT_EQ(p.channels(), channels);
    for (std::size_t c = 0; c < channels; ++c) {
      const qparams expect{bits(t), static_cast<std::int32_t>(t.integer())};
      EXPECT_EQ(p[c], expect) << "case " << r << " channel " << c;
    }
  }
}

}  // namespace histogram_vectors_test

// SPDX-License-Identifier: Apache-2.0
// profile_vectors_test.cpp: the onnxruntime and tensorrt calibration profiles against
// tests/data/profile_vectors.txt, made by tests/data/make_profile_vectors.py from numpy ports of
// ONNX Runtime's MinMaxCalibrater + compute_scale_zp and pytorch-quantization's MaxCalibrator +
// exported scale: the same scale bits and zero point on every case.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "squint/observers/minmax.hpp"
#include "squint/observers/onnxruntime_histogram.hpp"
#include "support/tokens.hpp"

namespace profile_vectors_test {

namespace {

using squint::calibration_profile;
using squint::qparams;
using squint::quant_spec;
using squint_test::tokens;

struct profile_case {
  std::string observer;
  quant_spec spec;
  std::vector<std::vector<float>> batches;
  qparams expect;
};

profile_case parse(tokens& t) {
  profile_case c;
  const std::string profile = t.word();
  c.spec.profile = profile == "onnxruntime" ? calibration_profile::onnxruntime : calibration_profile::tensorrt;
  c.observer = t.word();
  c.spec.type = t.word() == "int8" ? squint::dtype::int8 : squint::dtype::uint8;
  c.spec.scheme = t.word() == "symmetric" ? squint::qscheme::symmetric : squint::qscheme::affine;
  c.spec.reduce_range = t.integer() != 0;
  c.spec.symmetric_range = t.integer() != 0;
  const std::string mrr = t.word();
  if (mrr != "none") c.spec.min_real_range = static_cast<float>(std::strtod(mrr.c_str(), nullptr));
  const std::size_t batches = t.count();
  for (std::size_t b = 0; b < batches; ++b) c.batches.push_back(t.reals(t.count()));
  if (t.word() != "expect") throw std::runtime_error("profile vectors: expected 'expect'");
  c.expect.scale = t.real();
  c.expect.zero_point = static_cast<std::int32_t>(t.integer());
  return c;
}

qparams calibrate(const profile_case& c) {
  // TensorRT's MaxCalibrator keeps max |x|: min-max's range holds it (amax = max(|min|, |max|)).
  if (c.observer == "batch_mean") {
    squint::batch_mean_observer<> o(c.spec);
    for (const auto& b : c.batches) o.observe({b.data(), b.size()});
    return o.qparams();
  }
  squint::min_max_observer<> o(c.spec);
  for (const auto& b : c.batches) o.observe({b.data(), b.size()});
  return o.qparams();
}

TEST(ProfileVectorsTest, OnnxRuntimeAndTensorRtMinMaxCalibrationBitExact) {
  const auto records = squint_test::records("profile_vectors.txt");
  ASSERT_GE(records.size(), 400u);
  std::size_t checked = 0;
  for (std::size_t r = 0; r < records.size(); ++r) {
    if (records[r].rfind("ort_histogram", 0) == 0) continue;
    tokens t(records[r]);
    const profile_case c = parse(t);
    const qparams got = calibrate(c);
    EXPECT_EQ(got.scale, c.expect.scale) << "case " << r << ": " << records[r].substr(0, 80);
    EXPECT_EQ(got.zero_point, c.expect.zero_point) << "case " << r << ": " << records[r].substr(0, 80);
    ++checked;
  }
  EXPECT_GE(checked, 400u);
}

// ONNX Runtime's entropy and percentile calibrators (numpy histogram, ORT's searches, scipy's
// entropy): the same clipping range and the same scale and zero point on every case.
// With ort_histogram_calls each batch is its own collect_data call (end_call() after it): ORT's
// merge_histogram widening and collect_absolute_value's appended edges between calls.
TEST(ProfileVectorsTest, OnnxRuntimeHistogramCalibrationBitExact) {
  const auto records = squint_test::records("profile_vectors.txt");
  std::size_t checked = 0, calls_checked = 0;
  for (std::size_t r = 0; r < records.size(); ++r) {
    if (records[r].rfind("ort_histogram", 0) != 0) continue;
    tokens t(records[r]);
    const bool calls = t.word() == "ort_histogram_calls";
    squint::onnxruntime_histogram_options options;
    options.search = t.word() == "entropy" ? squint::onnxruntime_histogram_options::method::entropy
                                           : squint::onnxruntime_histogram_options::method::percentile;
    options.bins = t.count();
    options.quantized_bins = t.count();
    options.percentile = std::strtod(t.word().c_str(), nullptr);
    options.symmetric = t.integer() != 0;
    quant_spec spec;
    spec.profile = calibration_profile::onnxruntime;
    spec.type = t.word() == "int8" ? squint::dtype::int8 : squint::dtype::uint8;
    spec.scheme = t.word() == "symmetric" ? squint::qscheme::symmetric : squint::qscheme::affine;
    squint::onnxruntime_histogram_observer o(spec, options);
    const std::size_t batches = t.count();
    for (std::size_t b = 0; b < batches; ++b) {
      const auto x = t.reals(t.count());
      o.observe({x.data(), x.size()});
      if (calls) o.end_call();
    }
    if (t.word() != "range") throw std::runtime_error("profile vectors: expected 'range'");
    const float lo = t.real(), hi = t.real();
    if (t.word() != "expect") throw std::runtime_error("profile vectors: expected 'expect'");
    const qparams expect{t.real(), static_cast<std::int32_t>(t.integer())};
    const auto range = o.clip_range();
    EXPECT_EQ(range.first, lo) << "case " << r << ": " << records[r].substr(0, 60);
    EXPECT_EQ(range.second, hi) << "case " << r << ": " << records[r].substr(0, 60);
    EXPECT_EQ(o.qparams(), expect) << "case " << r << ": " << records[r].substr(0, 60);
    ++checked;
    calls_checked += calls ? 1 : 0;
  }
  EXPECT_GE(checked, 200u);
  EXPECT_GE(calls_checked, 50u);
}

// end_call() without new values changes nothing; observers that ended calls cannot merge (the
// result depends on the calls' order), and reset() forgets the calls.
TEST(ProfileVectorsTest, OnnxRuntimeCallsKeepTheirOrder) {
  quant_spec spec;
  spec.profile = calibration_profile::onnxruntime;
  squint::onnxruntime_histogram_options options;
  options.bins = 256;
  const std::vector<float> small{-1.0f, 0.5f, 0.25f, 1.0f}, wide{-4.0f, 3.0f, 0.5f};
  squint::onnxruntime_histogram_observer a(spec, options), b(spec, options), one_call(spec, options);
  a.observe({small.data(), small.size()});
  a.end_call();
  const auto before = a.clip_range();
  a.end_call();
  EXPECT_EQ(a.clip_range(), before);
  a.observe({wide.data(), wide.size()});
  one_call.observe({small.data(), small.size()});
  one_call.observe({wide.data(), wide.size()});
  EXPECT_EQ(a.count(), one_call.count());
  b.observe({wide.data(), wide.size()});
  EXPECT_THROW(a.merge(b), squint::error);
  EXPECT_THROW(b.merge(a), squint::error);
  EXPECT_EQ(a.count(), 7u);
  a.reset();
  EXPECT_EQ(a.count(), 0u);
  a.merge(b);
  EXPECT_EQ(a.clip_range(), b.clip_range());
}

// Each channel of a per-channel observer gets what a per-tensor one computes on its data, in
// every profile.
TEST(ProfileVectorsTest, PerChannelEqualsPerTensorInEveryProfile) {
  const std::vector<float> x{-3.0f, 0.5f, 2.0f, 7.5f, 0.0f, 0.0f, -1e-9f, 2e-9f, 4.0f, 4.0f, 4.0f, 4.0f};
  for (calibration_profile profile :
       {calibration_profile::pytorch, calibration_profile::tensorrt, calibration_profile::onnxruntime})
    for (squint::dtype type : {squint::dtype::int8, squint::dtype::uint8}) {
      quant_spec spec{type, squint::qscheme::symmetric};
      spec.profile = profile;
      squint::min_max_observer<squint::granularity::per_channel> all(spec, 0);
      all.observe({x.data(), squint::shape{4, 3}});
      const squint::per_channel_qparams p = all.qparams();
      for (std::size_t c = 0; c < 4; ++c) {
        squint::min_max_observer<> one(spec);
        one.observe({x.data() + 3 * c, 3});
        EXPECT_EQ(p[c], one.qparams()) << squint::name(profile) << " channel " << c;
      }
    }
}

// The conventions that tell the profiles apart, pinned.
TEST(ProfileVectorsTest, ProfileConventions) {
  quant_spec ort;
  ort.profile = calibration_profile::onnxruntime;
  EXPECT_EQ(squint::choose_qparams(0.0f, 0.0f, ort), (qparams{1.0f, 0}));  // PyTorch: eps, 0
  EXPECT_EQ(squint::choose_qparams(0.0f, 0.0f).scale, std::numeric_limits<float>::epsilon());
  EXPECT_EQ(squint::choose_qparams(0.0f, 1e-9f, ort).scale, static_cast<float>(1e-9f / 255.0));  // no eps floor
  ort.scheme = squint::qscheme::symmetric;
  EXPECT_EQ(squint::range_of(ort), (squint::quant_range{0, 254}));
  EXPECT_EQ(squint::choose_qparams(-1.0f, 2.0f, ort).zero_point, 127);
  ort.type = squint::dtype::int8;
  ort.reduce_range = true;
  EXPECT_EQ(squint::range_of(ort), (squint::quant_range{-64, 64}));
  quant_spec trt{squint::dtype::int8, squint::qscheme::symmetric};
  trt.profile = calibration_profile::tensorrt;
  EXPECT_EQ(squint::range_of(trt), (squint::quant_range{-127, 127}));
  EXPECT_EQ(squint::choose_qparams(-1.0f, 2.54f, trt), (qparams{2.54f / 127.0f, 0}));
  EXPECT_EQ(squint::choose_qparams(0.0f, 0.0f, trt), (qparams{1.0f, 0}));
  // An amax whose quotient underflows counts as 0 (a fuzzer finding: scale 0 before).
  EXPECT_EQ(squint::choose_qparams(0.0f, 1e-44f, trt), (qparams{1.0f, 0}));
  trt.scheme = squint::qscheme::affine;
  EXPECT_THROW(squint::choose_qparams(-1.0f, 1.0f, trt), squint::error);
  // ORT's zero-range zero point 0, clamped into a custom range without 0 (a fuzzer finding).
  quant_spec custom;
  custom.profile = calibration_profile::onnxruntime;
  custom.custom_range = squint::quant_range{7, 251};
  EXPECT_EQ(squint::choose_qparams(0.0f, 0.0f, custom), (qparams{1.0f, 7}));
  quant_spec sym_range;  // uint8 affine qparams on a symmetrized range
  sym_range.symmetric_range = true;
  EXPECT_EQ(squint::choose_qparams(-1.0f, 3.0f, sym_range), squint::choose_qparams(-3.0f, 3.0f));
  quant_spec widened;
  widened.min_real_range = 1.0f;
  EXPECT_EQ(squint::choose_qparams(0.0f, 0.25f, widened), squint::choose_qparams(0.0f, 1.0f));
}

}  // namespace

}  // namespace profile_vectors_test

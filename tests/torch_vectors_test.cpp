// SPDX-License-Identifier: Apache-2.0
// torch_vectors_test.cpp: bit-exact parity with PyTorch 1.13 on the vectors in
// tests/data/torch_vectors.txt (made by tests/data/make_torch_vectors.py).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "squint/observers/minmax.hpp"
#include "squint/quantize.hpp"
#include "support/tokens.hpp"

namespace torch_vectors_test {

namespace {

using squint::granularity;
using squint::quant_spec;
using squint_test::tokens;

struct observer_case {
  std::string kind, gran;
  quant_spec spec;
  float averaging_constant = 0.01f;
  int axis = 0;
  std::vector<std::pair<squint::shape, std::vector<float>>> batches;
  std::vector<float> scale;
  std::vector<std::int32_t> zero_point;
};

observer_case parse_observer(tokens& t) {
  observer_case c;
  c.kind = t.word();
  c.gran = t.word();
  c.spec.type = t.word() == "int8" ? squint::dtype::int8 : squint::dtype::uint8;
  c.spec.scheme = t.word() == "symmetric" ? squint::qscheme::symmetric : squint::qscheme::affine;
  c.spec.reduce_range = t.integer() != 0;
  const auto qmin = static_cast<std::int32_t>(t.integer());
  const auto qmax = static_cast<std::int32_t>(t.integer());
  if (t.integer() != 0) {
    c.spec.custom_range = squint::quant_range{qmin, qmax};
    c.spec.reduce_range = false;  // the file records the effective range
  }
  c.averaging_constant = t.real();
  c.axis = static_cast<int>(t.integer());
  for (std::string w = t.word(); w == "batch"; w = t.word()) {
    const auto dims = t.dims();
    const std::size_t n = t.count();
    c.batches.emplace_back(squint::shape(dims.begin(), dims.end()), t.reals(n));
  }
  const std::size_t channels = t.count();
  c.scale = t.reals(channels);
  c.zero_point = t.integers(channels);
  EXPECT_EQ(squint::range_of(c.spec), (squint::quant_range{qmin, qmax}));
  return c;
}

template <class Observer>
void run_observer(Observer& o, const observer_case& c) {
  for (const auto& [s, values] : c.batches) o.observe({values.data(), s});
}

TEST(TorchVectorsTest, ObserversMatchPyTorchBitForBit) {
  std::size_t checked = 0;
  for (const std::string& line : squint_test::records("torch_vectors.txt")) {
    tokens t(line);
    if (t.word() != "observer") continue;
    const observer_case c = parse_observer(t);
    SCOPED_TRACE(line.substr(0, 80));
    std::vector<float> scale;
    std::vector<std::int32_t> zp;
    if (c.gran == "per_tensor") {
      squint::qparams p;
      if (c.kind == "minmax") {
        squint::min_max_observer<> o(c.spec);
        run_observer(o, c);
        p = o.qparams();
      } else {
        squint::moving_average_observer<> o(c.spec, c.averaging_constant);
        run_observer(o, c);
        p = o.qparams();
      }
      scale = {p.scale};
      zp = {p.zero_point};
    } else {
      squint::per_channel_qparams p;
      if (c.kind == "minmax") {
        squint::min_max_observer<granularity::per_channel> o(c.spec, c.axis);
        run_observer(o, c);
        p = o.qparams();
      } else {
        squint::moving_average_observer<granularity::per_channel> o(c.spec, c.axis, c.averaging_constant);
        run_observer(o, c);
        p = o.qparams();
      }
      scale = p.scale;
      zp = p.zero_point;
    }
    EXPECT_EQ(scale, c.scale);
    EXPECT_EQ(zp, c.zero_point);
    ++checked;
  }
  EXPECT_GE(checked, 190u);
}

TEST(TorchVectorsTest, QuantizeMatchesPyTorchReciprocalMode) {
  std::size_t checked = 0;
  for (const std::string& line : squint_test::records("torch_vectors.txt")) {
    tokens t(line);
    const std::string kind = t.word();
    if (kind == "quantize") {
      const bool s8 = t.word() == "int8";
      const squint::qparams p{t.real(), static_cast<std::int32_t>(t.integer())};
      const std::size_t n = t.count();
      const auto x = t.reals(n);
      const auto expect = t.integers(n);
      std::vector<std::int32_t> got(n);
      if (s8) {
        std::vector<std::int8_t> q(n);
        squint::quantize<std::int8_t>({x.data(), n}, {q.data(), n}, p, squint::quantize_mode::reciprocal);
        got.assign(q.begin(), q.end());
      } else {
        std::vector<std::uint8_t> q(n);
        squint::quantize<std::uint8_t>({x.data(), n}, {q.data(), n}, p, squint::quantize_mode::reciprocal);
        got.assign(q.begin(), q.end());
      }
      EXPECT_EQ(got, expect) << line.substr(0, 60);
      ++checked;
    } else if (kind == "quantize_per_channel") {
      const bool s8 = t.word() == "int8";
      const int axis = static_cast<int>(t.integer());
      const auto dims = t.dims();
      const squint::shape s(dims.begin(), dims.end());
      const std::size_t channels = t.count();
      squint::per_channel_qparams p{t.reals(channels), t.integers(channels), axis};
      const std::size_t n = t.count();
      const auto x = t.reals(n);
      const auto expect = t.integers(n);
      std::vector<std::int32_t> got(n);
      if (s8) {
        std::vector<std::int8_t> q(n);
        squint::quantize<std::int8_t>({x.data(), s}, {q.data(), s}, p, squint::quantize_mode::reciprocal);
        got.assign(q.begin(), q.end());
      } else {
        std::vector<std::uint8_t> q(n);
        squint::quantize<std::uint8_t>({x.data(), s}, {q.data(), s}, p, squint::quantize_mode::reciprocal);
        got.assign(q.begin(), q.end());
      }
      EXPECT_EQ(got, expect) << line.substr(0, 60);
      ++checked;
    }
  }
  EXPECT_EQ(checked, 18u);
}

TEST(TorchVectorsTest, FakeQuantizeMatchesPyTorch) {
  std::size_t checked = 0;
  for (const std::string& line : squint_test::records("torch_vectors.txt")) {
    tokens t(line);
    const std::string kind = t.word();
    if (kind == "fake_quantize") {
      const squint::qparams p{t.real(), static_cast<std::int32_t>(t.integer())};
      const squint::quant_range r{static_cast<std::int32_t>(t.integer()), static_cast<std::int32_t>(t.integer())};
      const std::size_t n = t.count();
      const auto x = t.reals(n);
      const auto expect = t.reals(n);
      std::vector<float> y(n);
      squint::fake_quantize({x.data(), n}, {y.data(), n}, p, r);
      EXPECT_EQ(y, expect);
      ++checked;
    } else if (kind == "fake_quantize_per_channel") {
      const int axis = static_cast<int>(t.integer());
      const squint::quant_range r{static_cast<std::int32_t>(t.integer()), static_cast<std::int32_t>(t.integer())};
      const auto dims = t.dims();
      const squint::shape s(dims.begin(), dims.end());
      const std::size_t channels = t.count();
      squint::per_channel_qparams p{t.reals(channels), t.integers(channels), axis};
      const std::size_t n = t.count();
      const auto x = t.reals(n);
      const auto expect = t.reals(n);
      std::vector<float> y(n);
      squint::fake_quantize({x.data(), s}, {y.data(), s}, p, r);
      EXPECT_EQ(y, expect);
      ++checked;
    }
  }
  EXPECT_EQ(checked, 8u);
}

}  // namespace

}  // namespace torch_vectors_test

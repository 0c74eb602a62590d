// SPDX-License-Identifier: Apache-2.0
// dispatch_test.cpp: the runtime dispatcher's choice, the override and its errors.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "squint/dispatch.hpp"
#include "squint/observers/histogram.hpp"
#include "squint/observers/minmax.hpp"
#include "support/data.hpp"

namespace dispatch_test {

namespace {

TEST(DispatchTest, BestAvailableIsChosenAndScalarIsLast) {
  const auto isas = squint::runtime::compiled_isas();
  ASSERT_FALSE(isas.empty());
  EXPECT_EQ(isas.back(), "scalar");
  const char* env = std::getenv("SQUINT_ISA");
  if (env != nullptr && *env != '\0') GTEST_SKIP() << "SQUINT_ISA is set";
  squint::runtime::force_isa(nullptr);
  const std::string chosen = squint::runtime::isa();
  std::printf("[ dispatch ] chosen ISA on this CPU: %s\n", chosen.c_str());
#if defined(__x86_64__)
  if (squint::is_available<squint::arch::avx2>() && !squint::is_available<squint::arch::avx512bw>()) {
    EXPECT_TRUE(chosen == "avx2" || chosen == "avx2_vnni") << chosen;
  }
#endif
  // Nothing before the chosen one in the list is available.
  for (const std::string& name : isas) {
    if (name == chosen) break;
    EXPECT_THROW(squint::runtime::force_isa(name.c_str()), squint::error) << name << " is available but was skipped";
  }
  squint::runtime::force_isa(nullptr);
}

TEST(DispatchTest, ForcingUnknownOrUnavailableIsAnErrorAndChangesNothing) {
  squint::runtime::force_isa("scalar");
  EXPECT_STREQ(squint::runtime::isa(), "scalar");
  try {
    squint::runtime::force_isa("avx1024");
    FAIL();
  } catch (const squint::error& e) {
    EXPECT_NE(std::string(e.what()).find("avx1024"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("scalar"), std::string::npos) << "should list what is compiled in";
  }
  for (const std::string& name : squint::runtime::compiled_isas()) {
    bool available = true;
    try {
      squint::runtime::force_isa(name.c_str());
    } catch (const squint::error&) {
      available = false;
    }
    if (!available) {
      EXPECT_STREQ(squint::runtime::isa(), "scalar") << "a failed force changed the ISA";
    }
    squint::runtime::force_isa("scalar");
  }
  squint::runtime::force_isa(nullptr);
}

TEST(DispatchTest, ForcedIsasAllGiveTheSameCodes) {
  std::vector<float> x(1001);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i) * 0.37f - 150.0f;
  std::vector<std::uint8_t> expect(x.size()), got(x.size());
  squint::runtime::force_isa("scalar");
  squint::runtime::quantize(x.data(), expect.data(), x.size(), {0.5f, 100});
  for (const std::string& name : squint::runtime::compiled_isas()) {
    try {
      squint::runtime::force_isa(name.c_str());
    } catch (const squint::error&) {
      continue;  // not on this CPU
    }
    squint::runtime::quantize(x.data(), got.data(), x.size(), {0.5f, 100});
    EXPECT_EQ(got, expect) << name;
  }
  squint::runtime::force_isa(nullptr);
}

/// Run by CTest with SQUINT_ISA set (see tests/CMakeLists.txt).
// With squint/dispatch.hpp in the program, observers run the dispatched reduction kernels (the
// ISA force_isa picks), and every ISA gives the same qparams and the same histogram.
TEST(DispatchTest, ObserversRunTheDispatchedKernels) {
  auto x = squint_test::normal(10007, 0.5f, 3.0f, 41);
  x[17] = std::numeric_limits<float>::quiet_NaN();
  std::vector<squint::qparams> minmax, channels;
  std::vector<std::vector<std::uint64_t>> counts;
  for (const std::string& name : squint::runtime::compiled_isas()) {
    try {
      squint::runtime::force_isa(name.c_str());
    } catch (const squint::error&) {
      continue;  // not on this CPU
    }
    EXPECT_STREQ(squint::detail::active_observer_kernels().isa(), name.c_str());
    squint::min_max_observer<> m;
    m.observe({x.data(), x.size()});
    minmax.push_back(m.qparams());
    squint::min_max_observer<squint::granularity::per_channel> c({}, 1);
    c.observe({x.data(), squint::shape{1429, 7}});  // channels last: the column kernel
    channels.push_back(c.qparams()[3]);
    squint::histogram_observer<> h({}, {squint::calibration_method::entropy});
    h.observe({x.data(), x.size()});
    counts.push_back(h.histogram().counts());
  }
  squint::runtime::force_isa(nullptr);
  ASSERT_GE(minmax.size(), 2u);
  for (std::size_t i = 1; i < minmax.size(); ++i) {
    EXPECT_EQ(minmax[i], minmax[0]);
    EXPECT_EQ(channels[i], channels[0]);
    EXPECT_EQ(counts[i], counts[0]);
  }
}

TEST(DispatchEnvironmentTest, EnvironmentOverride) {
  const char* env = std::getenv("SQUINT_ISA");
  if (env == nullptr || *env == '\0') GTEST_SKIP() << "run with SQUINT_ISA set";
  if (std::string(env) == "avx1024") {
    EXPECT_THROW(squint::runtime::isa(), squint::error);
  } else {
    EXPECT_STREQ(squint::runtime::isa(), env);
  }
}

}  // namespace

}  // namespace dispatch_test

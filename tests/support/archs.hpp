// SPDX-License-Identifier: Apache-2.0
// archs.hpp: the arch families compiled into the test binary (squint_add_runtime_dispatch),
// as a typed-test list, and a fixture base that skips the ones this CPU lacks.
#pragma once

#include <gtest/gtest.h>

#include "squint/dispatch.hpp"

namespace squint_test {

using compiled_archs = ::testing::Types<SQUINT_DISPATCH_FAMILY_TYPES>;

template <class Arch>
class arch_test : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!squint::is_available<Arch>()) GTEST_SKIP() << Arch::name() << " is not supported by this CPU";
  }
};

struct arch_names {
  template <class Arch>
  static std::string GetName(int) {
    return Arch::name();
  }
};

}  // namespace squint_test

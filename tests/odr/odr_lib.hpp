// SPDX-License-Identifier: Apache-2.0
// odr_lib.hpp: the same squint code, compiled twice with different -m flags (odr_a.cpp, odr_b.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

struct odr_result {
  std::string native;           // arch tag static dispatch chose in that translation unit
  std::string abi;              // a symbol-visible trace of the ABI namespace in use
  std::vector<std::int8_t> q;   // per-tensor codes
  std::vector<std::uint8_t> c;  // per-channel codes
  float scale;
};

odr_result run_odr_a(const std::vector<float>& x);  // built with AVX2 flags on x86
odr_result run_odr_b(const std::vector<float>& x);  // built with the baseline flags

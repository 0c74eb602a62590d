// SPDX-License-Identifier: Apache-2.0
// odr_main.cpp: links the AVX2 and the baseline build of the same squint code into one program.
// Each must keep its own code (its own ABI namespace and arch) and both must agree on results.
// The symbol check (check_symbol_leaks.cmake) proves the AVX2 object shares no squint symbol.
#include <cstdio>
#include <vector>

#include "odr/odr_lib.hpp"
#include "squint/arch/cpu.hpp"

int main() {
  std::vector<float> x(4096);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 7919) % 1000) * 0.013f - 6.0f;
  const odr_result b = run_odr_b(x);
  std::printf("baseline TU: native=%s abi=%s\n", b.native.c_str(), b.abi.c_str());
  if (!squint::is_available<squint::arch::avx2>()) {
    std::printf("no AVX2 on this CPU: only the baseline half runs\n");
    return 0;
  }
  const odr_result a = run_odr_a(x);
  std::printf("AVX2 TU:     native=%s abi=%s\n", a.native.c_str(), a.abi.c_str());
  int failures = 0;
  if (a.native == b.native) ++failures, std::printf("FAIL: both translation units ran the %s kernels\n", a.native.c_str());
  if (a.abi == b.abi) ++failures, std::printf("FAIL: both translation units share the ABI namespace\n");
  if (a.q != b.q || a.c != b.c || a.scale != b.scale) ++failures, std::printf("FAIL: results differ\n");
  std::printf("%s\n", failures ? "ODR test failed" : "ODR test passed");
  return failures ? 1 : 0;
}

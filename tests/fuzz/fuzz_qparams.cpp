// SPDX-License-Identifier: Apache-2.0
// fuzz_qparams.cpp: choose_qparams on any range and spec (every calibration profile and option):
// either squint::error, or parameters that validate and represent the real 0 exactly.
#include "fuzz_support.hpp"
#include "squint/qparams.hpp"
#include "squint/reference/quantize.hpp"

using namespace squint;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  squint_fuzz::input in(data, size);
  const quant_spec spec = in.spec(true);
  float lo = in.any_float(), hi = in.any_float();
  if (in.flag() && lo > hi) std::swap(lo, hi);

  qparams p;
  if (squint_fuzz::rejected([&] { p = choose_qparams(lo, hi, spec); })) return 0;
  const quant_range r = range_of(spec);
  SQUINT_FUZZ_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo <= hi);
  SQUINT_FUZZ_CHECK(std::isfinite(p.scale) && p.scale > 0.0f);
  SQUINT_FUZZ_CHECK(spec.profile != calibration_profile::pytorch || p.scale >= spec.eps);
  SQUINT_FUZZ_CHECK(spec.profile != calibration_profile::tensorrt || p.zero_point == 0);
  SQUINT_FUZZ_CHECK(p.zero_point >= r.qmin && p.zero_point <= r.qmax);
  validate(p, r);
  // The real value 0 is exactly representable.
  SQUINT_FUZZ_CHECK(reference::quantize_value(0.0f, p, r) == p.zero_point);
  SQUINT_FUZZ_CHECK(reference::dequantize_value(p.zero_point, p) == 0.0f);
  // The per-channel form agrees with the per-tensor one; its second, all-zero channel fails only
  // where [0, 0] does alone (a min_real_range too wide for the codes).
  per_channel_qparams pc;
  const bool zero_rejected = squint_fuzz::rejected([&] { choose_qparams(0.0f, 0.0f, spec); });
  const bool pc_rejected = squint_fuzz::rejected(
      [&] { pc = choose_qparams(std::vector<float>{lo, 0.0f}, std::vector<float>{hi, 0.0f}, 1, spec); });
  SQUINT_FUZZ_CHECK(pc_rejected == zero_rejected);
  SQUINT_FUZZ_CHECK(pc_rejected || (pc[0] == p && pc.axis == 1));
  return 0;
}

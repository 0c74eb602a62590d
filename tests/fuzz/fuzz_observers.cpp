// SPDX-License-Identifier: Apache-2.0
// fuzz_observers.cpp: every observer, per tensor and per channel, fed fuzzed batches (NaN, inf,
// constants, extremes) and merged with a second one: either squint::error, or qparams that
// validate. merge() of observers that saw two halves equals one that saw both where the
// observer promises it (min-max).
#include "fuzz_support.hpp"
#include "squint/observers/histogram.hpp"
#include "squint/observers/minmax.hpp"

using namespace squint;

namespace {

void check_valid(const qparams& p, const quant_spec& spec) {
  SQUINT_FUZZ_CHECK(std::isfinite(p.scale) && p.scale > 0.0f);
  const quant_range r = range_of(spec);
  SQUINT_FUZZ_CHECK(p.zero_point >= r.qmin && p.zero_point <= r.qmax);
}
void check_valid(const per_channel_qparams& p, const quant_spec& spec) {
  SQUINT_FUZZ_CHECK(p.scale.size() == p.zero_point.size());
  for (std::size_t c = 0; c < p.channels(); ++c) check_valid(p[c], spec);
}

template <class Observer, class Make>
void run(squint_fuzz::input& in, const quant_spec& spec, Make make) {
  Observer a = make(), b = make(), all = make();
  const std::size_t batches = in.below(4);
  for (std::size_t i = 0; i < batches; ++i) {
    const std::size_t rows = 1 + in.below(5), cols = in.below(20);
    const std::vector<float> x = in.floats(rows * cols);
    const shape s{rows, cols};
    Observer& half = i % 2 == 0 ? a : b;
    const bool bad = squint_fuzz::rejected([&] { half.observe(tensor_view<const float>(x.data(), s)); });
    const bool bad_all = squint_fuzz::rejected([&] { all.observe(tensor_view<const float>(x.data(), s)); });
    (void)bad;
    (void)bad_all;
  }
  if (!squint_fuzz::rejected([&] { a.merge(b); })) {
    std::decay_t<decltype(a.qparams())> merged;
    if (!squint_fuzz::rejected([&] { merged = a.qparams(); })) check_valid(merged, spec);
  }
  std::decay_t<decltype(all.qparams())> p;
  if (!squint_fuzz::rejected([&] { p = all.qparams(); })) check_valid(p, spec);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  squint_fuzz::input in(data, size);
  quant_spec spec;
  spec.type = in.flag() ? dtype::int8 : dtype::uint8;
  spec.scheme = in.flag() ? qscheme::symmetric : qscheme::affine;
  spec.reduce_range = in.flag();
  spec.narrow_range = in.flag();
  spec.profile = static_cast<calibration_profile>(in.take<std::uint8_t>() % 3);
  spec.symmetric_range = in.flag();
  const int axis = static_cast<int>(in.below(3)) - 1;
  const std::uint8_t kind = in.take<std::uint8_t>() % 8;
  const bool per_channel = in.flag();
  try {
    if (kind == 7 && in.flag()) {
      if (per_channel)
        run<batch_mean_observer<granularity::per_channel>>(in, spec, [&] { return batch_mean_observer<granularity::per_channel>(spec, axis); });
      else
        run<batch_mean_observer<>>(in, spec, [&] { return batch_mean_observer<>(spec); });
    } else if (kind < 2) {
      const float c = kind == 0 ? 0.01f : in.any_float();
      if (per_channel)
        run<moving_average_observer<granularity::per_channel>>(in, spec, [&] { return moving_average_observer<granularity::per_channel>(spec, axis, c); });
      else
        run<moving_average_observer<>>(in, spec, [&] { return moving_average_observer<>(spec, c); });
    } else if (kind < 4) {
      if (per_channel)
        run<min_max_observer<granularity::per_channel>>(in, spec, [&] { return min_max_observer<granularity::per_channel>(spec, axis); });
      else
        run<min_max_observer<>>(in, spec, [&] { return min_max_observer<>(spec); });
    } else {
      histogram_options options;
      options.method = static_cast<calibration_method>((kind - 4) % 4);
      options.bins = 256 + 2 * in.below(200);
      options.percentile = in.flag() ? 99.9 : static_cast<double>(in.any_float());
      if (per_channel)
        run<histogram_observer<granularity::per_channel>>(in, spec, [&] { return histogram_observer<granularity::per_channel>(spec, axis, options); });
      else
        run<histogram_observer<>>(in, spec, [&] { return histogram_observer<>(spec, options); });
    }
  } catch (const squint::error&) {
    // An invalid spec or option, rejected when the observer is made.
  }
  return 0;
}

// SPDX-License-Identifier: Apache-2.0
// fuzz_observers.cpp: every observer (ONNX Runtime's histogram calibrators included), per tensor
// and per channel, in every calibration profile, fed fuzzed batches (NaN, inf, constants,
// extremes), across ONNX Runtime collect_data calls, and merged with a second one: either
// squint::error, or qparams that validate; two min-max observers that saw alternate batches,
// merged, equal one that saw them all.
#include "fuzz_support.hpp"
#include "squint/observers/histogram.hpp"
#include "squint/observers/minmax.hpp"
#include "squint/observers/onnxruntime_histogram.hpp"

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

bool same(const qparams& a, const qparams& b) { return a == b; }
bool same(const per_channel_qparams& a, const per_channel_qparams& b) {
  return a.scale == b.scale && a.zero_point == b.zero_point && a.axis == b.axis;
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
    // ONNX Runtime's observer: each batch of `all` is its own collect_data call (a and b see one
    // call each, so they can merge).
    if constexpr (std::is_same_v<Observer, onnxruntime_histogram_observer>)
      (void)squint_fuzz::rejected([&] { all.end_call(); });
    (void)bad;
    (void)bad_all;
  }
  if (!squint_fuzz::rejected([&] { a.merge(b); })) {
    std::decay_t<decltype(a.qparams())> merged;
    if (!squint_fuzz::rejected([&] { merged = a.qparams(); })) {
      check_valid(merged, spec);
      if constexpr (std::is_same_v<Observer, min_max_observer<>> ||
                    std::is_same_v<Observer, min_max_observer<granularity::per_channel>>) {
        std::decay_t<decltype(all.qparams())> whole;
        if (!squint_fuzz::rejected([&] { whole = all.qparams(); })) SQUINT_FUZZ_CHECK(same(merged, whole));
      }
    }
  }
  std::decay_t<decltype(all.qparams())> p;
  if (!squint_fuzz::rejected([&] { p = all.qparams(); })) check_valid(p, spec);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  squint_fuzz::input in(data, size);
  const quant_spec spec = in.spec(false);
  const int axis = static_cast<int>(in.below(3)) - 1;
  const std::uint8_t kind = in.take<std::uint8_t>() % 8;
  const bool per_channel = in.flag();
  try {
    if (kind == 6 && in.flag() && !per_channel) {
      onnxruntime_histogram_options options;
      options.search = in.flag() ? onnxruntime_histogram_options::method::entropy
                                 : onnxruntime_histogram_options::method::percentile;
      options.bins = 2 + in.below(510);
      options.quantized_bins = 1 + in.below(300);
      options.percentile = in.flag() ? 99.9 : static_cast<double>(in.any_float());
      options.symmetric = in.flag();
      run<onnxruntime_histogram_observer>(in, spec, [&] { return onnxruntime_histogram_observer(spec, options); });
    } else if (kind == 7 && in.flag()) {
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
      options.tensorrt_torch_hist = options.bins % 4 == 0;  // derived: the input's layout stays as it was
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

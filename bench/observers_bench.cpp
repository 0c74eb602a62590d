// SPDX-License-Identifier: Apache-2.0
// observers_bench.cpp: GB/s of float input consumed by observe(), and the cost of qparams().
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "bench_common.hpp"
#include "squint/observers/histogram.hpp"
#include "squint/observers/minmax.hpp"
#include "squint/reference/calibration.hpp"

namespace {

void set_bytes(benchmark::State& state, std::size_t n) { squint_bench::set_bytes(state, n * sizeof(float)); }

/// The min/max kernel alone, per ISA (observers run the dispatched one: this binary includes
/// squint/dispatch.hpp).
template <class Arch>
void BM_MinMaxKernel(benchmark::State& state) {
  if (squint_bench::skip_unavailable<Arch>(state)) return;
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto x = squint_bench::normal(n);
  for (auto _ : state) {
    float lo = HUGE_VALF, hi = -HUGE_VALF;
    std::size_t bad = 0;
    squint::kernels::reduce_kernel<Arch>::min_max(x.data(), n, &lo, &hi, &bad);
    benchmark::DoNotOptimize(lo + hi);
  }
  set_bytes(state, n);
}

void BM_ReadBandwidth(benchmark::State& state) { squint_bench::read_bandwidth(state); }

template <class Observer>
void observe_loop(benchmark::State& state, Observer observer, squint::shape s) {
  const auto x = squint_bench::normal(s.numel());
  for (auto _ : state) {
    observer.observe({x.data(), s});
    benchmark::DoNotOptimize(observer);
  }
  set_bytes(state, s.numel());
}

void BM_MinMaxPerTensor(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  observe_loop(state, squint::min_max_observer<>(), squint::shape{n});
}

void BM_MinMaxPerChannel(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  observe_loop(state, squint::min_max_observer<squint::granularity::per_channel>({}, 0), squint::shape{256, n / 256});
}

void BM_MovingAverage(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  observe_loop(state, squint::moving_average_observer<>(), squint::shape{n});
}

void BM_HistogramObserve(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  observe_loop(state, squint::histogram_observer<>({}, {squint::calibration_method::entropy}), squint::shape{n});
}

/// The one-off threshold search at the end of calibration (2048 bins).
void BM_HistogramQparams(benchmark::State& state) {
  const auto method = static_cast<squint::calibration_method>(state.range(0));
  squint::histogram_observer<> observer({}, {method});
  const auto x = squint_bench::normal(1 << 20);
  observer.observe({x.data(), x.size()});
  for (auto _ : state) benchmark::DoNotOptimize(observer.qparams());
  state.SetLabel(method == squint::calibration_method::entropy      ? "entropy"
                 : method == squint::calibration_method::percentile ? "percentile"
                 : method == squint::calibration_method::mse        ? "mse"
                                                                    : "l2");
}

/// Per-channel weight calibration: the threshold searches of a 4096-input weight matrix's
/// channels (2048 bins each), reported per channel; the plain searches of
/// squint/reference/calibration.hpp (the same thresholds) are the baseline.
template <bool Reference>
void BM_PerChannelSearch(benchmark::State& state) {
  const auto method = static_cast<squint::calibration_method>(state.range(0));
  const std::size_t channels = Reference ? 4 : 64, k = 4096;
  squint::histogram_observer<squint::granularity::per_channel> observer(
      {squint::dtype::int8, squint::qscheme::symmetric}, 0, {method});
  const auto w = squint_bench::normal(channels * k);
  observer.observe({w.data(), squint::shape{channels, k}});
  for (auto _ : state) {
    for (std::size_t c = 0; c < channels; ++c) {
      const auto& h = observer.histogram(c);
      const bool entropy = method == squint::calibration_method::entropy;
      const double amax = Reference ? (entropy ? squint::reference::entropy_threshold(h.counts(), h.width(), 128)
                                               : squint::reference::mse_threshold(h.counts(), h.width(), 128, false))
                                    : (entropy ? squint::calibration::entropy_threshold(h.counts(), h.width(), 128)
                                               : squint::calibration::mse_threshold(h.counts(), h.width(), 128, false));
      benchmark::DoNotOptimize(amax);
    }
  }
  // Seconds per iteration / (channels / 10^6) = milliseconds per 1000 channels.
  state.counters["ms_per_1000_channels"] = benchmark::Counter(
      static_cast<double>(channels) / 1e6, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  state.SetLabel(method == squint::calibration_method::entropy ? "entropy" : "mse");
}

BENCHMARK(BM_ReadBandwidth)->Apply(squint_bench::sizes);
#define SQUINT_X(A) BENCHMARK_TEMPLATE(BM_MinMaxKernel, A)->Apply(squint_bench::sizes);
SQUINT_DISPATCH_FAMILIES
#undef SQUINT_X
BENCHMARK(BM_MinMaxPerTensor)->Apply(squint_bench::sizes);
BENCHMARK(BM_MinMaxPerChannel)->Apply(squint_bench::sizes);
BENCHMARK(BM_MovingAverage)->Apply(squint_bench::sizes);
BENCHMARK(BM_HistogramObserve)->Apply(squint_bench::sizes);
BENCHMARK(BM_HistogramQparams)->DenseRange(0, 3)->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_PerChannelSearch, false)->Arg(0)->Arg(2)->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_PerChannelSearch, true)->Arg(0)->Arg(2)->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) { return squint_bench::run(argc, argv); }

// SPDX-License-Identifier: Apache-2.0
// bench_common.hpp: data, baselines and the per-ISA registration shared by the benchmarks.
#pragma once

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "squint/dispatch.hpp"

namespace squint_bench {

/// Element counts from L1-resident to DRAM-bound.
inline void sizes(benchmark::internal::Benchmark* b) {
  for (long n : {1L << 12, 1L << 16, 1L << 20, 1L << 24}) b->Arg(n);
}

inline std::vector<float> normal(std::size_t n, unsigned seed = 1) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

inline void set_bytes(benchmark::State& state, std::size_t bytes_per_iteration) {
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(bytes_per_iteration));
}

/// True (and the benchmark marked skipped) when this CPU cannot run Arch.
template <class Arch>
bool skip_unavailable(benchmark::State& state) {
  if (squint::is_available<Arch>()) return false;
  state.SkipWithError("ISA unavailable on this CPU");
  return true;
}

/// Streaming-read probe: the bandwidth a kernel that reads each input once cannot beat.
inline void read_bandwidth(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto x = normal(n);
  for (auto _ : state) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    for (std::size_t i = 0; i + 8 <= n; i += 8) {
      s0 += x[i], s1 += x[i + 1], s2 += x[i + 2], s3 += x[i + 3];
      s4 += x[i + 4], s5 += x[i + 5], s6 += x[i + 6], s7 += x[i + 7];
    }
    benchmark::DoNotOptimize(s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7);
  }
  set_bytes(state, n * sizeof(float));
}

inline void add_context() {
  std::string isas;
  for (const auto& name : squint::runtime::compiled_isas()) isas += (isas.empty() ? "" : " ") + name;
  benchmark::AddCustomContext("squint_compiled_isas", isas);
  benchmark::AddCustomContext("squint_dispatched_isa", squint::runtime::isa());
}

/// The main() of every benchmark binary: Google Benchmark plus squint's dispatch context.
inline int run(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  add_context();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace squint_bench

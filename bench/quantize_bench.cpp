// SPDX-License-Identifier: Apache-2.0
// quantize_bench.cpp: GB/s of float input read by quantize / dequantize, with baselines.
//
// Baselines in the same binary: a streaming-read probe (the ceiling), the naive per-element loop
// a user would write (std::nearbyint, which follows the FP environment and so cannot vectorize
// freely), and a loop written for the auto-vectorizer.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "bench_common.hpp"
#include "squint/quantize.hpp"

namespace {

void set_bytes(benchmark::State& state, std::size_t n) {
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(n * sizeof(float)));
}

void BM_ReadBandwidth(benchmark::State& state) { squint_bench::read_bandwidth(state); }

template <squint::quantize_mode Mode>
void BM_QuantizeS8Squint(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto x = squint_bench::normal(n);
  std::vector<std::int8_t> q(n);
  const squint::qparams p{0.03f, 3};
  for (auto _ : state) {
    squint::quantize<std::int8_t>({x.data(), n}, {q.data(), n}, p, Mode);
    benchmark::ClobberMemory();
  }
  set_bytes(state, n);
}

void BM_QuantizeS8Naive(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto x = squint_bench::normal(n);
  std::vector<std::int8_t> q(n);
  const float scale = 0.03f;
  const int zp = 3;
  for (auto _ : state) {
    for (std::size_t i = 0; i < n; ++i) {
      const float v = std::nearbyint(x[i] / scale) + static_cast<float>(zp);
      q[i] = static_cast<std::int8_t>(std::min(127.0f, std::max(-128.0f, v)));
    }
    benchmark::ClobberMemory();
  }
  set_bytes(state, n);
}

void BM_QuantizeS8AutoVectorized(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto x = squint_bench::normal(n);
  std::vector<std::int8_t> q(n);
  const float inv_scale = 1.0f / 0.03f;
  for (auto _ : state) {
    const float* in = x.data();
    std::int8_t* out = q.data();
    for (std::size_t i = 0; i < n; ++i) {
      // Round by the 1.5 * 2^23 trick: exact half-to-even for |v| < 2^22, vectorizes cleanly.
      float v = in[i] * inv_scale;
      v = std::min(127.0f - 3.0f, std::max(-128.0f - 3.0f, v));
      v = (v + 12582912.0f) - 12582912.0f;
      out[i] = static_cast<std::int8_t>(static_cast<int>(v) + 3);
    }
    benchmark::ClobberMemory();
  }
  set_bytes(state, n);
}

void BM_DequantizeS8Squint(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  std::vector<std::int8_t> q(n);
  for (std::size_t i = 0; i < n; ++i) q[i] = static_cast<std::int8_t>(i * 7);
  std::vector<float> x(n);
  for (auto _ : state) {
    squint::dequantize<std::int8_t>({q.data(), n}, {x.data(), n}, {0.03f, 3});
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(n));
}

void BM_DequantizeS8Naive(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  std::vector<std::int8_t> q(n);
  for (std::size_t i = 0; i < n; ++i) q[i] = static_cast<std::int8_t>(i * 7);
  std::vector<float> x(n);
  for (auto _ : state) {
    for (std::size_t i = 0; i < n; ++i) x[i] = static_cast<float>(q[i] - 3) * 0.03f;
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(n));
}

BENCHMARK(BM_ReadBandwidth)->Apply(squint_bench::sizes);
BENCHMARK(BM_QuantizeS8Squint<squint::quantize_mode::divide>)->Apply(squint_bench::sizes);
BENCHMARK(BM_QuantizeS8Squint<squint::quantize_mode::reciprocal>)->Apply(squint_bench::sizes);
BENCHMARK(BM_QuantizeS8Naive)->Apply(squint_bench::sizes);
BENCHMARK(BM_QuantizeS8AutoVectorized)->Apply(squint_bench::sizes);
BENCHMARK(BM_DequantizeS8Squint)->Apply(squint_bench::sizes);
BENCHMARK(BM_DequantizeS8Naive)->Apply(squint_bench::sizes);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  squint_bench::add_context();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

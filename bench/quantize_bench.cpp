// SPDX-License-Identifier: Apache-2.0
// quantize_bench.cpp: GB/s of input read by the quantize-family kernels, per ISA, with baselines.
//
// Baselines in the same binary: a streaming-read probe (the ceiling), the naive per-element loop
// a user would write (std::nearbyint, which follows the FP environment and so cannot vectorize),
// a loop written for the auto-vectorizer (magic-number rounding, which is only right under
// round-to-nearest and saturates differently), and oneDNN's f32 -> s8 reorder when installed.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "bench_common.hpp"

#if defined(SQUINT_BENCH_DNNL)
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace {

using squint_bench::set_bytes;

void BM_ReadBandwidth(benchmark::State& state) { squint_bench::read_bandwidth(state); }

template <class Arch, bool Reciprocal>
void BM_QuantizeS8(benchmark::State& state) {
  if (squint_bench::skip_unavailable<Arch>(state)) return;
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto x = squint_bench::normal(n);
  std::vector<std::int8_t> q(n);
  for (auto _ : state) {
    squint::kernels::quantize_kernel<Arch, std::int8_t>::per_tensor(x.data(), q.data(), n, 0.03f, 3, Reciprocal);
    benchmark::ClobberMemory();
  }
  set_bytes(state, n * sizeof(float));
}

void BM_QuantizeS8Naive(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto x = squint_bench::normal(n);
  std::vector<std::int8_t> q(n);
  const float scale = 0.03f;
  for (auto _ : state) {
    for (std::size_t i = 0; i < n; ++i) {
      const float v = std::nearbyint(x[i] / scale) + 3.0f;
      q[i] = static_cast<std::int8_t>(std::min(127.0f, std::max(-128.0f, v)));
    }
    benchmark::ClobberMemory();
  }
  set_bytes(state, n * sizeof(float));
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
      float v = in[i] * inv_scale;
      v = std::min(124.0f, std::max(-131.0f, v));
      v = (v + 12582912.0f) - 12582912.0f;
      out[i] = static_cast<std::int8_t>(static_cast<int>(v) + 3);
    }
    benchmark::ClobberMemory();
  }
  set_bytes(state, n * sizeof(float));
}

#if defined(SQUINT_BENCH_DNNL)
void BM_QuantizeS8OneDNN(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  auto x = squint_bench::normal(n);
  std::vector<std::int8_t> q(n);
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  const dnnl::memory::dims dims{static_cast<dnnl::memory::dim>(n)};
  dnnl::memory src({dims, dnnl::memory::data_type::f32, dnnl::memory::format_tag::a}, engine, x.data());
  dnnl::memory dst({dims, dnnl::memory::data_type::s8, dnnl::memory::format_tag::a}, engine, q.data());
  dnnl::primitive_attr attr;
  attr.set_output_scales(0, {1.0f / 0.03f});
  dnnl::reorder reorder(dnnl::reorder::primitive_desc(engine, src.get_desc(), engine, dst.get_desc(), attr));
  for (auto _ : state) {
    reorder.execute(stream, src, dst);
    stream.wait();
    benchmark::ClobberMemory();
  }
  set_bytes(state, n * sizeof(float));
}
BENCHMARK(BM_QuantizeS8OneDNN)->Apply(squint_bench::sizes);
#endif

template <class Arch>
void BM_DequantizeS8(benchmark::State& state) {
  if (squint_bench::skip_unavailable<Arch>(state)) return;
  const auto n = static_cast<std::size_t>(state.range(0));
  std::vector<std::int8_t> q(n);
  for (std::size_t i = 0; i < n; ++i) q[i] = static_cast<std::int8_t>(i * 7);
  std::vector<float> x(n);
  for (auto _ : state) {
    squint::kernels::dequantize_kernel<Arch, std::int8_t>::per_tensor(q.data(), x.data(), n, 0.03f, 3);
    benchmark::ClobberMemory();
  }
  set_bytes(state, n);
}

void BM_DequantizeS8Naive(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  std::vector<std::int8_t> q(n);
  for (std::size_t i = 0; i < n; ++i) q[i] = static_cast<std::int8_t>(i * 7);
  std::vector<float> x(n);
  for (auto _ : state) {
    // What -O3 makes of the obvious loop at the build's baseline flags.
    for (std::size_t i = 0; i < n; ++i) x[i] = static_cast<float>(q[i] - 3) * 0.03f;
    benchmark::ClobberMemory();
  }
  set_bytes(state, n);
}

template <class Arch>
void BM_RequantizeS8ChannelsLast(benchmark::State& state) {
  if (squint_bench::skip_unavailable<Arch>(state)) return;
  const auto n = static_cast<std::size_t>(state.range(0));
  const std::size_t channels = 768, rows = (n + channels - 1) / channels;
  std::vector<std::int32_t> acc(rows * channels);
  for (std::size_t i = 0; i < acc.size(); ++i) acc[i] = static_cast<std::int32_t>(i * 7919 % 200001) - 100000;
  std::vector<float> m(channels, 1e-3f);
  std::vector<std::int8_t> q(acc.size());
  for (auto _ : state) {
    squint::kernels::requantize_kernel<Arch, std::int8_t>::run(acc.data(), q.data(), rows, channels, 1, m.data(), 0);
    benchmark::ClobberMemory();
  }
  set_bytes(state, acc.size() * sizeof(std::int32_t));
}

template <class Arch>
void BM_FloatToHalf(benchmark::State& state) {
  if (squint_bench::skip_unavailable<Arch>(state)) return;
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto x = squint_bench::normal(n);
  std::vector<std::uint16_t> h(n);
  for (auto _ : state) {
    squint::kernels::convert_kernel<Arch>::float_to_half(x.data(), h.data(), n);
    benchmark::ClobberMemory();
  }
  set_bytes(state, n * sizeof(float));
}

template <class Arch>
void BM_HalfToFloat(benchmark::State& state) {
  if (squint_bench::skip_unavailable<Arch>(state)) return;
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto x = squint_bench::normal(n);
  std::vector<std::uint16_t> h(n);
  squint::kernels::convert_kernel<Arch>::float_to_half(x.data(), h.data(), n);
  std::vector<float> y(n);
  for (auto _ : state) {
    squint::kernels::convert_kernel<Arch>::half_to_float(h.data(), y.data(), n);
    benchmark::ClobberMemory();
  }
  set_bytes(state, n * sizeof(std::uint16_t));  // fp16 read, as BM_DequantizeFp8 counts codes read
}

/// QAT's fake-quant backward (x, dy -> dx and the LSQ sums), or with `Forward` the forward
/// output too in the same pass: bytes are every read and write (12 or 16 per element).
template <class Arch, bool Forward>
void BM_FakeQuantGrad(benchmark::State& state) {
  if (squint_bench::skip_unavailable<Arch>(state)) return;
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto x = squint_bench::normal(n, 3), dy = squint_bench::normal(n, 4);
  std::vector<float> y(n), dx(n);
  squint::kernels::fake_quant_params p;
  p.x = x.data();
  p.dy = dy.data();
  p.y = Forward ? y.data() : nullptr;
  p.dx = dx.data();
  p.n = n;
  p.scale = 0.02f;
  p.zero_point = 0;
  p.qmin = -8;
  p.qmax = 7;
  for (auto _ : state) {
    benchmark::DoNotOptimize(squint::kernels::fake_quant_kernel<Arch>::run(p));
    benchmark::ClobberMemory();
  }
  set_bytes(state, n * sizeof(float) * (Forward ? 4 : 3));
}

/// FP8 E4M3FN quantize (float in, scale 0.05, saturating) and dequantize; the scalar family is
/// the reference conversion (frexp / ldexp, as a portable library converts).
template <class Arch>
void BM_QuantizeFp8(benchmark::State& state) {
  if (squint_bench::skip_unavailable<Arch>(state)) return;
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto x = squint_bench::normal(n, 5);
  std::vector<std::uint8_t> q(n);
  for (auto _ : state) {
    squint::kernels::fp8_kernel<Arch>::quantize(x.data(), q.data(), n, 0.05f, false, true);
    benchmark::ClobberMemory();
  }
  set_bytes(state, n * sizeof(float));
}

template <class Arch>
void BM_DequantizeFp8(benchmark::State& state) {
  if (squint_bench::skip_unavailable<Arch>(state)) return;
  const auto n = static_cast<std::size_t>(state.range(0));
  std::vector<std::uint8_t> q(n);
  for (std::size_t i = 0; i < n; ++i) q[i] = static_cast<std::uint8_t>(i * 37 % 251);
  std::vector<float> x(n);
  for (auto _ : state) {
    squint::kernels::fp8_kernel<Arch>::dequantize(q.data(), x.data(), n, 0.05f, false);
    benchmark::ClobberMemory();
  }
  set_bytes(state, n);
}

/// The streaming rate of two reads and one write (STREAM's triad, a = b + s * c), what a
/// backward pass reading x and dy and writing dx cannot beat.
void BM_StreamTriad(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto b = squint_bench::normal(n, 3), c = squint_bench::normal(n, 4);
  std::vector<float> a(n);
  for (auto _ : state) {
    for (std::size_t i = 0; i < n; ++i) a[i] = b[i] + 0.5f * c[i];
    benchmark::ClobberMemory();
  }
  set_bytes(state, n * sizeof(float) * 3);
}

BENCHMARK(BM_ReadBandwidth)->Apply(squint_bench::sizes);
BENCHMARK(BM_StreamTriad)->Apply(squint_bench::sizes);
#define SQUINT_X(A)                                                                        \
  BENCHMARK_TEMPLATE(BM_QuantizeS8, A, false)->Apply(squint_bench::sizes);                 \
  BENCHMARK_TEMPLATE(BM_QuantizeS8, A, true)->Apply(squint_bench::sizes);                  \
  BENCHMARK_TEMPLATE(BM_DequantizeS8, A)->Apply(squint_bench::sizes);                      \
  BENCHMARK_TEMPLATE(BM_RequantizeS8ChannelsLast, A)->Arg(1 << 20);                        \
  BENCHMARK_TEMPLATE(BM_FloatToHalf, A)->Arg(1 << 20);                                     \
  BENCHMARK_TEMPLATE(BM_HalfToFloat, A)->Arg(1 << 20);                                     \
  BENCHMARK_TEMPLATE(BM_FakeQuantGrad, A, false)->Apply(squint_bench::sizes);              \
  BENCHMARK_TEMPLATE(BM_FakeQuantGrad, A, true)->Apply(squint_bench::sizes);              \
  BENCHMARK_TEMPLATE(BM_QuantizeFp8, A)->Arg(1 << 20)->Arg(1 << 24);                       \
  BENCHMARK_TEMPLATE(BM_DequantizeFp8, A)->Arg(1 << 20)->Arg(1 << 24);
SQUINT_DISPATCH_FAMILIES
#undef SQUINT_X
BENCHMARK(BM_QuantizeS8Naive)->Apply(squint_bench::sizes);
BENCHMARK(BM_QuantizeS8AutoVectorized)->Apply(squint_bench::sizes);
BENCHMARK(BM_DequantizeS8Naive)->Apply(squint_bench::sizes);

}  // namespace

int main(int argc, char** argv) { return squint_bench::run(argc, argv); }

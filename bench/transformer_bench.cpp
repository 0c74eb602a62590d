// SPDX-License-Identifier: Apache-2.0
// transformer_bench: the linear layers of real models through squint::nn::linear, every
// precision in one binary. BERT-base encoder block at sequence 128 (QKV 768->2304, attention
// output 768->768, FFN 768->3072 and 3072->768) and LLaMA-7B-shaped decode layers
// (4096->4096, 4096->11008, 11008->4096) at M = 1 and M = 8. FP32 is squint's own (float-panel
// kernels) and, when installed, OpenBLAS (sgemm, sgemv at M = 1, plus the bias): the FP32 a user would pick; every
// squint precision runs on the runtime-dispatched kernels. GOPS counts 2 * M * N * K per call.
#include <map>
#include <memory>
#include <tuple>

#include "bench_common.hpp"
#include "squint/nn.hpp"

#if defined(SQUINT_BENCH_OPENBLAS)
#include <cblas.h>
#endif

namespace {

using squint::nn::precision;

/// One layer per (precision, N, K), built on first use and kept: LLaMA's weights take seconds
/// to quantize and hundreds of MB, so they are not rebuilt per thread count.
const squint::nn::linear& layer(precision mode, std::size_t n, std::size_t k) {
  static std::map<std::tuple<precision, std::size_t, std::size_t>, std::unique_ptr<squint::nn::linear>> cache;
  auto& slot = cache[{mode, n, k}];
  if (!slot) {
    const auto w = squint_bench::normal(n * k, 3);
    const auto bias = squint_bench::normal(n, 4);
    squint::nn::linear_options o;
    o.mode = mode;
    o.kernels = squint::runtime::backend();
    slot = std::make_unique<squint::nn::linear>(w.data(), n, k, k, bias.data(), o);
  }
  return *slot;
}

template <precision Mode>
void BM_Linear(benchmark::State& state) {
  const auto m = static_cast<std::size_t>(state.range(0)), n = static_cast<std::size_t>(state.range(1)),
             k = static_cast<std::size_t>(state.range(2));
  const squint::nn::linear& l = layer(Mode, n, k);
  const auto x = squint_bench::normal(m * k, 5);
  std::vector<float> y(m * n);
  const squint::parallelism par{static_cast<unsigned>(state.range(3))};
  for (auto _ : state) {
    l.forward(x.data(), m, y.data(), par);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GOPS"] = benchmark::Counter(2.0 * static_cast<double>(m * n * k),
                                              benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  state.SetLabel(squint::nn::to_string(l.mode()));
}

void shapes(benchmark::internal::Benchmark* b) {
  // {M, N, K}: BERT-base at sequence 128, then LLaMA-7B decode at batch 1 and 8.
  const long all[][3] = {{128, 2304, 768}, {128, 768, 768},  {128, 3072, 768}, {128, 768, 3072},
                         {1, 4096, 4096},  {1, 11008, 4096}, {1, 4096, 11008}, {8, 4096, 4096},
                         {8, 11008, 4096}, {8, 4096, 11008}};
  for (long threads : {1, 2})
    for (const auto& s : all) b->Args({s[0], s[1], s[2], threads});
  b->ArgNames({"M", "N", "K", "threads"});
  b->UseRealTime();
}

#if defined(SQUINT_BENCH_OPENBLAS)
/// The same layer on OpenBLAS: y = x . W^T (sgemv at M = 1), then the bias.
void BM_LinearOpenBLAS(benchmark::State& state) {
  const auto m = static_cast<std::size_t>(state.range(0)), n = static_cast<std::size_t>(state.range(1)),
             k = static_cast<std::size_t>(state.range(2));
  const auto w = squint_bench::normal(n * k, 3);
  const auto bias = squint_bench::normal(n, 4);
  const auto x = squint_bench::normal(m * k, 5);
  std::vector<float> y(m * n);
  openblas_set_num_threads(static_cast<int>(state.range(3)));
  const auto bm = static_cast<blasint>(m), bn = static_cast<blasint>(n), bk = static_cast<blasint>(k);
  for (auto _ : state) {
    if (m == 1)
      cblas_sgemv(CblasRowMajor, CblasNoTrans, bn, bk, 1.0f, w.data(), bk, x.data(), 1, 0.0f, y.data(), 1);
    else
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, bm, bn, bk, 1.0f, x.data(), bk, w.data(), bk, 0.0f, y.data(),
                  bn);
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = 0; j < n; ++j) y[i * n + j] += bias[j];
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GOPS"] = benchmark::Counter(2.0 * static_cast<double>(m * n * k),
                                              benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}
BENCHMARK(BM_LinearOpenBLAS)->Apply(shapes);
#endif

BENCHMARK_TEMPLATE(BM_Linear, precision::fp32)->Apply(shapes);
BENCHMARK_TEMPLATE(BM_Linear, precision::fp16)->Apply(shapes);
BENCHMARK_TEMPLATE(BM_Linear, precision::int8_dynamic)->Apply(shapes);
BENCHMARK_TEMPLATE(BM_Linear, precision::int8_weight_only)->Apply(shapes);
BENCHMARK_TEMPLATE(BM_Linear, precision::fp8_weight_only)->Apply(shapes);
BENCHMARK_TEMPLATE(BM_Linear, precision::int4_weight_only)->Apply(shapes);
BENCHMARK_TEMPLATE(BM_Linear, precision::int4_dynamic)->Apply(shapes);

}  // namespace

int main(int argc, char** argv) { return squint_bench::run(argc, argv); }

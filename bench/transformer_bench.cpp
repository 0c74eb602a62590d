// SPDX-License-Identifier: Apache-2.0
// transformer_bench: the linear layers of real models through squint::nn::linear, every
// precision in one binary. BERT-base encoder block at sequence 128 (QKV 768->2304, attention
// output 768->768, FFN 768->3072 and 3072->768) and LLaMA-7B-shaped decode layers
// (4096->4096, 4096->11008, 11008->4096) at M = 1 and M = 8. FP32 is squint's own (float-panel
// kernels) and, when installed, OpenBLAS (sgemm, sgemv at M = 1, plus the bias): the FP32 a user would pick; every
// squint precision runs on the runtime-dispatched kernels. The quantized peers, when found at
// configure time: llama.cpp's ggml (Q4_0, Q4_K, Q8_0) and ONNX Runtime (MatMulNBits int4 block 32,
// DynamicQuantizeMatMul), float in and out with the bias, as squint's layers. INT8 weight-only
// per group of 32 (gemm_int8_grouped) runs on the same weights below the layers.
// GOPS counts 2 * M * N * K per call.
#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <utility>

#include "bench_common.hpp"
#include "squint/nn.hpp"

#if defined(SQUINT_BENCH_OPENBLAS)
#include <cblas.h>
#endif
#if defined(SQUINT_BENCH_GGML)
#include "ggml_baseline.hpp"
#endif
#if defined(SQUINT_BENCH_ORT)
#include "onnxruntime_baseline.hpp"
#endif

namespace {

using squint::nn::precision;

using squint::group_scale_format;

/// One layer per (precision, int4 scale format, N, K), built on first use and kept: LLaMA's
/// weights take seconds to quantize and hundreds of MB, so they are not rebuilt per thread count.
const squint::nn::linear& layer(precision mode, std::size_t n, std::size_t k,
                                group_scale_format scales = group_scale_format::fp32) {
  static std::map<std::tuple<precision, group_scale_format, std::size_t, std::size_t>,
                  std::unique_ptr<squint::nn::linear>>
      cache;
  auto& slot = cache[{mode, scales, n, k}];
  if (!slot) {
    const auto w = squint_bench::normal(n * k, 3);
    const auto bias = squint_bench::normal(n, 4);
    squint::nn::linear_options o;
    o.mode = mode;
    o.int4_scales = scales;
    o.kernels = squint::runtime::backend();
    slot = std::make_unique<squint::nn::linear>(w.data(), n, k, k, bias.data(), o);
  }
  return *slot;
}

struct shape {
  std::size_t m, n, k;
  int threads;
  explicit shape(const benchmark::State& state)
      : m(static_cast<std::size_t>(state.range(0))),
        n(static_cast<std::size_t>(state.range(1))),
        k(static_cast<std::size_t>(state.range(2))),
        threads(static_cast<int>(state.range(3))) {}
  auto key() const { return std::make_tuple(m, n, k, threads); }
};

void set_ops(benchmark::State& state, const shape& s) {
  state.counters["GOPS"] = benchmark::Counter(2.0 * static_cast<double>(s.m * s.n * s.k),
                                              benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

/// ||y - y_fp32|| / ||y_fp32|| against squint's FP32 layer on the same input: the accuracy each
/// row pays for its speed, and a check that a peer's model computes this layer at all.
void set_error(benchmark::State& state, const shape& s, const std::vector<float>& x, const float* y) {
  std::vector<float> ref(s.m * s.n);
  layer(precision::fp32, s.n, s.k).forward(x.data(), s.m, ref.data());
  double diff = 0, norm = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    diff += (static_cast<double>(y[i]) - ref[i]) * (static_cast<double>(y[i]) - ref[i]);
    norm += static_cast<double>(ref[i]) * ref[i];
  }
  state.counters["rel_err"] = std::sqrt(diff / norm);
}

/// Scales = fp16: the int4 precisions with fp16 group scales (4.5 bits per weight in groups of
/// 32, as llama.cpp's Q4_0).
template <precision Mode, group_scale_format Scales = group_scale_format::fp32>
void BM_Linear(benchmark::State& state) {
  const shape s(state);
  const squint::nn::linear& l = layer(Mode, s.n, s.k, Scales);
  const auto x = squint_bench::normal(s.m * s.k, 5);
  std::vector<float> y(s.m * s.n);
  const squint::parallelism par{static_cast<unsigned>(s.threads)};
  for (auto _ : state) {
    l.forward(x.data(), s.m, y.data(), par);
    benchmark::DoNotOptimize(y.data());
  }
  set_ops(state, s);
  set_error(state, s, x, y.data());
  state.SetLabel(std::string(squint::nn::to_string(l.mode())) + (Scales == group_scale_format::fp16 ? ", fp16 scales" : ""));
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
  const shape s(state);
  const auto w = squint_bench::normal(s.n * s.k, 3);
  const auto bias = squint_bench::normal(s.n, 4);
  const auto x = squint_bench::normal(s.m * s.k, 5);
  std::vector<float> y(s.m * s.n);
  openblas_set_num_threads(s.threads);
  const auto bm = static_cast<blasint>(s.m), bn = static_cast<blasint>(s.n), bk = static_cast<blasint>(s.k);
  for (auto _ : state) {
    if (s.m == 1)
      cblas_sgemv(CblasRowMajor, CblasNoTrans, bn, bk, 1.0f, w.data(), bk, x.data(), 1, 0.0f, y.data(), 1);
    else
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, bm, bn, bk, 1.0f, x.data(), bk, w.data(), bk, 0.0f, y.data(),
                  bn);
    for (std::size_t i = 0; i < s.m; ++i)
      for (std::size_t j = 0; j < s.n; ++j) y[i * s.n + j] += bias[j];
    benchmark::DoNotOptimize(y.data());
  }
  set_ops(state, s);
  set_error(state, s, x, y.data());
}
BENCHMARK(BM_LinearOpenBLAS)->Apply(shapes);
#endif

/// A peer's layer for one shape and variant (its weight type), built on first use and kept:
/// Google Benchmark calls each benchmark several times while it sizes the run, and the peers
/// prepack their weights on creation.
template <class Layer, class Make>
Layer& peer(const shape& s, int variant, Make make) {
  static std::map<std::pair<int, std::tuple<std::size_t, std::size_t, std::size_t, int>>, std::unique_ptr<Layer>> cache;
  auto& slot = cache[{variant, s.key()}];
  if (!slot) slot = make();
  return *slot;
}

#if defined(SQUINT_BENCH_GGML)
/// llama.cpp's kernels for one weight type (see ggml_baseline.hpp), the weights shared by every M
/// and thread count.
template <ggml_type Type>
void BM_LinearGgml(benchmark::State& state) {
  const shape s(state);
  static std::map<std::pair<std::size_t, std::size_t>, std::unique_ptr<squint_bench::ggml::weights>> weights;
  auto& w = weights[{s.n, s.k}];  // one map per Type
  if (!w) {
    const auto wf = squint_bench::normal(s.n * s.k, 3);
    const auto bias = squint_bench::normal(s.n, 4);
    w = std::make_unique<squint_bench::ggml::weights>(Type, wf.data(), s.n, s.k, bias.data());
  }
  auto& l = peer<squint_bench::ggml::layer>(s, Type, [&] { return std::make_unique<squint_bench::ggml::layer>(*w, s.m, s.threads); });
  const auto x = squint_bench::normal(s.m * s.k, 5);
  std::vector<float> y(s.m * s.n);
  for (auto _ : state) {
    l.forward(x.data(), y.data());
    benchmark::DoNotOptimize(y.data());
  }
  set_ops(state, s);
  set_error(state, s, x, y.data());
  state.SetLabel(std::string(ggml_type_name(Type)) + (w->repacked() ? " repacked" : ""));
}
BENCHMARK_TEMPLATE(BM_LinearGgml, GGML_TYPE_Q4_0)->Apply(shapes);
BENCHMARK_TEMPLATE(BM_LinearGgml, GGML_TYPE_Q4_K)->Apply(shapes);
BENCHMARK_TEMPLATE(BM_LinearGgml, GGML_TYPE_Q8_0)->Apply(shapes);
#endif

#if defined(SQUINT_BENCH_ORT)
/// ONNX Runtime: one node per layer (see onnxruntime_baseline.hpp) built from the same weights.
template <bool Int4>
void BM_LinearOrt(benchmark::State& state) {
  const shape s(state);
  try {
    auto& l = peer<squint_bench::ort::float_layer>(s, Int4, [&] {
      const auto w = squint_bench::normal(s.n * s.k, 3);
      const auto bias = squint_bench::normal(s.n, 4);
      const auto x = squint_bench::normal(s.m * s.k, 5);
      const std::string model = Int4 ? squint_bench::ort::matmul_nbits(w.data(), s.n, s.k, bias.data(), s.m, 32)
                                     : squint_bench::ort::dynamic_quantize_matmul(w.data(), s.n, s.k, bias.data(), s.m);
      return std::make_unique<squint_bench::ort::float_layer>(model, x.data(), s.m, s.n, s.k, s.threads);
    });
    for (auto _ : state) {
      l.forward();
      benchmark::DoNotOptimize(l.y.data());
    }
    set_error(state, s, l.x, l.y.data());
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  set_ops(state, s);
  state.SetLabel(Int4 ? "MatMulNBits int4 block 32, accuracy 4" : "DynamicQuantizeMatMul");
}
BENCHMARK_TEMPLATE(BM_LinearOrt, true)->Apply(shapes);
BENCHMARK_TEMPLATE(BM_LinearOrt, false)->Apply(shapes);
#endif

BENCHMARK_TEMPLATE(BM_Linear, precision::fp32)->Apply(shapes);
BENCHMARK_TEMPLATE(BM_Linear, precision::fp16)->Apply(shapes);
BENCHMARK_TEMPLATE(BM_Linear, precision::int8_dynamic)->Apply(shapes);
BENCHMARK_TEMPLATE(BM_Linear, precision::int8_weight_only)->Apply(shapes);
BENCHMARK_TEMPLATE(BM_Linear, precision::fp8_weight_only)->Apply(shapes);
BENCHMARK_TEMPLATE(BM_Linear, precision::int4_weight_only)->Apply(shapes);
BENCHMARK_TEMPLATE(BM_Linear, precision::int4_dynamic)->Apply(shapes);
BENCHMARK_TEMPLATE(BM_Linear, precision::int4_weight_only, group_scale_format::fp16)->Apply(shapes);
BENCHMARK_TEMPLATE(BM_Linear, precision::int4_dynamic, group_scale_format::fp16)->Apply(shapes);

/// INT8 weight-only with a scale per group of 32 inputs (gemm_int8_grouped; with fp16 scales 8.5
/// bits per weight, as ggml's Q8_0) on the same weights, the bias in the kernel's epilogue. No
/// nn precision packs it yet, so the packing is cached here per (format, N, K).
template <group_scale_format Scales>
void BM_LinearInt8Grouped(benchmark::State& state) {
  const shape s(state);
  static std::map<std::tuple<std::size_t, std::size_t>, std::unique_ptr<squint::packed_int8_grouped_weights>> cache;
  auto& slot = cache[{s.n, s.k}];
  if (!slot) {
    const auto w = squint_bench::normal(s.n * s.k, 3);
    slot = std::make_unique<squint::packed_int8_grouped_weights>(
        squint::packed_int8_grouped_weights::from_float(w.data(), s.n, s.k, s.k, 32, Scales));
  }
  const auto bias = squint_bench::normal(s.n, 4);
  const auto x = squint_bench::normal(s.m * s.k, 5);
  std::vector<float> y(s.m * s.n);
  const squint::parallelism par{static_cast<unsigned>(s.threads)};
  for (auto _ : state) {
    squint::runtime::gemm_int8_grouped(x.data(), s.m, s.k, *slot, bias.data(), false, y.data(), s.n, par);
    benchmark::DoNotOptimize(y.data());
  }
  set_ops(state, s);
  set_error(state, s, x, y.data());
  state.SetLabel(Scales == group_scale_format::fp16 ? "int8 per group of 32, fp16 scales"
                                                    : "int8 per group of 32, fp32 scales");
}
BENCHMARK_TEMPLATE(BM_LinearInt8Grouped, group_scale_format::fp32)->Apply(shapes);
BENCHMARK_TEMPLATE(BM_LinearInt8Grouped, group_scale_format::fp16)->Apply(shapes);

}  // namespace

int main(int argc, char** argv) { return squint_bench::run(argc, argv); }

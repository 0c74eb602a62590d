// SPDX-License-Identifier: Apache-2.0
// gemm_bench.cpp: INT8 GEMM GOP/s (1 MAC = 2 ops) per micro-kernel arch (int32 output; float
// output on the dispatched kernel, and per arch in registers or from cached tiles; 7-bit activations where an arch has a kernel for them;
// squint::nn's dynamic INT8 layer, float in and out), with baselines in the same binary:
// OpenBLAS sgemm (float), oneDNN's u8 x s8 -> s32 matmul, and ONNX Runtime's MatMulInteger and
// DynamicQuantizeMatMul, when installed.
// Shapes (M, N, K): C is M x N, weights N x K, as a linear layer with N outputs and K inputs.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "bench_common.hpp"
#include "squint/gemm/fp16.hpp"
#include "squint/gemm/fp32.hpp"
#include "squint/gemm/gemm.hpp"
#include "squint/nn/linear.hpp"

#if defined(SQUINT_BENCH_OPENBLAS)
#include <cblas.h>
#endif
#if defined(SQUINT_BENCH_DNNL)
#include <oneapi/dnnl/dnnl.hpp>
#endif
#if defined(SQUINT_BENCH_ORT)
#include "onnxruntime_baseline.hpp"
#endif

namespace {

const long shapes[][3] = {{1, 768, 768},     {1, 4096, 4096},   {8, 4096, 4096},   {16, 3072, 768},
                          {64, 768, 768},    {128, 3072, 768},  {128, 768, 3072},  {256, 1024, 1024},
                          {512, 512, 512},   {1024, 1024, 1024}};

void all_shapes(benchmark::internal::Benchmark* b) {
  for (const auto& s : shapes) b->Args({s[0], s[1], s[2]});
  b->ArgNames({"M", "N", "K"});
}

void all_shapes_threads(benchmark::internal::Benchmark* b) {
  for (long threads : {1, 2})
    for (const auto& s : shapes) b->Args({s[0], s[1], s[2], threads});
  b->ArgNames({"M", "N", "K", "threads"});
  b->UseRealTime();
}

void set_ops(benchmark::State& state) {
  state.counters["GOPS"] = benchmark::Counter(2.0 * static_cast<double>(state.range(0)) *
                                                  static_cast<double>(state.range(1)) * static_cast<double>(state.range(2)),
                                              benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

/// The INT8 benchmarks' operands: uint8 activations (m x k) and weights packed from float (n x k).
struct u8_operands {
  std::vector<std::uint8_t> a;
  squint::packed_weights b;
};

u8_operands make_u8_operands(std::size_t m, std::size_t n, std::size_t k) {
  std::vector<std::uint8_t> a(m * k);
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<std::uint8_t>(i * 7 % 256);
  const auto w = squint_bench::normal(n * k);
  return {std::move(a), squint::packed_weights::from_float(w.data(), n, k, k)};
}

template <class Arch>
void BM_GemmU8S8(benchmark::State& state) {
  if (squint_bench::skip_unavailable<Arch>(state)) return;
  const auto m = static_cast<std::size_t>(state.range(0)), n = static_cast<std::size_t>(state.range(1)),
             k = static_cast<std::size_t>(state.range(2));
  if (std::is_same<Arch, squint::arch::scalar>::value && m * n * k > (1u << 26)) {
    state.SkipWithError("scalar kernel: small shapes only");
    return;
  }
  const u8_operands x = make_u8_operands(m, n, k);
  std::vector<std::int32_t> c(m * n);
  const squint::parallelism par{static_cast<unsigned>(state.range(3))};
  for (auto _ : state) {
    squint::detail::gemm_s32<Arch>(x.a.data(), m, k, 128, x.b, c.data(), n, par);
    benchmark::DoNotOptimize(c.data());
  }
  set_ops(state);
}

/// 7-bit activations (codes in [0, 127], e.g. quantized with reduce_range) on the archs whose
/// full-range kernel is the sign trick: the plain vpmaddubsw kernel the driver picks for them.
template <class Arch>
void BM_GemmU7S8(benchmark::State& state) {
  if (squint_bench::skip_unavailable<Arch>(state)) return;
  if (!squint::kernels::has_u7_gemm_kernel<Arch>()) {
    state.SkipWithError("no 7-bit kernel: 7-bit codes run the arch's full-range kernel");
    return;
  }
  const auto m = static_cast<std::size_t>(state.range(0)), n = static_cast<std::size_t>(state.range(1)),
             k = static_cast<std::size_t>(state.range(2));
  u8_operands x = make_u8_operands(m, n, k);
  for (auto& v : x.a) v = static_cast<std::uint8_t>(v % 128);
  std::vector<std::int32_t> c(m * n);
  for (auto _ : state) {
    squint::detail::gemm_s32<Arch>(x.a.data(), m, k, 64, x.b, c.data(), n);
    benchmark::DoNotOptimize(c.data());
  }
  set_ops(state);
}

/// The dispatched kernel with the float output stage (scale, bias, ReLU), as squint::nn's
/// dynamic INT8 layers call it: the output stage's cost is the gap to BM_GemmU8S8.
void BM_GemmU8S8ToFloat(benchmark::State& state) {
  const auto m = static_cast<std::size_t>(state.range(0)), n = static_cast<std::size_t>(state.range(1)),
             k = static_cast<std::size_t>(state.range(2));
  const u8_operands x = make_u8_operands(m, n, k);
  const auto bias = squint_bench::normal(n, 3);
  std::vector<float> c(m * n);
  const squint::parallelism par{static_cast<unsigned>(state.range(3))};
  for (auto _ : state) {
    squint::runtime::gemm(x.a.data(), m, k, squint::qparams{0.02f, 128}, x.b, bias.data(), true, c.data(), n, par);
    benchmark::DoNotOptimize(c.data());
  }
  set_ops(state);
}
BENCHMARK(BM_GemmU8S8ToFloat)->Apply(all_shapes_threads);

/// squint::nn's dynamic INT8 layer, float in and out: activations quantized per tensor at run
/// time, the dispatched GEMM, scale, bias. The peer is ONNX Runtime's DynamicQuantizeMatMul.
void BM_DynamicLinear(benchmark::State& state) {
  const auto m = static_cast<std::size_t>(state.range(0)), n = static_cast<std::size_t>(state.range(1)),
             k = static_cast<std::size_t>(state.range(2));
  const auto w = squint_bench::normal(n * k, 2);
  const auto bias = squint_bench::normal(n, 3);
  const auto x = squint_bench::normal(m * k, 1);
  squint::nn::linear_options o;
  o.mode = squint::nn::precision::int8_dynamic;
  o.kernels = squint::runtime::backend();
  const squint::nn::linear l(w.data(), n, k, k, bias.data(), o);
  std::vector<float> y(m * n);
  const squint::parallelism par{static_cast<unsigned>(state.range(3))};
  for (auto _ : state) {
    l.forward(x.data(), m, y.data(), par);
    benchmark::DoNotOptimize(y.data());
  }
  set_ops(state);
}
BENCHMARK(BM_DynamicLinear)->Apply(all_shapes_threads);

/// The float output stage on Arch's kernel, applied to the accumulators in registers
/// (InRegisters) or, as before, to each finished int32 tile in cache: the same bits, and the gap
/// to BM_GemmU8S8 is what each costs.
template <class Arch, bool InRegisters>
void BM_GemmU8S8FloatStage(benchmark::State& state) {
  if (squint_bench::skip_unavailable<Arch>(state)) return;
  const auto m = static_cast<std::size_t>(state.range(0)), n = static_cast<std::size_t>(state.range(1)),
             k = static_cast<std::size_t>(state.range(2));
  const u8_operands x = make_u8_operands(m, n, k);
  const auto bias = squint_bench::normal(n, 3);
  std::vector<float> c(m * n);
  const float a_scale = 0.02f;
  squint::detail::float_output out{&a_scale, false, x.b.scales().data(), bias.data(), true, c.data(), n};
  out.stage = &squint::kernels::float_stage_kernel<squint::arch::family_t<Arch>>::row;
  const squint::detail::output_stage stage{&squint::detail::float_output::finish, &out, nullptr,
                                           InRegisters ? &out : nullptr};
  for (auto _ : state) {
    squint::detail::gemm_s32<Arch>(x.a.data(), m, k, 128, x.b, nullptr, 0, {}, &stage);
    benchmark::DoNotOptimize(c.data());
  }
  set_ops(state);
}

/// A float-panel kernel on Arch: FP16 weights (the fallback where INT8 does not pay) or FP32
/// weights (squint's FP32 GEMM, squint::nn's fp32 precision), fp32 accumulation.
template <class Arch, class Packed, class Kernel>
void panel_gemm(benchmark::State& state) {
  if (squint_bench::skip_unavailable<Arch>(state)) return;
  if (!std::is_same<Arch, squint::arch::avx512bw>::value && !std::is_same<Arch, squint::arch::avx2>::value) {
    state.SkipWithError("portable float-panel path: not benchmarked");
    return;
  }
  const auto m = static_cast<std::size_t>(state.range(0)), n = static_cast<std::size_t>(state.range(1)),
             k = static_cast<std::size_t>(state.range(2));
  const auto a = squint_bench::normal(m * k, 1);
  const auto w = squint_bench::normal(n * k, 2);
  const auto packed = Packed::from_float(w.data(), n, k, k);
  std::vector<float> c(m * n);
  for (auto _ : state) {
    Kernel::run(a.data(), m, k, k, packed.data(), n, nullptr, false, c.data(), n);
    benchmark::DoNotOptimize(c.data());
  }
  set_ops(state);
}

template <class Arch>
void BM_GemmHalf(benchmark::State& state) {
  panel_gemm<Arch, squint::packed_half_weights, squint::kernels::half_gemm_kernel<Arch>>(state);
}

template <class Arch>
void BM_GemmFloat(benchmark::State& state) {
  panel_gemm<Arch, squint::packed_float_weights, squint::kernels::float_gemm_kernel<Arch>>(state);
}

#if defined(SQUINT_BENCH_OPENBLAS)
void BM_SgemmOpenBLAS(benchmark::State& state) {
  const auto m = static_cast<int>(state.range(0)), n = static_cast<int>(state.range(1)), k = static_cast<int>(state.range(2));
  const auto a = squint_bench::normal(static_cast<std::size_t>(m) * k, 1);
  const auto w = squint_bench::normal(static_cast<std::size_t>(n) * k, 2);
  std::vector<float> c(static_cast<std::size_t>(m) * n);
  for (auto _ : state) {
    if (m == 1)
      cblas_sgemv(CblasRowMajor, CblasNoTrans, n, k, 1.0f, w.data(), k, a.data(), 1, 0.0f, c.data(), 1);
    else
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a.data(), k, w.data(), k, 0.0f, c.data(), n);
    benchmark::DoNotOptimize(c.data());
  }
  set_ops(state);
}
BENCHMARK(BM_SgemmOpenBLAS)->Apply(all_shapes)->UseRealTime();
#endif

#if defined(SQUINT_BENCH_DNNL)
void BM_GemmOneDNN(benchmark::State& state) {
  using dt = dnnl::memory::data_type;
  using tag = dnnl::memory::format_tag;
  const auto m = state.range(0), n = state.range(1), k = state.range(2);
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  const dnnl::memory::desc a_md({m, k}, dt::u8, tag::ab), b_md({k, n}, dt::s8, tag::any), c_md({m, n}, dt::s32, tag::ab);
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, b_md, c_md), engine);
  std::vector<std::uint8_t> a(static_cast<std::size_t>(m * k), 3);
  std::vector<std::int8_t> b_plain(static_cast<std::size_t>(k * n), 1);
  std::vector<std::int32_t> c(static_cast<std::size_t>(m * n));
  dnnl::memory a_mem(a_md, engine, a.data()), c_mem(c_md, engine, c.data());
  dnnl::memory b_src({{k, n}, dt::s8, tag::ab}, engine, b_plain.data()), b_mem(pd.weights_desc(), engine);
  dnnl::reorder(b_src, b_mem).execute(stream, b_src, b_mem);  // prepacked weights, as squint's
  dnnl::matmul matmul(pd);
  for (auto _ : state) {
    matmul.execute(stream, {{DNNL_ARG_SRC, a_mem}, {DNNL_ARG_WEIGHTS, b_mem}, {DNNL_ARG_DST, c_mem}});
    stream.wait();
  }
  set_ops(state);
}
BENCHMARK(BM_GemmOneDNN)->Apply(all_shapes)->UseRealTime();
#endif

#if defined(SQUINT_BENCH_ORT)
/// ONNX Runtime's MatMulInteger: uint8 activations with zero point 128 x int8 weights (an
/// initializer, prepacked when the session is created) -> int32, as BM_GemmU8S8.
void BM_GemmOrtMatMulInteger(benchmark::State& state) {
  namespace ort = squint_bench::ort;
  const auto m = state.range(0), n = state.range(1), k = state.range(2);
  const u8_operands x = make_u8_operands(static_cast<std::size_t>(m), static_cast<std::size_t>(n), static_cast<std::size_t>(k));
  std::vector<std::int8_t> b(static_cast<std::size_t>(k * n));
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<std::int8_t>(static_cast<int>(i * 13 % 255) - 127);
  std::vector<std::uint8_t> a = x.a;
  std::vector<std::int32_t> c(static_cast<std::size_t>(m * n));
  try {
    const ort::tensor a_t{"A", ort::uint8, {m, k}, {}}, y_t{"Y", ort::int32, {m, n}, {}};
    ort::session run(ort::model({"MatMulInteger", "", {"A", "B", "a_zero_point"}, {}}, {a_t},
                                {{"B", ort::int8, {k, n}, ort::raw_bytes(b)},
                                 {"a_zero_point", ort::uint8, {}, ort::raw_bytes(std::vector<std::uint8_t>{128})}},
                                y_t),
                     static_cast<int>(state.range(3)));
    run.input(a_t, a.data());
    run.output(y_t, c.data());
    for (auto _ : state) {
      run.run();
      benchmark::DoNotOptimize(c.data());
    }
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  set_ops(state);
}
BENCHMARK(BM_GemmOrtMatMulInteger)->Apply(all_shapes_threads);

/// ONNX Runtime's DynamicQuantizeMatMul, float in and out with the bias, as BM_DynamicLinear.
void BM_DynamicLinearOrt(benchmark::State& state) {
  const auto m = static_cast<std::size_t>(state.range(0)), n = static_cast<std::size_t>(state.range(1)),
             k = static_cast<std::size_t>(state.range(2));
  const auto w = squint_bench::normal(n * k, 2);
  const auto bias = squint_bench::normal(n, 3);
  const auto x = squint_bench::normal(m * k, 1);
  try {
    squint_bench::ort::float_layer l(squint_bench::ort::dynamic_quantize_matmul(w.data(), n, k, bias.data(), m), x.data(),
                                     m, n, k, static_cast<int>(state.range(3)));
    for (auto _ : state) {
      l.forward();
      benchmark::DoNotOptimize(l.y.data());
    }
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  set_ops(state);
}
BENCHMARK(BM_DynamicLinearOrt)->Apply(all_shapes_threads);
#endif

#define SQUINT_X(A) BENCHMARK_TEMPLATE(BM_GemmU8S8, A)->Apply(all_shapes_threads);
SQUINT_DISPATCH_GEMM_ARCHS
#undef SQUINT_X
#define SQUINT_X(A)                                                                               \
  BENCHMARK_TEMPLATE(BM_GemmU8S8FloatStage, A, true)->Apply(all_shapes)->UseRealTime();          \
  BENCHMARK_TEMPLATE(BM_GemmU8S8FloatStage, A, false)->Apply(all_shapes)->UseRealTime();
SQUINT_DISPATCH_GEMM_ARCHS
#undef SQUINT_X
#define SQUINT_X(A) BENCHMARK_TEMPLATE(BM_GemmU7S8, A)->Apply(all_shapes)->UseRealTime();
SQUINT_DISPATCH_GEMM_ARCHS
#undef SQUINT_X
#define SQUINT_X(A) BENCHMARK_TEMPLATE(BM_GemmHalf, A)->Apply(all_shapes);
SQUINT_DISPATCH_FAMILIES
#undef SQUINT_X
#define SQUINT_X(A) BENCHMARK_TEMPLATE(BM_GemmFloat, A)->Apply(all_shapes);
SQUINT_DISPATCH_FAMILIES
#undef SQUINT_X

}  // namespace

int main(int argc, char** argv) { return squint_bench::run(argc, argv); }

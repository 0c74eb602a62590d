// SPDX-License-Identifier: Apache-2.0
// conv_bench.cpp: INT8 convolution GOP/s (1 MAC = 2 ops) on ResNet-50's batch-1 layers and
// MobileNetV2's depthwise layers, per ISA, squint's FP32 / FP16 / weight-only convolutions on the
// dispatched ISA, and baselines in the same binary when installed:
// oneDNN's int8 (u8 x s8 -> u8, per-channel scales) and f32 convolutions, XNNPACK's qc8 (s8,
// per-channel) and f32 convolutions. Every int8 contender runs the full-integer layer (uint8
// or int8 in, codes out, requantized per channel) on NHWC activations and prepacked weights.
// Arguments: layer index (see `layers`), threads. Then the Fashion-MNIST demo's CNN end to end
// (squint::nn::graph) in each precision at batch 1 and 64, its FP32 the baseline.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bench_common.hpp"
#include "squint/conv/conv.hpp"
#include "squint/conv/float_conv.hpp"
#include "squint/nn.hpp"

#if defined(SQUINT_BENCH_DNNL) && defined(SQUINT_BENCH_GOMP)
#include <oneapi/dnnl/dnnl.hpp>
extern "C" void omp_set_num_threads(int);  // oneDNN's Debian build threads with OpenMP
#endif
#if defined(SQUINT_BENCH_XNNPACK)
#include <pthreadpool.h>
#include <xnnpack.h>
#endif

namespace {

struct layer {
  const char* name;
  std::size_t size, channels, out_channels, kernel, stride;
  bool depthwise;
};

const layer layers[] = {
    {"resnet_conv1_7x7s2_224", 224, 3, 64, 7, 2, false},
    {"resnet_3x3_56_64", 56, 64, 64, 3, 1, false},
    {"resnet_3x3_28_128", 28, 128, 128, 3, 1, false},
    {"resnet_3x3_14_256", 14, 256, 256, 3, 1, false},
    {"resnet_3x3_7_512", 7, 512, 512, 3, 1, false},
    {"resnet_1x1_56_64_256", 56, 64, 256, 1, 1, false},
    {"resnet_1x1_56_256_64", 56, 256, 64, 1, 1, false},
    {"resnet_1x1_28_512_128", 28, 512, 128, 1, 1, false},
    {"resnet_1x1_14_256_1024", 14, 256, 1024, 1, 1, false},
    {"resnet_1x1_7_2048_512", 7, 2048, 512, 1, 1, false},
    {"mobilenet_dw3x3_112_32", 112, 32, 32, 3, 1, true},
    {"mobilenet_dw3x3s2_112_96", 112, 96, 96, 3, 2, true},
    {"mobilenet_dw3x3_56_144", 56, 144, 144, 3, 1, true},
    {"mobilenet_dw3x3_14_384", 14, 384, 384, 3, 1, true},
    {"mobilenet_dw3x3_7_960", 7, 960, 960, 3, 1, true},
};

void all_layers(benchmark::internal::Benchmark* b) {
  for (long threads : {1, 2})
    for (long i = 0; i < static_cast<long>(sizeof layers / sizeof layers[0]); ++i) b->Args({i, threads});
  b->ArgNames({"layer", "threads"});
  b->UseRealTime();
}

const layer& layer_of(benchmark::State& state) {
  const layer& l = layers[state.range(0)];
  state.SetLabel(l.name);
  return l;
}

std::size_t pad_of(const layer& l) { return l.kernel / 2; }
std::size_t out_size(const layer& l) { return (l.size + 2 * pad_of(l) - l.kernel) / l.stride + 1; }
std::size_t group_channels(const layer& l) { return l.depthwise ? 1 : l.channels; }

void set_ops(benchmark::State& state, const layer& l) {
  const double macs = static_cast<double>(out_size(l) * out_size(l) * l.out_channels * l.kernel * l.kernel *
                                          group_channels(l));
  state.counters["GOPS"] =
      benchmark::Counter(2.0 * macs, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

std::vector<std::uint8_t> image(const layer& l) {
  std::vector<std::uint8_t> x(l.size * l.size * l.channels);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<std::uint8_t>(i * 7 % 251);
  return x;
}

squint::conv2d_params params_of(const layer& l) {
  squint::conv2d_params p;
  p.stride_h = p.stride_w = l.stride;
  p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = pad_of(l);
  p.groups = l.depthwise ? l.channels : 1;
  return p;
}

/// OIHW float weights (depthwise: O x 1 x kh x kw).
std::vector<float> filter(const layer& l) { return squint_bench::normal(l.out_channels * group_channels(l) * l.kernel * l.kernel); }

template <class Arch>
void BM_ConvInt8(benchmark::State& state) {
  if (squint_bench::skip_unavailable<Arch>(state)) return;
  const layer& l = layer_of(state);
  const squint::conv2d_params p = params_of(l);
  const auto w = filter(l);
  const auto packed = squint::packed_conv::from_float(
      w.data(), {l.out_channels, group_channels(l), l.kernel, l.kernel}, squint::filter_layout::oihw, p);
  const auto x = image(l);
  const squint::image_shape in{1, l.size, l.size, l.channels};
  std::vector<std::uint8_t> y(packed.geometry(in).out.size());
  squint::runtime::force_isa(Arch::name());
  const squint::parallelism par{static_cast<unsigned>(state.range(1))};
  for (auto _ : state) {
    squint::runtime::conv2d(x.data(), in, squint::qparams{0.05f, 0}, packed, nullptr, squint::qparams{0.1f, 0},
                            squint::activation::relu, y.data(), par);
    benchmark::ClobberMemory();
  }
  squint::runtime::force_isa(nullptr);
  set_ops(state, l);
}

/// squint's float convolutions (FP32, FP16, int8 weight-only) on the dispatched ISA.
template <class Packed>
void BM_ConvFloat(benchmark::State& state) {
  const layer& l = layer_of(state);
  const squint::conv2d_params p = params_of(l);
  const auto w = filter(l);
  const auto packed = squint::packed_float_conv<Packed>::from_float(
      w.data(), {l.out_channels, group_channels(l), l.kernel, l.kernel}, squint::filter_layout::oihw, p);
  const auto x8 = image(l);
  const std::vector<float> x(x8.begin(), x8.end());
  const squint::image_shape in{1, l.size, l.size, l.channels};
  std::vector<float> y(packed.geometry(in).out.size());
  const squint::parallelism par{static_cast<unsigned>(state.range(1))};
  for (auto _ : state) {
    squint::runtime::conv2d(x.data(), in, packed, nullptr, squint::activation::relu, y.data(), par);
    benchmark::ClobberMemory();
  }
  set_ops(state, l);
}
BENCHMARK_TEMPLATE(BM_ConvFloat, squint::packed_float_weights)->Apply(all_layers);
BENCHMARK_TEMPLATE(BM_ConvFloat, squint::packed_half_weights)->Apply(all_layers);
BENCHMARK_TEMPLATE(BM_ConvFloat, squint::packed_weight_only)->Apply(all_layers);

#if defined(SQUINT_BENCH_DNNL) && defined(SQUINT_BENCH_GOMP)
/// oneDNN's convolution on NHWC activations with weights in its own blocked layout (reordered
/// once, as squint packs once): u8 x s8 -> u8 with per-channel output scales, or f32.
void onednn_conv(benchmark::State& state, bool int8) {
  using dt = dnnl::memory::data_type;
  using tag = dnnl::memory::format_tag;
  const layer& l = layer_of(state);
  omp_set_num_threads(static_cast<int>(state.range(1)));
  const auto c = static_cast<long>(l.channels), oc = static_cast<long>(l.out_channels);
  const auto h = static_cast<long>(l.size), oh = static_cast<long>(out_size(l)), k = static_cast<long>(l.kernel);
  const auto s = static_cast<long>(l.stride), pad = static_cast<long>(pad_of(l));
  const long groups = l.depthwise ? c : 1;
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  const dt src_t = int8 ? dt::u8 : dt::f32, wei_t = int8 ? dt::s8 : dt::f32, dst_t = int8 ? dt::u8 : dt::f32;
  const dnnl::memory::dims wdims = l.depthwise ? dnnl::memory::dims{groups, 1, 1, k, k} : dnnl::memory::dims{oc, c, k, k};
  const dnnl::memory::desc src_md({1, c, h, h}, src_t, tag::nhwc), dst_md({1, oc, oh, oh}, dst_t, tag::nhwc);
  const dnnl::memory::desc wei_any(wdims, wei_t, tag::any);
  dnnl::primitive_attr attr;
  if (int8) attr.set_output_scales(2, std::vector<float>(static_cast<std::size_t>(oc), 0.01f));
  dnnl::post_ops relu;
  relu.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
  attr.set_post_ops(relu);
  const dnnl::convolution_forward::primitive_desc pd(
      dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src_md,
                                      wei_any, dst_md, {s, s}, {pad, pad}, {pad, pad}),
      attr, engine);
  state.SetLabel(std::string(l.name) + " " + pd.impl_info_str());
  const std::size_t wn = static_cast<std::size_t>(oc) * static_cast<std::size_t>(l.depthwise ? 1 : c) *
                         static_cast<std::size_t>(k * k);
  std::vector<std::int8_t> w8(wn, 1);
  std::vector<float> wf = filter(l);
  const auto x = image(l);
  std::vector<float> xf(x.begin(), x.end());
  std::vector<std::uint8_t> y8(static_cast<std::size_t>(oh * oh * oc));
  std::vector<float> yf(y8.size());
  dnnl::memory src(src_md, engine, int8 ? static_cast<void*>(const_cast<std::uint8_t*>(x.data())) : xf.data());
  dnnl::memory dst(dst_md, engine, int8 ? static_cast<void*>(y8.data()) : yf.data());
  const dnnl::memory::desc wei_plain(wdims, wei_t, l.depthwise ? tag::goihw : tag::oihw);
  dnnl::memory wei_src(wei_plain, engine, int8 ? static_cast<void*>(w8.data()) : wf.data()), wei(pd.weights_desc(), engine);
  dnnl::reorder(wei_src, wei).execute(stream, wei_src, wei);
  dnnl::convolution_forward conv(pd);
  for (auto _ : state) {
    conv.execute(stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst}});
    stream.wait();
  }
  omp_set_num_threads(1);
  set_ops(state, l);
}
void BM_ConvOneDNN_Int8(benchmark::State& state) { onednn_conv(state, true); }
void BM_ConvOneDNN_F32(benchmark::State& state) { onednn_conv(state, false); }
BENCHMARK(BM_ConvOneDNN_Int8)->Apply(all_layers);
BENCHMARK(BM_ConvOneDNN_F32)->Apply(all_layers);
#endif

#if defined(SQUINT_BENCH_XNNPACK)
/// XNNPACK's NHWC convolution operators (created once, which packs the weights): qc8 (int8 with
/// per-channel scales, its int8 CNN path) or f32, on its pthreadpool.
void xnnpack_conv(benchmark::State& state, bool int8) {
  const layer& l = layer_of(state);
  if (xnn_initialize(nullptr) != xnn_status_success) {
    state.SkipWithError("xnn_initialize failed");
    return;
  }
  const auto threads = static_cast<std::size_t>(state.range(1));
  pthreadpool_t pool = threads > 1 ? pthreadpool_create(threads) : nullptr;
  const auto pad = static_cast<std::uint32_t>(pad_of(l)), k = static_cast<std::uint32_t>(l.kernel);
  const auto stride = static_cast<std::uint32_t>(l.stride);
  const std::uint32_t groups = l.depthwise ? static_cast<std::uint32_t>(l.channels) : 1;
  const std::size_t gic = group_channels(l), goc = l.depthwise ? 1 : l.out_channels;
  const std::uint32_t flags = l.depthwise ? XNN_FLAG_DEPTHWISE_CONVOLUTION : 0;
  const std::size_t wn = l.out_channels * gic * l.kernel * l.kernel;
  std::vector<std::int8_t> w8(wn, 1);
  const std::vector<float> wf = filter(l);
  const std::vector<float> scales(l.out_channels, 0.01f);
  const auto x = image(l);
  std::vector<std::int8_t> x8(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) x8[i] = static_cast<std::int8_t>(x[i] - 128);
  std::vector<float> xf(x.begin(), x.end());
  const std::size_t oh = out_size(l);
  std::vector<std::int8_t> y8(oh * oh * l.out_channels);
  std::vector<float> yf(y8.size());
  xnn_operator_t op = nullptr;
  const xnn_status created =
      int8 ? xnn_create_convolution2d_nhwc_qc8(pad, pad, pad, pad, k, k, stride, stride, 1, 1, groups, gic, goc,
                                               l.channels, l.out_channels, -128, 0.05f, scales.data(), w8.data(),
                                               nullptr, -128, 0.1f, -128, 127, flags, &op)
           : xnn_create_convolution2d_nhwc_f32(pad, pad, pad, pad, k, k, stride, stride, 1, 1, groups, gic, goc,
                                               l.channels, l.out_channels, wf.data(), nullptr, 0.0f, HUGE_VALF, flags,
                                               &op);
  const xnn_status ready =
      created != xnn_status_success
          ? created
          : int8 ? xnn_setup_convolution2d_nhwc_qc8(op, 1, l.size, l.size, x8.data(), y8.data(), pool)
                 : xnn_setup_convolution2d_nhwc_f32(op, 1, l.size, l.size, xf.data(), yf.data(), pool);
  if (ready != xnn_status_success) {
    state.SkipWithError("XNNPACK operator creation or setup failed");
  } else {
    for (auto _ : state) {
      xnn_run_operator(op, pool);
      benchmark::ClobberMemory();
    }
    set_ops(state, l);
  }
  if (op) xnn_delete_operator(op);
  if (pool) pthreadpool_destroy(pool);
}
void BM_ConvXNNPACK_QC8(benchmark::State& state) { xnnpack_conv(state, true); }
void BM_ConvXNNPACK_F32(benchmark::State& state) { xnnpack_conv(state, false); }
BENCHMARK(BM_ConvXNNPACK_QC8)->Apply(all_layers);
BENCHMARK(BM_ConvXNNPACK_F32)->Apply(all_layers);
#endif

// ---- the CNN end to end --------------------------------------------------------------------

/// The Fashion-MNIST demo's plain CNN with BatchNorm folded (conv 3x3 1 -> 32 + ReLU, max pool,
/// conv 3x3 32 -> 64 + ReLU, max pool, fc 3136 -> 128 + ReLU, fc 128 -> 10), He-scaled random
/// weights, as an nn::graph in `mode` on the dispatched kernels; int8_static calibrated (min-max)
/// on `calibration` (images x 28 x 28 x 1).
squint::nn::graph demo_cnn(squint::nn::precision mode, const std::vector<float>& calibration) {
  namespace nn = squint::nn;
  const auto weights = [](std::size_t n, std::size_t fan_in, unsigned seed) {
    std::vector<float> w = squint_bench::normal(n, seed);
    for (float& v : w) v *= std::sqrt(2.0f / static_cast<float>(fan_in));
    return w;
  };
  const std::vector<float> bias(128, 0.01f);
  squint::conv2d_params same;
  same.pad_top = same.pad_left = same.pad_bottom = same.pad_right = 1;
  nn::conv2d_options c;
  c.mode = mode;
  c.act = nn::activation::relu;
  c.kernels = squint::runtime::backend();
  nn::linear_options l;
  l.mode = mode;
  l.act = nn::activation::relu;
  l.kernels = c.kernels;
  nn::graph g;
  g.add("conv1", nn::conv2d(weights(32 * 9, 9, 1).data(), {32, 1, 3, 3}, squint::filter_layout::ohwi, same,
                            bias.data(), c));
  g.add("pool1", nn::pool{});
  g.add("conv2", nn::conv2d(weights(64 * 32 * 9, 32 * 9, 2).data(), {64, 32, 3, 3}, squint::filter_layout::ohwi,
                            same, bias.data(), c));
  g.add("pool2", nn::pool{});
  g.add("flatten", nn::flatten{});
  g.add("fc1", nn::linear(weights(128 * 3136, 3136, 3).data(), 128, 3136, 3136, bias.data(), l));
  l.act = nn::activation::none;
  g.add("fc2", nn::linear(weights(10 * 128, 128, 4).data(), 10, 128, 128, bias.data(), l));
  if (mode == nn::precision::int8_static) {
    g.calibrate(calibration.data(), {calibration.size() / 784, 28, 28, 1}, 64);
    g.freeze();
  }
  return g;
}

const squint::nn::precision cnn_precisions[] = {squint::nn::precision::fp32, squint::nn::precision::fp16,
                                                squint::nn::precision::int8_weight_only,
                                                squint::nn::precision::int8_dynamic,
                                                squint::nn::precision::int8_static};

/// Arguments: precision (cnn_precisions; one past them: int8_static run full-integer), batch.
/// 1 thread; images / s as a counter.
void BM_CnnEndToEnd(benchmark::State& state) {
  const auto index = static_cast<std::size_t>(state.range(0));
  const bool full_integer = index == std::size(cnn_precisions);
  const squint::nn::precision mode = full_integer ? squint::nn::precision::int8_static : cnn_precisions[index];
  const auto batch = static_cast<std::size_t>(state.range(1));
  std::vector<float> x = squint_bench::normal(std::max<std::size_t>(batch, 64) * 784, 5);
  for (float& v : x) v = std::fabs(v) * 0.3f;  // pixel-like: non-negative, mostly below 1
  const squint::nn::graph g = demo_cnn(mode, x);
  const std::optional<squint::nn::integer_graph> q =
      full_integer ? std::optional<squint::nn::integer_graph>(std::in_place, g) : std::nullopt;
  std::vector<float> y(batch * 10);
  for (auto _ : state) {
    if (q) q->forward(x.data(), {batch, 28, 28, 1}, y.data());
    else g.forward(x.data(), {batch, 28, 28, 1}, y.data());
    benchmark::ClobberMemory();
  }
  state.SetLabel(std::string(squint::nn::to_string(mode)) + (full_integer ? " full integer" : ""));
  state.counters["images/s"] =
      benchmark::Counter(static_cast<double>(batch), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_CnnEndToEnd)->ArgsProduct({{0, 1, 2, 3, 4, 5}, {1, 64}})->ArgNames({"precision", "batch"})->UseRealTime();

#define SQUINT_X(A) BENCHMARK_TEMPLATE(BM_ConvInt8, A)->Apply(all_layers);
SQUINT_DISPATCH_GEMM_ARCHS
#undef SQUINT_X

}  // namespace

int main(int argc, char** argv) { return squint_bench::run(argc, argv); }

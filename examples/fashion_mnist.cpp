// SPDX-License-Identifier: Apache-2.0
// fashion_mnist: the whole workflow on real data. Trains a 784-512-256-10 MLP in FP32 on
// Fashion-MNIST (or loads the weights an earlier run saved), calibrates on training images
// only, evaluates every precision and observer on the 10,000 test images, and prints accuracy,
// weight bytes and single-thread latency side by side. Also writes an SVG of accuracy against
// latency and size, and a per-layer error table.
//
//   fashion_mnist [--data DIR] [--out DIR] [--retrain] [--epochs N] [--train-limit N]
//                 [--test-limit N] [--max-drop PP] [--quick]
//
// Writes into --out (default: the example's build directory): fashion_mnist_fp32.squint (the
// trained weights, reused by later runs), fashion_mnist_int8_static.squint and fashion_mnist.svg.
//
// Data: Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist, IDX files, gzip).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <string>
#include <system_error>
#include <vector>

#include "squint/dispatch.hpp"
#include "squint/nn.hpp"
#if defined(SQUINT_DEMO_OPENBLAS)
#include <cblas.h>
#endif
#include "fashion_mnist_common.hpp"

namespace {

using demo::clock_type;
using demo::dataset;
using demo::options;
using demo::result;
using demo::seconds_since;
using squint::nn::precision;



// ---- evaluation ----------------------------------------------------------------------------

/// The model as the shared evaluation calls it.
auto forward_of(const squint::nn::sequential& model) {
  return [&model](const float* x, std::size_t images, float* y) { model.forward(x, images, y); };
}

#if defined(SQUINT_DEMO_OPENBLAS)
/// The FP32 MLP on OpenBLAS (sgemm, or sgemv for one image; bias and ReLU after): the fastest FP32
/// library a user would pick here, the honest baseline for squint's speedups.
class openblas_mlp {
 public:
  explicit openblas_mlp(const std::vector<squint::nn::float_layer>& layers) : layers_(layers) {
    openblas_set_num_threads(1);
  }
  void operator()(const float* x, std::size_t images, float* y) const {
    thread_local std::vector<float> buffers[2];
    const float* in = x;
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      const squint::nn::float_layer& f = layers_[l];
      float* out = l + 1 == layers_.size() ? y : (buffers[l % 2].resize(images * f.out), buffers[l % 2].data());
      const auto m = static_cast<blasint>(images), n = static_cast<blasint>(f.out), k = static_cast<blasint>(f.in);
      if (images == 1)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, n, k, 1.0f, f.weights.data(), k, in, 1, 0.0f, out, 1);
      else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, in, k, f.weights.data(), k, 0.0f, out, n);
      for (std::size_t i = 0; i < images; ++i)
        for (std::size_t j = 0; j < f.out; ++j) {
          float& v = out[i * f.out + j];
          if (!f.bias.empty()) v += f.bias[j];
          if (f.act == squint::nn::activation::relu) v = std::max(v, 0.0f);
        }
      in = out;
    }
  }

 private:
  std::vector<squint::nn::float_layer> layers_;
};
#endif

int run_demo(int argc, char** argv) {
  options opt;
  opt.out = SQUINT_DEMO_OUTPUT_DIR;
  opt.epochs = 8;
  opt.calibration_images = 2048;
  opt.latency_repeats = 7;
  options quick;
  quick.train_limit = 4096;
  quick.test_limit = 1000;
  quick.calibration_images = 512;
  quick.latency_repeats = 3;
  if (const int status = demo::parse_options(argc, argv, "fashion_mnist", opt, quick); status >= 0) return status;
  const auto start = clock_type::now();
  const std::string weights_path = opt.out + "/fashion_mnist_fp32.squint", svg_path = opt.out + "/fashion_mnist.svg";
  const squint::nn::backend kernels = squint::runtime::backend();
  std::printf("squint Fashion-MNIST demo: kernels %s (fast int8: %s)\n", kernels.isa, kernels.fast_int8 ? "yes" : "no");
  const dataset train_set = demo::load_idx(opt.data, "train", opt.train_limit);
  const dataset test = demo::load_idx(opt.data, "t10k", opt.test_limit);
  std::printf("data: %zu training and %zu test images from %s\n", train_set.n, test.n, opt.data.c_str());

  // FP32 weights: trained here, or the FP32 model an earlier run saved in squint's format.
  std::vector<squint::nn::float_layer> layers;
  squint::nn::build_options fp32_options{precision::fp32, {}, false, std::nullopt, kernels};
  if (!opt.retrain && std::ifstream(weights_path).good()) {
    const auto saved = squint::nn::load(weights_path, kernels);
    layers = squint::nn::float_layers(saved);
    std::printf("FP32 weights: loaded %s (pass --retrain to train again)\n", weights_path.c_str());
  } else {
    std::printf("training 784-512-256-10 MLP in FP32 (squint::qat), %d epochs on %zu images:\n", opt.epochs,
                train_set.n);
    const auto t = clock_type::now();
    layers = demo::train_mlp(train_set, opt.epochs, kernels);
    std::printf("trained in %.1f s\n", seconds_since(t));
    if (opt.train_limit >= 60000) squint::nn::save(squint::nn::sequential(layers, fp32_options), weights_path);
  }

  // Calibration data: training images only, spread over the set.
  const std::size_t calibration_rows = std::min(opt.calibration_images, train_set.n);
  std::vector<float> calibration(calibration_rows * 784);
  for (std::size_t i = 0; i < calibration_rows; ++i) {
    const std::size_t src = i * (train_set.n / calibration_rows);
    std::copy_n(train_set.images.begin() + static_cast<std::ptrdiff_t>(src * 784), 784,
                calibration.begin() + static_cast<std::ptrdiff_t>(i * 784));
  }

  // AWQ (activation-aware scales for the INT4 rows) searched on 512 calibration images.
  std::vector<squint::nn::float_layer> awq_layers = layers;
  {
    squint::nn::awq_options awq;
    awq.kernels = kernels;
    const auto t = clock_type::now();
    const auto report = squint::nn::apply_awq(awq_layers, calibration.data(), calibration_rows, awq);
    std::printf("AWQ scales (groups of 32, %zu images) in %.1f s:", std::min(calibration_rows, awq.max_rows),
                seconds_since(t));
    for (const squint::nn::awq_layer& r : report)
      std::printf(" layer %zu alpha %.2f, int4 output MSE %.3g -> %.3g;", r.layer, r.alpha, r.mse_rtn, r.mse_awq);
    std::printf("\n");
  }

  // GPTQ (column-wise error compensation on the inverse Hessian) on the same 512 images.
  std::vector<squint::nn::sequential> gptq_models;
  for (precision mode : {precision::int4_weight_only, precision::int4_dynamic}) {
    squint::nn::gptq_options gptq;
    gptq.mode = mode;
    gptq.kernels = kernels;
    const auto t = clock_type::now();
    squint::nn::gptq_result g = squint::nn::gptq(layers, calibration.data(), calibration_rows, gptq);
    std::printf("GPTQ %s (groups of 32) in %.1f s:", squint::nn::to_string(mode), seconds_since(t));
    for (const squint::nn::gptq_layer& r : g.layers)
      std::printf(" layer %zu output MSE %.3g (RTN %.3g);", r.layer, r.mse_gptq, r.mse_rtn);
    std::printf("\n");
    gptq_models.push_back(std::move(g.model));
  }

  struct variant {
    std::string name, detail;
    squint::nn::build_options options;
    const std::vector<squint::nn::float_layer>* layers = nullptr;  // null: the FP32 layers
    const squint::nn::sequential* built = nullptr;                  // a model quantized elsewhere
  };
  std::vector<variant> variants;
  auto add = [&](std::string name, std::string detail, precision mode) {
    squint::nn::build_options o;
    o.mode = mode;
    o.kernels = kernels;
    variants.push_back({std::move(name), std::move(detail), o});
    return &variants.back().options;
  };
  add("fp32", "squint", precision::fp32);
  add("fp16", "", precision::fp16);
  add("int8_weight_only", "", precision::int8_weight_only);
  add("int8_dynamic", "per tensor", precision::int8_dynamic);
  add("int8_dynamic", "per row", precision::int8_dynamic)->per_row = true;
  for (const squint::nn::observer& obs :
       {squint::nn::observers::min_max(), squint::nn::observers::moving_average(), squint::nn::observers::entropy(),
        squint::nn::observers::percentile(99.99), squint::nn::observers::mse(), squint::nn::observers::l2()})
    add("int8_static", obs.name(), precision::int8_static)->input_observer = obs;
  add("mixed", "int8 + fp16 last", precision::int8_dynamic)->overrides = {{2, precision::fp16}};
  add("automatic", "", precision::automatic);
  // 7-bit activations (reduce_range): one bit of resolution for the exact 7-bit kernel of CPUs
  // without VNNI (on VNNI CPUs they run the same kernel as 8-bit codes).
  add("int8_dynamic", "7-bit activations", precision::int8_dynamic)->reduce_range = true;
  add("int8_static", "minmax 7-bit", precision::int8_static)->reduce_range = true;
  // FP8 E4M3FN weights (amax / 448 per channel), decoded in registers: int8_weight_only's bytes.
  add("fp8_weight_only", "E4M3FN", precision::fp8_weight_only);
  // INT4 weights, a scale per 32 inputs (round to nearest): an eighth of float's bytes.
  add("int4_weight_only", "RTN, g=32", precision::int4_weight_only);
  // The same INT4 weights times int8 activations quantized per row (W4A8): exact group sums.
  add("int4_dynamic", "W4A8 RTN, g=32", precision::int4_dynamic);
  // Both again on the AWQ-scaled layers.
  add("int4_weight_only", "AWQ, g=32", precision::int4_weight_only);
  variants.back().layers = &awq_layers;
  add("int4_dynamic", "W4A8 AWQ, g=32", precision::int4_dynamic);
  variants.back().layers = &awq_layers;
  add("int4_weight_only", "GPTQ, g=32", precision::int4_weight_only);
  variants.back().built = &gptq_models[0];
  add("int4_dynamic", "W4A8 GPTQ, g=32", precision::int4_dynamic);
  variants.back().built = &gptq_models[1];

  std::vector<result> results;
  std::vector<squint::nn::sequential> models;
  for (variant& v : variants) {
    squint::nn::sequential model = v.built ? *v.built : squint::nn::sequential(v.layers ? *v.layers : layers, v.options);
    if (v.options.mode == precision::int8_static) {
      std::printf("calibrating %s on %zu training images\n", v.detail.c_str(), calibration_rows);
      model.calibrate(calibration.data(), calibration_rows, 64, squint::nn::progress_line(std::cout, "  calibration"));
      model.freeze();
    }
    if (v.name == "automatic") v.detail = std::string("= ") + squint::nn::to_string(model[0].mode());
    result r{v.name, v.detail, demo::accuracy(test, forward_of(model)), model.weight_bytes(), 0.0, 0.0};
    r.latency_1 = demo::latency(test, 1, opt.latency_repeats, 200, forward_of(model));
    r.latency_64 = demo::latency(test, std::min<std::size_t>(64, test.n), opt.latency_repeats, 20, forward_of(model));
    results.push_back(r);
    models.push_back(std::move(model));
  }

  const result& ref = results.front();
  // The fastest FP32 here: squint's or, when the demo was built with it, OpenBLAS's.
  std::vector<result> fp32_rows{ref};
#if defined(SQUINT_DEMO_OPENBLAS)
  {
    const openblas_mlp blas(layers);
    result r{"fp32", "OpenBLAS", demo::accuracy(test, blas), ref.bytes, 0.0, 0.0};
    r.latency_1 = demo::latency(test, 1, opt.latency_repeats, 200, blas);
    r.latency_64 = demo::latency(test, std::min<std::size_t>(64, test.n), opt.latency_repeats, 20, blas);
    fp32_rows.push_back(r);
  }
#endif
  double best_1 = ref.latency_1, best_64 = ref.latency_64;
  for (const result& r : fp32_rows) best_1 = std::min(best_1, r.latency_1), best_64 = std::min(best_64, r.latency_64);
  std::printf("\n%-17s %-17s %8s %7s %11s %6s %12s %13s %8s %8s %9s %9s\n", "precision", "detail", "top-1", "delta",
              "weight B", "size", "batch 1 us", "batch 64 us", "x b1", "x b64", "xbest b1", "xbest b64");
  auto print_row = [&](const result& r) {
    std::printf("%-17s %-17s %7.2f%% %+6.2f %11zu %5.3fx %12.1f %13.1f %7.2fx %7.2fx %8.2fx %8.2fx\n", r.name.c_str(),
                r.detail.c_str(), r.accuracy, r.accuracy - ref.accuracy, r.bytes,
                static_cast<double>(r.bytes) / static_cast<double>(ref.bytes), r.latency_1, r.latency_64,
                ref.latency_1 / r.latency_1, ref.latency_64 / r.latency_64, best_1 / r.latency_1,
                best_64 / r.latency_64);
  };
  print_row(ref);
  for (std::size_t i = 1; i < fp32_rows.size(); ++i) print_row(fp32_rows[i]);
  for (std::size_t i = 1; i < results.size(); ++i) print_row(results[i]);
  std::printf("(delta in percentage points vs fp32; size and \"x\" speedups relative to squint's fp32, "
              "\"xbest\" to the fastest FP32 row%s; median of %d runs, 1 thread)\n",
              fp32_rows.size() > 1 ? " (OpenBLAS or squint's, per batch size)" : " (no OpenBLAS in this build)",
              opt.latency_repeats);

  // Where the error comes from, layer by layer, on 256 test images.
  const std::size_t probe = std::min<std::size_t>(256, test.n);
  std::vector<std::pair<std::string, const squint::nn::sequential*>> candidates;
  for (std::size_t i = 1; i < 6; ++i) candidates.emplace_back(results[i].name + " " + results[i].detail, &models[i]);
  candidates.emplace_back(results[7].name + " " + results[7].detail, &models[7]);
  std::printf("\nper-layer error against fp32 (%zu test images):\n%s", probe,
              squint::nn::analyze(models[0], candidates, test.images.data(), probe).to_string().c_str());

  // Quantize once, serve many times: the static INT8 model saved and loaded back.
  const std::string saved = opt.out + "/fashion_mnist_int8_static.squint";
  squint::nn::save(models[5], saved);
  const auto load_start = clock_type::now();
  const auto served = squint::nn::load(saved, kernels);
  const double load_ms = seconds_since(load_start) * 1e3;
  std::printf("\nsaved %s (%s, %zu bytes); loaded in %.2f ms, test accuracy %.2f%%\n", saved.c_str(),
              results[5].detail.c_str(), static_cast<std::size_t>(std::ifstream(saved, std::ios::binary | std::ios::ate).tellg()),
              load_ms, demo::accuracy(test, forward_of(served)));

  demo::write_svg(svg_path, results, std::string("squint on Fashion-MNIST MLP 784-512-256-10 (") + kernels.isa + ", 1 thread)");
  std::printf("wrote %s\n", svg_path.c_str());
  std::printf("done in %.1f s\n", seconds_since(start));
  // The check CI runs: dynamic INT8 and min-max static INT8 stay within max_drop of FP32.
  for (std::size_t i : {std::size_t{3}, std::size_t{5}})
    if (opt.max_drop >= 0.0 && ref.accuracy - results[i].accuracy > opt.max_drop) {
      std::printf("FAIL: %s %s loses %.2f points (limit %.2f)\n", results[i].name.c_str(), results[i].detail.c_str(),
                  ref.accuracy - results[i].accuracy, opt.max_drop);
      return 1;
    }
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return demo::run_main("fashion_mnist", argc, argv, run_demo); }

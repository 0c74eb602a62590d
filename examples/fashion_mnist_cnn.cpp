// SPDX-License-Identifier: Apache-2.0
// fashion_mnist_cnn: the CNN half of the workflow on real data. Trains two small CNNs in FP32 on
// Fashion-MNIST with squint's own training path (squint::qat, BatchNorm on batch statistics), or
// loads the weights an earlier run saved:
//   plain:    conv3x3 1->32 + BN + ReLU, max pool, conv3x3 32->64 + BN + ReLU, max pool,
//             fc 3136->128 + ReLU, fc 128->10;
//   residual: the same with a residual block (conv3x3 64->64 + BN + ReLU, conv3x3 64->64 + BN,
//             + skip, ReLU) after the second pool.
// Builds each trained model as an nn::graph in every precision (qat::graph::build folds each
// BatchNorm into its convolution), calibrates the static ones on training images only (and runs
// those full-integer too, nn::integer_graph: uint8 activations between the layers), builds INT4
// weights per group of 128 by round to nearest, GPTQ (qat::gptq) and AWQ (qat::graph::apply_awq),
// and prints
// accuracy on the 10,000 test images, weight bytes and single-thread latency side by side, and
// an SVG like the MLP demo's. Then, on the plain CNN, PTQ against QAT (prepare_qat -> fine-tune ->
// convert) for 8-, 4- and 2-bit weights per channel and per tensor.
//
//   fashion_mnist_cnn [--data DIR] [--out DIR] [--retrain] [--epochs N] [--qat-epochs N]
//                     [--train-limit N] [--test-limit N] [--max-drop PP] [--quick]
//
// --epochs: FP32 training epochs (default 1); --qat-epochs: QAT epochs per setting (default 1,
// 0 skips the comparison). Writes into --out (default: the example's build directory):
// fashion_mnist_cnn_<model>.weights (the trained FP32 weights, reused by later runs) and
// fashion_mnist_cnn.svg.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <system_error>
#include <variant>
#include <vector>

#include "fashion_mnist_common.hpp"
#include "squint/dispatch.hpp"
#include "squint/nn.hpp"
#include "squint/qat.hpp"

namespace {

using demo::clock_type;
using demo::dataset;
using demo::options;
using demo::result;
using demo::seconds_since;
using squint::nn::precision;
namespace nn = squint::nn;
namespace qat = squint::qat;


// ---- the model: trained in FP32 on squint's training path (squint::qat), BatchNorm separate --

/// A 3x3 "same" convolution, He-initialized, no bias (BatchNorm follows), OHWI.
qat::conv2d conv3x3(std::size_t in, std::size_t out, demo::rng& r) {
  squint::conv2d_params same;
  same.pad_top = same.pad_left = same.pad_bottom = same.pad_right = 1;
  std::vector<float> w(out * 9 * in);
  const float he = std::sqrt(2.0f / static_cast<float>(9 * in));
  for (float& v : w) v = he * r.normal();
  return qat::conv2d({w, {}, {out, in, 3, 3}, squint::filter_layout::ohwi, same, nn::activation::none}, std::nullopt,
                     std::nullopt);
}

qat::linear dense(std::size_t in, std::size_t out, nn::activation act, demo::rng& r) {
  std::vector<float> w(out * in);
  for (float& v : w) v = std::sqrt(2.0f / static_cast<float>(in)) * r.normal();
  return qat::linear({w, std::vector<float>(out, 0.0f), out, in, act}, std::nullopt, std::nullopt);
}

/// The network with He-initialized weights (BatchNorm: identity), ready to train or load into.
qat::graph initial_cnn(bool residual) {
  demo::rng r{residual ? 20261202u : 20261201u};
  qat::graph g;
  g.add("conv1", conv3x3(1, 32, r));
  g.add("bn1", qat::batch_norm(qat::identity_batch_norm(32, nn::activation::relu)));
  g.add("pool1", nn::pool{});
  g.add("conv2", conv3x3(32, 64, r));
  g.add("bn2", qat::batch_norm(qat::identity_batch_norm(64, nn::activation::relu)));
  g.add("pool2", nn::pool{});
  if (residual) {
    g.add("res1", conv3x3(64, 64, r));
    g.add("res1_bn", qat::batch_norm(qat::identity_batch_norm(64, nn::activation::relu)));
    g.add("res2", conv3x3(64, 64, r));
    g.add("res2_bn", qat::batch_norm(qat::identity_batch_norm(64)));
    g.add("skip", nn::add{true}, {"res2_bn", "pool2"});
  }
  g.add("flatten", nn::flatten{});
  g.add("fc1", dense(3136, 128, nn::activation::relu, r));
  g.add("fc2", dense(128, 10, nn::activation::none, r));
  return g;
}

/// The FP32 schedule: batches of 64, SGD with momentum 0.9, weight decay 5e-4 on the weights,
/// cosine learning rate from 0.05.
demo::train_settings fp32_training(int epochs, bool residual) {
  demo::train_settings t;
  t.epochs = epochs;
  t.batch = 64;
  t.peak_lr = 0.05f;
  t.weight_decay = 5e-4f;
  t.seed = residual ? 20261202u : 20261201u;
  return t;
}

/// The graph's training forward as demo::train calls it (images are 28 x 28 x 1, NHWC).
auto training_forward(qat::graph& model) {
  return [&model](const float* x, std::size_t images, float* y) { model.forward(x, {images, 28, 28, 1}, y); };
}

// ---- the trained weights on disk: every parameter in order, then each BatchNorm's running mean
// and variance, as float32 -------------------------------------------------------------------

std::vector<std::size_t> batch_norms(const qat::graph& g) {
  std::vector<std::size_t> nodes;
  for (std::size_t i = 0; i < g.size(); ++i)
    if (std::holds_alternative<qat::batch_norm>(g.op(i))) nodes.push_back(i);
  return nodes;
}

void save_weights(qat::graph& g, const std::string& path) {
  std::ofstream out(path, std::ios::binary);
  auto put = [&](const float* p, std::size_t n) { out.write(reinterpret_cast<const char*>(p), static_cast<std::streamsize>(n * 4)); };
  for (const qat::parameter& p : g.parameters()) put(p.value, p.size);
  for (std::size_t i : batch_norms(g)) {
    const qat::batch_norm_state& s = std::get<qat::batch_norm>(g.op(i)).state();
    put(s.running_mean.data(), s.running_mean.size());
    put(s.running_var.data(), s.running_var.size());
  }
}

/// False when the file is missing or has the wrong size (then the model is trained again).
bool load_weights(qat::graph& g, const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return false;
  const std::vector<qat::parameter> params = g.parameters();
  std::size_t expected = 0;
  for (const qat::parameter& p : params) expected += p.size;
  for (std::size_t i : batch_norms(g)) expected += 2 * std::get<qat::batch_norm>(g.op(i)).channels();
  if (static_cast<std::size_t>(in.tellg()) != expected * 4) return false;
  in.seekg(0);
  auto get = [&](float* p, std::size_t n) { in.read(reinterpret_cast<char*>(p), static_cast<std::streamsize>(n * 4)); };
  for (const qat::parameter& p : params) get(p.value, p.size);
  for (std::size_t i : batch_norms(g)) {
    qat::batch_norm_state s = std::get<qat::batch_norm>(g.op(i)).state();
    get(s.running_mean.data(), s.running_mean.size());
    get(s.running_var.data(), s.running_var.size());
    g.op(i) = qat::batch_norm(s);
  }
  return static_cast<bool>(in);
}

/// The model as the shared evaluation calls it (images are 28 x 28 x 1, NHWC).
auto forward_of(const squint::nn::graph& model) {
  return [&model](const float* x, std::size_t images, float* y) { model.forward(x, {images, 28, 28, 1}, y); };
}

// ---- PTQ against QAT --------------------------------------------------------------------------

/// A weight setting of the PTQ / QAT tables.
struct setting {
  const char* name;
  int bits;
  bool per_channel;
  /// QAT trains the BatchNorm statistics for the first half of its steps (qat::conv_bn2d), then
  /// folds them; else they are folded from the first step.
  bool batch_norm_statistics = false;
  int epochs = 0;  ///< QAT epochs (0: the run's)
  std::size_t group = 0;  ///< > 0: weights per group of inputs, int8 activation codes per row (W4A8)
};

/// Weight fake quantization of `bits` (narrow range at 8 bits, PyTorch's full symmetric range
/// below, as the MLP's QAT demo), uint8 activations; with a group, int8 activation codes per row
/// (the model converts to int4_dynamic, W4A8).
qat::qat_options quantized(int bits, bool per_channel, const nn::backend& kernels, std::size_t group = 0) {
  qat::qat_options o;
  o.weights->bits = bits;
  o.weights->per_channel = per_channel;
  o.weights->range = bits == 8 ? nn::int8_weight_range::narrow : nn::int8_weight_range::full;
  o.weights->group = group;
  o.activations->per_row = group > 0;
  o.kernels = kernels;
  return o;
}

/// The model calibrated on the calibration images (min-max) with the weight and activation
/// quantization of `o`, converted to an int8_static nn::graph.
qat::graph calibrated(const qat::graph& model, qat::qat_options o, const std::vector<float>& calibration) {
  if (!o.activations->per_row) o.activations->observer = nn::observers::min_max();
  qat::graph q = qat::prepare_qat(model, o);
  const std::size_t images = calibration.size() / 784, batch = 64;
  std::vector<float> logits(batch * 10);
  for (std::size_t i = 0; i < images; i += batch)
    q.forward(calibration.data() + i * 784, {std::min(batch, images - i), 28, 28, 1}, logits.data(), false);
  return q;
}

/// PTQ with per-tensor (and per-channel) weights of 8, 6 and 4 bits: as is, with empirical bias
/// correction (on the calibration images), after cross-layer equalization, and with both. Prints
/// one table row per setting.
void compare_equalization(const char* model_name, const qat::graph& trained, double fp32_accuracy,
                          const dataset& test, const std::vector<float>& calibration, const nn::backend& kernels) {
  const auto accuracy = [&](const nn::graph& g) { return demo::accuracy(test, forward_of(g)); };
  qat::graph folded = trained.folded();
  qat::graph equalized = folded;
  const std::size_t sweeps = equalized.equalize();
  const setting settings[] = {{"W8A8 per tensor", 8, false},
                              {"W6A8 per tensor", 6, false},
                              {"W4A8 per tensor", 4, false},
                              {"W4A8 per channel", 4, true}};
  std::printf("\nthe %s CNN, PTQ with cross-layer equalization (%zu sweeps) and bias correction:\n%-18s %8s %8s %8s %14s\n",
              model_name, sweeps, "setting", "PTQ", "+ bias", "+ CLE", "+ CLE + bias");
  const squint::image_shape images{calibration.size() / 784, 28, 28, 1};
  for (const setting& s : settings) {
    const qat::qat_options o = quantized(s.bits, s.per_channel, kernels);
    // Each model as calibrated, then with its biases corrected against its own float model.
    const auto with_and_without_correction = [&](qat::graph& reference) {
      qat::graph q = calibrated(reference, o, calibration);
      const double as_is = accuracy(q.convert(kernels));
      q.correct_bias(reference, calibration.data(), images);
      return std::pair<double, double>{as_is, accuracy(q.convert(kernels))};
    };
    const auto [plain, corrected] = with_and_without_correction(folded);
    const auto [cle, both] = with_and_without_correction(equalized);
    std::printf("%-18s %7.2f%% %7.2f%% %7.2f%% %13.2f%%\n", s.name, plain, corrected, cle, both);
    std::fflush(stdout);
  }
  std::printf("(FP32 %.2f%%; weights below 8 bits in PyTorch's full range; min-max calibration on %zu training images, "
              "which bias correction reuses)\n",
              fp32_accuracy, images.batch);
}

/// For each setting: the trained model calibrated on training images (PTQ, min-max) and the same
/// fine-tuned with fake quantization for `epochs` (QAT, moving-average observers frozen for the
/// last epoch), both converted to int8_static nn::graphs (int4_dynamic per group) and evaluated
/// on the test images.
/// Returns INT8 (W8A8 per channel) QAT's loss against FP32, in points.
double compare_qat(const qat::graph& fp32, double fp32_accuracy, const dataset& train_set, const dataset& test,
                   const std::vector<float>& calibration, int epochs, const nn::backend& kernels) {
  const auto accuracy = [&](const nn::graph& g) { return demo::accuracy(test, forward_of(g)); };
  demo::train_settings fine_tune = fp32_training(epochs, false);
  fine_tune.peak_lr = 0.005f;
  fine_tune.verbose = false;
  // What an FP32 epoch costs, and what the same fine-tuning gives without quantization (the model
  // trains one epoch only, so QAT's epochs also train it further).
  qat::graph tuned = fp32;
  std::vector<double> fp32_seconds = demo::train(tuned, train_set, fine_tune, training_forward(tuned));
  std::sort(fp32_seconds.begin(), fp32_seconds.end());
  const double fp32_epoch = fp32_seconds[fp32_seconds.size() / 2];
  nn::build_options float_options;
  float_options.mode = nn::precision::fp32;
  float_options.kernels = kernels;
  const double tuned_accuracy = accuracy(tuned.build(float_options));
  const setting settings[] = {{"W8A8 per channel", 8, true},
                              {"W8A8 per tensor", 8, false},
                              {"W4A8 per channel", 4, true},
                              {"W4A8 per tensor", 4, false},
                              {"W2A8 per channel", 2, true},
                              {"W4A8 pt, BN stats", 4, false, true},
                              {"W2A8 pc, BN stats", 2, true, true},
                              {"W2A8 pc, 3 epochs", 2, true, false, 3},
                              {"W4A8 per group 32", 4, true, false, 0, 32},
                              {"W2A8 per group 32", 2, true, false, 0, 32}};
  std::printf("\nPTQ against QAT on the plain CNN (BatchNorm folded before quantization; QAT %d epoch%s from the FP32 "
              "weights):\n%-18s %8s %8s %8s %8s %10s %10s %8s\n",
              epochs, epochs == 1 ? "" : "s", "setting", "PTQ", "QAT", "PTQ d", "QAT d", "recovered", "QAT epoch",
              "x FP32");
  double int8_loss = 0.0;
  const std::size_t images = calibration.size() / 784;
  for (const setting& s : settings) {
    const double ptq_accuracy =
        accuracy(calibrated(fp32, quantized(s.bits, s.per_channel, kernels, s.group), calibration).convert(kernels));

    qat::qat_options q = quantized(s.bits, s.per_channel, kernels, s.group);
    demo::train_settings t = fine_tune;
    if (s.epochs > 0) t.epochs = s.epochs;
    const std::size_t steps_per_epoch = train_set.n / t.batch;
    if (t.epochs > 1) q.freeze_observers_after = steps_per_epoch * static_cast<std::size_t>(t.epochs - 1);
    if (s.batch_norm_statistics) q.freeze_batch_norm_after = steps_per_epoch * static_cast<std::size_t>(t.epochs) / 2;
    qat::graph model = qat::prepare_qat(fp32, q);
    std::vector<double> seconds = demo::train(model, train_set, t, training_forward(model));
    std::sort(seconds.begin(), seconds.end());
    const double qat_accuracy = accuracy(model.convert(kernels));
    const double lost = fp32_accuracy - ptq_accuracy;
    char recovered[16] = "-";
    if (lost >= 0.5) std::snprintf(recovered, sizeof recovered, "%.0f%%", 100.0 * (qat_accuracy - ptq_accuracy) / lost);
    const double epoch = seconds[seconds.size() / 2];
    std::printf("%-18s %7.2f%% %7.2f%% %+8.2f %+8.2f %10s %9.1fs %7.2fx\n", s.name, ptq_accuracy, qat_accuracy,
                ptq_accuracy - fp32_accuracy, qat_accuracy - fp32_accuracy, recovered, epoch, epoch / fp32_epoch);
    std::fflush(stdout);
    if (s.bits == 8 && s.per_channel) int8_loss = fp32_accuracy - qat_accuracy;
  }
  std::printf("(FP32 %.2f%%, %.2f%% after the same fine-tuning in FP32 (an epoch %.1f s); PTQ: min-max over %zu "
              "training images; QAT: SGD momentum 0.9, cosine learning rate from 0.005, batches of 64; \"recovered\": the "
              "share of PTQ's loss QAT wins back, where PTQ loses >= 0.5 points; \"BN stats\": BatchNorm statistics trained on "
              "batch statistics for the first half of QAT, then folded; \"per group\": int4 weights per group of 32 inputs, int8 "
              "activation codes per row, converted to int4_dynamic; 1 thread, %s)\n",
              fp32_accuracy, tuned_accuracy, fp32_epoch, images, kernels.isa);
  return int8_loss;
}

int run_demo(int argc, char** argv) {
  options opt;
  opt.out = SQUINT_DEMO_OUTPUT_DIR;
  opt.epochs = 1;
  opt.qat_epochs = 1;
  options quick;
  quick.qat_epochs = 1;
  quick.train_limit = 2048;
  quick.test_limit = 500;
  quick.calibration_images = 256;
  quick.latency_repeats = 1;
  if (const int status = demo::parse_options(argc, argv, "fashion_mnist_cnn", opt, quick); status >= 0) return status;
  const auto start = clock_type::now();
  const squint::nn::backend kernels = squint::runtime::backend();
  std::printf("squint Fashion-MNIST CNN demo: kernels %s (fast int8: %s)\n", kernels.isa, kernels.fast_int8 ? "yes" : "no");
  const dataset train_set = demo::load_idx(opt.data, "train", opt.train_limit);
  const dataset test = demo::load_idx(opt.data, "t10k", opt.test_limit);
  std::printf("data: %zu training and %zu test images from %s\n", train_set.n, test.n, opt.data.c_str());

  const std::size_t calibration_count = std::min(opt.calibration_images, train_set.n);
  std::vector<float> calibration(calibration_count * 784);
  for (std::size_t i = 0; i < calibration_count; ++i)
    std::copy_n(train_set.images.begin() + static_cast<std::ptrdiff_t>(i * (train_set.n / calibration_count) * 784), 784,
                calibration.begin() + static_cast<std::ptrdiff_t>(i * 784));

  struct variant {
    std::string name, detail;
    precision mode;
    squint::nn::observer obs;
  };
  const std::vector<variant> variants = {
      {"fp32", "squint", precision::fp32, squint::nn::observers::min_max()},
      {"fp16", "", precision::fp16, squint::nn::observers::min_max()},
      {"int8_weight_only", "", precision::int8_weight_only, squint::nn::observers::min_max()},
      {"int8_dynamic", "per tensor", precision::int8_dynamic, squint::nn::observers::min_max()},
      {"int8_static", "minmax", precision::int8_static, squint::nn::observers::min_max()},
      {"int8_static", "percentile_99.99", precision::int8_static, squint::nn::observers::percentile(99.99)},
      {"int8_static", "mse", precision::int8_static, squint::nn::observers::mse()},
      {"automatic", "", precision::automatic, squint::nn::observers::min_max()},
  };

  std::vector<result> all_results;
  int status = 0;
  for (bool residual : {false, true}) {
    const char* model_name = residual ? "residual" : "plain";
    const std::string path = opt.out + "/fashion_mnist_cnn_" + model_name + ".weights";
    qat::graph net = initial_cnn(residual);
    if (!opt.retrain && load_weights(net, path)) {
      std::printf("\n%s CNN: FP32 weights loaded from %s (pass --retrain to train again)\n", model_name, path.c_str());
    } else {
      std::printf("\ntraining the %s CNN in FP32 (squint::qat, 1 thread), %d epochs on %zu images:\n", model_name,
                  opt.epochs, train_set.n);
      const auto t = clock_type::now();
      demo::train(net, train_set, fp32_training(opt.epochs, residual), training_forward(net));
      std::printf("trained in %.1f s\n", seconds_since(t));
      if (opt.train_limit >= 60000) save_weights(net, path);
    }
    std::vector<result> results;
    std::vector<squint::nn::graph> models;
    for (const variant& v : variants) {
      nn::build_options o;
      o.mode = v.mode;
      o.input_observer = v.obs;
      o.kernels = kernels;
      squint::nn::graph model = net.build(o);
      if (v.mode == precision::int8_static) {
        model.calibrate(calibration.data(), {calibration_count, 28, 28, 1}, 64);
        model.freeze();
      }
      std::string detail = v.detail;
      if (v.mode == precision::automatic)
        detail = std::string("= ") + squint::nn::to_string(std::get<squint::nn::conv2d>(model.op(0)).mode());
      result r{std::string(model_name) + " " + v.name, detail, demo::accuracy(test, forward_of(model)),
               model.weight_bytes(), 0.0, 0.0};
      r.latency_1 = demo::latency(test, 1, opt.latency_repeats, 50, forward_of(model));
      r.latency_64 = demo::latency(test, std::min<std::size_t>(64, test.n), opt.latency_repeats, 3, forward_of(model));
      results.push_back(r);
      models.push_back(std::move(model));
    }
    const auto measure = [&](const std::string& name, const std::string& detail, const auto& forward, std::size_t bytes) {
      result r{std::string(model_name) + " " + name, detail, demo::accuracy(test, forward), bytes, 0.0, 0.0};
      r.latency_1 = demo::latency(test, 1, opt.latency_repeats, 50, forward);
      r.latency_64 = demo::latency(test, std::min<std::size_t>(64, test.n), opt.latency_repeats, 3, forward);
      results.push_back(r);
    };
    // The calibrated static models again, full-integer: uint8 codes between the layers.
    for (std::size_t i = 4; i <= 6; ++i) {
      const squint::nn::integer_graph q(models[i]);
      const auto forward = [&q](const float* x, std::size_t images, float* y) { q.forward(x, {images, 28, 28, 1}, y); };
      measure("int8_static", variants[i].detail + ", full int", forward, models[i].weight_bytes());
    }
    // INT4 weights per group of 128 inputs: round to nearest, GPTQ and AWQ on the calibration images
    // (weight-only; int4_dynamic runs the same codes, W4A8).
    {
      nn::build_options o;
      o.mode = precision::int4_weight_only;
      o.int4_group = 128;
      o.kernels = kernels;
      const squint::nn::graph rtn = net.build(o);
      measure("int4_weight_only", "RTN, g=128", forward_of(rtn), rtn.weight_bytes());
      squint::nn::gptq_options g;
      g.group = 128;
      g.max_rows = 4096;
      g.kernels = kernels;
      const auto t = clock_type::now();
      const qat::gptq_graph_result q = qat::gptq(net, calibration.data(), {calibration_count, 28, 28, 1}, g);
      std::printf("GPTQ (groups of 128) on %zu images in %.1f s:", calibration_count, seconds_since(t));
      for (const squint::nn::gptq_layer& l : q.layers)
        std::printf(" %s output MSE %.3g (RTN %.3g);", q.model.name(l.layer).c_str(), l.mse_gptq, l.mse_rtn);
      std::printf("\n");
      measure("int4_weight_only", "GPTQ, g=128", forward_of(q.model), q.model.weight_bytes());
      qat::graph scaled = net.folded();
      squint::nn::awq_options a;
      a.group = 128;
      a.max_rows = 4096;
      a.kernels = kernels;
      const auto ta = clock_type::now();
      const std::vector<squint::nn::awq_layer> report = scaled.apply_awq(calibration.data(), {calibration_count, 28, 28, 1}, a);
      std::printf("AWQ (groups of 128) in %.1f s:", seconds_since(ta));
      for (const squint::nn::awq_layer& l : report)
        std::printf(" %s alpha %.2f, output MSE %.3g (RTN %.3g);", scaled.name(l.layer).c_str(), l.alpha, l.mse_awq, l.mse_rtn);
      std::printf("\n");
      const squint::nn::graph awq = scaled.build(o);
      measure("int4_weight_only", "AWQ, g=128", forward_of(awq), awq.weight_bytes());
    }
    const result& ref = results.front();
    std::printf("\n%-26s %-17s %8s %7s %9s %6s %11s %12s %7s %7s\n", "model / precision", "detail", "top-1", "delta",
                "weight B", "size", "batch 1 us", "batch 64 us", "x b1", "x b64");
    for (const result& r : results)
      std::printf("%-26s %-17s %7.2f%% %+6.2f %9zu %5.3fx %11.1f %12.1f %6.2fx %6.2fx\n", r.name.c_str(), r.detail.c_str(),
                  r.accuracy, r.accuracy - ref.accuracy, r.bytes, static_cast<double>(r.bytes) / static_cast<double>(ref.bytes),
                  r.latency_1, r.latency_64, ref.latency_1 / r.latency_1, ref.latency_64 / r.latency_64);
    // Where the error comes from, layer by layer, on 64 test images (the INT8 variants against FP32).
    const std::size_t probe = std::min<std::size_t>(64, test.n);
    std::vector<std::pair<std::string, const squint::nn::graph*>> candidates;
    for (std::size_t i : {std::size_t{2}, std::size_t{3}, std::size_t{4}})
      candidates.emplace_back(variants[i].name + " " + variants[i].detail, &models[i]);
    std::printf("\nper-layer error of the %s CNN against its fp32 (%zu test images):\n%s", model_name, probe,
                squint::nn::analyze(models[0], candidates, test.images.data(), {probe, 28, 28, 1}).to_string().c_str());
    for (std::size_t i : {std::size_t{4}, variants.size()})  // static INT8, float boundaries and full-integer
      if (opt.max_drop >= 0.0 && ref.accuracy - results[i].accuracy > opt.max_drop) {
        std::printf("FAIL: %s %s (%s) loses %.2f points (limit %.2f)\n", model_name, results[i].name.c_str(),
                    results[i].detail.c_str(), ref.accuracy - results[i].accuracy, opt.max_drop);
        status = 1;
      }
    all_results.insert(all_results.end(), results.begin(), results.end());
    compare_equalization(model_name, net, ref.accuracy, test, calibration, kernels);
    if (residual || opt.qat_epochs <= 0) continue;
    const double int8_qat_loss = compare_qat(net, ref.accuracy, train_set, test, calibration, opt.qat_epochs, kernels);
    if (opt.max_drop >= 0.0 && int8_qat_loss > opt.max_drop) {
      std::printf("FAIL: W8A8 QAT loses %.2f points (limit %.2f)\n", int8_qat_loss, opt.max_drop);
      status = 1;
    }
  }
  std::printf("(delta in percentage points vs each model's fp32; size and speedups relative to it; median of %d runs, 1 "
              "thread)\n",
              opt.latency_repeats);
  const std::string svg_path = opt.out + "/fashion_mnist_cnn.svg";
  demo::write_svg(svg_path, all_results, std::string("squint on Fashion-MNIST CNNs (") + kernels.isa + ", 1 thread)");
  std::printf("wrote %s\ndone in %.1f s\n", svg_path.c_str(), seconds_since(start));
  return status;
}

}  // namespace

int main(int argc, char** argv) { return demo::run_main("fashion_mnist_cnn", argc, argv, run_demo); }

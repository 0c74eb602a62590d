// SPDX-License-Identifier: Apache-2.0
// fashion_mnist_qat: post-training quantization against quantization-aware training on the
// Fashion-MNIST MLP (784-512-256-10). Starts from the FP32 weights the fashion_mnist demo saved
// (or trains them), then for each setting — INT8, 4-, 3- and 2-bit weights per channel, per group
// and per tensor, with and without learned (LSQ) qparams, and entropy-calibrated activations —
// calibrates it (PTQ) and fine-tunes it with
// fake quantization for a few epochs (QAT), converts both to squint::nn models and evaluates
// them on the 10,000 test images: top-1, the loss against FP32, the share of PTQ's loss QAT
// recovers, and what a QAT epoch costs against an FP32 epoch.
//
//   fashion_mnist_qat [--data DIR] [--out DIR] [--retrain] [--epochs N] [--train-limit N]
//                     [--test-limit N] [--max-drop PP] [--quick]
//
// --epochs: QAT epochs (default 3). Reads and writes fashion_mnist_fp32.squint in --out.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "squint/dispatch.hpp"
#include "squint/nn.hpp"
#include "squint/qat.hpp"
#include "fashion_mnist_common.hpp"

namespace {

using demo::clock_type;
using demo::dataset;
using demo::seconds_since;
namespace qat = squint::qat;

struct setting {
  std::string name;
  qat::qat_options options;
};

/// Weight fake quantization of `bits`: narrow range at 8 bits (squint's INT8 default), PyTorch's
/// full symmetric range [-2^(b-1), 2^(b-1) - 1] below. With a group, int8 activation codes per
/// row: the model converts to int4_dynamic (W4A8).
qat::qat_options quantized(int bits, bool per_channel, bool learn, const squint::nn::backend& kernels,
                           std::size_t group = 0) {
  qat::qat_options o;
  o.weights->bits = bits;
  o.weights->per_channel = per_channel;
  o.weights->range = bits == 8 ? squint::nn::int8_weight_range::narrow : squint::nn::int8_weight_range::full;
  o.weights->learn_scale = learn;
  o.weights->group = group;
  o.activations->learn = learn;
  o.activations->per_row = group > 0;
  o.kernels = kernels;
  return o;
}

double accuracy_of(const squint::nn::sequential& model, const dataset& test) {
  return demo::accuracy(test, [&model](const float* x, std::size_t m, float* y) { model.forward(x, m, y); });
}

int run_demo(int argc, char** argv) {
  demo::options opt;
  opt.out = SQUINT_DEMO_OUTPUT_DIR;
  opt.epochs = 3;
  opt.calibration_images = 2048;
  demo::options quick;
  quick.train_limit = 4096;
  quick.test_limit = 1000;
  quick.epochs = 1;
  quick.calibration_images = 512;
  if (const int status = demo::parse_options(argc, argv, "fashion_mnist_qat", opt, quick); status >= 0) return status;
  const auto start = clock_type::now();
  const squint::nn::backend kernels = squint::runtime::backend();
  std::printf("squint QAT demo: kernels %s, 1 thread\n", kernels.isa);
  const dataset train_set = demo::load_idx(opt.data, "train", opt.train_limit);
  const dataset test = demo::load_idx(opt.data, "t10k", opt.test_limit);

  // FP32 weights: the MLP demo's saved model, or trained here as it trains them (8 epochs).
  const std::string weights_path = opt.out + "/fashion_mnist_fp32.squint";
  std::vector<squint::nn::float_layer> fp32;
  if (!opt.retrain && std::ifstream(weights_path).good()) {
    fp32 = squint::nn::float_layers(squint::nn::load(weights_path, kernels));
    std::printf("FP32 weights: loaded %s\n", weights_path.c_str());
  } else {
    const int epochs = opt.train_limit >= 60000 ? 8 : 2;
    std::printf("training the FP32 MLP, %d epochs on %zu images:\n", epochs, train_set.n);
    fp32 = demo::train_mlp(train_set, epochs, kernels);
    if (opt.train_limit >= 60000)
      squint::nn::save(squint::nn::sequential(fp32, {squint::nn::precision::fp32, {}, false, std::nullopt, kernels}),
                       weights_path);
  }
  const double fp32_accuracy =
      accuracy_of(squint::nn::sequential(fp32, {squint::nn::precision::fp32, {}, false, std::nullopt, kernels}), test);

  // What an FP32 epoch costs: one epoch of the same loop from the FP32 weights, thrown away.
  demo::train_settings fine_tune;
  fine_tune.epochs = 1;
  fine_tune.peak_lr = 0.01f;
  fine_tune.verbose = false;
  double fp32_epoch;
  {
    auto model = qat::prepare_qat(fp32, qat::fp32_training(kernels));
    fp32_epoch = demo::train(model, train_set, fine_tune).front();
  }
  std::printf("FP32: top-1 %.2f%%, one training epoch %.2f s\n", fp32_accuracy, fp32_epoch);

  // Calibration (PTQ): training images, shown to the observers as one batch, so the activation
  // ranges are their min-max over all of them.
  const std::size_t calibration_rows = std::min(opt.calibration_images, train_set.n);
  std::vector<float> calibration(calibration_rows * 784);
  for (std::size_t i = 0; i < calibration_rows; ++i)
    std::copy_n(train_set.images.begin() + static_cast<std::ptrdiff_t>(i * (train_set.n / calibration_rows) * 784),
                784, calibration.begin() + static_cast<std::ptrdiff_t>(i * 784));

  std::vector<setting> settings{
      {"W8A8 per channel", quantized(8, true, false, kernels)},
      {"W4A8 per channel", quantized(4, true, false, kernels)},
      {"W3A8 per channel", quantized(3, true, false, kernels)},
      {"W2A8 per channel", quantized(2, true, false, kernels)},
      {"W4A8 per tensor", quantized(4, false, false, kernels)},
      {"W2A8 per tensor", quantized(2, false, false, kernels)},
      {"W4A8 per group of 32", quantized(4, true, false, kernels, 32)},
      {"W3A8 per group of 32", quantized(3, true, false, kernels, 32)},
      {"W2A8 per group of 32", quantized(2, true, false, kernels, 32)},
      {"W4A8 per tensor LSQ", quantized(4, false, true, kernels)},
      {"W2A8 per channel LSQ", quantized(2, true, true, kernels)},
      {"W2A8 per tensor LSQ", quantized(2, false, true, kernels)},
      {"W8A8 entropy, LSQ", quantized(8, true, true, kernels)},
  };
  // Entropy calibration clips the standardized input layer (see the MLP demo); QAT starts LSQ
  // from those qparams.
  settings.back().options.activations->observer = squint::nn::observers::entropy();
  struct row {
    std::string name;
    double ptq, qat, epoch_seconds;
  };
  std::vector<row> rows;
  for (setting& s : settings) {
    auto ptq = qat::prepare_qat(fp32, s.options);
    std::vector<float> scratch(calibration_rows * 10);
    ptq.forward(calibration.data(), calibration_rows, scratch.data());
    const double ptq_accuracy = accuracy_of(ptq.convert(), test);

    // QAT: from the calibrated model, observers frozen for the last epoch.
    const std::size_t steps_per_epoch = train_set.n / fine_tune.batch;
    s.options.freeze_observers_after = steps_per_epoch * static_cast<std::size_t>(std::max(opt.epochs - 1, 1));
    auto model = qat::prepare_qat(fp32, s.options);
    model.forward(calibration.data(), calibration_rows, scratch.data());
    demo::train_settings t = fine_tune;
    t.epochs = opt.epochs;
    std::printf("%s: PTQ %.2f%%, QAT %d epochs\n", s.name.c_str(), ptq_accuracy, opt.epochs);
    const std::vector<double> seconds = demo::train(model, train_set, t);
    std::vector<double> sorted = seconds;
    std::sort(sorted.begin(), sorted.end());
    rows.push_back({s.name, ptq_accuracy, accuracy_of(model.convert(), test), sorted[sorted.size() / 2]});
  }

  std::printf("\n%-22s %8s %8s %8s %8s %10s %10s %9s\n", "setting", "PTQ", "QAT", "PTQ d", "QAT d", "recovered",
              "QAT epoch", "x FP32");
  for (const row& r : rows) {
    const double lost = fp32_accuracy - r.ptq;
    char recovered[16] = "-";
    if (lost >= 0.5) std::snprintf(recovered, sizeof recovered, "%.0f%%", 100.0 * (r.qat - r.ptq) / lost);
    std::printf("%-22s %7.2f%% %7.2f%% %+8.2f %+8.2f %10s %9.2fs %8.2fx\n", r.name.c_str(), r.ptq, r.qat,
                r.ptq - fp32_accuracy, r.qat - fp32_accuracy, recovered, r.epoch_seconds, r.epoch_seconds / fp32_epoch);
  }
  std::printf("(FP32 %.2f%% on %zu test images; QAT %d epochs from the FP32 weights, SGD momentum 0.9, cosine "
              "learning rate from 0.01, observers frozen for the last epoch; \"recovered\": the share of PTQ's loss "
              "QAT wins back, where PTQ loses >= 0.5 points; epoch times are medians, 1 thread, %s)\n",
              fp32_accuracy, test.n, opt.epochs, kernels.isa);
  std::printf("done in %.1f s\n", seconds_since(start));
  // The check CI runs: INT8 QAT stays within max_drop of FP32.
  if (opt.max_drop >= 0.0 && fp32_accuracy - rows.front().qat > opt.max_drop) {
    std::printf("FAIL: %s QAT loses %.2f points (limit %.2f)\n", rows.front().name.c_str(),
                fp32_accuracy - rows.front().qat, opt.max_drop);
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return demo::run_main("fashion_mnist_qat", argc, argv, run_demo); }

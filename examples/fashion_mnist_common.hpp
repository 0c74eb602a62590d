// SPDX-License-Identifier: Apache-2.0
// fashion_mnist_common.hpp: what the two Fashion-MNIST demos (the MLP and the CNN) share: the
// IDX reader, a portable random stream, the training loop of squint::qat models, the result rows
// and the accuracy / latency SVG.
#pragma once

#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <system_error>
#include <vector>

#include "squint/qat.hpp"

namespace demo {

using clock_type = std::chrono::steady_clock;

inline double seconds_since(clock_type::time_point start) {
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

// ---- data ----------------------------------------------------------------------------------

struct dataset {
  std::vector<float> images;  // n x 784, normalized
  std::vector<std::uint8_t> labels;
  std::size_t n = 0;
};

inline std::vector<std::uint8_t> read_gzip(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) return {};
  std::vector<std::uint8_t> bytes;
  std::uint8_t buffer[1 << 16];
  int got;
  while ((got = gzread(f, buffer, sizeof buffer)) > 0) bytes.insert(bytes.end(), buffer, buffer + got);
  gzclose(f);
  return bytes;
}

inline std::uint32_t big_endian(const std::vector<std::uint8_t>& b, std::size_t at) {
  return std::uint32_t{b[at]} << 24 | std::uint32_t{b[at + 1]} << 16 | std::uint32_t{b[at + 2]} << 8 | b[at + 3];
}

/// Reads an IDX image file and its label file; pixels scaled to [0, 1] and standardized with
/// the training set's mean and deviation (0.2860, 0.3530).
inline dataset load_idx(const std::string& dir, const std::string& prefix, std::size_t limit) {
  const auto images = read_gzip(dir + "/" + prefix + "-images-idx3-ubyte.gz");
  const auto labels = read_gzip(dir + "/" + prefix + "-labels-idx1-ubyte.gz");
  if (images.size() < 16 || labels.size() < 8 || big_endian(images, 0) != 0x803 || big_endian(labels, 0) != 0x801) {
    std::cerr << "cannot read the Fashion-MNIST " << prefix << " files in " << dir << ".\n"
              << "Install them with:  sudo apt-get install dataset-fashion-mnist\n"
              << "or pass --data DIR holding " << prefix << "-images-idx3-ubyte.gz and " << prefix
              << "-labels-idx1-ubyte.gz.\n";
    std::exit(2);
  }
  const std::size_t count = big_endian(images, 4), pixels = std::size_t{big_endian(images, 8)} * big_endian(images, 12);
  if (pixels != 784 || big_endian(labels, 4) != count || images.size() != 16 + count * 784 ||
      labels.size() != 8 + count) {
    std::cerr << "fashion-mnist: " << prefix << " files have unexpected sizes\n";
    std::exit(2);
  }
  dataset d;
  d.n = std::min(count, limit);
  d.images.resize(d.n * 784);
  d.labels.assign(labels.begin() + 8, labels.begin() + 8 + static_cast<std::ptrdiff_t>(d.n));
  for (std::size_t i = 0; i < d.n * 784; ++i)
    d.images[i] = (static_cast<float>(images[16 + i]) / 255.0f - 0.2860f) / 0.3530f;
  return d;
}

/// splitmix64: the same stream on every platform (std distributions are not).
struct rng {
  std::uint64_t state;
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  float normal() {
    const double u = uniform() + 1e-300, v = uniform();
    return static_cast<float>(std::sqrt(-2.0 * std::log(u)) * std::cos(6.283185307179586 * v));
  }
};

// ---- training ----------------------------------------------------------------------------

struct train_settings {
  int epochs = 1;
  std::size_t batch = 128;
  float peak_lr = 0.05f;  ///< cosine schedule from peak_lr down to 0 over all steps
  float momentum = 0.9f, weight_decay = 5e-5f;
  std::uint64_t seed = 20261125;
  bool verbose = true;
};

/// Trains a squint::qat model (FP32 or fake-quantized; forward(x, images, logits) runs its
/// training forward) with SGD and momentum on shuffled batches; returns each epoch's seconds.
template <class Model, class Forward>
std::vector<double> train(Model& model, const dataset& d, const train_settings& s, Forward forward) {
  rng r{s.seed};
  std::vector<std::size_t> order(d.n);
  for (std::size_t i = 0; i < d.n; ++i) order[i] = i;
  const std::size_t in = 784, classes = 10;
  const std::size_t steps_per_epoch = d.n / s.batch, total = steps_per_epoch * static_cast<std::size_t>(s.epochs);
  std::vector<float> x(s.batch * in), logits(s.batch * classes);
  std::vector<std::uint8_t> labels(s.batch);
  squint::qat::sgd opt(s.momentum, s.weight_decay);
  std::vector<double> seconds;
  std::size_t step = 0;
  for (int epoch = 0; epoch < s.epochs; ++epoch) {
    const auto start = clock_type::now();
    for (std::size_t i = d.n; i > 1; --i) std::swap(order[i - 1], order[r.next() % i]);
    double loss = 0.0;
    std::size_t correct = 0;
    for (std::size_t b = 0; b < steps_per_epoch; ++b, ++step) {
      for (std::size_t i = 0; i < s.batch; ++i) {
        const std::size_t idx = order[b * s.batch + i];
        std::copy_n(d.images.begin() + static_cast<std::ptrdiff_t>(idx * in), in,
                    x.begin() + static_cast<std::ptrdiff_t>(i * in));
        labels[i] = d.labels[idx];
      }
      forward(x.data(), s.batch, logits.data());
      const auto l = squint::qat::softmax_cross_entropy(logits.data(), labels.data(), s.batch, classes, logits.data());
      loss += l.loss;
      correct += l.correct;
      model.backward(logits.data());
      const float lr = 0.5f * s.peak_lr *
                       (1.0f + std::cos(3.14159265f * static_cast<float>(step) / static_cast<float>(total)));
      opt.step(model.parameters(), lr);
    }
    seconds.push_back(seconds_since(start));
    if (s.verbose) {
      std::printf("  epoch %d/%d: loss %.4f, train accuracy %.2f%% (%.1f s)\n", epoch + 1, s.epochs,
                  loss / static_cast<double>(steps_per_epoch),
                  100.0 * static_cast<double>(correct) / static_cast<double>(steps_per_epoch * s.batch),
                  seconds.back());
      std::fflush(stdout);
    }
  }
  return seconds;
}

/// The MLP demos' training loop on a qat::sequential of 784 inputs and 10 outputs.
inline std::vector<double> train(squint::qat::sequential& model, const dataset& d, const train_settings& s) {
  return train(model, d, s, [&model](const float* x, std::size_t m, float* y) { model.forward(x, m, y); });
}

/// The 784-512-256-10 MLP of the MLP demos, He-initialized (zero biases), seeded the same on
/// every platform.
inline std::vector<squint::nn::float_layer> initial_mlp() {
  const std::size_t sizes[] = {784, 512, 256, 10};
  rng r{20261125};
  std::vector<squint::nn::float_layer> layers(3);
  for (std::size_t l = 0; l < 3; ++l) {
    squint::nn::float_layer& f = layers[l];
    f.out = sizes[l + 1];
    f.in = sizes[l];
    const float he = std::sqrt(2.0f / static_cast<float>(sizes[l]));
    f.weights.resize(f.out * f.in);
    for (float& w : f.weights) w = he * r.normal();
    f.bias.assign(f.out, 0.0f);
    f.act = l < 2 ? squint::nn::activation::relu : squint::nn::activation::none;
  }
  return layers;
}

/// The MLP trained in FP32 on squint's kernels (squint::qat with nothing fake-quantized) with
/// train()'s defaults: SGD with momentum 0.9, weight decay 5e-5, batches of 128, cosine learning
/// rate from 0.05.
inline std::vector<squint::nn::float_layer> train_mlp(const dataset& d, int epochs, const squint::nn::backend& kernels) {
  auto model = squint::qat::prepare_qat(initial_mlp(), squint::qat::fp32_training(kernels));
  train_settings s;
  s.epochs = epochs;
  train(model, d, s);
  return model.float_layers();
}

/// main() of a demo: run(argc, argv), with any exception (squint::error: a file that cannot be
/// written, ...) reported under the demo's name.
template <class Run>
int run_main(const char* name, int argc, char** argv, Run run) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << name << ": " << e.what() << "\n";
    return 1;
  }
}

struct result {
  std::string name, detail;
  double accuracy = 0.0;
  std::size_t bytes = 0;
  double latency_1 = 0.0, latency_64 = 0.0;  // microseconds, median
};

inline std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;" : std::string(1, c);
  return out;
}

/// Accuracy (y) against batch-64 latency (x, log scale); circle area proportional to weight bytes.
inline void write_svg(const std::string& path, const std::vector<result>& results, const std::string& title) {
  const double width = 900, height = 560, left = 80, right = 250, top = 50, bottom = 60;
  double lo_t = 1e300, hi_t = 0, lo_a = 1e300, hi_a = 0, max_bytes = 0;
  for (const result& r : results) {
    lo_t = std::min(lo_t, r.latency_64);
    hi_t = std::max(hi_t, r.latency_64);
    lo_a = std::min(lo_a, r.accuracy);
    hi_a = std::max(hi_a, r.accuracy);
    max_bytes = std::max(max_bytes, static_cast<double>(r.bytes));
  }
  lo_t /= 1.25;
  hi_t *= 1.25;
  lo_a = std::floor(lo_a * 2.0 - 1.0) / 2.0;
  hi_a = std::ceil(hi_a * 2.0 + 1.0) / 2.0;
  const double plot_w = width - left - right, plot_h = height - top - bottom;
  auto px = [&](double t) { return left + plot_w * std::log(t / lo_t) / std::log(hi_t / lo_t); };
  auto py = [&](double a) { return top + plot_h * (hi_a - a) / (hi_a - lo_a); };
  std::ofstream svg(path);
  svg << "<svg xmlns='http://www.w3.org/2000/svg' width='" << width << "' height='" << height
      << "' font-family='sans-serif' font-size='12'>\n<rect width='100%' height='100%' fill='white'/>\n"
      << "<text x='" << left << "' y='28' font-size='16'>" << xml_escape(title) << "</text>\n"
      << "<rect x='" << left << "' y='" << top << "' width='" << plot_w << "' height='" << plot_h
      << "' fill='none' stroke='#888'/>\n";
  for (double a = lo_a; a <= hi_a + 1e-9; a += 0.5)
    svg << "<line x1='" << left << "' x2='" << left + plot_w << "' y1='" << py(a) << "' y2='" << py(a)
        << "' stroke='#eee'/><text x='" << left - 8 << "' y='" << py(a) + 4 << "' text-anchor='end'>" << a
        << "%</text>\n";
  for (double t = std::pow(10.0, std::floor(std::log10(lo_t))); t <= hi_t; t *= 10.0)
    for (double f : {1.0, 2.0, 5.0})
      if (t * f >= lo_t && t * f <= hi_t)
        svg << "<line y1='" << top << "' y2='" << top + plot_h << "' x1='" << px(t * f) << "' x2='" << px(t * f)
            << "' stroke='#eee'/><text y='" << top + plot_h + 18 << "' x='" << px(t * f) << "' text-anchor='middle'>"
            << t * f << "</text>\n";
  svg << "<text x='" << left + plot_w / 2 << "' y='" << height - 15
      << "' text-anchor='middle'>latency per batch of 64, microseconds (log scale, 1 thread)</text>\n"
      << "<text transform='translate(20," << top + plot_h / 2
      << ") rotate(-90)' text-anchor='middle'>top-1 accuracy on the 10k test images</text>\n";
  const char* colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                          "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939"};
  for (std::size_t i = 0; i < results.size(); ++i) {
    const result& r = results[i];
    const double radius = 4.0 + 16.0 * std::sqrt(static_cast<double>(r.bytes) / max_bytes);
    svg << "<circle cx='" << px(r.latency_64) << "' cy='" << py(r.accuracy) << "' r='" << radius << "' fill='"
        << colors[i % 12] << "' fill-opacity='0.45' stroke='" << colors[i % 12] << "'/>\n";
    const double ly = top + 14 + 18.0 * static_cast<double>(i);
    svg << "<circle cx='" << width - right + 20 << "' cy='" << ly - 4 << "' r='5' fill='" << colors[i % 12]
        << "'/><text x='" << width - right + 30 << "' y='" << ly << "'>" << xml_escape(r.name + " " + r.detail)
        << "</text>\n";
  }
  svg << "<text x='" << width - right + 20 << "' y='" << top + 30 + 18.0 * static_cast<double>(results.size())
      << "' fill='#555'>circle area: weight bytes</text>\n</svg>\n";
}

// ---- evaluation ----------------------------------------------------------------------------

/// Top-1 accuracy (%) on `test` of forward(images, count, logits), 500 images at a time.
template <class Forward>
double accuracy(const dataset& test, Forward forward) {
  const std::size_t batch = 500;
  std::vector<float> logits(batch * 10);
  std::size_t correct = 0;
  for (std::size_t r0 = 0; r0 < test.n; r0 += batch) {
    const std::size_t m = std::min(batch, test.n - r0);
    forward(test.images.data() + r0 * 784, m, logits.data());
    for (std::size_t i = 0; i < m; ++i) {
      const float* p = logits.data() + i * 10;
      correct += static_cast<std::size_t>(std::max_element(p, p + 10) - p) == test.labels[r0 + i];
    }
  }
  return 100.0 * static_cast<double>(correct) / static_cast<double>(test.n);
}

/// Median microseconds (over `repeats` runs of `calls` calls) of forward on `images` images.
template <class Forward>
double latency(const dataset& test, std::size_t images, int repeats, std::size_t calls, Forward forward) {
  std::vector<float> out(images * 10);
  std::vector<double> samples;
  for (int r = 0; r < repeats; ++r) {
    const auto start = clock_type::now();
    for (std::size_t c = 0; c < calls; ++c)
      forward(test.images.data() + (c * images % (test.n - images + 1)) * 784, images, out.data());
    samples.push_back(seconds_since(start) * 1e6 / static_cast<double>(calls));
  }
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

// ---- command line ---------------------------------------------------------------------------

/// What both demos accept; each sets its own defaults and its --quick subset.
struct options {
  std::string data = "/usr/share/datasets/fashion-mnist";
  std::string out;
  bool retrain = false;
  int epochs = 1;
  int qat_epochs = 2;  // the CNN demo's QAT fine-tuning
  std::size_t train_limit = 60000, test_limit = 10000;
  std::size_t calibration_images = 1024;
  int latency_repeats = 5;
  double max_drop = -1.0;  // fail when an INT8 mode loses more than this many points (off if < 0)
};

/// Parses the command line into `opt` (`quick`: the --quick settings; nothing is cached then),
/// and creates the --out directory. Returns -1 to go on, else the exit status.
inline int parse_options(int argc, char** argv, const std::string& name, options& opt, const options& quick) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << name << ": " << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--data") opt.data = value();
    else if (a == "--out") opt.out = value();
    else if (a == "--retrain") opt.retrain = true;
    else if (a == "--max-drop") opt.max_drop = std::atof(value().c_str());
    else if (a == "--epochs") opt.epochs = std::atoi(value().c_str());
    else if (a == "--qat-epochs") opt.qat_epochs = std::atoi(value().c_str());
    else if (a == "--train-limit") opt.train_limit = std::strtoull(value().c_str(), nullptr, 10);
    else if (a == "--test-limit") opt.test_limit = std::strtoull(value().c_str(), nullptr, 10);
    else if (a == "--quick") {  // CI smoke run: small subsets, nothing cached
      opt.train_limit = quick.train_limit;
      opt.test_limit = quick.test_limit;
      opt.epochs = quick.epochs;
      opt.qat_epochs = quick.qat_epochs;
      opt.calibration_images = quick.calibration_images;
      opt.latency_repeats = quick.latency_repeats;
      opt.retrain = true;
    } else {
      std::cerr << "usage: " << name << " [--data DIR] [--out DIR] [--retrain] [--epochs N] [--train-limit N]\n"
                << "       [--test-limit N] [--max-drop PP] [--quick]" << (name == "fashion_mnist_cnn" ? " [--qat-epochs N]" : "")
                << "\n";
      return a == "--help" ? 0 : 2;
    }
  }
  std::error_code created;
  std::filesystem::create_directories(opt.out, created);
  if (created) {
    std::cerr << name << ": cannot create the --out directory '" << opt.out << "': " << created.message() << "\n";
    return 2;
  }
  return -1;
}

}  // namespace demo

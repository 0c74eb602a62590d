// SPDX-License-Identifier: Apache-2.0
// fashion_mnist_cnn: the CNN half of the workflow on real data. Trains two small CNNs in FP32 on
// Fashion-MNIST (or loads the weights an earlier run saved):
//   plain:    conv3x3 1->32 + BN + ReLU, max pool, conv3x3 32->64 + BN + ReLU, max pool,
//             fc 3136->128 + ReLU, fc 128->10;
//   residual: the same with a residual block (conv3x3 64->64 + BN + ReLU, conv3x3 64->64 + BN,
//             + skip, ReLU) after the second pool.
// Folds each BatchNorm into its convolution (nn::fold_batch_norm), builds the model as an
// nn::graph in every precision, calibrates the static ones on training images only, and prints
// accuracy on the 10,000 test images, weight bytes and single-thread latency side by side, and
// an SVG like the MLP demo's.
//
//   fashion_mnist_cnn [--data DIR] [--out DIR] [--retrain] [--epochs N] [--train-limit N]
//                     [--test-limit N] [--max-drop PP] [--quick]
//
// Writes into --out (default: the example's build directory): fashion_mnist_cnn_<model>.weights
// (the trained FP32 weights, reused by later runs) and fashion_mnist_cnn.svg.
#include <Eigen/Core>

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
#include <vector>

#include "fashion_mnist_common.hpp"
#include "squint/dispatch.hpp"
#include "squint/nn.hpp"

namespace {

using demo::clock_type;
using demo::dataset;
using demo::options;
using demo::result;
using demo::seconds_since;
using matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using row = Eigen::RowVectorXf;
using squint::nn::precision;


// ---- training (FP32, Eigen; activations NHWC, one row per pixel) ---------------------------

/// Calls f(window row, tap, pixel row) for every in-image tap of the 3x3, stride 1, pad 1
/// windows over batch x h x w pixels.
template <class F>
void for_each_tap(std::size_t batch, std::size_t h, std::size_t w, F f) {
  for (std::size_t n = 0; n < batch; ++n)
    for (std::size_t y = 0; y < h; ++y)
      for (std::size_t x0 = 0; x0 < w; ++x0)
        for (std::size_t t = 0; t < 9; ++t) {
          const std::size_t iy = y + t / 3, ix = x0 + t % 3;  // padded coordinates
          if (iy >= 1 && ix >= 1 && iy <= h && ix <= w) f((n * h + y) * w + x0, t, (n * h + iy - 1) * w + ix - 1);
        }
}

/// The windows of x (batch x h x w pixels, c channels) as rows of 9c values in (ky, kx, c)
/// order: the OHWI order of the filters.
matrix im2col(const matrix& x, std::size_t batch, std::size_t h, std::size_t w) {
  const auto c = static_cast<std::size_t>(x.cols());
  matrix col = matrix::Zero(static_cast<Eigen::Index>(batch * h * w), static_cast<Eigen::Index>(9 * c));
  for_each_tap(batch, h, w, [&](std::size_t r, std::size_t t, std::size_t p) {
    std::copy_n(x.data() + p * c, c, col.data() + r * 9 * c + t * c);
  });
  return col;
}

/// The adjoint of im2col: sums each window row's gradients back onto its pixels.
matrix col2im(const matrix& col, std::size_t batch, std::size_t h, std::size_t w) {
  const auto c = static_cast<std::size_t>(col.cols() / 9);
  matrix x = matrix::Zero(static_cast<Eigen::Index>(batch * h * w), static_cast<Eigen::Index>(c));
  for_each_tap(batch, h, w, [&](std::size_t r, std::size_t t, std::size_t p) {
    const float* from = col.data() + r * 9 * c + t * c;
    float* to = x.data() + p * c;
    for (std::size_t i = 0; i < c; ++i) to[i] += from[i];
  });
  return x;
}

/// Parameters with momentum SGD state.
struct param {
  matrix value, velocity;
  void init(Eigen::Index rows, Eigen::Index cols) {
    value = matrix::Zero(rows, cols);
    velocity = matrix::Zero(rows, cols);
  }
  void step(const matrix& grad, float lr, float decay) {
    velocity = 0.9f * velocity - lr * (grad + decay * value);
    value += velocity;
  }
};

/// A 3x3 convolution (no bias) followed by BatchNorm, in training mode.
struct conv_bn {
  std::size_t in = 0, out = 0, h = 0, w = 0;
  param weight, gamma, beta;  // weight: out x 9 in (OHWI)
  row running_mean, running_var;
  matrix col, xhat;           // forward caches
  row inv_std;

  void init(std::size_t cin, std::size_t cout, std::size_t height, std::size_t width, demo::rng& r) {
    in = cin, out = cout, h = height, w = width;
    weight.init(static_cast<Eigen::Index>(cout), static_cast<Eigen::Index>(9 * cin));
    const float he = std::sqrt(2.0f / static_cast<float>(9 * cin));
    for (Eigen::Index i = 0; i < weight.value.size(); ++i) weight.value.data()[i] = he * r.normal();
    gamma.init(1, static_cast<Eigen::Index>(cout));
    gamma.value.setOnes();
    beta.init(1, static_cast<Eigen::Index>(cout));
    running_mean = row::Zero(static_cast<Eigen::Index>(cout));
    running_var = row::Ones(static_cast<Eigen::Index>(cout));
  }
  matrix forward(const matrix& x, std::size_t batch) {
    col = im2col(x, batch, h, w);
    const matrix y = col * weight.value.transpose();
    const row mean = y.colwise().mean();
    const matrix centered = y.rowwise() - mean;
    const row var = centered.array().square().colwise().mean().matrix();
    inv_std = (var.array() + 1e-5f).rsqrt().matrix();
    xhat = centered * inv_std.asDiagonal();
    const float n = static_cast<float>(y.rows());
    running_mean = 0.9f * running_mean + 0.1f * mean;
    running_var = 0.9f * running_var + 0.1f * var * (n / (n - 1.0f));
    return (xhat * gamma.value.row(0).asDiagonal()).rowwise() + beta.value.row(0);
  }
  matrix backward(const matrix& dy, std::size_t batch, float lr, float decay) {
    const float n = static_cast<float>(dy.rows());
    const row dgamma = dy.cwiseProduct(xhat).colwise().sum(), dbeta = dy.colwise().sum();
    const matrix dxhat = dy * gamma.value.row(0).asDiagonal();
    // Every per-channel vector evaluated once: inside a product Eigen would re-evaluate it for
    // each coefficient.
    const row sum_dxhat = dxhat.colwise().sum(), sum_dxhat_xhat = dxhat.cwiseProduct(xhat).colwise().sum();
    const row scale = inv_std / n;
    const matrix dz = (((n * dxhat).rowwise() - sum_dxhat) - xhat * sum_dxhat_xhat.asDiagonal()) * scale.asDiagonal();
    const matrix dcol = dz * weight.value;
    weight.step(dz.transpose() * col, lr, decay);
    gamma.step(dgamma, lr, 0.0f);
    beta.step(dbeta, lr, 0.0f);
    return col2im(dcol, batch, h, w);
  }
};

/// 2x2 max pooling, stride 2, remembering where each maximum came from.
struct max_pool {
  std::vector<Eigen::Index> from;
  matrix forward(const matrix& x, std::size_t batch, std::size_t h, std::size_t w) {
    const std::size_t oh = h / 2, ow = w / 2;
    const Eigen::Index c = x.cols();
    matrix y(static_cast<Eigen::Index>(batch * oh * ow), c);
    from.assign(static_cast<std::size_t>(y.size()), 0);
    for (std::size_t n = 0; n < batch; ++n)
      for (std::size_t y0 = 0; y0 < oh; ++y0)
        for (std::size_t x0 = 0; x0 < ow; ++x0) {
          const auto o = static_cast<Eigen::Index>((n * oh + y0) * ow + x0);
          for (Eigen::Index ch = 0; ch < c; ++ch) {
            Eigen::Index best = static_cast<Eigen::Index>((n * h + 2 * y0) * w + 2 * x0);
            for (std::size_t t = 1; t < 4; ++t) {
              const auto p = static_cast<Eigen::Index>((n * h + 2 * y0 + t / 2) * w + 2 * x0 + t % 2);
              if (x(p, ch) > x(best, ch)) best = p;
            }
            y(o, ch) = x(best, ch);
            from[static_cast<std::size_t>(o * c + ch)] = best;
          }
        }
    return y;
  }
  matrix backward(const matrix& dy, Eigen::Index input_rows) const {
    matrix dx = matrix::Zero(input_rows, dy.cols());
    for (Eigen::Index o = 0; o < dy.rows(); ++o)
      for (Eigen::Index ch = 0; ch < dy.cols(); ++ch) dx(from[static_cast<std::size_t>(o * dy.cols() + ch)], ch) += dy(o, ch);
    return dx;
  }
};

matrix relu(const matrix& x) { return x.cwiseMax(0.0f); }
matrix relu_grad(const matrix& dy, const matrix& y) { return dy.cwiseProduct((y.array() > 0.0f).cast<float>().matrix()); }

/// The trained FP32 network, BatchNorm still separate.
struct cnn {
  bool residual = false;
  conv_bn conv1, conv2, res1, res2;
  param fc1, fc1_bias, fc2, fc2_bias;
};

/// The network with He-initialized weights (BatchNorm: identity), ready to train or load into.
cnn initialized(bool residual, demo::rng& r) {
  cnn net;
  net.residual = residual;
  net.conv1.init(1, 32, 28, 28, r);
  net.conv2.init(32, 64, 14, 14, r);
  if (residual) {
    net.res1.init(64, 64, 7, 7, r);
    net.res2.init(64, 64, 7, 7, r);
  }
  net.fc1.init(128, 3136);
  net.fc2.init(10, 128);
  for (Eigen::Index i = 0; i < net.fc1.value.size(); ++i) net.fc1.value.data()[i] = std::sqrt(2.0f / 3136.0f) * r.normal();
  for (Eigen::Index i = 0; i < net.fc2.value.size(); ++i) net.fc2.value.data()[i] = std::sqrt(2.0f / 128.0f) * r.normal();
  net.fc1_bias.init(1, 128);
  net.fc2_bias.init(1, 10);
  return net;
}

cnn train(const dataset& train_set, bool residual, int epochs) {
  demo::rng r{residual ? 20261202u : 20261201u};
  cnn net = initialized(residual, r);
  const std::size_t batch = 64, n = train_set.n, steps_per_epoch = n / batch;
  const std::size_t total_steps = steps_per_epoch * static_cast<std::size_t>(epochs);
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = i;
  max_pool pool1, pool2;
  std::size_t step = 0;
  for (int epoch = 0; epoch < epochs; ++epoch) {
    const auto start = clock_type::now();
    for (std::size_t i = n; i > 1; --i) std::swap(order[i - 1], order[r.next() % i]);
    double loss = 0.0;
    std::size_t correct = 0;
    for (std::size_t s = 0; s < steps_per_epoch; ++s, ++step) {
      matrix x(static_cast<Eigen::Index>(batch * 784), 1);
      std::vector<int> label(batch);
      for (std::size_t i = 0; i < batch; ++i) {
        const std::size_t idx = order[s * batch + i];
        for (std::size_t p = 0; p < 784; ++p) x(static_cast<Eigen::Index>(i * 784 + p), 0) = train_set.images[idx * 784 + p];
        label[i] = train_set.labels[idx];
      }
      const float lr = 0.05f * 0.5f * (1.0f + std::cos(3.14159265f * static_cast<float>(step) / static_cast<float>(total_steps)));
      const float decay = 5e-4f;
      const matrix a1 = relu(net.conv1.forward(x, batch));
      const matrix p1 = pool1.forward(a1, batch, 28, 28);
      const matrix a2 = relu(net.conv2.forward(p1, batch));
      const matrix p2 = pool2.forward(a2, batch, 14, 14);
      matrix r1, block = p2;
      if (residual) {
        r1 = relu(net.res1.forward(p2, batch));
        block = relu(net.res2.forward(r1, batch) + p2);
      }
      const Eigen::Map<const matrix> flat(block.data(), static_cast<Eigen::Index>(batch), 3136);
      const matrix h = relu((flat * net.fc1.value.transpose()).rowwise() + net.fc1_bias.value.row(0));
      const matrix z = (h * net.fc2.value.transpose()).rowwise() + net.fc2_bias.value.row(0);
      matrix dz(z.rows(), z.cols());
      for (Eigen::Index i = 0; i < z.rows(); ++i) {
        Eigen::Index best;
        const float top = z.row(i).maxCoeff(&best);
        const row e = (z.row(i).array() - top).exp().matrix();
        const float sum = e.sum();
        correct += best == label[static_cast<std::size_t>(i)];
        loss -= z(i, label[static_cast<std::size_t>(i)]) - top - std::log(sum);  // log-softmax, no underflow
        dz.row(i) = e / sum;
        dz(i, label[static_cast<std::size_t>(i)]) -= 1.0f;
      }
      dz /= static_cast<float>(batch);
      const matrix dh = relu_grad(dz * net.fc2.value, h);
      net.fc2.step(dz.transpose() * h, lr, decay);
      net.fc2_bias.step(dz.colwise().sum(), lr, 0.0f);
      const matrix dflat = dh * net.fc1.value;
      net.fc1.step(dh.transpose() * flat, lr, decay);
      net.fc1_bias.step(dh.colwise().sum(), lr, 0.0f);
      matrix dp2 = Eigen::Map<const matrix>(dflat.data(), static_cast<Eigen::Index>(batch * 49), 64);
      if (residual) {
        const matrix dsum = relu_grad(dp2, block);
        const matrix dr1 = relu_grad(net.res2.backward(dsum, batch, lr, decay), r1);
        dp2 = dsum + net.res1.backward(dr1, batch, lr, decay);
      }
      const matrix da2 = relu_grad(pool2.backward(dp2, a2.rows()), a2);
      const matrix dp1 = net.conv2.backward(da2, batch, lr, decay);
      net.conv1.backward(relu_grad(pool1.backward(dp1, a1.rows()), a1), batch, lr, decay);
    }
    std::printf("  epoch %d/%d: loss %.4f, train accuracy %.2f%% (%.1f s)\n", epoch + 1, epochs,
                loss / static_cast<double>(steps_per_epoch * batch),
                100.0 * static_cast<double>(correct) / static_cast<double>(steps_per_epoch * batch), seconds_since(start));
    std::fflush(stdout);
  }
  return net;
}

// ---- the trained weights on disk: every parameter, in order, as float32 ---------------------

std::vector<matrix*> parameters(cnn& net) {
  std::vector<matrix*> all;
  for (conv_bn* c : {&net.conv1, &net.conv2, &net.res1, &net.res2}) {
    if (c->out == 0) continue;
    all.insert(all.end(), {&c->weight.value, &c->gamma.value, &c->beta.value});
  }
  all.insert(all.end(), {&net.fc1.value, &net.fc1_bias.value, &net.fc2.value, &net.fc2_bias.value});
  return all;
}

void save_weights(cnn& net, const std::string& path) {
  std::ofstream out(path, std::ios::binary);
  auto put = [&](const float* p, std::size_t n) { out.write(reinterpret_cast<const char*>(p), static_cast<std::streamsize>(n * 4)); };
  for (matrix* m : parameters(net)) put(m->data(), static_cast<std::size_t>(m->size()));
  for (conv_bn* c : {&net.conv1, &net.conv2, &net.res1, &net.res2})
    if (c->out > 0) put(c->running_mean.data(), c->out), put(c->running_var.data(), c->out);
}

/// False when the file is missing or has the wrong size (then the model is trained again).
bool load_weights(cnn& net, const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return false;
  std::size_t expected = 0;
  for (matrix* m : parameters(net)) expected += static_cast<std::size_t>(m->size());
  for (conv_bn* c : {&net.conv1, &net.conv2, &net.res1, &net.res2}) expected += 2 * c->out;
  if (static_cast<std::size_t>(in.tellg()) != expected * 4) return false;
  in.seekg(0);
  auto get = [&](float* p, std::size_t n) { in.read(reinterpret_cast<char*>(p), static_cast<std::streamsize>(n * 4)); };
  for (matrix* m : parameters(net)) get(m->data(), static_cast<std::size_t>(m->size()));
  for (conv_bn* c : {&net.conv1, &net.conv2, &net.res1, &net.res2})
    if (c->out > 0) get(c->running_mean.data(), c->out), get(c->running_var.data(), c->out);
  return static_cast<bool>(in);
}

// ---- the squint model ------------------------------------------------------------------------

std::vector<float> values(const matrix& m) { return {m.data(), m.data() + m.size()}; }
std::vector<float> values(const row& m) { return {m.data(), m.data() + m.size()}; }

/// The trained network as an nn::graph in `mode`, each BatchNorm folded into its convolution.
squint::nn::graph build(const cnn& net, precision mode, const squint::nn::observer& obs,
                        const squint::nn::backend& kernels) {
  namespace nn = squint::nn;
  squint::conv2d_params same;
  same.pad_top = same.pad_left = same.pad_bottom = same.pad_right = 1;
  nn::graph g;
  auto conv = [&](const char* name, const conv_bn& c, nn::activation act, std::vector<std::string> inputs) {
    std::vector<float> w = values(c.weight.value), bias;
    nn::fold_batch_norm(w, bias, values(c.gamma.value), values(c.beta.value), values(c.running_mean),
                        values(c.running_var), 1e-5f);
    nn::conv2d_options o{mode, act, obs, kernels};
    g.add(name, nn::conv2d(w.data(), {c.out, c.in, 3, 3}, squint::filter_layout::ohwi, same, bias.data(), o),
          std::move(inputs));
  };
  conv("conv1", net.conv1, nn::activation::relu, {});
  g.add("pool1", nn::pool{});
  conv("conv2", net.conv2, nn::activation::relu, {});
  g.add("pool2", nn::pool{});
  if (net.residual) {
    conv("res1", net.res1, nn::activation::relu, {});
    conv("res2", net.res2, nn::activation::none, {});
    g.add("skip", nn::add{true}, {"res2", "pool2"});
  }
  g.add("flatten", nn::flatten{});
  nn::linear_options lo;
  lo.mode = mode;
  lo.input_observer = obs;
  lo.kernels = kernels;
  lo.act = nn::activation::relu;
  g.add("fc1", nn::linear(net.fc1.value.data(), 128, 3136, 3136, net.fc1_bias.value.data(), lo));
  lo.act = nn::activation::none;
  g.add("fc2", nn::linear(net.fc2.value.data(), 10, 128, 128, net.fc2_bias.value.data(), lo));
  return g;
}

/// The model as the shared evaluation calls it (images are 28 x 28 x 1, NHWC).
auto forward_of(const squint::nn::graph& model) {
  return [&model](const float* x, std::size_t images, float* y) { model.forward(x, {images, 28, 28, 1}, y); };
}

int run_demo(int argc, char** argv) {
  options opt;
  opt.out = SQUINT_DEMO_OUTPUT_DIR;
  opt.epochs = 1;
  options quick;
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
    demo::rng unused{1};
    cnn net = initialized(residual, unused);
    if (!opt.retrain && load_weights(net, path)) {
      std::printf("\n%s CNN: FP32 weights loaded from %s (pass --retrain to train again)\n", model_name, path.c_str());
    } else {
      std::printf("\ntraining the %s CNN in FP32 (Eigen), %d epochs on %zu images:\n", model_name, opt.epochs, train_set.n);
      const auto t = clock_type::now();
      Eigen::setNbThreads(0);  // all cores (when built with OpenMP)
      net = train(train_set, residual, opt.epochs);
      std::printf("trained in %.1f s\n", seconds_since(t));
      if (opt.train_limit >= 60000) save_weights(net, path);
    }
    // Training may use every core (Eigen with OpenMP); the measurements are single-threaded.
    Eigen::setNbThreads(1);
    std::vector<result> results;
    std::vector<squint::nn::graph> models;
    for (const variant& v : variants) {
      squint::nn::graph model = build(net, v.mode, v.obs, kernels);
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
    if (opt.max_drop >= 0.0 && ref.accuracy - results[4].accuracy > opt.max_drop) {
      std::printf("FAIL: %s static INT8 loses %.2f points (limit %.2f)\n", model_name, ref.accuracy - results[4].accuracy,
                  opt.max_drop);
      status = 1;
    }
    all_results.insert(all_results.end(), results.begin(), results.end());
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

// SPDX-License-Identifier: Apache-2.0
// calibrate_and_quantize.cpp: what each observer and granularity costs in accuracy.
//
// A linear layer's weights (rows with different magnitudes, a few outliers) and its post-ReLU
// activations (heavy right tail) are calibrated with every observer squint offers, quantized to
// int8 / uint8 and dequantized; the table shows the signal-to-quantization-noise ratio (SQNR,
// higher is better) and the largest absolute error of each choice.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "squint/squint.hpp"

namespace {

struct error_stats {
  double sqnr_db;
  double max_abs;
};

error_stats measure(const std::vector<float>& x, const std::vector<float>& y) {
  double signal = 0.0, noise = 0.0, max_abs = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double e = static_cast<double>(x[i]) - y[i];
    signal += static_cast<double>(x[i]) * x[i];
    noise += e * e;
    max_abs = std::max(max_abs, std::fabs(e));
  }
  return {10.0 * std::log10(signal / std::max(noise, 1e-30)), max_abs};
}

template <class T, class QParams>
std::vector<float> round_trip(const std::vector<float>& x, squint::shape s, const QParams& p) {
  std::vector<T> q(x.size());
  std::vector<float> y(x.size());
  squint::quantize<T>({x.data(), s}, {q.data(), s}, p);
  squint::dequantize<T>({q.data(), s}, {y.data(), s}, p);
  return y;
}

void row(const char* tensor, const std::string& method, const error_stats& e) {
  std::printf("| %-11s | %-34s | %9.2f | %10.5f |\n", tensor, method.c_str(), e.sqnr_db, e.max_abs);
}

}  // namespace

int main() {
  constexpr std::size_t out_features = 256, in_features = 512, batch = 64, batches = 16;
  std::mt19937 rng(2026);
  std::normal_distribution<float> normal(0.0f, 1.0f);

  // Weights: each output row has its own magnitude (as after training), plus rare outliers.
  std::vector<float> w(out_features * in_features);
  for (std::size_t r = 0; r < out_features; ++r) {
    const float row_scale = 0.02f * std::exp(normal(rng));
    for (std::size_t c = 0; c < in_features; ++c) w[r * in_features + c] = row_scale * normal(rng);
  }
  for (std::size_t i = 0; i < w.size(); i += 9973) w[i] *= 12.0f;
  const squint::shape w_shape{out_features, in_features};

  // Activations: post-ReLU with a heavy tail, arriving in calibration batches.
  std::vector<float> a(batch * batches * in_features);
  std::exponential_distribution<float> tail(1.5f);
  for (float& v : a) v = std::max(0.0f, normal(rng)) + (normal(rng) > 2.5f ? 4.0f * tail(rng) : 0.0f);

  std::printf("squint %d.%d.%d: calibrate -> quantize -> dequantize\n\n", SQUINT_VERSION_MAJOR,
              SQUINT_VERSION_MINOR, SQUINT_VERSION_PATCH);
  std::printf("| %-11s | %-34s | %9s | %10s |\n", "tensor", "observer -> dtype", "SQNR (dB)", "max |err|");
  std::printf("|%s|%s|%s|%s|\n", std::string(13, '-').c_str(), std::string(36, '-').c_str(),
              std::string(11, '-').c_str(), std::string(12, '-').c_str());

  const squint::quant_spec weight_spec{squint::dtype::int8, squint::qscheme::symmetric, false, true};
  squint::min_max_observer<> per_tensor(weight_spec);
  per_tensor.observe({w.data(), w_shape});
  row("weights", "min-max per tensor -> int8", measure(w, round_trip<std::int8_t>(w, w_shape, per_tensor.qparams())));
  squint::min_max_observer<squint::granularity::per_channel> per_channel(weight_spec, 0);
  per_channel.observe({w.data(), w_shape});
  row("weights", "min-max per channel -> int8",
      measure(w, round_trip<std::int8_t>(w, w_shape, per_channel.qparams())));
  squint::histogram_observer<squint::granularity::per_channel> mse_channel(
      weight_spec, 0, {squint::calibration_method::mse});
  mse_channel.observe({w.data(), w_shape});
  row("weights", "MSE histogram per channel -> int8",
      measure(w, round_trip<std::int8_t>(w, w_shape, mse_channel.qparams())));

  const squint::shape a_shape{batch * batches, in_features};
  const squint::quant_spec act_spec{};  // uint8 affine, as PyTorch's default activation observer
  auto calibrate = [&](auto&& observer) {
    for (std::size_t b = 0; b < batches; ++b)
      observer.observe({a.data() + b * batch * in_features, squint::shape{batch, in_features}});
    return observer.qparams();
  };
  auto act_row = [&](const std::string& name, squint::qparams p) {
    row("activations", name + " -> uint8", measure(a, round_trip<std::uint8_t>(a, a_shape, p)));
  };
  act_row("min-max", calibrate(squint::min_max_observer<>(act_spec)));
  act_row("moving average (c = 0.01)", calibrate(squint::moving_average_observer<>(act_spec)));
  const std::pair<const char*, squint::calibration_method> methods[] = {
      {"entropy (KL)", squint::calibration_method::entropy},
      {"percentile 99.99", squint::calibration_method::percentile},
      {"MSE", squint::calibration_method::mse},
      {"L2 search (PyTorch)", squint::calibration_method::l2}};
  for (const auto& [name, method] : methods) act_row(name, calibrate(squint::histogram_observer<>(act_spec, {method})));
  std::printf("\nweights: %zu x %zu, activations: %zu batches of %zu x %zu\n", out_features, in_features, batches,
              batch, in_features);
  return 0;
}

// SPDX-License-Identifier: Apache-2.0
// quickstart.cpp: calibrate, quantize to int8, dequantize, measure the error.
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "squint/squint.hpp"

int main() {
  std::mt19937 rng(0);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(4096);
  for (float& v : x) v = normal(rng);

  // 1. Calibrate: an observer turns data into scale and zero point.
  squint::min_max_observer<> observer({squint::dtype::int8, squint::qscheme::symmetric});
  observer.observe({x.data(), x.size()});
  const squint::qparams p = observer.qparams();

  // 2. Quantize to int8 and back.
  std::vector<std::int8_t> q(x.size());
  std::vector<float> y(x.size());
  squint::quantize(x.data(), q.data(), x.size(), p);
  squint::dequantize(q.data(), y.data(), q.size(), p);

  // 3. The error is at most half a quantization step inside the calibrated range.
  float max_error = 0.0f;
  for (std::size_t i = 0; i < x.size(); ++i) max_error = std::fmax(max_error, std::fabs(x[i] - y[i]));
  std::printf("scale %.6f  zero point %d  max |x - y| %.6f (half step %.6f)\n", p.scale, p.zero_point,
              max_error, p.scale / 2);
  return max_error <= p.scale / 2 * 1.0001f ? 0 : 1;
}

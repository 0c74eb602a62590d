// SPDX-License-Identifier: Apache-2.0
// consumer.cpp: what a downstream project compiles against squint::squint.
#include <cstdio>
#include <vector>

#include "squint/squint.hpp"

int main() {
  const std::vector<float> x{-1.0f, 0.0f, 0.5f, 2.0f};
  squint::min_max_observer<> observer;
  observer.observe({x.data(), x.size()});
  std::vector<std::uint8_t> q(x.size());
  squint::quantize<std::uint8_t>({x.data(), x.size()}, {q.data(), q.size()}, observer.qparams());
  std::printf("squint consumer: zero point %d, q[3] = %d\n", observer.qparams().zero_point, q[3]);
  return q[3] == 255 ? 0 : 1;
}

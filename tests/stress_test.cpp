// SPDX-License-Identifier: Apache-2.0
// stress_test.cpp: squint::nn models shared by 8 threads at once, each thread also using the
// GEMM thread pool or threads of its own, must give bit for bit what one thread gives. Bounded
// by a fixed amount of work (it runs under ThreadSanitizer in CI), never by a clock.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "squint/dispatch.hpp"
#include "squint/nn/sequential.hpp"
#include "support/data.hpp"

namespace stress_test {

namespace {

using squint::nn::precision;

std::vector<squint::nn::float_layer> layers() {
  const std::size_t sizes[] = {96, 130, 64, 10};
  std::vector<squint::nn::float_layer> out;
  for (std::size_t l = 0; l + 1 < std::size(sizes); ++l) {
    squint::nn::float_layer f;
    f.in = sizes[l];
    f.out = sizes[l + 1];
    f.weights = squint_test::normal(f.out * f.in, 0.0f, 0.1f, 10 + static_cast<unsigned>(l));
    f.bias = squint_test::normal(f.out, 0.0f, 0.05f, 20 + static_cast<unsigned>(l));
    f.act = l + 2 < std::size(sizes) ? squint::nn::activation::relu : squint::nn::activation::none;
    out.push_back(std::move(f));
  }
  return out;
}

TEST(StressTest, ModelsSharedByEightThreadsGiveSingleThreadedResults) {
  constexpr std::size_t threads = 8, rounds = 12;
  const std::size_t batches[] = {1, 3, 17, 40};
  const auto x = squint_test::normal(40 * 96, 0.2f, 1.0f, 3);

  std::vector<squint::nn::sequential> models;
  for (precision p : {precision::fp32, precision::fp16, precision::int8_weight_only, precision::int8_dynamic,
                      precision::int8_static, precision::fp8_weight_only, precision::int4_weight_only,
                      precision::int4_dynamic}) {
    squint::nn::build_options options;
    options.mode = p;
    options.per_row = p == precision::int8_dynamic;
    options.kernels = squint::runtime::backend();
    models.emplace_back(layers(), options);
    if (p == precision::int8_static) {
      models.back().calibrate(x.data(), 40, 8);
      models.back().freeze();
    }
  }
  // Expected outputs: one thread, no pool.
  std::vector<std::vector<std::vector<float>>> expect(models.size());
  for (std::size_t mi = 0; mi < models.size(); ++mi)
    for (std::size_t b : batches) {
      std::vector<float> y(b * 10);
      models[mi].forward(x.data(), b, y.data());
      expect[mi].push_back(std::move(y));
    }

  std::atomic<std::size_t> mismatches{0}, runs{0};
  std::vector<std::thread> workers;
  for (std::size_t t = 0; t < threads; ++t)
    workers.emplace_back([&, t] {
      for (std::size_t r = 0; r < rounds; ++r)
        for (std::size_t mi = 0; mi < models.size(); ++mi) {
          const std::size_t bi = (t + r + mi) % std::size(batches), b = batches[bi];
          // Some calls ask for the pool (busy callers get threads of their own), some run alone.
          const squint::parallelism par{(t + r) % 3 == 0 ? 2u : 1u};
          std::vector<float> y(b * 10);
          models[mi].forward(x.data(), b, y.data(), par);
          if (std::memcmp(y.data(), expect[mi][bi].data(), y.size() * sizeof(float)) != 0) ++mismatches;
          ++runs;
        }
    });
  for (std::thread& w : workers) w.join();
  EXPECT_EQ(runs.load(), threads * rounds * models.size());
  EXPECT_EQ(mismatches.load(), 0u);
}

}  // namespace

}  // namespace stress_test

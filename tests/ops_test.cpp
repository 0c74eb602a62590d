// SPDX-License-Identifier: Apache-2.0
// ops_test.cpp: the full-integer pipeline's ops (pooling, residual add, concat) against their
// definitions written out as plain loops over explicit windows.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "squint/ops/eltwise.hpp"
#include "squint/ops/pool.hpp"
#include "support/data.hpp"

namespace ops_test {

namespace {

using squint::image_shape;
using squint::pool2d_params;
using squint::qparams;

pool2d_params pool(std::size_t k, std::size_t stride, std::size_t pad, bool include_pad = false) {
  pool2d_params p;
  p.kernel_h = p.kernel_w = k;
  p.window.stride_h = p.window.stride_w = stride;
  p.window.pad_top = p.window.pad_left = p.window.pad_bottom = p.window.pad_right = pad;
  p.count_include_pad = include_pad;
  return p;
}

/// Visits the in-image taps of output pixel (n, oy, ox)'s window: visit(input pixel index).
template <class F>
void window(const image_shape& in, const pool2d_params& p, std::size_t n, std::size_t oy, std::size_t ox, F visit) {
  for (std::size_t ky = 0; ky < p.kernel_h; ++ky)
    for (std::size_t kx = 0; kx < p.kernel_w; ++kx) {
      const long iy = static_cast<long>(oy * p.window.stride_h + ky) - static_cast<long>(p.window.pad_top);
      const long ix = static_cast<long>(ox * p.window.stride_w + kx) - static_cast<long>(p.window.pad_left);
      if (iy >= 0 && ix >= 0 && iy < static_cast<long>(in.height) && ix < static_cast<long>(in.width))
        visit((n * in.height + static_cast<std::size_t>(iy)) * in.width + static_cast<std::size_t>(ix));
    }
}

std::size_t out_size(std::size_t in, std::size_t k, std::size_t stride, std::size_t pad) {
  return (in + 2 * pad - k) / stride + 1;
}

template <class T>
void check_pools(const image_shape& in, const pool2d_params& p, qparams xp, qparams yp) {
  const auto x = squint_test::uniform_ints<T>(in.size(), std::numeric_limits<T>::min(), std::numeric_limits<T>::max(),
                                              static_cast<unsigned>(in.size()));
  const std::size_t oh = out_size(in.height, p.kernel_h, p.window.stride_h, p.window.pad_top);
  const std::size_t ow = out_size(in.width, p.kernel_w, p.window.stride_w, p.window.pad_left);
  std::vector<T> mx(in.batch * oh * ow * in.channels), avg(mx.size());
  squint::max_pool2d(x.data(), in, p, mx.data());
  squint::avg_pool2d(x.data(), in, xp, p, yp, avg.data());
  for (std::size_t n = 0; n < in.batch; ++n)
    for (std::size_t oy = 0; oy < oh; ++oy)
      for (std::size_t ox = 0; ox < ow; ++ox)
        for (std::size_t c = 0; c < in.channels; ++c) {
          int best = std::numeric_limits<T>::min();
          std::int64_t sum = 0, count = 0;
          window(in, p, n, oy, ox, [&](std::size_t pixel) {
            best = std::max<int>(best, x[pixel * in.channels + c]);
            sum += x[pixel * in.channels + c] - xp.zero_point;
            ++count;
          });
          if (p.count_include_pad) count = static_cast<std::int64_t>(p.kernel_h * p.kernel_w);
          const float multiplier = xp.scale / yp.scale / static_cast<float>(std::max<std::int64_t>(count, 1));
          const double q = std::nearbyint(static_cast<float>(sum) * multiplier) + yp.zero_point;
          const auto expect_avg = static_cast<T>(std::clamp<double>(q, std::numeric_limits<T>::min(), std::numeric_limits<T>::max()));
          const std::size_t i = ((n * oh + oy) * ow + ox) * in.channels + c;
          ASSERT_EQ(mx[i], best) << "max at " << n << "," << oy << "," << ox << "," << c;
          ASSERT_EQ(avg[i], expect_avg) << "avg at " << n << "," << oy << "," << ox << "," << c;
        }
}

TEST(OpsTest, PoolsMatchTheirDefinitions) {
  for (std::size_t c : {1u, 3u, 16u, 33u}) {
    check_pools<std::uint8_t>({2, 7, 6, c}, pool(2, 2, 0), {0.1f, 3}, {0.07f, 10});
    check_pools<std::uint8_t>({1, 9, 9, c}, pool(3, 2, 1), {0.02f, 128}, {0.02f, 128});
    check_pools<std::int8_t>({1, 8, 5, c}, pool(3, 1, 1, true), {0.05f, -3}, {0.04f, 7});
    check_pools<std::int8_t>({1, 5, 5, c}, pool(5, 1, 2), {0.5f, 0}, {0.3f, -128});
    check_pools<std::int8_t>({2, 8, 7, c}, pool(3, 1, 0), {0.05f, -3}, {0.04f, 7});  // unpadded, overlapping
  }
}

/// Float max pooling (the unpadded path's blocks of 16 channels and their tail) keeps
/// std::max's order: a NaN already in the running maximum stays, a later one is skipped.
TEST(OpsTest, FloatMaxPoolFoldsLikeStdMax) {
  for (std::size_t c : {1u, 16u, 21u}) {
    const image_shape in{1, 4, 4, c};
    std::vector<float> x = squint_test::normal(in.size(), 0.0f, 1.0f, static_cast<unsigned>(c));
    x[0] = std::nanf("");                              // window 0's first tap, channel 0
    x[(1 * 4 + 3) * c + c - 1] = std::nanf("");         // window 1's last tap, last channel
    x[(2 * 4 + 0) * c] = HUGE_VALF;
    std::vector<float> y(4 * c);
    squint::max_pool2d(x.data(), in, pool(2, 2, 0), y.data());
    for (std::size_t oy = 0; oy < 2; ++oy)
      for (std::size_t ox = 0; ox < 2; ++ox)
        for (std::size_t j = 0; j < c; ++j) {
          float best = x[((2 * oy) * 4 + 2 * ox) * c + j];
          for (std::size_t t = 1; t < 4; ++t) best = std::max(best, x[((2 * oy + t / 2) * 4 + 2 * ox + t % 2) * c + j]);
          const float got = y[(oy * 2 + ox) * c + j];
          EXPECT_TRUE(got == best || (std::isnan(got) && std::isnan(best))) << oy << "," << ox << "," << j;
        }
  }
}

TEST(OpsTest, GlobalAveragePoolRoundsOnce) {
  const image_shape in{3, 7, 7, 10};
  const auto x = squint_test::uniform_ints<std::uint8_t>(in.size(), 0, 255, 3);
  const qparams xp{0.03f, 17}, yp{0.011f, 2};
  std::vector<std::uint8_t> y(in.batch * in.channels);
  squint::global_avg_pool(x.data(), in, xp, yp, y.data());
  for (std::size_t n = 0; n < in.batch; ++n)
    for (std::size_t c = 0; c < in.channels; ++c) {
      std::int64_t sum = 0;
      for (std::size_t i = 0; i < 49; ++i) sum += x[(n * 49 + i) * in.channels + c] - xp.zero_point;
      const double q = std::nearbyint(static_cast<float>(sum) * (xp.scale / yp.scale / 49.0f)) + yp.zero_point;
      ASSERT_EQ(y[n * in.channels + c], static_cast<std::uint8_t>(std::clamp(q, 0.0, 255.0))) << n << "," << c;
    }
}

/// Ordinary ratios (the vectorized loop), halves everywhere (ties to even), and a ratio of 10^5
/// (the loop that rounds each sum on its own); int8 and in place on uint8.
TEST(OpsTest, AddRequantizesBothSidesIntoTheOutput) {
  struct setting {
    qparams a, b, y;
  };
  const setting settings[] = {{{0.1f, -5}, {0.025f, 9}, {0.12f, -20}},
                              {{0.5f, 0}, {0.25f, 1}, {1.0f, 3}},
                              {{1000.0f, 3}, {0.001f, 0}, {0.01f, -7}}};
  for (const setting& st : settings)
    for (std::size_t n : {0u, 1u, 15u, 16u, 17u, 100u}) {
      const auto a = squint_test::uniform_ints<std::int8_t>(n, -128, 127, 5);
      const auto b = squint_test::uniform_ints<std::int8_t>(n, -128, 127, 6);
      for (bool relu : {false, true}) {
        std::vector<std::int8_t> y(n);
        squint::add(a.data(), st.a, b.data(), st.b, st.y, relu, y.data(), n);
        std::vector<std::uint8_t> u(a.begin(), a.end());  // the same bits as uint8, in place
        const qparams ua{st.a.scale, st.a.zero_point + 128}, ub{st.b.scale, st.b.zero_point + 128};
        std::vector<std::uint8_t> ubits(b.begin(), b.end());
        for (auto& v : u) v ^= 0x80;
        for (auto& v : ubits) v ^= 0x80;
        squint::add(u.data(), ua, ubits.data(), ub, {st.y.scale, st.y.zero_point + 128}, relu, u.data(), n);
        for (std::size_t i = 0; i < n; ++i) {
          const float v = static_cast<float>(a[i] - st.a.zero_point) * (st.a.scale / st.y.scale) +
                          static_cast<float>(b[i] - st.b.zero_point) * (st.b.scale / st.y.scale);
          const double lo = relu ? st.y.zero_point : -128.0;
          const double q = std::clamp<double>(std::nearbyint(v) + st.y.zero_point, lo, 127.0);
          ASSERT_EQ(y[i], static_cast<std::int8_t>(q)) << i;
          ASSERT_EQ(u[i], static_cast<std::uint8_t>(q + 128)) << i;
        }
      }
    }
}

TEST(OpsTest, ConcatRequantizesOrCopiesEachInput) {
  const std::size_t pixels = 13;
  const auto a = squint_test::uniform_ints<std::uint8_t>(pixels * 3, 0, 255, 7);
  const auto b = squint_test::uniform_ints<std::uint8_t>(pixels * 5, 0, 255, 8);
  const qparams yp{0.05f, 100};
  std::vector<std::uint8_t> y(pixels * 8);
  squint::concat_channels<std::uint8_t>({{a.data(), 3, {0.2f, 30}}, {b.data(), 5, yp}}, pixels, yp, y.data());
  for (std::size_t p = 0; p < pixels; ++p) {
    for (std::size_t c = 0; c < 3; ++c) {
      const double q = std::nearbyint(static_cast<float>(a[p * 3 + c] - 30) * (0.2f / 0.05f)) + 100;
      ASSERT_EQ(y[p * 8 + c], static_cast<std::uint8_t>(std::clamp(q, 0.0, 255.0)));
    }
    for (std::size_t c = 0; c < 5; ++c) ASSERT_EQ(y[p * 8 + 3 + c], b[p * 5 + c]);
  }
}

TEST(OpsTest, BadArgumentsThrowAndWriteNothing) {
  const std::vector<std::uint8_t> x(2 * 4 * 4 * 3, 9);
  std::vector<std::uint8_t> y(64, 77);
  const std::vector<std::uint8_t> untouched = y;
  EXPECT_THROW(squint::max_pool2d(x.data(), {2, 1, 4, 3}, pool(2, 2, 0), y.data()), squint::error);
  EXPECT_THROW(squint::max_pool2d(x.data(), {2, 4, 4, 3}, pool(2, 0, 0), y.data()), squint::error);
  EXPECT_THROW(squint::avg_pool2d(x.data(), {2, 4, 4, 3}, {0.0f, 0}, pool(2, 2, 0), {1.0f, 0}, y.data()), squint::error);
  EXPECT_THROW(squint::global_avg_pool(x.data(), {2, 4, 4, 3}, {1.0f, 0}, {1.0f, 300}, y.data()), squint::error);
  EXPECT_THROW(squint::global_avg_pool(x.data(), {2, 0, 4, 3}, {1.0f, 0}, {1.0f, 0}, y.data()), squint::error);
  EXPECT_THROW(squint::add<std::uint8_t>(nullptr, {1.0f, 0}, x.data(), {1.0f, 0}, {1.0f, 0}, false, y.data(), 4),
               squint::error);
  EXPECT_THROW(squint::concat_channels<std::uint8_t>({{x.data(), 3, {1.0f, 0}}}, 4, {-1.0f, 0}, y.data()),
               squint::error);
  EXPECT_EQ(y, untouched);
}

}  // namespace

}  // namespace ops_test

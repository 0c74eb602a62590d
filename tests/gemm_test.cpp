// SPDX-License-Identifier: Apache-2.0
// gemm_test.cpp: packed weights and the INT8 GEMM on every arch with micro-kernels of its own,
// bit for bit against the int64 reference GEMM.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <limits>
#include <vector>

#include "squint/gemm/gemm.hpp"
#include "squint/reference/gemm.hpp"
#include "support/archs.hpp"
#include "support/data.hpp"
#if defined(SQUINT_TEST_SIMDE)
#include "simde/x86_steps_emulated.hpp"
#endif

namespace gemm_test {

namespace {

using squint::matrix_view;
using squint::packed_weights;

template <class Arch>
class GemmTest : public squint_test::arch_test<Arch> {};
using gemm_archs = ::testing::Types<SQUINT_DISPATCH_GEMM_TYPES>;
TYPED_TEST_SUITE(GemmTest, gemm_archs, squint_test::arch_names);

template <class TA>
std::vector<std::int64_t> reference(const std::vector<TA>& a, std::size_t m, std::size_t k, std::int32_t za,
                                    const std::vector<std::int8_t>& b, std::size_t n, const std::vector<std::int32_t>& zb) {
  std::vector<std::int64_t> c(m * n);
  squint::reference::gemm(matrix_view<const TA>::row_major(a.data(), m, k), za,
                          matrix_view<const std::int8_t>::row_major(b.data(), n, k), zb.data(), zb.size(),
                          matrix_view<std::int64_t>::row_major(c.data(), m, n));
  return c;
}

template <class Arch, class TA>
void check(std::size_t m, std::size_t n, std::size_t k, std::int32_t za, const std::vector<std::int32_t>& zb,
           const std::vector<TA>& a, const std::vector<std::int8_t>& b) {
  const auto packed = packed_weights::from_int8(b.data(), n, k, k, std::vector<float>(1, 0.5f), zb);
  const std::size_t ldc = n + 3;
  std::vector<std::int32_t> c(m * ldc, 0x5a5a5a5a);
  squint::detail::gemm_s32<Arch>(a.data(), m, k, za, packed, c.data(), ldc);
  const auto expect = reference(a, m, k, za, b, n, zb);
  for (std::size_t i = 0; i < m; ++i) {
    for (std::size_t j = 0; j < n; ++j)
      ASSERT_EQ(c[i * ldc + j], expect[i * n + j]) << m << "x" << n << "x" << k << " at " << i << "," << j;
    for (std::size_t j = n; j < ldc; ++j) ASSERT_EQ(c[i * ldc + j], 0x5a5a5a5a) << "wrote past n";
  }
}

TYPED_TEST(GemmTest, MatchesReferenceOnAwkwardShapes) {
  for (std::size_t m : {1u, 2u, 3u, 7u, 16u, 33u})
    for (std::size_t n : {1u, 15u, 16u, 17u, 40u, 64u, 70u, 130u})
      for (std::size_t k : {1u, 3u, 4u, 5u, 11u, 28u, 63u, 64u, 65u, 257u}) {
        const auto a8 = squint_test::uniform_ints<std::uint8_t>(m * k, 0, 255, static_cast<unsigned>(m * k));
        const auto s8 = squint_test::uniform_ints<std::int8_t>(m * k, -128, 127, static_cast<unsigned>(m + k));
        const auto narrow = squint_test::uniform_ints<std::int8_t>(n * k, -127, 127, static_cast<unsigned>(n * k));
        const auto full = squint_test::uniform_ints<std::int8_t>(n * k, -128, 127, static_cast<unsigned>(n + k));
        std::vector<std::int32_t> zb(n);
        for (std::size_t j = 0; j < n; ++j) zb[j] = static_cast<std::int32_t>(j * 37 % 256) - 128;
        check<TypeParam>(m, n, k, 0, {0}, a8, narrow);
        check<TypeParam>(m, n, k, 131, {0}, a8, narrow);
        check<TypeParam>(m, n, k, -7, zb, s8, full);
        check<TypeParam>(m, n, k, 255, zb, a8, full);
      }
}

TYPED_TEST(GemmTest, ExtremeCodesAndTheDepthBound) {
  // all-255 x all-(-128): the pair sum that vpmaddubsw would saturate.
  for (std::size_t k : {64u, 1001u}) {
    check<TypeParam>(3, 17, k, 0, {0}, std::vector<std::uint8_t>(3 * k, 255), std::vector<std::int8_t>(17 * k, -128));
    check<TypeParam>(3, 17, k, 0, {0}, std::vector<std::uint8_t>(3 * k, 255), std::vector<std::int8_t>(17 * k, -127));
    check<TypeParam>(2, 5, k, -128, {127}, std::vector<std::int8_t>(2 * k, 127), std::vector<std::int8_t>(5 * k, -128));
  }
  // The largest exact depth, with the largest products: 255 * (-128 - 127) at every k.
  const std::size_t k = squint::gemm_max_k;
  check<TypeParam>(1, 2, k, 0, {127}, std::vector<std::uint8_t>(k, 255), std::vector<std::int8_t>(2 * k, -128));
  check<TypeParam>(1, 2, k, 255, {-128}, std::vector<std::uint8_t>(k, 0), std::vector<std::int8_t>(2 * k, 127));
}

// Codes in [0, 127] take the 7-bit kernel where the arch has one (AVX2, AVX-512BW: plain
// vpmaddubsw, exact for any weight, -128 included); a row block holding a code of 128 or more
// keeps the full-range kernel.
TYPED_TEST(GemmTest, SevenBitActivationsMatchTheReference) {
  for (std::size_t m : {1u, 2u, 5u, 33u})
    for (std::size_t n : {1u, 17u, 64u, 70u})
      for (std::size_t k : {1u, 5u, 11u, 64u, 65u, 257u}) {
        const auto a7 = squint_test::uniform_ints<std::uint8_t>(m * k, 0, 127, static_cast<unsigned>(m * k + 1));
        const auto s7 = squint_test::uniform_ints<std::int8_t>(m * k, 0, 127, static_cast<unsigned>(m + k + 1));
        const auto full = squint_test::uniform_ints<std::int8_t>(n * k, -128, 127, static_cast<unsigned>(n + k));
        std::vector<std::int32_t> zb(n);
        for (std::size_t j = 0; j < n; ++j) zb[j] = static_cast<std::int32_t>(j * 37 % 256) - 128;
        check<TypeParam>(m, n, k, 0, {0}, a7, full);
        check<TypeParam>(m, n, k, 64, zb, a7, full);
        check<TypeParam>(m, n, k, -128, zb, s7, full);
        auto mixed = a7;
        mixed[m * k / 2] = 128;  // one code outside 7 bits: the full-range kernel for that block
        check<TypeParam>(m, n, k, 3, zb, mixed, full);
      }
  // The extremes: 127 x -128 at every k, up to the depth bound.
  for (std::size_t k : {std::size_t{64}, std::size_t{1001}, static_cast<std::size_t>(squint::gemm_max_k)})
    check<TypeParam>(2, 33, k, 0, {127}, std::vector<std::uint8_t>(2 * k, 127), std::vector<std::int8_t>(33 * k, -128));
  // A staged product whose blocks of rows differ: some 7-bit, some not; the same floats as the
  // scalar kernel's.
  const std::size_t m = 700, n = 40, k = 67;
  auto a = squint_test::uniform_ints<std::uint8_t>(m * k, 0, 127, 5);
  for (std::size_t i = 0; i < m; i += 97) a[i * k + i % k] = static_cast<std::uint8_t>(128 + i % 128);
  const auto w = squint_test::uniform_ints<std::int8_t>(n * k, -128, 127, 6);
  const auto b = packed_weights::from_int8(w.data(), n, k, k, std::vector<float>(n, 0.003f), {0});
  std::vector<float> got(m * n), expect(m * n), bias(n, 0.25f);
  auto s32 = [](auto arch) {
    return [](const std::uint8_t* x, std::size_t rows, std::size_t lda, std::int32_t zp, const packed_weights& p,
              std::int32_t* c, std::size_t ldc, const squint::parallelism& par,
              const squint::detail::output_stage* st) {
      squint::detail::gemm_s32<decltype(arch)>(x, rows, lda, zp, p, c, ldc, par, st);
    };
  };
  squint::detail::gemm_to_float(s32(TypeParam{}), a.data(), m, k, {0.02f, 9}, b, bias.data(), false, got.data(), n, {});
  squint::detail::gemm_to_float(s32(squint::arch::scalar{}), a.data(), m, k, {0.02f, 9}, b, bias.data(), false,
                                expect.data(), n, {});
  EXPECT_EQ(got, expect);
}

TYPED_TEST(GemmTest, Uint8WeightsMatchTheReference) {
  // from_uint8 shifts codes and zero points by -128: every difference, so every result, stays.
  for (std::int32_t zb : {0, 128, 255})
    for (std::size_t k : {1u, 7u, 300u}) {
      const std::size_t m = 5, n = 37;
      const auto a = squint_test::uniform_ints<std::uint8_t>(m * k, 0, 255, 31);
      auto w = squint_test::uniform_ints<std::uint8_t>(n * k, 0, 255, 32);
      w[0] = 0, w[1 % w.size()] = 255;
      const auto b = packed_weights::from_uint8(w.data(), n, k, k, {0.5f}, {zb});
      std::vector<std::int32_t> c(m * n);
      squint::detail::gemm_s32<TypeParam>(a.data(), m, k, 77, b, c.data(), n);
      std::vector<std::int64_t> expect(m * n);
      const std::vector<std::int32_t> zbs(1, zb);
      squint::reference::gemm(matrix_view<const std::uint8_t>::row_major(a.data(), m, k), 77,
                              matrix_view<const std::uint8_t>::row_major(w.data(), n, k), zbs.data(), 1,
                              matrix_view<std::int64_t>::row_major(expect.data(), m, n));
      for (std::size_t i = 0; i < m * n; ++i) ASSERT_EQ(c[i], expect[i]) << "zb " << zb << ", k " << k << " at " << i;
    }
}

/// The bits of floats (NaN compares unequal to itself).
std::vector<std::uint32_t> bits_of(const std::vector<float>& x) {
  std::vector<std::uint32_t> out(x.size());
  std::memcpy(out.data(), x.data(), x.size() * sizeof(float));
  return out;
}

/// A float stage's inputs for m rows and n channels: awkward scales (one product underflows to
/// zero, so negative sums give -0), a bias holding NaN and infinities, per-row zero points.
struct float_stage_case {
  std::vector<float> a_scales, b_scales, bias;
  std::vector<std::int32_t> row_zero_points;
  float_stage_case(std::size_t m, std::size_t n) : a_scales(m), b_scales(n), bias(n), row_zero_points(m) {
    for (std::size_t i = 0; i < m; ++i) {
      a_scales[i] = 0.003f * static_cast<float>(i % 5 + 1);
      row_zero_points[i] = static_cast<std::int32_t>(i * 37 % 256);
    }
    for (std::size_t j = 0; j < n; ++j) {
      b_scales[j] = j % 13 == 3 ? 1e-40f : 0.0007f * static_cast<float>(j % 11 + 1);
      bias[j] = 0.25f * static_cast<float>(j % 9) - 1.0f;
    }
    const float special[] = {std::numeric_limits<float>::quiet_NaN(), HUGE_VALF, -HUGE_VALF};
    for (std::size_t j = 5; j < n; j += 29) bias[j] = special[j % 3];
  }
};

// The float stage applied by the kernels to their registers equals the staged tiles' stage, bit
// for bit, for every combination the nn layers use (per-tensor or per-row scales and zero points,
// bias or none, ReLU, ReLU6), 7-bit blocks and full-range ones, in several tasks.
TYPED_TEST(GemmTest, FloatStageInRegistersMatchesTheStagedOne) {
  for (auto [m, n, k] : {std::tuple<std::size_t, std::size_t, std::size_t>{1, 1, 1}, {3, 17, 5}, {9, 70, 64},
                         {13, 40, 131}, {300, 33, 19}, {2, 129, 1000}})
    for (bool seven_bits : {false, true})
      for (int variant = 0; variant < 4; ++variant) {
        const auto a = squint_test::uniform_ints<std::uint8_t>(m * k, 0, seven_bits ? 127 : 255, static_cast<unsigned>(m + k));
        const auto w = squint_test::uniform_ints<std::int8_t>(n * k, -128, 127, static_cast<unsigned>(n * k));
        float_stage_case f(m, n);
        const auto b = packed_weights::from_int8(w.data(), n, k, k, f.b_scales, {0});
        const bool per_row = variant % 2 == 1;
        squint::detail::float_output o{f.a_scales.data(), per_row, f.b_scales.data(), variant == 2 ? nullptr : f.bias.data(),
                                       variant >= 2, nullptr, n + 1};
        if (per_row) o.row_zero_points = f.row_zero_points.data(), o.column_sums = b.column_sums();
        if (variant == 3) o.cap = 6.0f;
        std::vector<float> staged((m - 1) * (n + 1) + n, 7.0f), fused = staged;
        const squint::detail::output_stage tiles{&squint::detail::float_output::finish, &o};
        const squint::detail::output_stage registers{&squint::detail::float_output::finish, &o, nullptr, &o};
        const std::int32_t zero_point = per_row ? 0 : 131;
        o.c = staged.data();
        squint::detail::gemm_s32<TypeParam>(a.data(), m, k, zero_point, b, nullptr, 0, {}, &tiles);
        o.c = fused.data();
        squint::detail::gemm_s32<TypeParam>(a.data(), m, k, zero_point, b, nullptr, 0, squint::parallelism{3}, &registers);
        ASSERT_EQ(bits_of(fused), bits_of(staged))
            << m << "x" << n << "x" << k << " variant " << variant << (seven_bits ? " 7-bit" : "");
      }
}

TYPED_TEST(GemmTest, ThreadsAndCustomRunnersGiveIdenticalResults) {
  for (auto [m, n] : {std::pair<std::size_t, std::size_t>{3, 2000}, {4000, 17}, {1, 33}, {650, 64}}) {
    const std::size_t k = 777;
    const auto a = squint_test::uniform_ints<std::uint8_t>(m * k, 0, 255, 3);
    const auto w = squint_test::uniform_ints<std::int8_t>(n * k, -127, 127, 4);
    std::vector<std::int32_t> zb(n);
    for (std::size_t j = 0; j < n; ++j) zb[j] = static_cast<std::int32_t>(j % 5) - 2;
    const auto b = packed_weights::from_int8(w.data(), n, k, k, {1.0f}, zb);
    std::vector<std::int32_t> one(m * n), many(m * n), custom(m * n);
    squint::detail::gemm_s32<TypeParam>(a.data(), m, k, 9, b, one.data(), n);
    squint::detail::gemm_s32<TypeParam>(a.data(), m, k, 9, b, many.data(), n, squint::parallelism{3});
    std::size_t calls = 0;
    squint::parallelism reversed{4, [&](std::size_t count, const std::function<void(std::size_t)>& task) {
                                   for (std::size_t t = count; t-- > 0;) task(t), ++calls;
                                 }};
    squint::detail::gemm_s32<TypeParam>(a.data(), m, k, 9, b, custom.data(), n, reversed);
    EXPECT_EQ(many, one) << m << "x" << n;
    EXPECT_EQ(custom, one) << m << "x" << n;
    // One task per thread, but never more tasks than kernel blocks (32 or 64 channels) or rows to
    // share out, nor one per less than 2^21 multiply-adds (1 x 33 x 777 runs on the calling thread).
    const std::size_t width = squint::kernels::gemm_kernel_width<TypeParam>();
    const std::size_t expect = std::min<std::size_t>(
        {4, std::max<std::size_t>((n + width - 1) / width, m), std::max<std::size_t>(1, m * n * k >> 21)});
    EXPECT_EQ(calls, expect > 1 ? expect : 0u);
  }
}

#if defined(SQUINT_TEST_SIMDE)
// The x86 steps built on SIMDe (tests/simde): the AVX-512 kernels on CPUs without AVX-512, and
// the AVX-VNNI kernel, which no CPU that runs this suite may have.
TEST(GemmEmulatedTest, EveryX86StepMatchesTheScalarKernel) {
  if (!squint::is_available<squint::arch::avx2>()) GTEST_SKIP() << "the emulation is built for AVX2";
  using squint_test::emulated::step;
  for (step s : {step::avx512_vnni, step::avx512bw, step::avx2_vnni, step::avx2, step::avx512bw_u7, step::avx2_u7})
    for (std::size_t m : {1u, 5u, 9u, 13u})
      for (std::size_t n : {1u, 16u, 17u, 40u, 70u})
        for (std::size_t k : {1u, 5u, 64u, 131u})
          for (bool a_signed : {false, true}) {
            const bool seven_bits = s == step::avx512bw_u7 || s == step::avx2_u7;
            const auto a = squint_test::uniform_ints<std::uint8_t>(m * k, 0, seven_bits ? 127 : 255,
                                                                   static_cast<unsigned>(m * k + n));
            const bool narrow = s == step::avx512bw || s == step::avx2;
            const auto w = squint_test::uniform_ints<std::int8_t>(n * k, narrow ? -127 : -128, 127, static_cast<unsigned>(n + k));
            const auto b = packed_weights::from_int8(w.data(), n, k, k, {1.0f}, {0});
            const std::size_t ldc = n + 1;
            // Column offsets (the folded zero-point terms) on every other shape, none on the rest.
            const auto offsets = squint_test::uniform_ints<std::int32_t>(b.panels() * 16, -1000000, 1000000, 9);
            const std::int32_t* offset = (m + k) % 2 ? offsets.data() : nullptr;
            std::vector<std::int32_t> expect(m * ldc, 7), got(m * ldc, 7);
            squint::kernels::gemm_kernel_params p{a.data(), m,      k, k, a_signed, b.panel(0), b.column_sums(), offset,
                                                  n,        b.k_groups(), expect.data(), ldc};
            squint::kernels::gemm_kernel<squint::arch::scalar>::run(p);
            p.c = got.data();
            squint_test::emulated::gemm_kernel(s, p);
            const std::string where = "step " + std::to_string(static_cast<int>(s)) + ", " + std::to_string(m) + "x" +
                                      std::to_string(n) + "x" + std::to_string(k) + (a_signed ? " s8" : " u8");
            ASSERT_EQ(got, expect) << where;
            // uint8 codes in registers (a requantized stage): the scalar requantize row over the
            // int32 results; ReLU (lo = zero point) and a cap on some shapes.
            {
              std::vector<float> multiplier(n);
              for (std::size_t j = 0; j < n; ++j)
                multiplier[j] = (0.4f + 0.3f * static_cast<float>(j % 5)) / (40.0f * std::sqrt(static_cast<float>(k)));
              const std::int32_t zero_point = 100, lo = n % 2 ? zero_point : 0, hi = k % 2 ? 255 : 180;
              std::vector<std::uint8_t> expect_q(m * ldc, 7), got_q(m * ldc, 7);
              for (std::size_t i = 0; i < m; ++i)
                squint::kernels::requantize_kernel<squint::arch::scalar, std::uint8_t>::row(
                    expect.data() + i * ldc, expect_q.data() + i * ldc, n, multiplier.data(), zero_point, lo, hi);
              static constexpr float one = 1.0f;
              squint::kernels::gemm_float_epilogue codes{&one, false, multiplier.data(), nullptr, nullptr, nullptr,
                                                         false, 0.0f, nullptr, ldc};
              codes.codes = got_q.data();
              codes.zero_point = zero_point;
              codes.code_lo = lo;
              codes.code_hi = hi;
              p.to_float = &codes;
              squint_test::emulated::gemm_kernel(s, p);
              p.to_float = nullptr;
              ASSERT_EQ(got_q, expect_q) << where << " to codes";
            }
            // The float stage in registers: the scalar float stage over the int32 results.
            float_stage_case f(m, n);
            const bool per_row = (m + n) % 2 == 1;
            const squint::kernels::gemm_float_epilogue e{f.a_scales.data(), per_row, f.b_scales.data(),
                                                         k % 2 ? f.bias.data() : nullptr,
                                                         per_row ? f.row_zero_points.data() : nullptr,
                                                         b.column_sums(), n % 3 != 0, n % 2 ? 6.0f : HUGE_VALF,
                                                         nullptr, ldc};
            std::vector<float> expect_y(m * ldc, 7.0f), got_y(m * ldc, 7.0f), multiplier(n);
            for (std::size_t i = 0; i < m; ++i) {
              for (std::size_t j = 0; j < n; ++j) {
                multiplier[j] = f.a_scales[per_row ? i : 0] * f.b_scales[j];
                if (per_row)
                  expect[i * ldc + j] = static_cast<std::int32_t>(static_cast<std::uint32_t>(expect[i * ldc + j]) -
                                                                  static_cast<std::uint32_t>(f.row_zero_points[i]) *
                                                                      static_cast<std::uint32_t>(b.column_sums()[j]));
              }
              squint::kernels::float_stage_kernel<squint::arch::scalar>::row(
                  expect.data() + i * ldc, expect_y.data() + i * ldc, n, multiplier.data(), e.bias, e.relu, e.cap);
            }
            auto fused = e;
            fused.c = got_y.data();
            p.to_float = &fused;
            squint_test::emulated::gemm_kernel(s, p);
            ASSERT_EQ(bits_of(got_y), bits_of(expect_y)) << where << " to float";
          }
}
#endif

// squint's thread pool serves one job at a time: concurrent callers and calls from inside a
// pool task fall back to threads of their own, and every result stays exact.
TEST(GemmApiTest, ThreadPoolServesConcurrentAndNestedCalls) {
  const std::size_t m = 64, n = 256, k = 300;
  const auto a = squint_test::uniform_ints<std::uint8_t>(m * k, 0, 255, 21);
  const auto w = squint_test::uniform_ints<std::int8_t>(n * k, -127, 127, 22);
  const auto b = packed_weights::from_int8(w.data(), n, k, k, {1.0f}, {0});
  std::vector<std::int32_t> expect(m * n);
  squint::gemm(a.data(), m, k, 7, b, expect.data(), n);
  std::vector<std::vector<std::int32_t>> got(6, std::vector<std::int32_t>(m * n));
  std::vector<std::thread> callers;
  for (std::size_t t = 0; t < 4; ++t)
    callers.emplace_back([&, t] {
      for (int repeat = 0; repeat < 20; ++repeat)
        squint::gemm(a.data(), m, k, 7, b, got[t].data(), n, squint::parallelism{2});
    });
  for (std::thread& c : callers) c.join();
  squint::detail::run_tasks(squint::parallelism{2}, 2, [&](std::size_t t) {
    squint::gemm(a.data(), m, k, 7, b, got[4 + t].data(), n, squint::parallelism{2});
  });
  for (std::size_t t = 0; t < got.size(); ++t) EXPECT_EQ(got[t], expect) << "caller " << t;
}

// The output stages run on each block as a task finishes it: shapes with several row and column
// blocks (more than 256 rows, more than 8192 / rows channels), threads, asymmetric weights, and
// the static and the dispatched GEMM must all give the formulas' values on every element.
TEST(GemmApiTest, OutputStagesFollowTheirFormulas) {
  struct shape {
    std::size_t m, n, k;
  };
  for (const shape& sh : {shape{5, 19, 37}, shape{300, 70, 33}, shape{1, 9000, 8}, shape{600, 40, 5}, shape{3, 1000, 100}})
    for (bool asymmetric : {false, true})
      for (unsigned threads : {1u, 3u})
        for (bool runtime : {false, true}) {
          const std::size_t m = sh.m, n = sh.n, k = sh.k;
          const auto a = squint_test::uniform_ints<std::uint8_t>(m * k, 0, 255, 1);
          const auto w = squint_test::uniform_ints<std::int8_t>(n * k, -127, 127, 2);
          std::vector<float> scales(n);
          std::vector<std::int32_t> zb(n, 0);
          for (std::size_t j = 0; j < n; ++j) {
            scales[j] = 0.001f * static_cast<float>(j % 7 + 1);
            if (asymmetric) zb[j] = static_cast<std::int32_t>(j % 9) - 4;
          }
          const auto b = packed_weights::from_int8(w.data(), n, k, k, scales, zb);
          const squint::qparams ap{0.02f, 120};
          const squint::parallelism par{threads};
          std::vector<std::int32_t> acc(m * n);
          squint::gemm(a.data(), m, k, ap.zero_point, b, acc.data(), n);
          std::vector<float> bias(n), out(m * n);
          for (std::size_t j = 0; j < n; ++j) bias[j] = 0.1f * static_cast<float>(j % 23) - 1.0f;
          if (runtime) squint::runtime::gemm(a.data(), m, k, ap, b, bias.data(), true, out.data(), n, par);
          else squint::gemm(a.data(), m, k, ap, b, bias.data(), true, out.data(), n, par);
          std::vector<std::uint8_t> q(m * n);
          std::vector<std::int8_t> qs(m * n);
          const squint::qparams cp{0.05f, 10};
          std::vector<std::int32_t> ibias(n);
          for (std::size_t j = 0; j < n; ++j) ibias[j] = static_cast<std::int32_t>(j % 11) * 50 - 250;
          if (runtime) {
            squint::runtime::gemm(a.data(), m, k, ap, b, ibias.data(), cp, true, q.data(), n, par);
            squint::runtime::gemm(a.data(), m, k, ap, b, ibias.data(), cp, false, qs.data(), n, par);
          } else {
            squint::gemm(a.data(), m, k, ap, b, ibias.data(), cp, true, q.data(), n, par);
            squint::gemm(a.data(), m, k, ap, b, ibias.data(), cp, false, qs.data(), n, par);
          }
          for (std::size_t i = 0; i < m; ++i)
            for (std::size_t j = 0; j < n; ++j) {
              const std::string where = std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k) +
                                        " at " + std::to_string(i) + "," + std::to_string(j);
              const volatile float product = static_cast<float>(acc[i * n + j]) * (ap.scale * b.scales()[j]);
              const float v = product + bias[j];  // two roundings, as the stage (no FMA)
              ASSERT_EQ(out[i * n + j], v > 0.0f ? v : 0.0f) << where;
              const float mult = ap.scale * b.scales()[j] / cp.scale;
              const std::int32_t u8 =
                  squint::reference::requantize_value(acc[i * n + j] + ibias[j], mult, 10, {0, 255});
              ASSERT_EQ(q[i * n + j], std::max(u8, 10)) << where;
              ASSERT_EQ(qs[i * n + j],
                        squint::reference::requantize_value(acc[i * n + j] + ibias[j], mult, 10, {-128, 127}))
                  << where;
            }
        }
}

TEST(GemmApiTest, RuntimeDispatchMatchesEveryForcedIsa) {
  const std::size_t m = 9, n = 45, k = 130;
  const auto a = squint_test::uniform_ints<std::int8_t>(m * k, -128, 127, 5);
  const auto w = squint_test::uniform_ints<std::int8_t>(n * k, -128, 127, 6);
  const auto b = packed_weights::from_int8(w.data(), n, k, k, {0.01f}, {3});
  std::vector<std::int32_t> expect(m * n), got(m * n);
  squint::detail::gemm_s32<squint::arch::scalar>(a.data(), m, k, -4, b, expect.data(), n);
  for (const std::string& isa : squint::runtime::compiled_isas()) {
    try {
      squint::runtime::force_isa(isa.c_str());
    } catch (const squint::error&) {
      continue;
    }
    squint::runtime::gemm(a.data(), m, k, -4, b, got.data(), n);
    EXPECT_EQ(got, expect) << isa;
  }
  squint::runtime::force_isa(nullptr);
}

TEST(GemmApiTest, PackingQuantizesPerChannelNarrow) {
  const std::size_t n = 3, k = 10;
  std::vector<float> w(n * k);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i % 7) - 3.0f + static_cast<float>(i / k);
  const auto b = packed_weights::from_float(w.data(), n, k, k);
  ASSERT_EQ(b.n(), n);
  EXPECT_TRUE(b.narrow());
  EXPECT_TRUE(b.symmetric());
  EXPECT_GT(b.bytes(), 48u);
  for (std::size_t j = 0; j < n; ++j) {
    float amax = 0.0f;
    for (std::size_t i = 0; i < k; ++i) amax = std::max(amax, std::fabs(w[j * k + i]));
    EXPECT_EQ(b.scales()[j], amax / 127.0f);
    for (std::size_t i = 0; i < k; ++i) {
      EXPECT_GE(b.at(j, i), -127);
      EXPECT_EQ(b.at(j, i), squint::reference::quantize_value(w[j * k + i], {b.scales()[j], 0}, {-127, 127}));
    }
  }
}

TEST(GemmApiTest, BadInputIsRejected) {
  const std::vector<std::int8_t> w(4 * 8, 1);
  const auto b = packed_weights::from_int8(w.data(), 4, 8, 8, {1.0f}, {0});
  const std::vector<std::uint8_t> a(2 * 8, 1);
  std::vector<std::int32_t> c(2 * 4, 7);
  EXPECT_THROW(squint::gemm(a.data(), 2, 7, 0, b, c.data(), 4), squint::error);          // lda < k
  EXPECT_THROW(squint::gemm(a.data(), 2, 8, 0, b, c.data(), 3), squint::error);          // ldc < n
  EXPECT_THROW(squint::gemm(a.data(), 2, 8, 256, b, c.data(), 4), squint::error);        // zero point
  EXPECT_THROW(squint::gemm<std::uint8_t>(nullptr, 2, 8, 0, b, c.data(), 4), squint::error);
  EXPECT_EQ(c, std::vector<std::int32_t>(8, 7));
  EXPECT_THROW(packed_weights::from_int8(w.data(), 4, 8, 8, {1.0f, 1.0f}, {0}), squint::error);
  EXPECT_THROW(packed_weights::from_int8(w.data(), 4, 8, 8, {0.0f}, {0}), squint::error);
  EXPECT_THROW(packed_weights::from_int8(w.data(), 4, 8, 8, {1.0f}, {128}), squint::error);
  EXPECT_THROW(packed_weights::from_int8(w.data(), 4, 8, 7, {1.0f}, {0}), squint::error);
  const std::vector<std::uint8_t> wu(4 * 8, 200);
  EXPECT_THROW(packed_weights::from_uint8(wu.data(), 4, 8, 8, {1.0f}, {256}), squint::error);
  EXPECT_THROW(packed_weights::from_uint8(wu.data(), 4, 8, 8, {1.0f}, {-1}), squint::error);
  EXPECT_THROW(packed_weights::from_uint8(wu.data(), 4, 8, 7, {1.0f}, {0}), squint::error);
  const std::size_t big = squint::gemm_max_k + 1;
  const std::vector<std::int8_t> deep(big, 1);
  const auto too_deep = packed_weights::from_int8(deep.data(), 1, big, big, {1.0f}, {0});
  const std::vector<std::uint8_t> row(big, 1);
  std::int32_t out = 0;
  try {
    squint::gemm(row.data(), 1, big, 0, too_deep, &out, 1);
    FAIL() << "k beyond the exact bound accepted";
  } catch (const squint::error& e) {
    EXPECT_NE(std::string(e.what()).find("33025"), std::string::npos) << e.what();
  }
}

}  // namespace

namespace {

/// A float-panel GEMM kernel (FP16 or FP32 weights) against a float64 reference on the weights as
/// packed, within the fp32 accumulation bound (k + 2) * 2^-24 * sum |a * b| plus a tiny absolute
/// term; with `fma_in_k_order` (the AVX2 and AVX-512 kernels) also to the bit against one fused
/// multiply-add per k in order, then the bias added once.
template <class Packed, class Run>
void check_panel_kernel(Run run, bool fma_in_k_order) {
  for (std::size_t m : {1u, 3u, 8u, 9u, 33u})
    for (std::size_t n : {1u, 16u, 17u, 40u, 64u, 70u, 130u})
      for (std::size_t k : {1u, 7u, 64u, 300u}) {
        const auto a = squint_test::normal(m * k, 0.0f, 1.0f, static_cast<unsigned>(m * k + 1));
        const auto w = squint_test::normal(n * k, 0.0f, 0.5f, static_cast<unsigned>(n * k + 2));
        std::vector<float> bias(n);
        for (std::size_t j = 0; j < n; ++j) bias[j] = 0.25f * static_cast<float>(j % 5) - 0.5f;
        const auto b = Packed::from_float(w.data(), n, k, k);
        const std::size_t ldc = n + 2;
        const bool relu = m % 2 == 1;
        std::vector<float> c(m * ldc, 12345.0f);
        run(a.data(), m, k, k, b.data(), n, bias.data(), relu, c.data(), ldc);
        for (std::size_t i = 0; i < m; ++i) {
          for (std::size_t j = 0; j < n; ++j) {
            double exact = bias[j], magnitude = std::fabs(bias[j]);
            float fused = 0.0f;
            for (std::size_t kk = 0; kk < k; ++kk) {
              exact += static_cast<double>(a[i * k + kk]) * b.at(j, kk);
              magnitude += std::fabs(static_cast<double>(a[i * k + kk]) * b.at(j, kk));
              fused = std::fma(a[i * k + kk], b.at(j, kk), fused);
            }
            if (relu) exact = exact > 0.0 ? exact : 0.0;
            const double tolerance = static_cast<double>(k + 2) * std::ldexp(1.0, -24) * magnitude + 1e-30;
            ASSERT_NEAR(c[i * ldc + j], exact, tolerance) << m << "x" << n << "x" << k << " at " << i << "," << j;
            if (fma_in_k_order) {
              const volatile float sum = fused + bias[j];
              ASSERT_EQ(c[i * ldc + j], relu && !(sum > 0.0f) ? 0.0f : sum) << m << "x" << n << "x" << k << " at " << i
                                                                          << "," << j;
            }
          }
          for (std::size_t j = n; j < ldc; ++j) ASSERT_EQ(c[i * ldc + j], 12345.0f) << "wrote past n";
        }
      }
}

template <class Arch>
constexpr bool fma_panel_kernel = std::is_same_v<Arch, squint::arch::avx2> || std::is_same_v<Arch, squint::arch::avx512bw>;

template <class Arch>
class HalfGemmTest : public squint_test::arch_test<Arch> {};
TYPED_TEST_SUITE(HalfGemmTest, squint_test::compiled_archs, squint_test::arch_names);

/// FP16 weights: the reference multiplies by the fp16-rounded values.
TYPED_TEST(HalfGemmTest, MatchesFloat64ReferenceWithinTheAccumulationBound) {
  check_panel_kernel<squint::packed_half_weights>(&squint::kernels::half_gemm_kernel<TypeParam>::run,
                                                  fma_panel_kernel<TypeParam>);
}

template <class Arch>
class FloatGemmTest : public squint_test::arch_test<Arch> {};
TYPED_TEST_SUITE(FloatGemmTest, squint_test::compiled_archs, squint_test::arch_names);

/// squint's FP32 GEMM: the float-panel kernels on float panels.
TYPED_TEST(FloatGemmTest, MatchesFloat64ReferenceWithinTheAccumulationBound) {
  check_panel_kernel<squint::packed_float_weights>(&squint::kernels::float_gemm_kernel<TypeParam>::run,
                                                   fma_panel_kernel<TypeParam>);
}

TEST(FloatGemmApiTest, PackingKeepsEveryWeightAndThreadsChangeNothing) {
  const std::size_t m = 37, n = 70, k = 45;
  const auto a = squint_test::normal(m * k, 0.0f, 1.0f, 3);
  const auto w = squint_test::normal(n * k, 0.0f, 1.0f, 4);
  const auto b = squint::packed_float_weights::from_float(w.data(), n, k, k);
  EXPECT_EQ(b.values(), w);
  EXPECT_EQ(b.bytes(), n * k * sizeof(float));
  std::vector<float> one(m * n), two(m * n);
  squint::gemm_float(a.data(), m, k, b, nullptr, false, one.data(), n);
  squint::gemm_float(a.data(), m, k, b, nullptr, false, two.data(), n, squint::parallelism{3});
  EXPECT_EQ(one, two);
  EXPECT_THROW(squint::gemm_float(a.data(), m, k - 1, b, nullptr, false, one.data(), n), squint::error);
  EXPECT_THROW(squint::gemm_float(nullptr, m, k, b, nullptr, false, one.data(), n), squint::error);
}

TEST(HalfGemmApiTest, PackingRoundsToHalfAndChecksArguments) {
  const std::vector<float> w{1.0f, 1.0009766f, 65504.0f, 1e6f};
  const auto b = squint::packed_half_weights::from_float(w.data(), 2, 2, 2);
  EXPECT_EQ(b.at(0, 1), 1.0009766f);
  EXPECT_EQ(b.at(1, 0), 65504.0f);
  EXPECT_TRUE(std::isinf(b.at(1, 1)));
  EXPECT_EQ(b.bytes(), 16u * 2u * sizeof(std::uint16_t));
  std::vector<float> a(4, 1.0f), c(4);
  EXPECT_THROW(squint::gemm_half(a.data(), 2, 1, b, nullptr, false, c.data(), 2), squint::error);
  EXPECT_THROW(squint::gemm_half(a.data(), 2, 2, b, nullptr, false, c.data(), 1), squint::error);
  EXPECT_THROW(squint::packed_half_weights::from_float(nullptr, 2, 2, 2), squint::error);
  squint::runtime::gemm_half(a.data(), 2, 2, b, nullptr, false, c.data(), 2);
  EXPECT_EQ(c[0], 2.0009766f);
}

}  // namespace

namespace {

template <class Arch>
class WeightOnlyGemmTest : public squint_test::arch_test<Arch> {};
TYPED_TEST_SUITE(WeightOnlyGemmTest, squint_test::compiled_archs, squint_test::arch_names);

/// A weight-only GEMM (codes with a scale per channel) against float64 on the decoded weights:
/// sum_k a * code is rounded in fp32 (bound (k + 2) 2^-24 sum |a code|), then scaled (one more
/// rounding). `pack(w, n, k)` packs float weights, `run(...)` is the kernel on them, `code(b, j,
/// kk)` the decoded code and `scale(b, j)` the channel scale they are checked with.
template <class Pack, class Run, class Code, class Scale>
void check_weight_only_kernel(Pack pack, Run run, Code code, Scale scale) {
  for (std::size_t m : {1u, 3u, 4u, 8u, 9u, 33u})
    for (std::size_t n : {1u, 15u, 16u, 17u, 40u, 64u, 70u, 130u})
      for (std::size_t k : {1u, 7u, 64u, 301u}) {
        const auto a = squint_test::normal(m * k, 0.0f, 1.0f, static_cast<unsigned>(m * k + 3));
        auto w = squint_test::normal(n * k, 0.0f, 0.5f, static_cast<unsigned>(n * k + 4));
        if (n * k > 3) w[2] = 1e-6f, w[3] = -3.0f;  // a tiny weight and a channel's maximum
        std::vector<float> bias(n);
        for (std::size_t j = 0; j < n; ++j) bias[j] = 0.25f * static_cast<float>(j % 5) - 0.5f;
        const auto b = pack(w.data(), n, k);
        const std::size_t ldc = n + 2;
        std::vector<float> c(m * ldc, 12345.0f);
        const bool relu = m % 2 == 1;
        run(b, a.data(), m, k, bias.data(), relu, c.data(), ldc);
        for (std::size_t i = 0; i < m; ++i) {
          for (std::size_t j = 0; j < n; ++j) {
            double sum = 0.0, magnitude = 0.0;
            for (std::size_t kk = 0; kk < k; ++kk) {
              const double v = static_cast<double>(a[i * k + kk]) * code(b, j, kk);
              sum += v;
              magnitude += std::fabs(v);
            }
            const double s = scale(b, j);
            double exact = sum * s + bias[j];
            if (relu) exact = exact > 0.0 ? exact : 0.0;
            const double tolerance =
                (static_cast<double>(k + 3) * magnitude * s + std::fabs(bias[j])) * std::ldexp(1.0, -24) + 1e-30;
            ASSERT_NEAR(c[i * ldc + j], exact, tolerance) << m << "x" << n << "x" << k << " at " << i << "," << j;
          }
          for (std::size_t j = n; j < ldc; ++j) ASSERT_EQ(c[i * ldc + j], 12345.0f) << "wrote past n";
        }
      }
}

TYPED_TEST(WeightOnlyGemmTest, MatchesFloat64ReferenceOnTheDequantizedWeights) {
  check_weight_only_kernel(
      [](const float* w, std::size_t n, std::size_t k) { return squint::packed_weight_only::from_float(w, n, k, k); },
      [](const squint::packed_weight_only& b, const float* a, std::size_t m, std::size_t k, const float* bias, bool relu,
         float* c, std::size_t ldc) {
        squint::kernels::weight_only_gemm_kernel<TypeParam>::run(a, m, k, k, b.data(), b.n(), b.scales(), bias, relu, c,
                                                                 ldc);
      },
      [](const squint::packed_weight_only& b, std::size_t j, std::size_t kk) { return static_cast<double>(b.at(j, kk)); },
      [](const squint::packed_weight_only& b, std::size_t j) { return static_cast<double>(b.scales()[j]); });
}

/// The FP8 weight-only GEMM: E4M3FN codes decoded in registers (gemm/fp8.hpp).
TYPED_TEST(WeightOnlyGemmTest, Fp8MatchesFloat64ReferenceOnTheDecodedWeights) {
  check_weight_only_kernel(
      [](const float* w, std::size_t n, std::size_t k) { return squint::packed_fp8_weights::from_float(w, n, k, k); },
      [](const squint::packed_fp8_weights& b, const float* a, std::size_t m, std::size_t k, const float* bias, bool relu,
         float* c, std::size_t ldc) {
        squint::kernels::fp8_gemm_kernel<TypeParam>::run(a, m, k, k, b.data(), b.n(), b.kernel_scales(), bias, relu, c,
                                                         ldc);
      },
      [](const squint::packed_fp8_weights& b, std::size_t j, std::size_t kk) {
        return static_cast<double>(squint::reference::fp8_to_float(b.at(j, kk), squint::fp8_format::e4m3fn));
      },
      [](const squint::packed_fp8_weights& b, std::size_t j) { return static_cast<double>(b.scales()[j]); });
}

TEST(WeightOnlyGemmApiTest, CodesMatchTheInt8PackingAndArgumentsAreChecked) {
  const auto w = squint_test::normal(37 * 19, 0.0f, 1.0f, 5);
  const auto q8 = squint::packed_weights::from_float(w.data(), 37, 19, 19);
  const auto wo = squint::packed_weight_only::from_float(w.data(), 37, 19, 19);
  for (std::size_t j = 0; j < 37; ++j) {
    EXPECT_EQ(wo.scales()[j], q8.scales()[j]);
    for (std::size_t i = 0; i < 19; ++i) ASSERT_EQ(wo.at(j, i), q8.at(j, i));
  }
  EXPECT_EQ(wo.bytes(), 48u * 19u + 48u * sizeof(float));
  std::vector<float> a(2 * 19, 1.0f), c(2 * 37), threaded(2 * 37);
  EXPECT_THROW(squint::gemm_weight_only(a.data(), 2, 18, wo, nullptr, false, c.data(), 37), squint::error);
  EXPECT_THROW(squint::gemm_weight_only(a.data(), 2, 19, wo, nullptr, false, c.data(), 36), squint::error);
  EXPECT_THROW(squint::gemm_weight_only(nullptr, 2, 19, wo, nullptr, false, c.data(), 37), squint::error);
  const std::int8_t codes[2] = {1, -1};
  EXPECT_THROW(squint::packed_weight_only::from_int8(codes, 2, 1, 1, {1.0f, 0.0f}), squint::error);
  EXPECT_THROW(squint::packed_weight_only::from_int8(codes, 2, 1, 1, {1.0f, 2.0f, 3.0f}), squint::error);
  squint::runtime::gemm_weight_only(a.data(), 2, 19, wo, nullptr, false, c.data(), 37);
  squint::gemm_weight_only(a.data(), 2, 19, wo, nullptr, false, threaded.data(), 37, squint::parallelism{2, nullptr});
  for (std::size_t j = 0; j < 37; ++j) {
    float row = 0.0f;
    for (std::size_t i = 0; i < 19; ++i) row += static_cast<float>(wo.at(j, i));
    EXPECT_FLOAT_EQ(c[j], row * wo.scales()[j]);
  }
}

/// Threads split whole panels: the result does not depend on the thread count.
TEST(WeightOnlyGemmApiTest, ThreadCountDoesNotChangeResults) {
  const std::size_t m = 64, n = 200, k = 512;
  const auto a = squint_test::normal(m * k, 0.0f, 1.0f, 6);
  const auto w = squint_test::normal(n * k, 0.0f, 1.0f, 7);
  const auto wo = squint::packed_weight_only::from_float(w.data(), n, k, k);
  const auto half = squint::packed_half_weights::from_float(w.data(), n, k, k);
  std::vector<float> one(m * n), two(m * n);
  squint::runtime::gemm_weight_only(a.data(), m, k, wo, nullptr, true, one.data(), n);
  squint::runtime::gemm_weight_only(a.data(), m, k, wo, nullptr, true, two.data(), n, squint::parallelism{2, nullptr});
  EXPECT_EQ(one, two);
  squint::runtime::gemm_half(a.data(), m, k, half, nullptr, false, one.data(), n);
  squint::runtime::gemm_half(a.data(), m, k, half, nullptr, false, two.data(), n, squint::parallelism{3, nullptr});
  EXPECT_EQ(one, two);
}

}  // namespace

}  // namespace gemm_test

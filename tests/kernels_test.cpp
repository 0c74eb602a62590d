// SPDX-License-Identifier: Apache-2.0
// kernels_test.cpp: every compiled arch against the scalar reference, bit for bit, on awkward
// sizes, misaligned pointers (with guard bytes after every output), ties, signed zeros,
// infinities, NaN and the saturation bounds.
#include <gtest/gtest.h>

#include <cfenv>
#include <cmath>
#include <cstdint>
#include <algorithm>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "squint/reference/convert.hpp"
#include "support/archs.hpp"
#include "support/data.hpp"

namespace kernels_test {

namespace {

namespace k = squint::kernels;
namespace ref = squint::reference;

template <class Arch>
class KernelsTest : public squint_test::arch_test<Arch> {};
TYPED_TEST_SUITE(KernelsTest, squint_test::compiled_archs, squint_test::arch_names);

/// Sizes around every lane count and block size squint uses (4, 8, 16 lanes; blocks of 4x).
std::vector<std::size_t> sizes() {
  std::vector<std::size_t> s{0, 1, 2, 3};
  for (std::size_t base : {4u, 8u, 16u, 32u, 64u})
    for (int d = -1; d <= 1; ++d) s.push_back(base + static_cast<std::size_t>(d));
  s.push_back(127);
  s.push_back(1000);
  s.push_back(4099);
  return s;
}

/// Inputs: edge values first, then ties at the scale, then random values reaching saturation.
std::vector<float> inputs(std::size_t n, float scale, unsigned seed) {
  std::vector<float> x = squint_test::edge_values();
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> k(-400, 400);
  for (int i = 0; i < 64; ++i) {
    const float tie = (static_cast<float>(k(rng)) + 0.5f) * scale;
    x.push_back(tie);
    x.push_back(std::nextafter(tie, 1e30f));
    x.push_back(std::nextafter(tie, -1e30f));
  }
  const auto noise = squint_test::normal(n, 0.0f, 90.0f * scale, seed);
  x.insert(x.end(), noise.begin(), noise.end());
  x.resize(n);
  return x;
}

/// A buffer of n elements that starts one element past a 64-byte boundary (so never vector
/// aligned) and is followed by guard elements that must stay untouched.
template <class T>
struct guarded {
  static constexpr std::size_t guard = 64;
  std::vector<T> storage;
  explicit guarded(std::size_t n) : storage(n + guard + 64 / sizeof(T)) {
    std::memset(storage.data(), 0xa5, storage.size() * sizeof(T));
  }
  std::size_t offset() const {
    const auto address = reinterpret_cast<std::uintptr_t>(storage.data());
    return (64 - address % 64) % 64 / sizeof(T) + 1;
  }
  T* data() { return storage.data() + offset(); }
  bool guard_intact(std::size_t n) const {
    const auto* bytes = reinterpret_cast<const unsigned char*>(storage.data() + offset() + n);
    for (std::size_t i = 0; i < guard * sizeof(T); ++i)
      if (bytes[i] != 0xa5) return false;
    return true;
  }
  std::vector<T> values(std::size_t n) const {
    return std::vector<T>(storage.begin() + static_cast<std::ptrdiff_t>(offset()),
                          storage.begin() + static_cast<std::ptrdiff_t>(offset() + n));
  }
};

/// A copy of v at an address that is not vector aligned.
template <class T>
guarded<T> misaligned_copy(const std::vector<T>& v) {
  guarded<T> g(v.size());
  std::copy(v.begin(), v.end(), g.data());
  return g;
}

template <class Arch, class T>
void check_quantize(std::size_t n, float scale, std::int32_t zp, bool reciprocal) {
  const auto x = inputs(n, scale, static_cast<unsigned>(n) + 3);
  guarded<float> in = misaligned_copy(x);
  const float* xin = in.data();
  guarded<T> q(n);
  k::quantize_kernel<Arch, T>::per_tensor(xin, q.data(), n, scale, zp, reciprocal);
  std::vector<T> expect(n);
  ref::quantize(x.data(), expect.data(), n, {scale, zp},
                reciprocal ? squint::quantize_mode::reciprocal : squint::quantize_mode::divide);
  ASSERT_EQ(q.values(n), expect) << "n=" << n << " scale=" << scale << " zp=" << zp << " reciprocal=" << reciprocal;
  ASSERT_TRUE(q.guard_intact(n)) << "wrote past the end, n=" << n;
}

TYPED_TEST(KernelsTest, QuantizePerTensorMatchesReference) {
  for (std::size_t n : sizes())
    for (bool reciprocal : {false, true}) {
      check_quantize<TypeParam, std::int8_t>(n, 0.37f, -5, reciprocal);
      check_quantize<TypeParam, std::int8_t>(n, 1.0f, 0, reciprocal);
      check_quantize<TypeParam, std::uint8_t>(n, 0.0123f, 128, reciprocal);
      check_quantize<TypeParam, std::uint8_t>(n, 2.0f, 255, reciprocal);
      check_quantize<TypeParam, std::int8_t>(n, 1e-30f, 127, reciprocal);  // x / s overflows to inf
    }
}

TYPED_TEST(KernelsTest, QuantizeLargeOutputsStreamExactly) {
  // Above the streaming threshold, with every output misalignment a 64-byte block can have.
  const std::size_t n = squint::kernels::detail_quantize::stream_threshold + 77;
  for (std::size_t offset : {std::size_t{0}, std::size_t{1}, std::size_t{63}}) {
    const auto x = inputs(n, 0.05f, 123);
    std::vector<std::int8_t> storage(n + offset + 64, 0x5a), expect(n);
    std::int8_t* q = storage.data() + offset;
    squint::kernels::quantize_kernel<TypeParam, std::int8_t>::per_tensor(x.data(), q, n, 0.05f, 9, false);
    ref::quantize(x.data(), expect.data(), n, {0.05f, 9});
    ASSERT_TRUE(std::equal(expect.begin(), expect.end(), q)) << "offset " << offset;
    for (std::size_t i = offset + n; i < storage.size(); ++i) ASSERT_EQ(storage[i], 0x5a) << "guard overwritten";
    for (std::size_t i = 0; i < offset; ++i) ASSERT_EQ(storage[i], 0x5a) << "wrote before the start";
  }
}

template <class Arch, class T>
void check_per_channel(const squint::shape& s, int axis, bool reciprocal) {
  const auto split = squint::split_at(s, axis);
  const auto x = inputs(s.numel(), 0.05f, 11);
  std::vector<float> scale(split.channels);
  std::vector<std::int32_t> zp(split.channels);
  for (std::size_t c = 0; c < split.channels; ++c) {
    scale[c] = 0.01f + 0.013f * static_cast<float>(c % 7);
    zp[c] = std::is_same<T, std::int8_t>::value ? static_cast<std::int32_t>(c % 9) * 13 - 60
                                                : static_cast<std::int32_t>(c % 11) * 23;
  }
  guarded<T> q(x.size());
  k::quantize_kernel<Arch, T>::per_channel(x.data(), q.data(), split.outer, split.channels, split.inner, scale.data(),
                                           zp.data(), reciprocal);
  std::vector<T> expect(x.size());
  ref::quantize_per_channel(x.data(), expect.data(), split, scale.data(), zp.data(),
                            reciprocal ? squint::quantize_mode::reciprocal : squint::quantize_mode::divide);
  ASSERT_EQ(q.values(x.size()), expect) << s << " axis " << axis;
  ASSERT_TRUE(q.guard_intact(x.size()));

  guarded<float> back(x.size());
  k::dequantize_kernel<Arch, T>::per_channel(expect.data(), back.data(), split.outer, split.channels, split.inner,
                                             scale.data(), zp.data());
  std::vector<float> expect_back(x.size());
  ref::dequantize_per_channel(expect.data(), expect_back.data(), split, scale.data(), zp.data());
  ASSERT_EQ(back.values(x.size()), expect_back) << s << " axis " << axis;
  ASSERT_TRUE(back.guard_intact(x.size()));
}

TYPED_TEST(KernelsTest, PerChannelEveryAxisMatchesReference) {
  for (const squint::shape& s : {squint::shape{3, 5, 7}, squint::shape{2, 67}, squint::shape{33, 17},
                                 squint::shape{4, 3, 2, 9}, squint::shape{1}, squint::shape{0, 5}})
    for (int axis = -static_cast<int>(s.rank()); axis < static_cast<int>(s.rank()); ++axis)
      for (bool reciprocal : {false, true}) {
        check_per_channel<TypeParam, std::int8_t>(s, axis, reciprocal);
        check_per_channel<TypeParam, std::uint8_t>(s, axis, reciprocal);
      }
}

template <class Arch, class T>
void check_dequantize(std::size_t n) {
  const auto codes = squint_test::uniform_ints<T>(n, std::is_same<T, std::int8_t>::value ? -128 : 0,
                                                  std::is_same<T, std::int8_t>::value ? 127 : 255,
                                                  static_cast<unsigned>(n));
  guarded<T> in = misaligned_copy(codes);
  guarded<float> x(n);
  k::dequantize_kernel<Arch, T>::per_tensor(in.data(), x.data(), n, 0.173f, 7);
  std::vector<float> expect(n);
  ref::dequantize(codes.data(), expect.data(), n, {0.173f, 7});
  ASSERT_EQ(x.values(n), expect) << "n=" << n;
  ASSERT_TRUE(x.guard_intact(n));
}

TYPED_TEST(KernelsTest, DequantizeMatchesReference) {
  for (std::size_t n : sizes()) {
    check_dequantize<TypeParam, std::int8_t>(n);
    check_dequantize<TypeParam, std::uint8_t>(n);
  }
}

TYPED_TEST(KernelsTest, FakeQuantizeMatchesReference) {
  for (std::size_t n : sizes())
    for (auto range : {squint::quant_range{-128, 127}, squint::quant_range{-127, 127}, squint::quant_range{0, 15}})
      for (bool reciprocal : {false, true}) {
        const auto x = inputs(n, 0.2f, 5);
        guarded<float> y(n);
        k::quantize_kernel<TypeParam, std::int8_t>::fake(x.data(), y.data(), n, 0.2f, (range.qmin + range.qmax) / 2,
                                                         range.qmin, range.qmax, reciprocal);
        std::vector<float> expect(n);
        ref::fake_quantize(x.data(), expect.data(), n, {0.2f, (range.qmin + range.qmax) / 2}, range,
                           reciprocal ? squint::quantize_mode::reciprocal : squint::quantize_mode::divide);
        const auto got = y.values(n);
        for (std::size_t i = 0; i < n; ++i)  // bit patterns: +0 and -0 must match too
          ASSERT_EQ(ref::float_bits(got[i]), ref::float_bits(expect[i])) << "i=" << i << " x=" << x[i];
        ASSERT_TRUE(y.guard_intact(n));
      }
}

template <class Arch, class T>
void check_requantize(std::size_t outer, std::size_t channels, std::size_t inner, std::int32_t zp) {
  const std::size_t n = outer * channels * inner;
  std::vector<std::int32_t> acc = squint_test::uniform_ints<std::int32_t>(n, -3000000, 3000000, 9);
  const std::int32_t extremes[] = {0, 1, -1, 2147483647, -2147483647 - 1, 16777217, -16777217, 5, -5, 7};
  for (std::size_t i = 0; i < n && i < 10; ++i) acc[i] = extremes[i];
  std::vector<float> m(channels);
  for (std::size_t c = 0; c < channels; ++c) m[c] = c % 3 == 0 ? 0.5f : 1e-4f * static_cast<float>(c + 1);
  guarded<T> q(n);
  k::requantize_kernel<Arch, T>::run(acc.data(), q.data(), outer, channels, inner, m.data(), zp);
  std::vector<T> expect(n);
  ref::requantize(acc.data(), expect.data(), squint::axis_split{outer, channels, inner}, m.data(), zp);
  ASSERT_EQ(q.values(n), expect) << outer << "x" << channels << "x" << inner;
  ASSERT_TRUE(q.guard_intact(n));
}

TYPED_TEST(KernelsTest, RequantizeMatchesReference) {
  for (std::size_t n : sizes()) {
    check_requantize<TypeParam, std::int8_t>(1, 1, n, 3);          // per tensor
    check_requantize<TypeParam, std::uint8_t>(3, n, 1, 128);       // channels last (GEMM output)
    check_requantize<TypeParam, std::int8_t>(2, 3, n, -128);       // channels in the middle
  }
}

TYPED_TEST(KernelsTest, RequantizeRowClampsLikeTheReference) {
  // The output stage's form: a multiplier per element and codes clamped to [lo, hi] (ReLU,
  // ReLU6), equal to the reference requantization into that range.
  for (std::size_t n : sizes()) {
    std::vector<std::int32_t> acc = squint_test::uniform_ints<std::int32_t>(n, -40000, 40000, 3);
    const std::int32_t extremes[] = {2147483647, -2147483647 - 1, 0, -1, 1, 16777217};
    for (std::size_t i = 0; i < n && i < 6; ++i) acc[i] = extremes[i];
    std::vector<float> m(n);
    for (std::size_t i = 0; i < n; ++i) m[i] = 0.001f * static_cast<float>(i % 7 + 1);
    for (const auto& bounds : {std::pair<int, int>{-128, 127}, {-5, 127}, {-5, 20}, {3, 3}}) {
      guarded<std::int8_t> q(n);
      k::requantize_kernel<TypeParam, std::int8_t>::row(acc.data(), q.data(), n, m.data(), -5, bounds.first,
                                                         bounds.second);
      const squint::quant_range range{bounds.first, bounds.second};
      const auto got = q.values(n);
      for (std::size_t i = 0; i < n; ++i)
        ASSERT_EQ(got[i], ref::requantize_value(acc[i], m[i], -5, range)) << "n=" << n << " i=" << i;
      ASSERT_TRUE(q.guard_intact(n));
    }
  }
}

TYPED_TEST(KernelsTest, FloatStageMatchesItsFormula) {
  // float(acc) * m + bias rounded twice (no FMA on any ISA), ReLU sending NaN to 0, ReLU6's cap.
  for (std::size_t n : sizes()) {
    std::vector<std::int32_t> acc = squint_test::uniform_ints<std::int32_t>(n, -2000000, 2000000, 4);
    const std::int32_t extremes[] = {2147483647, -2147483647 - 1, 0, 16777217, -3};
    for (std::size_t i = 0; i < n && i < 5; ++i) acc[i] = extremes[i];
    std::vector<float> m(n), bias(n);
    for (std::size_t i = 0; i < n; ++i) {
      m[i] = 1e-3f * static_cast<float>(i % 11 + 1) + 1.1920929e-7f;
      bias[i] = 0.37f * static_cast<float>(i % 5) - 0.7f;
    }
    if (n > 6) bias[6] = std::numeric_limits<float>::quiet_NaN();
    for (bool with_bias : {false, true})
      for (int act = 0; act < 3; ++act) {
        const bool relu = act > 0;
        const float cap = act == 2 ? 6.0f : HUGE_VALF;
        guarded<float> y(n);
        k::float_stage_kernel<TypeParam>::row(acc.data(), y.data(), n, m.data(), with_bias ? bias.data() : nullptr, relu,
                                              cap);
        const auto got = y.values(n);
        for (std::size_t i = 0; i < n; ++i) {
          volatile float scaled = static_cast<float>(acc[i]) * m[i];  // rounded on its own: no FMA here either
          float v = with_bias ? scaled + bias[i] : scaled;
          if (relu) v = !(v > 0.0f) ? 0.0f : std::min(v, cap);
          ASSERT_EQ(ref::float_bits(got[i]), ref::float_bits(v)) << "n=" << n << " i=" << i << " act=" << act;
        }
        ASSERT_TRUE(y.guard_intact(n));
      }
  }
}

TYPED_TEST(KernelsTest, HalfConversionMatchesReference) {
  // Every fp16 bit pattern converts exactly.
  std::vector<std::uint16_t> all(65536);
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<std::uint16_t>(i);
  guarded<float> f(all.size());
  squint::kernels::convert_kernel<TypeParam>::half_to_float(all.data(), f.data(), all.size());
  const auto got = f.values(all.size());
  for (std::size_t i = 0; i < all.size(); ++i) {
    const float expect = ref::half_to_float(all[i]);
    if (std::isnan(expect)) ASSERT_TRUE(std::isnan(got[i])) << i;
    else ASSERT_EQ(ref::float_bits(got[i]), ref::float_bits(expect)) << i;
  }
  ASSERT_TRUE(f.guard_intact(all.size()));
  // Floats: edges, every rounding boundary region, subnormals, random.
  std::vector<float> x = squint_test::edge_values();
  for (float v : {65504.0f, 65519.99f, 65520.0f, 6.1035156e-05f, 5.9604645e-08f, 2.9802322e-08f, 2.9802326e-08f,
                  1.0009766f, 1.0004883f, 1.0014648f, -0.33333334f})
    x.push_back(v);
  std::mt19937 rng(1);
  std::uniform_int_distribution<std::uint32_t> bits;
  for (int i = 0; i < 20000; ++i) x.push_back(ref::bits_float(bits(rng)));
  for (std::size_t n : {x.size(), std::size_t{5}, std::size_t{17}}) {
    guarded<std::uint16_t> h(n);
    squint::kernels::convert_kernel<TypeParam>::float_to_half(x.data(), h.data(), n);
    const auto hv = h.values(n);
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint16_t expect = ref::float_to_half(x[i]);
      if ((expect & 0x7c00) == 0x7c00 && (expect & 0x3ff)) ASSERT_EQ(hv[i] & 0x7e00, 0x7e00) << x[i];  // quiet NaN
      else ASSERT_EQ(hv[i], expect) << "x=" << x[i];
    }
    ASSERT_TRUE(h.guard_intact(n));
  }
}

TYPED_TEST(KernelsTest, BfloatConversionMatchesReference) {
  std::vector<float> x = squint_test::edge_values();
  for (float v : squint_test::normal(1000, 0.0f, 1e3f)) x.push_back(v);
  guarded<std::uint16_t> b(x.size());
  squint::kernels::convert_kernel<TypeParam>::float_to_bfloat16(x.data(), b.data(), x.size());
  std::vector<float> back(x.size());
  squint::kernels::convert_kernel<TypeParam>::bfloat16_to_float(b.data(), back.data(), x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    ASSERT_EQ(b.values(x.size())[i], ref::float_to_bfloat16(x[i]));
    ASSERT_EQ(ref::float_bits(back[i]), ref::float_bits(ref::bfloat16_to_float(ref::float_to_bfloat16(x[i]))));
  }
  ASSERT_TRUE(b.guard_intact(x.size()));
}

TYPED_TEST(KernelsTest, MinMaxSkipsNonFinite) {
  for (std::size_t n : sizes()) {
    auto x = squint_test::normal(n, 1.0f, 5.0f, static_cast<unsigned>(n));
    const float specials[] = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                              -std::numeric_limits<float>::infinity(), -0.0f};
    for (std::size_t i = 0; i < n; i += 7) x[i] = specials[(i / 7) % 4];
    float lo = HUGE_VALF, hi = -HUGE_VALF, elo = HUGE_VALF, ehi = -HUGE_VALF;
    std::size_t bad = 0, ebad = 0;
    squint::kernels::reduce_kernel<TypeParam>::min_max(x.data(), n, &lo, &hi, &bad);
    squint::kernels::reduce_kernel<squint::arch::scalar>::min_max(x.data(), n, &elo, &ehi, &ebad);
    ASSERT_EQ(lo == 0.0f ? 0.0f : lo, elo == 0.0f ? 0.0f : elo) << n;
    ASSERT_EQ(hi == 0.0f ? 0.0f : hi, ehi == 0.0f ? 0.0f : ehi) << n;
    ASSERT_EQ(bad, ebad) << n;
    // Channels last: columns of a rows x n matrix.
    const std::size_t rows = 3;
    std::vector<float> m(rows * n);
    for (std::size_t i = 0; i < m.size(); ++i) m[i] = x[i % (n ? n : 1)] * static_cast<float>(1 + i / (n ? n : 1));
    std::vector<float> cmin(n, HUGE_VALF), cmax(n, -HUGE_VALF), emin(n, HUGE_VALF), emax(n, -HUGE_VALF);
    bad = ebad = 0;
    squint::kernels::reduce_kernel<TypeParam>::min_max_columns(m.data(), rows, n, cmin.data(), cmax.data(), &bad);
    squint::kernels::reduce_kernel<squint::arch::scalar>::min_max_columns(m.data(), rows, n, emin.data(), emax.data(), &ebad);
    for (std::size_t c = 0; c < n; ++c) {
      ASSERT_EQ(cmin[c] == 0.0f ? 0.0f : cmin[c], emin[c] == 0.0f ? 0.0f : emin[c]);
      ASSERT_EQ(cmax[c] == 0.0f ? 0.0f : cmax[c], emax[c] == 0.0f ? 0.0f : emax[c]);
    }
    ASSERT_EQ(bad, ebad);
  }
}

TYPED_TEST(KernelsTest, MinMaxCleanAndPoisonedChunks) {
  // Long enough for several fast-path chunks: some clean, one with a NaN, one with an infinity
  // that is also the largest magnitude, and extremes in clean chunks that must still be found.
  auto x = squint_test::normal(50000, 0.0f, 1.0f, 77);
  x[123] = -40.0f;
  x[30001] = std::numeric_limits<float>::quiet_NaN();
  x[41234] = std::numeric_limits<float>::infinity();
  x[49999] = 35.0f;
  for (std::size_t start : {std::size_t{0}, std::size_t{1}, std::size_t{4097}}) {
    float lo = HUGE_VALF, hi = -HUGE_VALF, elo = HUGE_VALF, ehi = -HUGE_VALF;
    std::size_t bad = 0, ebad = 0;
    squint::kernels::reduce_kernel<TypeParam>::min_max(x.data() + start, x.size() - start, &lo, &hi, &bad);
    squint::kernels::reduce_kernel<squint::arch::scalar>::min_max(x.data() + start, x.size() - start, &elo, &ehi, &ebad);
    EXPECT_EQ(lo, elo);
    EXPECT_EQ(hi, ehi);
    EXPECT_EQ(bad, ebad);
    EXPECT_EQ(bad, 2u);
    EXPECT_EQ(hi, 35.0f);
  }
}

TYPED_TEST(KernelsTest, HistogramBinningMatchesScalar) {
  for (std::size_t n : sizes()) {
    auto x = squint_test::normal(n, 0.5f, 3.0f, static_cast<unsigned>(n) + 1);
    const float specials[] = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                              -std::numeric_limits<float>::infinity(), 10.0f, -6.0f, -20.0f};
    for (std::size_t i = 0; i < n; i += 5) x[i] = specials[(i / 5) % 6];  // 10 is the top edge
    for (bool magnitude : {false, true}) {
      const double lo = magnitude ? 0.0 : -6.0, hi = 10.0, width = (hi - lo) / 256.0;
      std::vector<std::uint64_t> counts(256), expect(256);
      std::uint64_t top = 0, expect_top = 0;
      squint::kernels::reduce_kernel<TypeParam>::histogram(x.data(), n, magnitude, lo, width, hi, 256, counts.data(), &top);
      squint::kernels::reduce_kernel<squint::arch::scalar>::histogram(x.data(), n, magnitude, lo, width, hi, 256,
                                                                       expect.data(), &expect_top);
      ASSERT_EQ(counts, expect) << "n=" << n << " magnitude=" << magnitude;
      ASSERT_EQ(top, expect_top) << "n=" << n;
    }
  }
}

/// The public runtime entry points under every rounding mode: identical integers.
TYPED_TEST(KernelsTest, RuntimeEntryPointsIgnoreTheRoundingMode) {
  squint::runtime::force_isa(TypeParam::name());
  // Values within an ulp of ties after division: the quotient's own rounding decides them.
  std::vector<float> x;
  const float scale = 0.1f;
  for (int kk = -300; kk < 300; ++kk) {
    const float tie = (static_cast<float>(kk) + 0.5f) * scale;
    x.push_back(tie);
    x.push_back(std::nextafter(tie, 1e9f));
    x.push_back(std::nextafter(tie, -1e9f));
  }
  std::vector<std::int8_t> expect(x.size()), got(x.size());
  ref::quantize(x.data(), expect.data(), x.size(), {scale, 0});
  const int saved = std::fegetround();
  for (int mode : {FE_DOWNWARD, FE_UPWARD, FE_TOWARDZERO}) {
    std::fesetround(mode);
    squint::runtime::quantize(x.data(), got.data(), x.size(), {scale, 0});
    const int after = std::fegetround();
    std::fesetround(saved);
    EXPECT_EQ(after, mode) << "the caller's rounding mode was not restored";
    EXPECT_EQ(got, expect) << "rounding mode " << mode;
  }
  squint::runtime::force_isa(nullptr);
}

}  // namespace

}  // namespace kernels_test

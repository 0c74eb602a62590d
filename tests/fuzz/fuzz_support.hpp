// SPDX-License-Identifier: Apache-2.0
// fuzz_support.hpp: what every fuzz harness shares: a reader that turns the fuzzer's bytes into
// arguments, the checks that abort on a finding, and a loop over every compiled kernel arch.
//
// The property each harness asserts for its entry points: valid arguments give results equal to
// squint/reference/; invalid ones throw squint::error and write nothing; nothing is undefined
// behaviour (the harnesses run under ASan + UBSan). Any other exception is a finding too.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <tuple>
#include <vector>

#include "squint/dispatch.hpp"

/// Aborts (a finding) when `condition` is false.
#define SQUINT_FUZZ_CHECK(condition)                                                           \
  do {                                                                                         \
    if (!(condition)) {                                                                        \
      std::fprintf(stderr, "squint fuzz: check failed: %s (%s:%d)\n", #condition, __FILE__, __LINE__); \
      std::abort();                                                                            \
    }                                                                                          \
  } while (0)

namespace squint_fuzz {

/// Consumes the fuzzer's bytes front to back; past the end every value reads as zero.
class input {
 public:
  input(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}

  std::size_t remaining() const { return size_; }

  template <class T>
  T take() {
    T value{};
    const std::size_t n = size_ < sizeof(T) ? size_ : sizeof(T);
    if (n) std::memcpy(&value, data_, n);
    data_ += n;
    size_ -= n;
    return value;
  }
  bool flag() { return take<std::uint8_t>() & 1; }
  /// An integer in [0, max].
  std::size_t below(std::size_t max) { return take<std::uint16_t>() % (max + 1); }
  /// Any float bit pattern (NaN, infinities, subnormals included) a quarter of the time, else a
  /// moderate value, so that both the error paths and the numeric paths get explored.
  float any_float() {
    const std::uint8_t how = take<std::uint8_t>();
    if (how % 4 == 0) return take<float>();
    return static_cast<float>(take<std::int16_t>()) * std::ldexp(1.0f, static_cast<int>(how % 24) - 12);
  }
  /// A scale: usually a positive power of two times a mantissa, sometimes any bit pattern.
  float scale() {
    const std::uint8_t how = take<std::uint8_t>();
    if (how % 8 == 0) return take<float>();
    const float mantissa = 1.0f + static_cast<float>(take<std::uint8_t>()) / 256.0f;
    return mantissa * std::ldexp(1.0f, static_cast<int>(how % 64) - 40);
  }
  /// A zero point: usually inside [lo, hi], sometimes any int32.
  std::int32_t zero_point(std::int32_t lo, std::int32_t hi) {
    const std::uint8_t how = take<std::uint8_t>();
    const auto raw = take<std::int32_t>();
    if (how % 8 == 0) return raw;
    const auto span = static_cast<std::uint32_t>(static_cast<std::int64_t>(hi) - lo) + 1u;
    return static_cast<std::int32_t>(static_cast<std::int64_t>(lo) + (span ? static_cast<std::uint32_t>(raw) % span : static_cast<std::uint32_t>(raw)));
  }
  /// A quant_spec with every option drawn (custom range and eps too with `custom`).
  squint::quant_spec spec(bool custom) {
    squint::quant_spec s;
    s.type = flag() ? squint::dtype::int8 : squint::dtype::uint8;
    s.scheme = flag() ? squint::qscheme::symmetric : squint::qscheme::affine;
    s.reduce_range = flag();
    s.narrow_range = flag();
    s.profile = static_cast<squint::calibration_profile>(take<std::uint8_t>() % 3);
    s.symmetric_range = flag();
    if (custom && flag()) s.custom_range = squint::quant_range{take<std::int16_t>() % 300, take<std::int16_t>() % 300};
    if (custom && flag()) s.eps = any_float();
    if (custom && flag()) s.min_real_range = any_float();
    return s;
  }
  std::vector<float> floats(std::size_t n) {
    std::vector<float> v(n);
    for (float& x : v) x = any_float();
    return v;
  }
  template <class T>
  std::vector<T> codes(std::size_t n) {
    std::vector<T> v(n);
    for (T& x : v) x = take<T>();
    return v;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
};

/// Runs f(); true if it threw squint::error. Any other exception escapes (a finding).
template <class F>
bool rejected(F&& f) {
  try {
    f();
    return false;
  } catch (const squint::error&) {
    return true;
  }
}

/// Bitwise equality of two float vectors (NaN equals NaN, -0 differs from +0).
inline bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

/// Calls f(Arch{}) for every kernel family compiled into this binary that the CPU runs.
template <class F>
void for_each_arch(F&& f) {
  std::apply([&](auto... arch) { ((squint::is_available<decltype(arch)>() ? f(arch) : void()), ...); },
             std::tuple<SQUINT_DISPATCH_FAMILY_TYPES>{});
}

/// Calls f(Arch{}) for every GEMM micro-kernel arch compiled in that the CPU runs.
template <class F>
void for_each_gemm_arch(F&& f) {
  std::apply([&](auto... arch) { ((squint::is_available<decltype(arch)>() ? f(arch) : void()), ...); },
             std::tuple<SQUINT_DISPATCH_GEMM_TYPES>{});
}

}  // namespace squint_fuzz

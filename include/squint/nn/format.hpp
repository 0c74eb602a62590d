// SPDX-License-Identifier: Apache-2.0
// nn/format.hpp: the byte-level pieces of squint's model format (nn/serialize.hpp describes the
// layout): little-endian writer and bounds-checked reader, magic, version and checksum. Weight
// forms and activation policies write and read their own fields with these.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "squint/error.hpp"

SQUINT_NAMESPACE_BEGIN
namespace nn {

inline constexpr std::uint32_t format_version = 1;
/// Graph files: version 2 adds the calibrated ranges (nn::graph::range) after the nodes;
/// version 1 files (without them) still load.
inline constexpr std::uint32_t graph_format_version = 2;

namespace detail {

constexpr char format_magic[8] = {'S', 'Q', 'U', 'I', 'N', 'T', 'N', 'N'};

inline std::uint64_t fnv1a(const std::uint8_t* data, std::size_t n) {
  std::uint64_t h = 14695981039346656037ull;
  for (std::size_t i = 0; i < n; ++i) h = (h ^ data[i]) * 1099511628211ull;
  return h;
}

class writer {
 public:
  void bytes(const void* p, std::size_t n) {
    // Byte by byte: GCC 12 at -O3 misreads a range insert into a still-empty vector as an
    // overflow (-Wstringop-overflow), and the writer only ever copies a few header bytes.
    const auto* b = static_cast<const std::uint8_t*>(p);
    for (std::size_t i = 0; i < n; ++i) out.push_back(b[i]);
  }
  template <class U>
  void uint(U v) {
    for (std::size_t i = 0; i < sizeof(U); ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  void f32(float v) {
    std::uint32_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    uint(bits);
  }
  std::vector<std::uint8_t> out;
};

class reader {
 public:
  explicit reader(const std::vector<std::uint8_t>& data) : data_(data) {}
  std::size_t remaining() const { return data_.size() - pos_; }
  void need(std::size_t n, const char* what) const {
    squint::detail::require(n <= remaining(), "nn::load: file is truncated (", what, " needs ", n, " bytes, ",
                            remaining(), " left)");
  }
  const std::uint8_t* take(std::size_t n, const char* what) {
    need(n, what);
    const std::uint8_t* p = data_.data() + pos_;
    pos_ += n;
    return p;
  }
  template <class U>
  U uint(const char* what) {
    const std::uint8_t* p = take(sizeof(U), what);
    U v = 0;
    for (std::size_t i = 0; i < sizeof(U); ++i) v = static_cast<U>(v | static_cast<U>(U{p[i]} << (8 * i)));
    return v;
  }
  float f32(const char* what) {
    const std::uint32_t bits = uint<std::uint32_t>(what);
    float v;
    std::memcpy(&v, &bits, sizeof v);
    return v;
  }
  std::size_t position() const { return pos_; }

 private:
  const std::vector<std::uint8_t>& data_;
  std::size_t pos_ = 0;
};

}  // namespace detail
}  // namespace nn
SQUINT_NAMESPACE_END

// SPDX-License-Identifier: Apache-2.0
// tensor.hpp: non-owning views of contiguous N-d tensors and the axis split for per-channel work.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <type_traits>

#include "squint/error.hpp"

SQUINT_NAMESPACE_BEGIN

/// Extents of a row-major (C-order) tensor, rank 0..max_rank. Rank 0 is a scalar (one element).
class shape {
 public:
  static constexpr std::size_t max_rank = 8;

  constexpr shape() = default;
  /// @throws squint::error if the rank exceeds max_rank or the element count overflows size_t.
  shape(std::initializer_list<std::size_t> dims) : shape(dims.begin(), dims.end()) {}
  template <class It>
  shape(It first, It last) {
    for (; first != last; ++first) {
      detail::require(rank_ < max_rank, "shape: rank exceeds ", max_rank);
      dims_[rank_++] = static_cast<std::size_t>(*first);
    }
    // A zero extent makes the count 0 whatever the others are; otherwise it must fit size_t.
    if (std::find(dims_.begin(), dims_.begin() + rank_, std::size_t{0}) != dims_.begin() + rank_) return;
    std::size_t n = 1;
    for (std::size_t i = 0; i < rank_; ++i) n = detail::checked_mul(n, dims_[i], "shape", "element count");
  }

  constexpr std::size_t rank() const { return rank_; }
  constexpr std::size_t operator[](std::size_t i) const { return dims_[i]; }
  /// Number of elements: the product of the extents (1 for rank 0).
  constexpr std::size_t numel() const {
    std::size_t n = 1;
    for (std::size_t i = 0; i < rank_; ++i) n *= dims_[i];
    return n;
  }
  friend bool operator==(const shape& a, const shape& b) {
    if (a.rank_ != b.rank_) return false;
    for (std::size_t i = 0; i < a.rank_; ++i)
      if (a.dims_[i] != b.dims_[i]) return false;
    return true;
  }
  friend bool operator!=(const shape& a, const shape& b) { return !(a == b); }
  friend std::ostream& operator<<(std::ostream& os, const shape& s) {
    os << '[';
    for (std::size_t i = 0; i < s.rank_; ++i) os << (i ? ", " : "") << s.dims_[i];
    return os << ']';
  }

 private:
  std::array<std::size_t, max_rank> dims_{};
  std::size_t rank_ = 0;
};

/// A contiguous tensor seen as outer x channels x inner around one axis: element (o, c, i) is at
/// offset (o * channels + c) * inner + i. Per-channel kernels iterate this way for any axis.
struct axis_split {
  std::size_t outer = 1;
  std::size_t channels = 1;
  std::size_t inner = 1;
};

/// Splits `s` around `axis` (negative counts from the back, as in NumPy and ONNX).
/// @throws squint::error if the axis is outside [-rank, rank).
inline axis_split split_at(const shape& s, int axis) {
  const auto rank = static_cast<int>(s.rank());
  detail::require(axis >= -rank && axis < rank, "axis ", axis, " is out of range for a tensor of shape ",
                  s);
  const auto a = static_cast<std::size_t>(axis < 0 ? axis + rank : axis);
  axis_split split;
  for (std::size_t i = 0; i < a; ++i) split.outer *= s[i];
  split.channels = s[a];
  for (std::size_t i = a + 1; i < s.rank(); ++i) split.inner *= s[i];
  return split;
}

/// Non-owning view of a contiguous row-major tensor of T (use `const T` for read-only views).
template <class T>
class tensor_view {
 public:
  constexpr tensor_view() = default;
  constexpr tensor_view(T* data, shape extents) : data_(data), shape_(extents) {}
  /// A rank-1 view of `n` elements.
  constexpr tensor_view(T* data, std::size_t n) : data_(data), shape_({n}) {}
  /// Read-only view of a mutable one.
  template <class U, class = std::enable_if_t<std::is_same_v<const U, T>>>
  constexpr tensor_view(tensor_view<U> other) : data_(other.data()), shape_(other.extents()) {}

  constexpr T* data() const { return data_; }
  constexpr const shape& extents() const { return shape_; }
  constexpr std::size_t size() const { return shape_.numel(); }
  constexpr T* begin() const { return data_; }
  constexpr T* end() const { return data_ + size(); }
  constexpr T& operator[](std::size_t i) const { return data_[i]; }

 private:
  T* data_ = nullptr;
  shape shape_;
};

/// Non-owning strided view of a 2-d matrix: element (r, c) is data[r * row_stride + c * col_stride].
/// A row-major matrix with leading dimension ld has strides (ld, 1); its transpose (ld, 1) swapped.
template <class T>
struct matrix_view {
  T* data = nullptr;
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::ptrdiff_t row_stride = 0;
  std::ptrdiff_t col_stride = 1;

  /// Row-major rows x cols with leading dimension `ld` (>= cols; 0 means cols).
  static matrix_view row_major(T* data, std::size_t rows, std::size_t cols, std::size_t ld = 0) {
    return {data, rows, cols, static_cast<std::ptrdiff_t>(ld ? ld : cols), 1};
  }
  T& operator()(std::size_t r, std::size_t c) const {
    return data[static_cast<std::ptrdiff_t>(r) * row_stride + static_cast<std::ptrdiff_t>(c) * col_stride];
  }
  matrix_view transposed() const { return {data, cols, rows, col_stride, row_stride}; }
};

namespace detail {

/// Rejects a null pointer that would be read or written (`size` > 0).
template <class T>
void require_data(const char* function, const char* argument, const tensor_view<T>& view) {
  require(view.data() != nullptr || view.size() == 0, function, ": argument '", argument,
          "' is null but has ", view.size(), " elements");
}

}  // namespace detail

SQUINT_NAMESPACE_END

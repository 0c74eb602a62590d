// SPDX-License-Identifier: Apache-2.0
// reference/gemm.hpp: scalar oracle for the integer GEMM with zero points.
#pragma once

#include <cstddef>
#include <cstdint>

#include "squint/tensor.hpp"

SQUINT_NAMESPACE_BEGIN
namespace reference {

/// C = (A - a_zero_point) . (B - b_zero_point)^T, accumulated in int64 so it is exact for any K.
/// A is M x K (uint8 or int8), B is N x K (one row per output channel, int8 or uint8), C is M x N.
/// `b_zero_point` holds N per-channel zero points, or 1 shared by all channels (nullptr: zero).
/// ONNX MatMulInteger's K x N right operand is `matrix_view::transposed()` of its own row-major view.
template <class TA, class TB>
void gemm(matrix_view<const TA> a, std::int32_t a_zero_point, matrix_view<const TB> b,
          const std::int32_t* b_zero_point, std::size_t b_zero_point_count,
          matrix_view<std::int64_t> c) {
  for (std::size_t i = 0; i < a.rows; ++i)
    for (std::size_t j = 0; j < b.rows; ++j) {
      const std::int64_t bz =
          b_zero_point == nullptr ? 0 : b_zero_point[b_zero_point_count == 1 ? 0 : j];
      std::int64_t acc = 0;
      for (std::size_t k = 0; k < a.cols; ++k)
        acc += (static_cast<std::int64_t>(a(i, k)) - a_zero_point) * (static_cast<std::int64_t>(b(j, k)) - bz);
      c(i, j) = acc;
    }
}

}  // namespace reference
SQUINT_NAMESPACE_END

// SPDX-License-Identifier: Apache-2.0
// eigen.hpp: the INT8 and FP16 GEMMs on Eigen matrices. Inputs are taken as
// Eigen::Ref<const row-major>: row-major matrices, blocks and maps pass without a copy (their
// outer stride becomes the leading dimension); a column-major argument is copied once into a
// row-major temporary by Eigen. Outputs are returned row-major and assign to any Eigen matrix.
// Static dispatch (this translation unit's flags); for per-CPU kernels use squint::nn::linear
// with squint::runtime::backend().
//
//   const auto packed = squint::eigen::pack(W);                    // W: out x in, Eigen::MatrixXf
//   Eigen::MatrixXf y = squint::eigen::linear_dynamic(X, packed);  // X: batch x in
#pragma once

#include <Eigen/Core>

#include <cstdint>

#include "squint/gemm/fp16.hpp"
#include "squint/gemm/gemm.hpp"
#include "squint/quantize.hpp"

SQUINT_NAMESPACE_BEGIN
namespace eigen {

template <class T>
using row_major = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using const_ref = Eigen::Ref<const row_major<T>>;

namespace detail {
template <class T>
std::size_t ld(const const_ref<T>& m) {
  return static_cast<std::size_t>(m.outerStride());
}
inline std::size_t size(Eigen::Index v) { return static_cast<std::size_t>(v); }
/// @throws squint::error unless `x` (the input of `function`) has k columns.
inline void require_depth(const char* function, const char* x, Eigen::Index cols, std::size_t k) {
  squint::detail::require(size(cols) == k, function, ": ", x, " has ", cols, " columns, the packed weights k = ", k);
}
}  // namespace detail

/// packed_weights::from_float on W (out x in): per-output-channel symmetric int8.
inline packed_weights pack(const const_ref<float>& w,
                           quant_spec spec = {dtype::int8, qscheme::symmetric, false, true}) {
  return packed_weights::from_float(w.data(), detail::size(w.rows()), detail::size(w.cols()), detail::ld(w), spec);
}

/// packed_half_weights::from_float on W (out x in).
inline packed_half_weights pack_half(const const_ref<float>& w) {
  return packed_half_weights::from_float(w.data(), detail::size(w.rows()), detail::size(w.cols()), detail::ld(w));
}

/// Exact int32 C = (A - a_zero_point) . B^T for uint8 or int8 codes A (m x k).
/// @throws squint::error as squint::gemm (A's columns must equal B's k).
template <class TA>
row_major<std::int32_t> gemm(const const_ref<TA>& a, std::int32_t a_zero_point, const packed_weights& b,
                             const parallelism& par = {}) {
  detail::require_depth("eigen::gemm", "a", a.cols(), b.k());
  row_major<std::int32_t> c(a.rows(), static_cast<Eigen::Index>(b.n()));
  squint::gemm(a.data(), detail::size(a.rows()), detail::ld(a), a_zero_point, b, c.data(), b.n(), par);
  return c;
}

/// Dynamic INT8 linear layer: x (m x k float) quantized as uint8 from its own range (ONNX
/// DynamicQuantizeLinear), multiplied exactly by the packed weights, returned as float
/// act(x . W^T + bias). `bias` has n entries or is null.
/// @throws squint::error if x's columns differ from the weights' k.
inline row_major<float> linear_dynamic(const const_ref<float>& x, const packed_weights& w,
                                       const float* bias = nullptr, bool relu = false,
                                       const parallelism& par = {}) {
  detail::require_depth("eigen::linear_dynamic", "x", x.cols(), w.k());
  // dynamic_quantize reads one contiguous block: only a strided block is copied.
  row_major<float> dense;
  const float* data = x.data();
  if (x.rows() > 1 && x.outerStride() != x.cols()) {
    dense = x;
    data = dense.data();
  }
  row_major<std::uint8_t> codes(x.rows(), x.cols());
  const qparams p = dynamic_quantize({data, detail::size(x.size())}, {codes.data(), detail::size(codes.size())});
  row_major<float> y(x.rows(), static_cast<Eigen::Index>(w.n()));
  squint::gemm(codes.data(), detail::size(codes.rows()), w.k(), p, w, bias, relu, y.data(), w.n(), par);
  return y;
}

/// FP16-weight linear layer: act(x . W^T + bias) with fp32 accumulation.
/// @throws squint::error if x's columns differ from the weights' k.
inline row_major<float> linear_half(const const_ref<float>& x, const packed_half_weights& w,
                                    const float* bias = nullptr, bool relu = false, const parallelism& par = {}) {
  detail::require_depth("eigen::linear_half", "x", x.cols(), w.k());
  row_major<float> y(x.rows(), static_cast<Eigen::Index>(w.n()));
  gemm_half(x.data(), detail::size(x.rows()), detail::ld(x), w, bias, relu, y.data(), w.n(), par);
  return y;
}

}  // namespace eigen
SQUINT_NAMESPACE_END

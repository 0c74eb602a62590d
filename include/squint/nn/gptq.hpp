// SPDX-License-Identifier: Apache-2.0
// nn/gptq.hpp: GPTQ (Frantar et al. 2022) for a float MLP built in an int4 precision.
//
// Round-to-nearest quantizes each weight on its own. GPTQ quantizes a layer's input columns
// one at a time and moves each column's rounding error onto the columns not yet quantized,
// weighted by the inverse Hessian of the layer's squared output error on calibration inputs
// (H = X^T X): the error the later columns can absorb, they absorb. Per layer:
//   H = X^T X / n + damp * mean(diag H) * I (inputs that never fire: H_ii = 1, weights 0);
//   U = the upper Cholesky factor of H^-1 (H^-1 = U^T U);
//   for each column i: at a group's first column, each row's scale is amax / 7 of the group's
//   current weights (the int4 forms' RTN rule); q = round-half-even(w_i / s) in [-7, 7];
//   e = (w_i - q s) / U_ii; w_t -= e U_it for every later column t.
// Lazy batches (the paper's section 3.2): the columns go in blocks; a column's update reaches the
// rest of its block at once and the columns after the block at the block's end, so each output
// row reads a cache-sized slice of U at a time rather than all of it. The updates reach each
// column in the same order as without blocks: the codes are the same, bit for bit. Act-order: the columns go in decreasing order of H's diagonal (the inputs with the
// most energy first, while the most columns remain to absorb their error), H and U permuted
// alike; each group's scales are then fixed before any update, from the float weights (static
// groups), so the groups stay contiguous in the input order the int4 forms store.
// The layers go in order, each one's calibration input the previous quantized layer's output
// (as GPTQ runs a model). The codes and scales are built as they are (linear::from_int4).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "squint/gemm/fp32.hpp"
#include "squint/gemm/int4.hpp"
#include "squint/nn/sequential.hpp"
#include "squint/reference/quantize.hpp"

SQUINT_NAMESPACE_BEGIN
namespace nn {

struct gptq_options {
  precision mode = precision::int4_weight_only;  ///< int4_weight_only or int4_dynamic
  std::size_t group = 32;                        ///< inputs per scale, a multiple of 16
  double damp = 0.01;                            ///< added to H's diagonal, times its mean
  std::size_t max_rows = 512;                    ///< calibration rows used (the first ones)
  bool act_order = false;                        ///< columns by decreasing H_ii, static group scales
  std::size_t block = 128;                       ///< lazy-batch columns (rounded to a multiple of group)
  backend kernels = native_backend();
};

/// One layer's outcome: the mean squared error of its output on its calibration input with
/// RTN codes and with GPTQ's.
struct gptq_layer {
  std::size_t layer = 0;
  double mse_rtn = 0.0, mse_gptq = 0.0;
};

struct gptq_result {
  sequential model;
  std::vector<gptq_layer> layers;
};

namespace detail {

/// Sum of a[k] b[k], k < n, in four interleaved partial sums (independent chains).
inline double dot(const double* a, const double* b, std::size_t n) {
  double s[4] = {0.0, 0.0, 0.0, 0.0};
  std::size_t k = 0;
  for (; k + 4 <= n; k += 4)
    for (std::size_t t = 0; t < 4; ++t) s[t] += a[k + t] * b[k + t];
  for (; k < n; ++k) s[0] += a[k] * b[k];
  return (s[0] + s[1]) + (s[2] + s[3]);
}

/// In-place Cholesky factor of a symmetric positive definite n x n matrix (row-major): the lower
/// triangle becomes L with A = L L^T. Returns false if a pivot is not positive.
inline bool cholesky_lower(std::vector<double>& a, std::size_t n) {
  for (std::size_t j = 0; j < n; ++j) {
    double* row_j = &a[j * n];
    const double d = row_j[j] - dot(row_j, row_j, j);
    if (!(d > 0.0)) return false;
    const double l = std::sqrt(d);
    row_j[j] = l;
    for (std::size_t i = j + 1; i < n; ++i) a[i * n + j] = (a[i * n + j] - dot(&a[i * n], row_j, j)) / l;
  }
  return true;
}

/// U, upper triangular with H^-1 = U^T U, from H (n x n, symmetric positive definite), without
/// forming H^-1: with J the order reversal, J H J = L L^T gives H = R R^T for the upper
/// triangular R = J L J, so H^-1 = R^-T R^-1 and U = R^-1 (positive diagonal: the factor
/// Cholesky of H^-1 gives). One Cholesky and one triangular inverse, rows contiguous in both.
inline std::vector<double> inverse_hessian_factor(const std::vector<double>& h, std::size_t n) {
  std::vector<double> l(n * n);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n; ++j) l[i * n + j] = h[(n - 1 - i) * n + (n - 1 - j)];
  squint::detail::require(cholesky_lower(l, n), "nn::gptq: the damped Hessian is not positive definite");
  const auto r = [&](std::size_t i, std::size_t k) { return l[(n - 1 - i) * n + (n - 1 - k)]; };
  // Back substitution R U = I, a row of U at a time from the last: row i is
  // (e_i - sum over k > i of R_ik row k) / R_ii.
  std::vector<double> u(n * n, 0.0);
  for (std::size_t i = n; i-- > 0;) {
    double* ui = &u[i * n];
    ui[i] = 1.0;
    for (std::size_t k = i + 1; k < n; ++k) {
      const double rik = r(i, k);
      if (rik == 0.0) continue;
      const double* uk = &u[k * n];
      for (std::size_t j = k; j < n; ++j) ui[j] -= rik * uk[j];
    }
    const double d = r(i, i);
    for (std::size_t j = i; j < n; ++j) ui[j] /= d;
  }
  return u;
}

/// GPTQ's codes and scales for w (out x in) given the inputs x (rows x in).
inline squint::detail::group_codes gptq_codes(std::vector<float> w, std::size_t out, std::size_t in, const float* x,
                                             std::size_t rows, const gptq_options& o) {
  std::vector<double> h(in * in, 0.0);
  for (std::size_t r = 0; r < rows; ++r) {
    const float* xr = x + r * in;
    for (std::size_t i = 0; i < in; ++i) {
      const double xi = xr[i];
      if (xi == 0.0) continue;
      for (std::size_t j = i; j < in; ++j) h[i * in + j] += xi * xr[j];
    }
  }
  double mean = 0.0;
  for (std::size_t i = 0; i < in; ++i) {
    for (std::size_t j = i; j < in; ++j) h[j * in + i] = h[i * in + j] /= static_cast<double>(std::max<std::size_t>(rows, 1));
    if (h[i * in + i] == 0.0) {  // an input that never fires: nothing to fit
      h[i * in + i] = 1.0;
      for (std::size_t j = 0; j < out; ++j) w[j * in + i] = 0.0f;
    }
    mean += h[i * in + i];
  }
  const double damp = o.damp * mean / static_cast<double>(in);
  for (std::size_t i = 0; i < in; ++i) h[i * in + i] += damp;
  // Act-order: position k quantizes input column order[k].
  std::vector<std::size_t> order(in);
  for (std::size_t i = 0; i < in; ++i) order[i] = i;
  if (o.act_order) {
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return h[a * in + a] > h[b * in + b]; });
    std::vector<double> permuted(in * in);
    for (std::size_t a = 0; a < in; ++a)
      for (std::size_t b = 0; b < in; ++b) permuted[a * in + b] = h[order[a] * in + order[b]];
    h.swap(permuted);
  }
  const std::vector<double> u = inverse_hessian_factor(h, in);

  const std::size_t groups = (in + o.group - 1) / o.group;
  squint::detail::group_codes q{std::vector<std::int8_t>(out * in), std::vector<float>(out * groups)};
  const auto group_scale = [&](const auto& values, std::size_t first, std::size_t stride) {
    float amax = 0.0f;
    for (std::size_t t = 0; t < o.group && first + t < in; ++t) {
      const auto v = static_cast<float>(values[(first + t) * stride]);
      if (std::isfinite(v)) amax = std::max(amax, std::fabs(v));
    }
    return amax > 0.0f ? amax / 7.0f : 1.0f;
  };
  if (o.act_order)  // static groups: from the float weights, before any update
    for (std::size_t j = 0; j < out; ++j)
      for (std::size_t g = 0; g < groups; ++g) q.scales[j * groups + g] = group_scale(&w[j * in], g * o.group, 1);
  // The weights in quantization order (row j, position k), updated as the columns go.
  std::vector<double> current(out * in);
  for (std::size_t j = 0; j < out; ++j)
    for (std::size_t k = 0; k < in; ++k) current[j * in + k] = w[j * in + order[k]];
  // Whole groups per block, so that a group's first column sees every earlier column's update.
  const std::size_t block = std::max<std::size_t>(1, o.block / o.group) * o.group;
  std::vector<double> err(block);
  for (std::size_t b0 = 0; b0 < in; b0 += block) {
    const std::size_t b1 = std::min(in, b0 + block);
    for (std::size_t j = 0; j < out; ++j) {
      double* row = &current[j * in];
      for (std::size_t k = b0; k < b1; ++k) {
        const std::size_t i = order[k], g = i / o.group;
        if (!o.act_order && i % o.group == 0) q.scales[j * groups + g] = group_scale(row, k, 1);
        const float scale = q.scales[j * groups + g];
        const auto code = reference::quantize_value(static_cast<float>(row[k]), {scale, 0}, {-7, 7});
        q.codes[j * in + i] = static_cast<std::int8_t>(code);
        const double e = (row[k] - static_cast<double>(code) * scale) / u[k * in + k];
        err[k - b0] = e;
        for (std::size_t t = k + 1; t < b1; ++t) row[t] -= e * u[k * in + t];
      }
      // The block's errors on the columns after it, row by row of U.
      for (std::size_t k = b0; k < b1; ++k) {
        const double e = err[k - b0];
        if (e == 0.0) continue;
        for (std::size_t t = b1; t < in; ++t) row[t] -= e * u[k * in + t];
      }
    }
  }
  return q;
}

}  // namespace detail

/// Quantizes the float MLP `layers` to int4 with GPTQ on `rows` calibration inputs x
/// (rows x layers[0].in) and builds it (options.mode). Also reports each layer's output error
/// with RTN codes for comparison.
/// @throws squint::error on an empty model, layers that do not chain, a mode other than the
///         int4 ones, a group that is not a positive multiple of 16, damp < 0, block 0, no rows
///         or null x.
inline gptq_result gptq(const std::vector<float_layer>& layers, const float* x, std::size_t rows,
                        const gptq_options& o = {}) {
  squint::detail::require(!layers.empty(), "nn::gptq: the model has no layers");
  squint::detail::require(o.mode == precision::int4_weight_only || o.mode == precision::int4_dynamic, "nn::gptq: mode ",
                          to_string(o.mode), " is not int4_weight_only or int4_dynamic");
  squint::detail::require(o.group > 0 && o.group % 16 == 0, "nn::gptq: group ", o.group,
                          " is not a positive multiple of 16");
  squint::detail::require(o.damp >= 0.0, "nn::gptq: damp ", o.damp, " is negative");
  squint::detail::require(o.block > 0, "nn::gptq: block must be positive");
  squint::detail::require(rows > 0 && x != nullptr, "nn::gptq: needs calibration rows (x is ",
                          x ? "set" : "null", ", rows ", rows, ")");
  for (std::size_t l = 0; l < layers.size(); ++l) {
    const float_layer& f = layers[l];
    squint::detail::require(f.out > 0 && f.in > 0 && f.weights.size() == f.out * f.in, "nn::gptq: layer ", l, " has ",
                            f.weights.size(), " weights for ", f.out, " x ", f.in);
    squint::detail::require(f.bias.empty() || f.bias.size() == f.out, "nn::gptq: layer ", l, " has ", f.bias.size(),
                            " biases for ", f.out, " outputs");
    squint::detail::require(l == 0 || layers[l - 1].out == f.in, "nn::gptq: layer ", l, " takes ", f.in,
                            " inputs but layer ", l - 1, " gives ", layers[l - 1].out);
  }
  const std::size_t n = std::min(rows, o.max_rows);
  gptq_result result;
  std::vector<float> input(x, x + n * layers[0].in), output;
  for (std::size_t l = 0; l < layers.size(); ++l) {
    const float_layer& f = layers[l];
    const squint::detail::group_codes codes = detail::gptq_codes(f.weights, f.out, f.in, input.data(), n, o);
    linear_options lo;
    lo.mode = o.mode;
    lo.act = f.act;
    lo.kernels = o.kernels;
    linear layer = linear::from_int4(codes.codes.data(), f.out, f.in, f.in, o.group, codes.scales,
                                     f.bias.empty() ? nullptr : f.bias.data(), lo);
    // Both errors on this layer's calibration input, against its float weights.
    gptq_layer report{l, 0.0, 0.0};
    std::vector<float> reference(n * f.out), y(n * f.out);
    const packed_float_weights packed = packed_float_weights::from_float(f.weights.data(), f.out, f.in, f.in);
    gemm_float(input.data(), n, f.in, packed, f.bias.empty() ? nullptr : f.bias.data(), f.act == activation::relu,
               reference.data(), f.out, {}, o.kernels.gemm_float);
    lo.int4_group = o.group;
    const linear rtn(f.weights.data(), f.out, f.in, f.in, f.bias.empty() ? nullptr : f.bias.data(), lo);
    auto mse_of = [&](const linear& candidate) {
      candidate.forward(input.data(), n, y.data());
      double sum = 0.0;
      for (std::size_t i = 0; i < y.size(); ++i) sum += (static_cast<double>(y[i]) - reference[i]) * (y[i] - reference[i]);
      return sum / static_cast<double>(y.size());
    };
    report.mse_rtn = mse_of(rtn);
    report.mse_gptq = mse_of(layer);
    result.layers.push_back(report);
    // The next layer calibrates on this quantized layer's output.
    output.assign(n * f.out, 0.0f);
    layer.forward(input.data(), n, output.data());
    input.swap(output);
    result.model.add(std::move(layer));
  }
  return result;
}

}  // namespace nn
SQUINT_NAMESPACE_END

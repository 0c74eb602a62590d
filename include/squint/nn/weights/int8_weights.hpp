// SPDX-License-Identifier: Apache-2.0
// nn/weights/int8_weights.hpp: int8 codes per output channel (symmetric, narrow range by default) packed
// for the exact integer GEMM; the activations arrive as uint8 codes (dynamic or static).
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>

#include "squint/gemm/gemm.hpp"
#include "squint/nn/weights/form.hpp"
#include "squint/nn/weights/int8_codes.hpp"

SQUINT_NAMESPACE_BEGIN
namespace nn {

namespace detail {

/// The uint8 requantized output stage of an int8 product (a GEMM, or a convolution's depthwise
/// kernels) of depth `depth`: multipliers a_scale * w_scale[j] / y.scale; the float bias in
/// accumulator units, round(bias[j] / (a_scale * w_scale[j])) half to even and saturated to
/// int32 (ONNX QLinearConv's int32 bias), joining the kernels' column terms unless their sum
/// could overflow; ReLU as the clamp at the zero point; in the micro-kernels' registers where
/// they can. Holds what stage() points to: neither copied nor moved.
class requantized_output {
 public:
  requantized_output(float a_scale, const std::vector<float>& w_scale, const float* bias, std::size_t depth,
                     qparams y_params, bool relu, std::uint8_t* y, std::size_t ldy,
                     squint::detail::requantize_fn<std::uint8_t> requantize)
      : multiplier_(squint::detail::output_multipliers("nn: requantized output", a_scale, w_scale, y_params.scale)) {
    if (bias) {
      const squint::detail::nearest_rounding_scope rounding;
      for (std::size_t j = 0; j < w_scale.size(); ++j) {
        const double v = std::nearbyint(static_cast<double>(bias[j]) / (static_cast<double>(a_scale) * w_scale[j]));
        bias_.push_back(static_cast<std::int32_t>(std::clamp<double>(v, std::numeric_limits<std::int32_t>::min(),
                                                                     std::numeric_limits<std::int32_t>::max())));
      }
    }
    const bool fold = bias_.empty() || squint::detail::bias_fits_offsets(bias_.data(), bias_.size(), depth);
    out_ = {multiplier_.data(), y_params.zero_point, relu, y, ldy, fold ? nullptr : bias_.data(),
            std::numeric_limits<std::int32_t>::max(), requantize};
    stage_ = {&squint::detail::code_output<std::uint8_t>::finish, &out_, fold && !bias_.empty() ? bias_.data() : nullptr,
              nullptr, fold ? &out_ : nullptr};
  }
  requantized_output(const requantized_output&) = delete;
  requantized_output& operator=(const requantized_output&) = delete;

  const squint::detail::output_stage& stage() const { return stage_; }

 private:
  std::vector<float> multiplier_;
  std::vector<std::int32_t> bias_;
  squint::detail::code_output<std::uint8_t> out_{};
  squint::detail::output_stage stage_;
};

}  // namespace detail

class int8_weights final : public weight_form {
 public:
  static constexpr std::uint64_t element_bits = 8;

  int8_weights(packed_weights packed, const backend& kernels)
      : weight_form(packed.n(), packed.k()), packed_(std::move(packed)), kernels_(kernels) {}
  static weights_ptr pack(const float* w, std::size_t out, std::size_t in, std::size_t ldw, const pack_options& options,
                          const backend& kernels) {
    return std::make_shared<int8_weights>(packed_weights::from_float(w, out, in, ldw, options.int8_spec()), kernels);
  }
  static weights_ptr load(detail::reader& r, std::size_t out, std::size_t in, const backend& kernels) {
    const detail::int8_codes c = detail::read_int8_codes(r, out, in);
    return std::make_shared<int8_weights>(packed_weights::from_int8(c.codes, out, in, in, c.scale, {0}), kernels);
  }

  const packed_weights& packed() const { return packed_; }
  std::size_t bytes() const override { return packed_.bytes(); }
  std::vector<float> values() const override { return detail::int8_values(packed_, packed_.scales().data()); }
  void save(detail::writer& w) const override { detail::save_int8_codes(packed_, packed_.scales().data(), w); }

  bool takes_codes() const override { return true; }
  const packed_weights* int8_codes() const override { return &packed_; }
  void run_quantized(const quantized_input& x, std::size_t m, const epilogue& e, float* y,
                     const parallelism& par) const override {
    // The float output stage runs on each finished block of the GEMM (squint::gemm's).
    squint::detail::float_output stage{&x.params[0].scale, false, packed_.scales().data(), e.bias, e.relu, y, out()};
    stage.stage = kernels_.float_stage;
    std::vector<float> scales;
    std::vector<std::int32_t> zero_points;
    std::int32_t zero_point = x.params[0].zero_point;
    if (x.per_row) {
      for (std::size_t i = 0; i < m; ++i) scales.push_back(x.params[i].scale), zero_points.push_back(x.params[i].zero_point);
      stage.a_scales = scales.data();
      stage.per_row = true;
      stage.row_zero_points = zero_points.data();
      stage.column_sums = packed_.column_sums();
      zero_point = 0;
    }
    const squint::detail::output_stage finish{&squint::detail::float_output::finish, &stage, nullptr, &stage};
    kernels_.gemm_u8(x.codes, m, in(), zero_point, packed_, nullptr, 0, par, &finish);
  }
  void run_requantized(const quantized_input& x, std::size_t m, const epilogue& e, qparams y_params, std::uint8_t* y,
                       const parallelism& par) const override {
    squint::detail::require(!x.per_row, "nn: a requantized output needs one input qparams for all rows");
    const detail::requantized_output stage(x.params[0].scale, packed_.scales(), e.bias, in(), y_params, e.relu, y,
                                           out(), kernels_.requantize_u8);
    kernels_.gemm_u8(x.codes, m, in(), x.params[0].zero_point, packed_, nullptr, 0, par, &stage.stage());
  }
  void accumulate(const quantized_input& x, std::size_t m, std::int32_t* acc, const parallelism& par) const override {
    kernels_.gemm_u8(x.codes, m, in(), x.per_row ? 0 : x.params[0].zero_point, packed_, acc, out(), par, nullptr);
    if (!x.per_row) return;
    // Weights are symmetric, so a row's zero point only subtracts zp * colsum_j (wrapping 32-bit
    // arithmetic: the exact result fits int32 because in <= gemm_max_k).
    std::vector<std::int32_t> zero_points(m);
    for (std::size_t i = 0; i < m; ++i) zero_points[i] = x.params[i].zero_point;
    squint::detail::subtract_outer(zero_points.data(), packed_.column_sums(), m, out(), acc, out());
  }

 private:
  packed_weights packed_;
  backend kernels_;
};

}  // namespace nn
SQUINT_NAMESPACE_END

// SPDX-License-Identifier: Apache-2.0
// nn/linear.hpp: a fully connected layer y = x . W^T + b (float in, float out) in any precision.
//
// The op only: its weights are a stored form (nn/weights/: FP32, FP16, weight-only
// INT8, INT8 for the integer GEMM) chosen by the precision's recipe, and its activations reach
// that form as floats or as uint8 codes quantized per call (dynamic, like PyTorch's
// quantize_dynamic) or with qparams frozen after calibration (static). INT8 weights are
// per-output-channel symmetric, narrow range; activations uint8 affine, so the int32 stage is
// the exact GEMM of squint/gemm. Layers are immutable after building (static ones after
// freeze()), so forward() may run from several threads at once.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "squint/nn/backend.hpp"
#include "squint/nn/input_quantizer.hpp"
#include "squint/nn/observer.hpp"
#include "squint/nn/weights/recipes.hpp"
#include "squint/quantize.hpp"

SQUINT_NAMESPACE_BEGIN
namespace nn {

/// The activation fused into a layer's output.
enum class activation : std::uint8_t { none, relu };

struct linear_options {
  /// Requested precision; `automatic` is resolved by the backend when the layer is built.
  precision mode = precision::automatic;
  activation act = activation::none;
  /// int8_dynamic: one set of activation qparams per row of x (per token) instead of per call.
  bool per_row = false;
  /// int8_static: the observer calibration feeds (min-max when none is given; with
  /// reduce_range its quant_spec must have reduce_range too).
  std::optional<observer> input_observer = std::nullopt;
  /// The kernels the layer runs on.
  backend kernels = native_backend();
  /// int8_dynamic / int8_static: 7-bit activation codes, [0, 127] (PyTorch's x86 qconfigs):
  /// exact on the faster 7-bit GEMM kernel of CPUs without VNNI, one bit less resolution.
  bool reduce_range = false;
  /// The int8 precisions: weights on [-127, 127] with amax / 127 (default) or on [-128, 127]
  /// with amax / 127.5 (PyTorch's divisor).
  int8_weight_range weight_range = int8_weight_range::narrow;
  /// int4_weight_only and int4_dynamic: inputs per weight scale (a multiple of 16; a convolution's inputs are
  /// taps x group channels).
  std::size_t int4_group = 32;
  /// int4_weight_only and int4_dynamic: group scales kept as fp32 or as fp16 (half their bytes;
  /// see group_scale_format).
  group_scale_format int4_scales = group_scale_format::fp32;
};

namespace detail {
struct linear_access;

/// The int4 form of `mode` (int4_dynamic or int4_weight_only) holding codes (n x k, row stride
/// ldw, each in [-8, 7]) and their scales (n x ceil(k / group), row-major) exactly.
/// @throws squint::error as packed_int4_weights::from_int4 / packed_w4a8_weights::from_int4.
inline weights_ptr int4_form(precision mode, const std::int8_t* codes, std::size_t n, std::size_t k, std::size_t ldw,
                             std::size_t group, const std::vector<float>& scale, group_scale_format format,
                             const backend& kernels) {
  if (mode == precision::int4_dynamic)
    return std::make_shared<int4_dynamic_weights>(
        packed_w4a8_weights::from_int4(codes, n, k, ldw, group, scale, format), kernels);
  return std::make_shared<int4_weight_only_weights>(
      packed_int4_weights::from_int4(codes, n, k, ldw, group, scale, format), kernels);
}
}  // namespace detail

class linear {
 public:
  /// Builds the layer from float weights w (out x in, row stride ldw >= in) and bias (out
  /// entries, or null for none), packing them in the stored form of options.mode.
  /// @throws squint::error on null weights with elements, ldw < in, or zero sizes.
  linear(const float* w, std::size_t out, std::size_t in, std::size_t ldw, const float* bias,
         const linear_options& options = {})
      : out_(out),
        in_(in),
        recipe_(&recipe_for(options.kernels.resolve(options.mode))),
        act_(options.act),
        per_row_(options.per_row),
        kernels_(options.kernels) {
    squint::detail::require(out > 0 && in > 0, "linear: out (", out, ") and in (", in, ") must be positive");
    squint::detail::require(w != nullptr, "linear: argument 'w' is null");
    squint::detail::require(ldw >= in, "linear: ldw ", ldw, " is smaller than in ", in);
    const recipe& r = *recipe_;
    squint::detail::require(in <= gemm_max_k || r.input == input_policy::floating, "linear: in = ", in,
                            " exceeds gemm_max_k = ", gemm_max_k, " for an int8 GEMM");
    bias_ = bias ? std::vector<float>(bias, bias + out) : std::vector<float>();
    weights_ = r.pack(w, out, in, ldw, pack_options{options.weight_range, options.int4_group, options.int4_scales}, kernels_);
    input_ = input_quantizer(r.input, options.input_observer, options.reduce_range);
    // The calibration pass computes in float, as the model it measures.
    if (input_.calibrating()) calibration_weights_ = float_weights::pack(w, out, in, ldw, {}, kernels_);
  }

  /// Builds an int8_static layer from what another tool quantized: int8 weight codes (out x in,
  /// row stride ldw >= in), one scale per output channel (zero point 0), the bias (out entries
  /// or null) and the frozen activation qparams (uint8; [0, 127] with options.reduce_range). The
  /// layer runs exactly those numbers (a QAT model's convert(), PyTorch's converted Linear).
  /// options.mode, input_observer and weight_range do not apply.
  /// @throws squint::error on zero sizes, null codes, ldw < in, in > gemm_max_k, scales not
  ///         finite and > 0 or not one per channel, or qparams invalid for the codes.
  static linear from_int8(const std::int8_t* codes, std::size_t out, std::size_t in, std::size_t ldw,
                          const std::vector<float>& scale, const float* bias, qparams input,
                          const linear_options& options = {}) {
    squint::detail::require(out > 0 && in > 0, "linear::from_int8: out (", out, ") and in (", in, ") must be positive");
    squint::detail::require(codes != nullptr, "linear::from_int8: argument 'codes' is null");
    squint::detail::require(ldw >= in, "linear::from_int8: ldw ", ldw, " is smaller than in ", in);
    squint::detail::require(in <= gemm_max_k, "linear::from_int8: in = ", in, " exceeds gemm_max_k = ", gemm_max_k);
    squint::detail::require(scale.size() == out, "linear::from_int8: ", scale.size(), " scales for ", out, " channels");
    linear l;
    l.out_ = out;
    l.in_ = in;
    l.recipe_ = &recipe_for(precision::int8_static);
    l.act_ = options.act;
    l.kernels_ = options.kernels;
    l.input_ = input_quantizer::frozen_at(input, options.reduce_range);
    l.weights_ = std::make_shared<int8_weights>(packed_weights::from_int8(codes, out, in, ldw, scale, {0}), l.kernels_);
    l.bias_ = bias ? std::vector<float>(bias, bias + out) : std::vector<float>();
    return l;
  }

  /// Builds an int4_weight_only or int4_dynamic layer (options.mode) from int4 codes (out x
  /// in, row stride ldw >= in, each in [-8, 7]) and their scales (out x ceil(in / group),
  /// row-major): what GPTQ, AWQ or another tool produced, run exactly (from_float would requantize).
  /// @throws squint::error on zero sizes, another mode, or what packed_int4_weights::from_int4
  ///         refuses.
  static linear from_int4(const std::int8_t* codes, std::size_t out, std::size_t in, std::size_t ldw,
                          std::size_t group, const std::vector<float>& scale, const float* bias,
                          const linear_options& options) {
    squint::detail::require(out > 0 && in > 0, "linear::from_int4: out (", out, ") and in (", in, ") must be positive");
    squint::detail::require(options.mode == precision::int4_weight_only || options.mode == precision::int4_dynamic,
                            "linear::from_int4: mode ", to_string(options.mode),
                            " is not int4_weight_only or int4_dynamic");
    linear l;
    l.out_ = out;
    l.in_ = in;
    l.recipe_ = &recipe_for(options.mode);
    l.act_ = options.act;
    l.kernels_ = options.kernels;
    l.weights_ = detail::int4_form(options.mode, codes, out, in, ldw, group, scale, options.int4_scales, l.kernels_);
    l.bias_ = bias ? std::vector<float>(bias, bias + out) : std::vector<float>();
    return l;
  }

  std::size_t in_features() const { return in_; }
  std::size_t out_features() const { return out_; }
  /// The precision the layer runs in (never `automatic`).
  precision mode() const { return recipe_->mode; }
  activation act() const { return act_; }
  bool per_row() const { return per_row_; }
  /// Whether the activation codes are 7-bit ([0, 127]; int8_dynamic / int8_static).
  bool reduce_range() const { return input_.reduce_range(); }
  const backend& kernels() const { return kernels_; }
  /// The stored weights (shared by copies of the layer).
  const weight_form& stored_weights() const { return *weights_; }
  /// Frozen activation qparams of an int8_static layer.
  std::optional<qparams> input_qparams() const { return input_.frozen(); }
  /// Whether forward() can run: true except for an int8_static layer not yet frozen.
  bool ready() const { return input_.ready(); }
  /// Name of the observer of an int8_static layer ("" otherwise).
  std::string observer_name() const { return input_.observer_name(); }

  /// The bias (empty when the layer has none).
  const std::vector<float>& bias() const { return bias_; }

  /// W (out x in, row-major) as the layer multiplies by it: the float weights for fp32, the
  /// fp16 values for fp16, code * channel scale for the int8 precisions.
  std::vector<float> weights() const { return weights_->values(); }

  /// Bytes the layer needs to run: weights in their stored form, their per-channel terms and
  /// the bias (a static layer's float copy, dropped at freeze(), is not counted).
  std::size_t weight_bytes() const { return weights_->bytes() + bias_.size() * sizeof(float); }

  /// y (m x out, dense) = act(x . W^T + b) for x (m x in, dense).
  /// @throws squint::error on null pointers with elements, or an int8_static layer that has not
  ///         been frozen.
  void forward(const float* x, std::size_t m, float* y, const parallelism& par = {}) const {
    check_io("linear::forward", x, m, y);
    squint::detail::require(ready(), "linear::forward: int8_static layer is not calibrated; feed calibrate() and call "
                            "freeze() (or set_input_qparams()) first");
    if (m == 0) return;
    if (input() == input_policy::floating) {
      weights_->run(x, m, output(), y, par);
      return;
    }
    std::vector<std::uint8_t> codes(m * in_);
    std::vector<qparams> rows(row_groups(m));
    quantize_input(x, m, codes.data(), rows.data());
    weights_->run_quantized({codes.data(), rows.data(), per_row_zero_points(m)}, m, output(), y, par);
  }

  /// The integer stage of an int8 layer, for verification and debugging: the uint8 codes of x
  /// (m x in), the activation qparams (row_params: m entries with per_row, else 1), and the exact int32
  /// accumulators acc[i][j] = sum_k (codes[i][k] - zp) * W_q[j][k] (m x out).
  /// @throws squint::error on a layer that is not int8_dynamic or a frozen int8_static one.
  void accumulate(const float* x, std::size_t m, std::uint8_t* codes, qparams* row_params, std::int32_t* acc,
                  const parallelism& par = {}) const {
    squint::detail::require(input() != input_policy::floating && ready(),
                            "linear::accumulate: needs an int8_dynamic or frozen int8_static layer, this one is ",
                            to_string(mode()));
    check_io("linear::accumulate", x, m, acc);
    quantize_input(x, m, codes, row_params);
    weights_->accumulate({codes, row_params, per_row_zero_points(m)}, m, acc, par);
  }

  /// The full-integer step of a frozen int8_static layer: y (m x out uint8 codes with
  /// y_params) from x (m x in uint8 codes with input_qparams()). The product and the bias (in
  /// accumulator units, see weight_form::run_requantized) are exact; one requantization follows
  /// (ReLU clamps at y's zero point).
  /// @throws squint::error on a layer that is not a frozen int8_static one, null pointers with
  ///         rows, or y_params invalid for uint8.
  void forward_codes(const std::uint8_t* x, std::size_t m, qparams y_params, std::uint8_t* y,
                     const parallelism& par = {}) const {
    const qparams p = integer_input("linear::forward_codes", x, m, y);
    validate(y_params, full_range(dtype::uint8), "linear::forward_codes: y_params");
    if (m > 0) weights_->run_requantized({x, &p, false}, m, output(), y_params, y, par);
  }
  /// The same with float output, act(x . W^T + b), as forward() computes it from the codes (a
  /// full-integer model's last layer).
  /// @throws squint::error as the requantizing overload.
  void forward_codes(const std::uint8_t* x, std::size_t m, float* y, const parallelism& par = {}) const {
    const qparams p = integer_input("linear::forward_codes", x, m, y);
    if (m > 0) weights_->run_quantized({x, &p, false}, m, output(), y, par);
  }

  /// Calibration step of an int8_static layer: shows x to the observer and writes the float
  /// output (y may be null when only observing).
  /// @throws squint::error on a layer that is not an unfrozen int8_static one.
  void calibrate(const float* x, std::size_t m, float* y = nullptr) {
    squint::detail::require(x != nullptr || m == 0, "linear::calibrate: argument 'x' is null with ", m, " rows");
    input_.observe(tensor_view<const float>(x, shape{m, in_}), "linear");
    if (y && m > 0) calibration_weights_->run(x, m, output(), y, {});
  }

  /// Ends calibration: freezes the observer's qparams and drops the float weights.
  /// @throws squint::error if the layer is not an unfrozen int8_static one or saw no data.
  void freeze() {
    input_.freeze("linear");
    calibration_weights_.reset();
  }

  /// Freezes an int8_static layer with known activation qparams (uint8 range).
  /// @throws squint::error if the layer is not int8_static or p is invalid for uint8.
  void set_input_qparams(qparams p) {
    input_.set(p, "linear");
    calibration_weights_.reset();
  }

 private:
  friend struct detail::linear_access;
  linear() = default;

  input_policy input() const { return input_.policy(); }
  epilogue output() const { return {bias_.empty() ? nullptr : bias_.data(), act_ == activation::relu}; }

  template <class TX, class T>
  void check_io(const char* function, const TX* x, std::size_t m, T* y) const {
    squint::detail::require(x != nullptr || m == 0, function, ": argument 'x' is null with ", m, " rows");
    squint::detail::require(y != nullptr || m == 0, function, ": output is null with ", m, " rows");
  }

  /// The frozen input qparams, after checking a full-integer call's layer and pointers.
  template <class T>
  qparams integer_input(const char* function, const std::uint8_t* x, std::size_t m, const T* y) const {
    check_io(function, x, m, y);
    squint::detail::require(input() == input_policy::calibrated && ready(), function,
                            ": needs a frozen int8_static layer, this one is ", to_string(mode()),
                            ready() ? "" : " (not frozen)");
    return *input_.frozen();
  }

  /// The uint8 codes of x and their qparams (one per row with per_row, else one): frozen
  /// (int8_static) or from each group's own range (int8_dynamic).
  void quantize_input(const float* x, std::size_t m, std::uint8_t* codes, qparams* row_params) const {
    const squint::detail::nearest_rounding_scope rounding;
    const std::size_t groups = row_groups(m);
    const std::size_t rows_per_group = groups == m ? 1 : m;
    for (std::size_t g = 0; g < groups; ++g)
      row_params[g] = input_.quantize(x + g * rows_per_group * in_, rows_per_group * in_,
                                      codes + g * rows_per_group * in_, kernels_);
  }

  /// Whether rows carry zero points of their own (per_row with several rows): the GEMM then runs
  /// with zero point 0 and each row's term comes off afterwards.
  bool per_row_zero_points(std::size_t m) const { return row_groups(m) == m && m > 1; }

  std::size_t row_groups(std::size_t m) const {
    return per_row_ && input() == input_policy::dynamic ? m : std::size_t{1};
  }

  std::size_t out_ = 0, in_ = 0;
  const recipe* recipe_ = nullptr;  // the precision: its form, input policy and file code
  activation act_ = activation::none;
  bool per_row_ = false;
  backend kernels_ = native_backend();
  std::vector<float> bias_;
  weights_ptr weights_, calibration_weights_;
  input_quantizer input_;
};

}  // namespace nn
SQUINT_NAMESPACE_END

// SPDX-License-Identifier: Apache-2.0
// nn/conv2d.hpp: a 2-D convolution layer (float NHWC in, float NHWC out) in any precision.
//
// The op only, as nn::linear: each group's weights (out_channels / groups x taps * group
// channels, OHWI) are a stored form from the precision's recipe (nn/weights/), and the layer
// feeds that form im2col tiles of its input (conv/im2col.hpp): float tiles for the float forms,
// uint8 tiles of the image quantized once per call for the integer ones (the activation policy,
// nn/input_quantizer.hpp: dynamic or calibrated). So every weight form and every activation
// policy a linear layer has, a convolution has too, with no code of its own per form.
// BatchNorm folds into the weights and bias before the layer is built (fold_batch_norm).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "squint/conv/im2col.hpp"
#include "squint/conv/pack.hpp"
#include "squint/nn/input_quantizer.hpp"
#include "squint/nn/linear.hpp"

SQUINT_NAMESPACE_BEGIN
namespace nn {

struct conv2d_options {
  /// Requested precision; `automatic` is resolved by the backend when the layer is built.
  precision mode = precision::automatic;
  activation act = activation::none;
  /// int8_static: the observer calibration feeds (min-max when none is given; with
  /// reduce_range its quant_spec must have reduce_range too).
  std::optional<observer> input_observer = std::nullopt;
  /// The kernels the layer runs on.
  backend kernels = native_backend();
  /// int8_dynamic / int8_static: 7-bit activation codes (see linear_options::reduce_range).
  bool reduce_range = false;
  /// The int8 precisions' weight range and divisor (see linear_options::weight_range).
  int8_weight_range weight_range = int8_weight_range::narrow;
  /// int4_weight_only and int4_dynamic: inputs per weight scale (a multiple of 16; a convolution's inputs are
  /// taps x group channels).
  std::size_t int4_group = 32;
  /// int4_weight_only and int4_dynamic: group scales kept as fp32 or as fp16.
  group_scale_format int4_scales = group_scale_format::fp32;

  /// The same choices as a linear layer's (per_row, which convolutions lack, aside).
  static conv2d_options like(const linear_options& o) {
    conv2d_options c;
    c.mode = o.mode;
    c.act = o.act;
    c.input_observer = o.input_observer;
    c.kernels = o.kernels;
    c.reduce_range = o.reduce_range;
    c.weight_range = o.weight_range;
    c.int4_group = o.int4_group;
    c.int4_scales = o.int4_scales;
    return c;
  }
};

/// Folds an inference BatchNorm (per output channel: gamma, beta, running mean and variance)
/// into a convolution's or linear layer's weights (OIHW or OHWI, out_channels rows) and bias:
/// w *= gamma / sqrt(var + eps), b = (b - mean) * gamma / sqrt(var + eps) + beta. `bias` is
/// resized to out_channels (a missing bias is 0).
/// @throws squint::error on parameter vectors of the wrong size or a negative variance.
inline void fold_batch_norm(std::vector<float>& weights, std::vector<float>& bias, const std::vector<float>& gamma,
                            const std::vector<float>& beta, const std::vector<float>& mean,
                            const std::vector<float>& var, float eps = 1e-5f) {
  const std::size_t out = gamma.size();
  squint::detail::require(out > 0 && beta.size() == out && mean.size() == out && var.size() == out,
                          "fold_batch_norm: gamma, beta, mean and var must have one entry per output channel");
  squint::detail::require(weights.size() % out == 0, "fold_batch_norm: ", weights.size(), " weights for ", out,
                          " output channels");
  squint::detail::require(bias.empty() || bias.size() == out, "fold_batch_norm: ", bias.size(), " biases for ", out,
                          " output channels");
  for (float v : var) squint::detail::require(v >= 0.0f, "fold_batch_norm: negative variance ", v);
  bias.resize(out, 0.0f);
  const std::size_t per_channel = weights.size() / out;
  for (std::size_t o = 0; o < out; ++o) {
    const float factor = gamma[o] / std::sqrt(var[o] + eps);
    for (std::size_t i = 0; i < per_channel; ++i) weights[o * per_channel + i] *= factor;
    bias[o] = (bias[o] - mean[o]) * factor + beta[o];
  }
}

namespace detail {
struct conv2d_access;
}

class conv2d {
 public:
  /// Builds the layer from float weights w (`layout`, filter `f`) and bias (out_channels
  /// entries, or null), packing each group in the stored form of options.mode.
  /// @throws squint::error on null weights, bad filter sizes or parameters (squint::resolve), or
  ///         an int8 precision whose depth (taps x group channels) exceeds gemm_max_k.
  conv2d(const float* w, const filter_shape& f, filter_layout layout, const conv2d_params& params, const float* bias,
         const conv2d_options& options = {})
      : filter_(f),
        params_(params),
        recipe_(&recipe_for(options.kernels.resolve(options.mode))),
        act_(options.act),
        kernels_(options.kernels),
        input_(recipe_->input, options.input_observer, options.reduce_range) {
    squint::detail::check_filter("nn::conv2d", f, params);
    squint::detail::require(w != nullptr, "nn::conv2d: argument 'w' is null");
    const std::size_t depth = f.taps() * f.group_channels, ocg = f.out_channels / params.groups;
    squint::detail::require(depth <= gemm_max_k || recipe_->input == input_policy::floating, "nn::conv2d: depth ",
                            depth, " exceeds gemm_max_k = ", gemm_max_k, " for an int8 GEMM");
    bias_ = bias ? std::vector<float>(bias, bias + f.out_channels) : std::vector<float>();
    const std::vector<float> ohwi = squint::detail::to_ohwi(w, f, layout);
    for (std::size_t k = 0; k < params.groups; ++k) {
      const float* wk = ohwi.data() + k * ocg * depth;
      groups_.push_back(
          recipe_->pack(wk, ocg, depth, depth, pack_options{options.weight_range, options.int4_group, options.int4_scales}, kernels_));
      // The calibration pass computes in float, as the model it measures.
      if (input_.calibrating()) calibration_groups_.push_back(float_weights::pack(wk, ocg, depth, depth, {}, kernels_));
    }
    use_depthwise_kernel();
  }

  /// Builds an int8_static layer from what another tool quantized (PyTorch's converted Conv2d, an
  /// ONNX QDQ model): int8 filter codes (`layout`), one scale per output channel (zero point 0),
  /// the bias (out_channels entries or null) and the frozen activation qparams (uint8; [0, 127]
  /// with options.reduce_range). The layer runs exactly those numbers. options.mode,
  /// input_observer and weight_range do not apply.
  /// @throws squint::error on null codes, bad filter sizes or parameters, a depth above
  ///         gemm_max_k, scales not finite and > 0 or not one per output channel, or qparams
  ///         invalid for the codes.
  static conv2d from_int8(const std::int8_t* codes, const filter_shape& f, filter_layout layout,
                          const conv2d_params& params, const std::vector<float>& scale, const float* bias,
                          qparams input, const conv2d_options& options = {}) {
    squint::detail::check_filter("nn::conv2d::from_int8", f, params);
    squint::detail::require(codes != nullptr, "nn::conv2d::from_int8: argument 'codes' is null");
    const std::size_t depth = f.taps() * f.group_channels, ocg = f.out_channels / params.groups;
    squint::detail::require(depth <= gemm_max_k, "nn::conv2d::from_int8: depth ", depth, " exceeds gemm_max_k = ",
                            gemm_max_k);
    squint::detail::require(scale.size() == f.out_channels, "nn::conv2d::from_int8: ", scale.size(), " scales for ",
                            f.out_channels, " output channels");
    squint::detail::check_channel_scales("nn::conv2d::from_int8", scale, f.out_channels);
    conv2d c;
    c.filter_ = f;
    c.params_ = params;
    c.recipe_ = &recipe_for(precision::int8_static);
    c.act_ = options.act;
    c.kernels_ = options.kernels;
    c.input_ = input_quantizer::frozen_at(input, options.reduce_range);
    c.bias_ = bias ? std::vector<float>(bias, bias + f.out_channels) : std::vector<float>();
    const std::vector<std::int8_t> ohwi = squint::detail::to_ohwi(codes, f, layout);
    for (std::size_t k = 0; k < params.groups; ++k) {
      const std::vector<float> group_scale(scale.begin() + static_cast<std::ptrdiff_t>(k * ocg),
                                           scale.begin() + static_cast<std::ptrdiff_t>((k + 1) * ocg));
      c.groups_.push_back(std::make_shared<int8_weights>(
          packed_weights::from_int8(ohwi.data() + k * ocg * depth, ocg, depth, depth, group_scale, {0}), c.kernels_));
    }
    c.use_depthwise_kernel();
    return c;
  }

  /// Builds an int4_weight_only or int4_dynamic layer (options.mode) from int4 filter codes
  /// (`layout`, each in [-8, 7]) and their scales: one per output channel and group of `group`
  /// depths of its filter (taps x group channels, in OHWI order), out_channels x
  /// ceil(depth / group), row-major. The layer runs exactly those numbers (the constructor
  /// would requantize); what QAT or another tool produced. options.int4_group does not apply.
  /// @throws squint::error on null codes, bad filter sizes or parameters, another mode, a wrong
  ///         scale count, or what packed_int4_weights::from_int4 refuses.
  static conv2d from_int4(const std::int8_t* codes, const filter_shape& f, filter_layout layout,
                          const conv2d_params& params, std::size_t group, const std::vector<float>& scale,
                          const float* bias, const conv2d_options& options) {
    squint::detail::check_filter("nn::conv2d::from_int4", f, params);
    squint::detail::require(codes != nullptr, "nn::conv2d::from_int4: argument 'codes' is null");
    squint::detail::require(options.mode == precision::int4_weight_only || options.mode == precision::int4_dynamic,
                            "nn::conv2d::from_int4: mode ", to_string(options.mode),
                            " is not int4_weight_only or int4_dynamic");
    squint::detail::require(group > 0, "nn::conv2d::from_int4: group must be positive");
    const std::size_t depth = f.taps() * f.group_channels, ocg = f.out_channels / params.groups;
    const std::size_t groups = (depth + group - 1) / group;
    squint::detail::require(scale.size() == f.out_channels * groups, "nn::conv2d::from_int4: ", scale.size(),
                            " scales for ", f.out_channels, " channels x ", groups, " groups");
    conv2d c;
    c.filter_ = f;
    c.params_ = params;
    c.recipe_ = &recipe_for(options.mode);
    c.act_ = options.act;
    c.kernels_ = options.kernels;
    c.input_ = input_quantizer(c.recipe_->input, std::nullopt, false);
    c.bias_ = bias ? std::vector<float>(bias, bias + f.out_channels) : std::vector<float>();
    const std::vector<std::int8_t> ohwi = squint::detail::to_ohwi(codes, f, layout);
    for (std::size_t k = 0; k < params.groups; ++k) {
      const std::int8_t* ck = ohwi.data() + k * ocg * depth;
      const std::vector<float> sk(scale.begin() + static_cast<std::ptrdiff_t>(k * ocg * groups),
                                  scale.begin() + static_cast<std::ptrdiff_t>((k + 1) * ocg * groups));
      c.groups_.push_back(detail::int4_form(options.mode, ck, ocg, depth, depth, group, sk, options.int4_scales, c.kernels_));
    }
    return c;
  }

  const filter_shape& filter() const { return filter_; }
  const conv2d_params& params() const { return params_; }
  /// The precision the layer runs in (never `automatic`).
  precision mode() const { return recipe_->mode; }
  activation act() const { return act_; }
  const backend& kernels() const { return kernels_; }
  std::optional<qparams> input_qparams() const { return input_.frozen(); }
  /// Whether the activation codes are 7-bit ([0, 127]; int8_dynamic / int8_static).
  bool reduce_range() const { return input_.reduce_range(); }
  /// Whether forward() can run: true except for an int8_static layer not yet frozen.
  bool ready() const { return input_.ready(); }
  std::string observer_name() const { return input_.observer_name(); }
  const std::vector<float>& bias() const { return bias_; }
  /// The output shape for inputs of shape `in`. @throws squint::error as squint::resolve.
  image_shape output_shape(const image_shape& in) const { return resolve("nn::conv2d", in, filter_, params_).out; }

  /// The weights as the layer multiplies by them, OHWI (out_channels x taps x group channels).
  std::vector<float> weights() const {
    std::vector<float> all;
    for (const weights_ptr& g : groups_) {
      const std::vector<float> v = g->values();
      all.insert(all.end(), v.begin(), v.end());
    }
    return all;
  }
  /// Bytes the layer needs to run: every group's stored weights, the bias, and a depthwise
  /// layer's copy packed for the depthwise kernels.
  std::size_t weight_bytes() const {
    std::size_t total = bias_.size() * sizeof(float) + (depthwise_ ? depthwise_->bytes() : 0);
    for (const weights_ptr& g : groups_) total += g->bytes();
    return total;
  }
  /// Whether the int8 product runs on the depthwise kernels (a depthwise filter in int8_dynamic
  /// or int8_static) rather than one GEMM per channel.
  bool runs_depthwise_kernel() const { return depthwise_ != nullptr; }

  /// y (NHWC, output_shape(in)) = act(conv(x, W) + b) for x (NHWC, `in`).
  /// @throws squint::error on a shape that does not fit, null pointers with elements, or an
  ///         int8_static layer that has not been frozen.
  void forward(const float* x, const image_shape& in, float* y, const parallelism& par = {}) const {
    const conv2d_geometry g = check("nn::conv2d::forward", x, in, y);
    squint::detail::require(ready(), "nn::conv2d::forward: int8_static layer is not calibrated; feed calibrate() and "
                            "call freeze() (or set_input_qparams()) first");
    if (input_.policy() == input_policy::floating) {
      run(x, g, 0.0f, y, par, [&](std::size_t k, const float* a, std::size_t rows, const epilogue& e, float* c) {
        groups_[k]->run(a, rows, e, c, {});
      });
      return;
    }
    std::vector<std::uint8_t> codes(g.in.size());
    const qparams p = input_.quantize(x, codes.size(), codes.data(), kernels_);
    if (depthwise_) {
      depthwise_to_float(codes.data(), g, p, y, par);
      return;
    }
    run(codes.data(), g, static_cast<std::uint8_t>(p.zero_point), y, par,
        [&](std::size_t k, const std::uint8_t* a, std::size_t rows, const epilogue& e, float* c) {
          groups_[k]->run_quantized({a, &p, false}, rows, e, c, {});
        });
  }

  /// The full-integer step of a frozen int8_static layer: y (NHWC uint8 codes with y_params,
  /// output_shape(in)) from x (NHWC uint8 codes with input_qparams(); padding is its zero
  /// point). The product and the bias (in accumulator units, see weight_form::run_requantized)
  /// are exact; one requantization follows per block (ReLU clamps at y's zero point).
  /// @throws squint::error on a layer that is not a frozen int8_static one, a shape that does
  ///         not fit, null pointers with elements, or y_params invalid for uint8.
  void forward_codes(const std::uint8_t* x, const image_shape& in, qparams y_params, std::uint8_t* y,
                     const parallelism& par = {}) const {
    const conv2d_geometry g = check("nn::conv2d::forward_codes", x, in, y);
    const qparams p = integer_input("nn::conv2d::forward_codes");
    validate(y_params, full_range(dtype::uint8), "nn::conv2d::forward_codes: y_params");
    if (depthwise_) {
      const detail::requantized_output stage(p.scale, depthwise_->scales(), bias_.empty() ? nullptr : bias_.data(),
                                             g.filter.taps(), y_params, act_ == activation::relu, y, g.out.channels,
                                             kernels_.requantize_u8);
      kernels_.conv_u8(x, g, p.zero_point, *depthwise_, nullptr, par, &stage.stage());
      return;
    }
    run(x, g, static_cast<std::uint8_t>(p.zero_point), y, par,
        [&](std::size_t k, const std::uint8_t* a, std::size_t rows, const epilogue& e, std::uint8_t* c) {
          groups_[k]->run_requantized({a, &p, false}, rows, e, y_params, c, {});
        });
  }
  /// The same with float output, act(conv + b), as forward() computes it from the codes (a
  /// full-integer model's last layer).
  /// @throws squint::error as the requantizing overload.
  void forward_codes(const std::uint8_t* x, const image_shape& in, float* y, const parallelism& par = {}) const {
    const conv2d_geometry g = check("nn::conv2d::forward_codes", x, in, y);
    const qparams p = integer_input("nn::conv2d::forward_codes");
    if (depthwise_) {
      depthwise_to_float(x, g, p, y, par);
      return;
    }
    run(x, g, static_cast<std::uint8_t>(p.zero_point), y, par,
        [&](std::size_t k, const std::uint8_t* a, std::size_t rows, const epilogue& e, float* c) {
          groups_[k]->run_quantized({a, &p, false}, rows, e, c, {});
        });
  }

  /// Calibration step of an int8_static layer: shows x to the observer and writes the float
  /// output (y may be null when only observing).
  /// @throws squint::error on a layer that is not an unfrozen int8_static one, or bad shapes.
  void calibrate(const float* x, const image_shape& in, float* y = nullptr) {
    const conv2d_geometry g = check("nn::conv2d::calibrate", x, in, y);
    input_.observe(tensor_view<const float>(x, shape{in.size()}), "nn::conv2d");
    if (y)
      run(x, g, 0.0f, y, {}, [&](std::size_t k, const float* a, std::size_t rows, const epilogue& e, float* c) {
        calibration_groups_[k]->run(a, rows, e, c, {});
      });
  }

  /// Ends calibration: freezes the observer's qparams and drops the float weights.
  /// @throws squint::error if the layer is not an unfrozen int8_static one or saw no data.
  void freeze() {
    input_.freeze("nn::conv2d");
    calibration_groups_.clear();
  }
  /// Freezes an int8_static layer with known activation qparams (uint8 range).
  /// @throws squint::error if the layer is not int8_static or p is invalid for uint8.
  void set_input_qparams(qparams p) {
    input_.set(p, "nn::conv2d");
    calibration_groups_.clear();
  }

 private:
  template <class TX, class TY>
  conv2d_geometry check(const char* function, const TX* x, const image_shape& in, const TY* y) const {
    const conv2d_geometry g = resolve(function, in, filter_, params_);
    squint::detail::require_matrix(function, "x", x, g.in.pixels(), g.in.channels);
    if (y) squint::detail::require_matrix(function, "y", y, g.out.pixels(), g.out.channels);
    return g;
  }

  /// A depthwise filter whose groups are int8 codes (int8_dynamic, int8_static) also gets them
  /// packed for the depthwise kernels (conv/depthwise.hpp), which forward() then runs: one GEMM
  /// per channel is the wrong shape (and an im2col per channel). The same codes and scales, the
  /// same exact sums, the same float stage: the outputs are the GEMM route's bit for bit.
  void use_depthwise_kernel() {
    const std::size_t groups = params_.groups, taps = filter_.taps();
    if (groups < 2 || filter_.group_channels != 1 || filter_.out_channels != groups) return;
    std::vector<std::int8_t> codes(groups * taps);
    std::vector<float> scale(groups);
    for (std::size_t k = 0; k < groups; ++k) {
      const packed_weights* packed = groups_[k]->int8_codes();
      if (!packed) return;
      for (std::size_t t = 0; t < taps; ++t) codes[k * taps + t] = packed->at(0, t);
      scale[k] = packed->scales()[0];
    }
    depthwise_ = std::make_shared<const packed_conv>(
        packed_conv::from_int8(codes.data(), filter_, filter_layout::ohwi, params_, scale, {0}));
  }

  /// The depthwise kernels on codes x (qparams p) with the float output stage, into y.
  void depthwise_to_float(const std::uint8_t* x, const conv2d_geometry& g, qparams p, float* y,
                          const parallelism& par) const {
    const squint::detail::float_output out{&p.scale, false, depthwise_->scales().data(),
                                           bias_.empty() ? nullptr : bias_.data(), act_ == activation::relu, y,
                                           g.out.channels, nullptr, nullptr, HUGE_VALF, kernels_.float_stage};
    const squint::detail::output_stage stage{&squint::detail::float_output::finish, &out, nullptr, &out};
    kernels_.conv_u8(x, g, p.zero_point, *depthwise_, nullptr, par, &stage);
  }

  /// The frozen input qparams of a full-integer call's layer.
  qparams integer_input(const char* function) const {
    squint::detail::require(input_.policy() == input_policy::calibrated && ready(), function,
                            ": needs a frozen int8_static layer, this one is ", to_string(mode()),
                            ready() ? "" : " (not frozen)");
    return *input_.frozen();
  }

  /// Runs every group's product on tiles of x (float, or codes with their zero point as
  /// padding): product(group, tile, rows, epilogue, out) writes rows x group outputs (float or
  /// codes), densely.
  template <class T, class TY, class Product>
  void run(const T* x, const conv2d_geometry& g, T pad, TY* y, const parallelism& par, Product product) const {
    const std::size_t oc = g.out.channels, ocg = g.group_out_channels();
    squint::detail::for_each_tile(x, g, pad, par,
                                  [&](const T* a, std::size_t rows, std::size_t, std::size_t r0, std::size_t k) {
      const epilogue e{bias_.empty() ? nullptr : bias_.data() + k * ocg, act_ == activation::relu};
      if (g.groups() == 1) {
        product(k, a, rows, e, y + r0 * oc);
        return;
      }
      // A group's outputs are a column block of y: computed densely, then put in place.
      thread_local std::vector<TY> block;
      block.resize(rows * ocg);
      product(k, a, rows, e, block.data());
      for (std::size_t i = 0; i < rows; ++i)
        std::copy(block.begin() + i * ocg, block.begin() + (i + 1) * ocg, y + (r0 + i) * oc + k * ocg);
    });
  }

  friend struct detail::conv2d_access;
  conv2d() = default;

  filter_shape filter_;
  conv2d_params params_;
  const recipe* recipe_ = nullptr;
  activation act_ = activation::none;
  backend kernels_ = native_backend();
  input_quantizer input_;
  std::vector<float> bias_;
  std::vector<weights_ptr> groups_, calibration_groups_;
  std::shared_ptr<const packed_conv> depthwise_;  // see use_depthwise_kernel()
};

}  // namespace nn
SQUINT_NAMESPACE_END

// SPDX-License-Identifier: Apache-2.0
// qat/sequential.hpp: quantization-aware training of a stack of linear layers:
// prepare_qat(float layers, options) -> train (forward, loss, backward, optimizer step) ->
// convert() to the deployed nn::sequential.
//
//   auto model = squint::qat::prepare_qat(layers, options);
//   squint::qat::sgd opt(0.9f, 5e-5f);
//   for (each batch) {
//     model.forward(x, m, logits.data());
//     squint::qat::softmax_cross_entropy(logits.data(), labels, m, 10, dlogits.data());
//     model.backward(dlogits.data());
//     opt.step(model.parameters(), lr);
//   }
//   squint::nn::sequential deployed = model.convert();  // int8_static, the same outputs
//
// With neither weights nor activations fake-quantized this is plain FP32 training on squint's
// kernels (what the demos train their FP32 models with).
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <vector>

#include "squint/nn/sequential.hpp"
#include "squint/qat/linear.hpp"

SQUINT_NAMESPACE_BEGIN
namespace qat {

struct qat_options {
  /// How weights are fake-quantized (none: FP32 weights).
  std::optional<weight_quant> weights = weight_quant{};
  /// Per-layer weight quantization overriding `weights` (layer index -> options), e.g. 8 bits
  /// for the first and last layers of a low-bit model.
  std::map<std::size_t, weight_quant> weight_overrides = {};
  /// How each layer's input is fake-quantized (none: float activations; needs weights).
  std::optional<activation_quant> activations = activation_quant{};
  /// Freeze the activation observers after this many training steps (none: never; convert()
  /// uses their qparams as they are).
  std::optional<std::size_t> freeze_observers_after = std::nullopt;
  /// qat::graph's BatchNorms: each trains on with its convolution (qat::conv_bn2d: batch
  /// statistics, the running ones updated, PyTorch's QAT ConvBn2d) for this many training steps,
  /// then folds with its running statistics (freeze_bn_stats). 0: folded from the first step (QAT
  /// from trained statistics); none: never frozen (evaluation and convert() fold the running ones).
  std::optional<std::size_t> freeze_batch_norm_after = 0;
  nn::backend kernels = nn::native_backend();
};

/// FP32 training: nothing fake-quantized.
inline qat_options fp32_training(const nn::backend& kernels = nn::native_backend()) {
  qat_options o;
  o.weights = std::nullopt;
  o.activations = std::nullopt;
  o.kernels = kernels;
  return o;
}

class sequential {
 public:
  /// Builds the training model from float layers (prepare_qat).
  /// @throws squint::error on inconsistent shapes, an override for a missing layer, or invalid
  ///         quantizer options.
  sequential(const std::vector<nn::float_layer>& layers, const qat_options& options)
      : freeze_after_(options.freeze_observers_after), kernels_(options.kernels) {
    squint::detail::require(!layers.empty(), "qat::prepare_qat: no layers");
    if (!options.weight_overrides.empty()) {
      const std::size_t last = options.weight_overrides.rbegin()->first;
      squint::detail::require(last < layers.size(), "qat::prepare_qat: weight override for layer ", last, " of ",
                              layers.size());
    }
    for (std::size_t l = 0; l < layers.size(); ++l) {
      squint::detail::require(l == 0 || layers[l].in == layers[l - 1].out, "qat::prepare_qat: layer ", l, " takes ",
                              layers[l].in, " inputs, the previous gives ", layers[l - 1].out);
      const auto o = options.weight_overrides.find(l);
      std::optional<weight_quant> w = o == options.weight_overrides.end() ? options.weights : o->second;
      layers_.emplace_back(layers[l], w, options.activations, options.kernels);
    }
  }

  std::size_t size() const { return layers_.size(); }
  const linear& operator[](std::size_t l) const { return layers_.at(l); }
  std::size_t in_features() const { return layers_.front().in_features(); }
  std::size_t out_features() const { return layers_.back().out_features(); }
  /// Training steps (forward calls with rows) so far.
  std::size_t steps() const { return steps_; }

  /// y (m x out_features) = the training forward of x (m x in_features); observers see their
  /// inputs unless frozen. x and y must stay valid until backward().
  /// @throws squint::error on null pointers with rows.
  void forward(const float* x, std::size_t m, float* y) {
    squint::detail::require(x != nullptr || m == 0, "qat::sequential::forward: argument 'x' is null with ", m, " rows");
    squint::detail::require(y != nullptr || m == 0, "qat::sequential::forward: argument 'y' is null with ", m, " rows");
    if (freeze_after_ && steps_ == *freeze_after_) freeze_observers();
    activations_.resize(layers_.size() - 1);
    const float* in = x;
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      float* out = y;
      if (l + 1 < layers_.size()) {
        activations_[l].resize(m * layers_[l].out_features());
        out = activations_[l].data();
      }
      layers_[l].forward(in, m, out);
      in = out;
    }
    m_ = m;
    steps_ += m > 0;
  }

  /// Backpropagates dy (m x out_features, the loss's gradient for the last forward) into every
  /// layer's parameter gradients.
  /// @throws squint::error on null dy with rows.
  void backward(const float* dy) {
    squint::detail::require(dy != nullptr || m_ == 0, "qat::sequential::backward: argument 'dy' is null");
    grads_.resize(2);
    const float* g = dy;
    for (std::size_t l = layers_.size(); l-- > 0;) {
      std::vector<float>& dx = grads_[l % 2];
      dx.resize(m_ * layers_[l].in_features());
      layers_[l].backward(g, l == 0 ? nullptr : dx.data());
      g = dx.data();
    }
  }

  /// Every layer's parameters, first layer first.
  std::vector<parameter> parameters() {
    std::vector<parameter> all;
    for (linear& l : layers_)
      for (const parameter& p : l.parameters()) all.push_back(p);
    return all;
  }

  /// Stops every activation observer (their qparams stay).
  void freeze_observers() {
    for (linear& l : layers_) l.freeze_observer();
  }

  /// The deployed model (see qat::linear::convert), on `kernels`.
  /// @throws squint::error if a quantized input has seen no data.
  nn::sequential convert(const nn::backend& kernels) const {
    nn::sequential model;
    for (const linear& l : layers_) model.add(l.convert(kernels));
    return model;
  }
  nn::sequential convert() const { return convert(kernels_); }

  /// The float master weights, e.g. to build any nn precision from them.
  std::vector<nn::float_layer> float_layers() const {
    std::vector<nn::float_layer> layers;
    for (const linear& l : layers_) layers.push_back(l.float_layer());
    return layers;
  }

 private:
  std::vector<linear> layers_;
  std::optional<std::size_t> freeze_after_;
  nn::backend kernels_;
  std::vector<std::vector<float>> activations_, grads_;
  std::size_t m_ = 0, steps_ = 0;
};

/// The QAT model of float layers: fake quantizers inserted as `options` says.
inline sequential prepare_qat(const std::vector<nn::float_layer>& layers, const qat_options& options = {}) {
  return sequential(layers, options);
}

}  // namespace qat
SQUINT_NAMESPACE_END

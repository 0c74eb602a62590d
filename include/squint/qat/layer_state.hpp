// SPDX-License-Identifier: Apache-2.0
// qat/layer_state.hpp: what every training layer with weights keeps (qat::linear, qat::conv2d):
// float master weights and bias with their gradients, the fake quantizers of its weights and of
// its input, and the parameters an optimizer sees.
#pragma once

#include <cstddef>
#include <optional>
#include <vector>

#include "squint/nn/backend.hpp"
#include "squint/qat/quantizers.hpp"

SQUINT_NAMESPACE_BEGIN
namespace qat {

class graph;
class conv_bn2d;

namespace detail {

class layer_state {
 public:
  bool quantizes_weights() const { return weights_.has_value(); }
  bool quantizes_input() const { return input_.has_value(); }
  /// The input quantizer's qparams in use (none before the first forward, without one, or per row).
  std::optional<qparams> input_qparams() const {
    if (!input_ || !seen_ || input_->per_row()) return std::nullopt;
    return input_->current();
  }

  /// The trainable tensors with their last gradients: W, the bias (if any), learned qparams.
  std::vector<parameter> parameters() {
    std::vector<parameter> p{{w_.data(), dw_.data(), w_.size(), true}};
    if (!b_.empty()) p.push_back({b_.data(), db_.data(), b_.size(), false});
    if (weights_)
      if (auto s = weights_->learned()) p.push_back(*s);
    if (input_)
      for (const parameter& q : input_->learned()) p.push_back(q);
    return p;
  }

  /// Stops the input observer (its qparams stay; learned ones keep training).
  void freeze_observer() {
    if (input_) input_->freeze();
  }

 protected:
  friend class qat::graph;      // bias correction and equalization change the master weights in place
  friend class qat::conv_bn2d;  // sets its convolution's weights to the folded ones

  /// w: rows x cols master weights; b: empty or one per row.
  layer_state(std::vector<float> w, std::vector<float> b, std::size_t rows, std::size_t cols,
              const std::optional<weight_quant>& weights, const std::optional<activation_quant>& input,
              const nn::backend& kernels)
      : w_(std::move(w)), b_(std::move(b)), dw_(w_.size(), 0.0f), db_(b_.size(), 0.0f), kernels_(kernels) {
    if (weights) weights_.emplace(*weights, rows, cols);
    if (input) input_.emplace(*input);
  }

  /// Gives the layer a bias of `n` zeros if it has none (bias correction adds one).
  void ensure_bias(std::size_t n) {
    b_.resize(n, 0.0f);
    db_.resize(n, 0.0f);
  }

  std::vector<float> w_, b_, dw_, db_;
  nn::backend kernels_;
  std::optional<weight_quantizer> weights_;
  std::optional<activation_quantizer> input_;
  bool seen_ = false;
};

}  // namespace detail
}  // namespace qat
SQUINT_NAMESPACE_END

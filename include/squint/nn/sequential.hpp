// SPDX-License-Identifier: Apache-2.0
// nn/sequential.hpp: a stack of linear layers, built from float weights with one precision for
// all and overrides for the sensitive ones (mixed precision), calibrated batch by batch.
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <map>
#include <ostream>
#include <vector>

#include "squint/nn/linear.hpp"

SQUINT_NAMESPACE_BEGIN
namespace nn {

/// A float layer as trained: weights out x in (row-major), bias (out entries or empty).
struct float_layer {
  std::vector<float> weights;
  std::vector<float> bias;
  std::size_t out = 0, in = 0;
  activation act = activation::none;
};

/// How to build a sequential from float layers.
struct build_options {
  precision mode = precision::automatic;
  /// Per-layer precision overriding `mode` (layer index -> precision).
  std::map<std::size_t, precision> overrides = {};
  bool per_row = false;
  /// The observer every int8_static layer starts with (copied per layer).
  std::optional<observer> input_observer = std::nullopt;
  backend kernels = native_backend();
  /// 7-bit activation codes for the layers that quantize activations (linear_options::reduce_range).
  bool reduce_range = false;
  /// The int8 layers' weight range and divisor (linear_options::weight_range).
  int8_weight_range weight_range = int8_weight_range::narrow;
  /// int4_weight_only and int4_dynamic: inputs per weight scale (a multiple of 16; a convolution's inputs are
  /// taps x group channels).
  std::size_t int4_group = 32;
  /// int4_weight_only and int4_dynamic: group scales kept as fp32 or as fp16.
  group_scale_format int4_scales = group_scale_format::fp32;

  /// The options of layer `layer` (its override or `mode`) with activation `act`.
  linear_options layer_options(std::size_t layer, activation act) const {
    linear_options o;
    const auto override_it = overrides.find(layer);
    o.mode = override_it == overrides.end() ? mode : override_it->second;
    o.act = act;
    o.per_row = per_row;
    o.input_observer = input_observer;
    o.kernels = kernels;
    o.reduce_range = reduce_range;
    o.weight_range = weight_range;
    o.int4_group = int4_group;
    o.int4_scales = int4_scales;
    return o;
  }
};

/// Reports calibration progress: batches done and the total.
using progress_callback = std::function<void(std::size_t done, std::size_t total)>;

/// A progress callback that rewrites one line on `out` ("calibrating: 12/40 batches").
inline progress_callback progress_line(std::ostream& out, const char* what = "calibrating") {
  return [&out, what](std::size_t done, std::size_t total) {
    out << '\r' << what << ": " << done << '/' << total << " batches" << (done == total ? "\n" : "") << std::flush;
  };
}

class sequential {
 public:
  sequential() = default;

  /// Builds every layer from its float weights with options.mode, or its override.
  /// @throws squint::error on inconsistent shapes (a layer's in differs from the previous out,
  ///         or weights/bias of the wrong size) or an override for a layer that does not exist.
  sequential(const std::vector<float_layer>& layers, const build_options& options = {}) {
    if (!options.overrides.empty()) {
      const std::size_t last = options.overrides.rbegin()->first;  // the map is ordered
      squint::detail::require(last < layers.size(), "sequential: override for layer ", last, " of ", layers.size());
    }
    for (std::size_t l = 0; l < layers.size(); ++l) {
      const float_layer& f = layers[l];
      squint::detail::require(f.weights.size() == f.out * f.in, "sequential: layer ", l, " has ", f.weights.size(),
                              " weights for ", f.out, " x ", f.in);
      squint::detail::require(f.bias.empty() || f.bias.size() == f.out, "sequential: layer ", l, " has ",
                              f.bias.size(), " biases for ", f.out, " outputs");
      add(linear(f.weights.data(), f.out, f.in, f.in, f.bias.empty() ? nullptr : f.bias.data(),
                 options.layer_options(l, f.act)));
    }
  }

  /// Appends a layer. @throws squint::error if its input size differs from the last output size.
  void add(linear layer) {
    squint::detail::require(layers_.empty() || layers_.back().out_features() == layer.in_features(),
                            "sequential::add: layer takes ", layer.in_features(), " inputs, the previous gives ",
                            layers_.empty() ? 0 : layers_.back().out_features());
    layers_.push_back(std::move(layer));
  }

  std::size_t size() const { return layers_.size(); }
  const linear& operator[](std::size_t l) const { return layers_.at(l); }
  linear& operator[](std::size_t l) { return layers_.at(l); }
  const std::vector<linear>& layers() const { return layers_; }
  std::size_t in_features() const { return layers_.empty() ? 0 : layers_.front().in_features(); }
  std::size_t out_features() const { return layers_.empty() ? 0 : layers_.back().out_features(); }

  /// Sum of the layers' weight_bytes().
  std::size_t weight_bytes() const {
    std::size_t total = 0;
    for (const linear& l : layers_) total += l.weight_bytes();
    return total;
  }

  /// y (m x out_features) = the layers applied in turn to x (m x in_features).
  /// @throws squint::error on an empty model, null pointers with rows, or an uncalibrated layer.
  void forward(const float* x, std::size_t m, float* y, const parallelism& par = {}) const {
    squint::detail::require(!layers_.empty(), "sequential::forward: the model has no layers");
    std::vector<float> ping, pong;
    const float* in = x;
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      const bool last = l + 1 == layers_.size();
      std::vector<float>& buffer = l % 2 == 0 ? ping : pong;
      if (!last) buffer.resize(m * layers_[l].out_features());
      float* out = last ? y : buffer.data();
      layers_[l].forward(in, m, out, par);
      in = out;
    }
  }

  /// Runs x (rows x in_features) through the model in batches of `batch` rows, showing each
  /// unfrozen int8_static layer its input; such layers compute in float while calibrating (as
  /// PyTorch's prepared model does), the others in their own precision. Call freeze() when done.
  /// @throws squint::error on an empty model, batch == 0 or null x with rows.
  void calibrate(const float* x, std::size_t rows, std::size_t batch, const progress_callback& progress = nullptr) {
    squint::detail::require(!layers_.empty(), "sequential::calibrate: the model has no layers");
    squint::detail::require(batch > 0, "sequential::calibrate: batch must be positive");
    squint::detail::require(x != nullptr || rows == 0, "sequential::calibrate: argument 'x' is null with ", rows,
                            " rows");
    const std::size_t total = (rows + batch - 1) / batch;
    std::vector<float> ping, pong;
    for (std::size_t b = 0; b < total; ++b) {
      const std::size_t r0 = b * batch, m = std::min(batch, rows - r0);
      const float* in = x + r0 * in_features();
      for (std::size_t l = 0; l < layers_.size(); ++l) {
        linear& layer = layers_[l];
        std::vector<float>& out = l % 2 == 0 ? ping : pong;
        out.resize(m * layer.out_features());
        if (layer.mode() == precision::int8_static && !layer.ready()) {
          layer.calibrate(in, m, out.data());
        } else {
          layer.forward(in, m, out.data());
        }
        in = out.data();
      }
      if (progress) progress(b + 1, total);
    }
  }

  /// Freezes every int8_static layer that is still calibrating.
  void freeze() {
    for (linear& l : layers_)
      if (l.mode() == precision::int8_static && !l.ready()) l.freeze();
  }

 private:
  std::vector<linear> layers_;
};

/// The float layers of a model, weights as each layer multiplies by them (linear::weights()):
/// for an FP32 model, the layers it was built from, e.g. to requantize a saved FP32 model.
inline std::vector<float_layer> float_layers(const sequential& model) {
  std::vector<float_layer> layers;
  for (const linear& l : model.layers()) layers.push_back({l.weights(), l.bias(), l.out_features(), l.in_features(), l.act()});
  return layers;
}

}  // namespace nn
SQUINT_NAMESPACE_END

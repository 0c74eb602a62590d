// SPDX-License-Identifier: Apache-2.0
// nn/linear.hpp: a fully connected layer y = x . W^T + b (float in, float out) in any precision.
//
// One interface over five ways to store and compute (nn::precision): FP32 on Eigen, FP16 weights,
// weight-only INT8, and INT8 with activations quantized per call (dynamic, like PyTorch's
// quantize_dynamic) or with activation qparams frozen after calibration (static). INT8 weights
// are per-output-channel symmetric, narrow range; activations uint8 affine, so the int32 stage
// is the exact GEMM of squint/gemm. Layers are immutable after building (static ones after
// freeze()), so forward() may run from several threads at once.
#pragma once

#include <Eigen/Core>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "squint/nn/backend.hpp"
#include "squint/nn/observer.hpp"
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
  /// int8_static: the observer calibration feeds (min-max when none is given).
  std::optional<observer> input_observer = std::nullopt;
  /// The kernels the layer runs on.
  backend kernels = native_backend();
};

namespace detail {
struct linear_access;
}

class linear {
 public:
  /// Builds the layer from float weights w (out x in, row stride ldw >= in) and bias (out
  /// entries, or null for none), quantizing or converting them for options.mode.
  /// @throws squint::error on null weights with elements, ldw < in, or zero sizes.
  linear(const float* w, std::size_t out, std::size_t in, std::size_t ldw, const float* bias,
         linear_options options = {})
      : out_(out),
        in_(in),
        mode_(options.kernels.resolve(options.mode)),
        act_(options.act),
        per_row_(options.per_row),
        kernels_(options.kernels) {
    squint::detail::require(out > 0 && in > 0, "linear: out (", out, ") and in (", in, ") must be positive");
    squint::detail::require(w != nullptr, "linear: argument 'w' is null");
    squint::detail::require(ldw >= in, "linear: ldw ", ldw, " is smaller than in ", in);
    squint::detail::require(in <= gemm_max_k || (mode_ != precision::int8_dynamic && mode_ != precision::int8_static),
                            "linear: in = ", in, " exceeds gemm_max_k = ", gemm_max_k, " for an int8 GEMM");
    bias_ = bias ? std::vector<float>(bias, bias + out) : std::vector<float>();
    switch (mode_) {
      case precision::fp32:
        keep_float(w, ldw);
        break;
      case precision::fp16:
        half_ = packed_half_weights::from_float(w, out, in, ldw);
        break;
      case precision::int8_weight_only:
        weight_only_ = packed_weight_only::from_float(w, out, in, ldw);
        break;
      case precision::int8_static:
        keep_float(w, ldw);  // the calibration pass computes in float, as the model it measures
        observer_ = options.input_observer ? *options.input_observer : observers::min_max();
        int8_ = packed_weights::from_float(w, out, in, ldw);
        break;
      default:
        int8_ = packed_weights::from_float(w, out, in, ldw);
        break;
    }
  }

  std::size_t in_features() const { return in_; }
  std::size_t out_features() const { return out_; }
  /// The precision the layer runs in (never `automatic`).
  precision mode() const { return mode_; }
  activation act() const { return act_; }
  bool per_row() const { return per_row_; }
  const backend& kernels() const { return kernels_; }
  /// Frozen activation qparams of an int8_static layer.
  std::optional<qparams> input_qparams() const { return input_qparams_; }
  /// Whether forward() can run: true except for an int8_static layer not yet frozen.
  bool ready() const { return mode_ != precision::int8_static || input_qparams_.has_value(); }
  /// Name of the observer of an int8_static layer ("" otherwise).
  std::string observer_name() const { return observer_ ? observer_->name() : observer_name_; }

  /// The bias (empty when the layer has none).
  const std::vector<float>& bias() const { return bias_; }

  /// W (out x in, row-major) as the layer multiplies by it: the float weights for fp32, the
  /// fp16 values for fp16, code * channel scale for the int8 precisions.
  std::vector<float> weights() const {
    std::vector<float> w(out_ * in_);
    for (std::size_t j = 0; j < out_; ++j)
      for (std::size_t i = 0; i < in_; ++i) {
        float& v = w[j * in_ + i];
        switch (mode_) {
          case precision::fp32: v = weights_[j * in_ + i]; break;
          case precision::fp16: v = half_->at(j, i); break;
          case precision::int8_weight_only: v = static_cast<float>(weight_only_->at(j, i)) * weight_only_->scales()[j]; break;
          default: v = static_cast<float>(int8_->at(j, i)) * int8_->scales()[j]; break;
        }
      }
    return w;
  }

  /// Bytes the layer needs to run: weights in their stored form, their per-channel terms and
  /// the bias (a static layer's float copy, dropped at freeze(), is not counted).
  std::size_t weight_bytes() const {
    const std::size_t bias = bias_.size() * sizeof(float);
    switch (mode_) {
      case precision::fp32: return weights_.size() * sizeof(float) + bias;
      case precision::fp16: return half_->bytes() + bias;
      case precision::int8_weight_only: return weight_only_->bytes() + bias;
      default: return int8_->bytes() + bias;
    }
  }

  /// y (m x out, dense) = act(x . W^T + b) for x (m x in, dense).
  /// @throws squint::error on null pointers with elements, or an int8_static layer that has not
  ///         been frozen.
  void forward(const float* x, std::size_t m, float* y, const parallelism& par = {}) const {
    check_io("linear::forward", x, m, y);
    squint::detail::require(ready(), "linear::forward: int8_static layer is not calibrated; feed calibrate() and call "
                            "freeze() (or set_input_qparams()) first");
    if (m == 0) return;
    const bool relu = act_ == activation::relu;
    const float* bias = bias_.empty() ? nullptr : bias_.data();
    switch (mode_) {
      case precision::fp32:
        forward_float(x, m, y, par);
        break;
      case precision::fp16:
        squint::detail::run_panels(kernels_.gemm_half, x, m, in_, in_, half_->data(), out_, bias, relu, y, out_, par);
        break;
      case precision::int8_weight_only:
        squint::detail::run_weight_only(kernels_.gemm_weight_only, x, m, in_, *weight_only_, bias, relu, y, out_, par);
        break;
      default: {
        std::vector<std::uint8_t> codes(m * in_);
        std::vector<qparams> rows(row_groups(m));
        quantize_input(x, m, codes.data(), rows.data());
        // The float output stage runs on each finished block of the GEMM (squint::gemm's).
        squint::detail::float_output stage{&rows[0].scale, false, int8_->scales().data(), bias, relu, y, out_};
        std::vector<float> scales;
        std::vector<std::int32_t> zero_points;
        std::int32_t zero_point = rows[0].zero_point;
        if (per_row_zero_points(m)) {
          for (const qparams& p : rows) scales.push_back(p.scale), zero_points.push_back(p.zero_point);
          stage.a_scales = scales.data();
          stage.per_row = true;
          stage.row_zero_points = zero_points.data();
          stage.column_sums = int8_->column_sums();
          zero_point = 0;
        }
        const squint::detail::output_stage finish{&squint::detail::float_output::finish, &stage};
        kernels_.gemm_u8(codes.data(), m, in_, zero_point, *int8_, nullptr, 0, par, &finish);
        break;
      }
    }
  }

  /// The integer stage of an int8 layer, for verification and debugging: the uint8 codes of x
  /// (m x in), the activation qparams (row_params: m entries with per_row, else 1), and the exact int32
  /// accumulators acc[i][j] = sum_k (codes[i][k] - zp) * W_q[j][k] (m x out).
  /// @throws squint::error on a layer that is not int8_dynamic or a frozen int8_static one.
  void accumulate(const float* x, std::size_t m, std::uint8_t* codes, qparams* row_params, std::int32_t* acc,
                  const parallelism& par = {}) const {
    squint::detail::require(mode_ == precision::int8_dynamic || (mode_ == precision::int8_static && ready()),
                            "linear::accumulate: needs an int8_dynamic or frozen int8_static layer, this one is ",
                            to_string(mode_));
    check_io("linear::accumulate", x, m, acc);
    quantize_input(x, m, codes, row_params);
    const bool per_row = per_row_zero_points(m);
    kernels_.gemm_u8(codes, m, in_, per_row ? 0 : row_params[0].zero_point, *int8_, acc, out_, par, nullptr);
    if (!per_row) return;
    // Weights are symmetric, so a row's zero point only subtracts zp * colsum_j (wrapping 32-bit
    // arithmetic: the exact result fits int32 because in <= gemm_max_k).
    std::vector<std::int32_t> zero_points(m);
    for (std::size_t i = 0; i < m; ++i) zero_points[i] = row_params[i].zero_point;
    squint::detail::subtract_outer(zero_points.data(), int8_->column_sums(), m, out_, acc, out_);
  }

  /// Calibration step of an int8_static layer: shows x to the observer and writes the float
  /// output (y may be null when only observing).
  /// @throws squint::error on a layer that is not an unfrozen int8_static one.
  void calibrate(const float* x, std::size_t m, float* y = nullptr) {
    squint::detail::require(mode_ == precision::int8_static && !input_qparams_,
                            "linear::calibrate: only an int8_static layer before freeze() calibrates");
    squint::detail::require(x != nullptr || m == 0, "linear::calibrate: argument 'x' is null with ", m, " rows");
    observer_->observe(tensor_view<const float>(x, shape{m, in_}));
    observed_ += m;
    if (y && m > 0) forward_float(x, m, y, {});
  }

  /// Ends calibration: freezes the observer's qparams and drops the float weights.
  /// @throws squint::error if the layer is not an unfrozen int8_static one or saw no data.
  void freeze() {
    squint::detail::require(mode_ == precision::int8_static && !input_qparams_,
                            "linear::freeze: only an int8_static layer before freeze() can be frozen");
    squint::detail::require(observed_ > 0, "linear::freeze: the observer has seen no data; calibrate() first");
    set_input_qparams(observer_->qparams());
  }

  /// Freezes an int8_static layer with known activation qparams (uint8 range).
  /// @throws squint::error if the layer is not int8_static or p is invalid for uint8.
  void set_input_qparams(qparams p) {
    squint::detail::require(mode_ == precision::int8_static, "linear::set_input_qparams: layer is ",
                            to_string(mode_), ", not int8_static");
    validate(p, full_range(dtype::uint8), "linear::set_input_qparams: p");
    input_qparams_ = p;
    if (observer_) observer_name_ = observer_->name();
    observer_.reset();
    weights_.clear();
    weights_.shrink_to_fit();
  }

 private:
  friend struct detail::linear_access;
  linear() = default;

  using row_major = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

  void keep_float(const float* w, std::size_t ldw) {
    weights_.resize(out_ * in_);
    for (std::size_t j = 0; j < out_; ++j)
      for (std::size_t i = 0; i < in_; ++i) weights_[j * in_ + i] = w[j * ldw + i];
  }

  template <class T>
  void check_io(const char* function, const float* x, std::size_t m, T* y) const {
    squint::detail::require(x != nullptr || m == 0, function, ": argument 'x' is null with ", m, " rows");
    squint::detail::require(y != nullptr || m == 0, function, ": output is null with ", m, " rows");
  }

  /// The uint8 codes of x and their qparams (one per row with per_row, else one): frozen
  /// (int8_static) or from each group's own range (int8_dynamic).
  void quantize_input(const float* x, std::size_t m, std::uint8_t* codes, qparams* row_params) const {
    const squint::detail::nearest_rounding_scope rounding;
    const std::size_t groups = row_groups(m);
    const std::size_t rows_per_group = groups == m ? 1 : m;
    for (std::size_t g = 0; g < groups; ++g) {
      const float* xg = x + g * rows_per_group * in_;
      const std::size_t count = rows_per_group * in_;
      qparams p;
      if (input_qparams_) {
        p = *input_qparams_;
      } else {
        float lo = HUGE_VALF, hi = -HUGE_VALF;
        std::size_t nonfinite = 0;
        kernels_.min_max(xg, count, &lo, &hi, &nonfinite);
        if (lo > hi) lo = hi = 0.0f;
        p = choose_qparams(lo, hi, quant_spec{});
      }
      row_params[g] = p;
      kernels_.quantize_u8(xg, codes + g * rows_per_group * in_, count, p.scale, p.zero_point, false);
    }
  }

  /// Whether rows carry zero points of their own (per_row with several rows): the GEMM then runs
  /// with zero point 0 and each row's term comes off afterwards.
  bool per_row_zero_points(std::size_t m) const { return row_groups(m) == m && m > 1; }

  std::size_t row_groups(std::size_t m) const {
    return per_row_ && mode_ == precision::int8_dynamic ? m : std::size_t{1};
  }

  void forward_float(const float* x, std::size_t m, float* y, const parallelism& par) const {
    const Eigen::Map<const row_major> a(x, static_cast<Eigen::Index>(m), static_cast<Eigen::Index>(in_));
    const Eigen::Map<const row_major> w(weights_.data(), static_cast<Eigen::Index>(out_),
                                        static_cast<Eigen::Index>(in_));
    squint::detail::split_columns(par, m, out_, in_, 16, [&](std::size_t j0, std::size_t j1) {
      const auto cols = static_cast<Eigen::Index>(j1 - j0);
      Eigen::Map<row_major, 0, Eigen::OuterStride<>> c(y + j0, static_cast<Eigen::Index>(m), cols,
                                                       Eigen::OuterStride<>(static_cast<Eigen::Index>(out_)));
      c.noalias() = a * w.middleRows(static_cast<Eigen::Index>(j0), cols).transpose();
      for (std::size_t i = 0; i < m; ++i)
        for (std::size_t j = j0; j < j1; ++j) {
          const float v = y[i * out_ + j] + (bias_.empty() ? 0.0f : bias_[j]);
          y[i * out_ + j] = act_ == activation::relu && !(v > 0.0f) ? 0.0f : v;
        }
    });
  }

  std::size_t out_ = 0, in_ = 0;
  precision mode_ = precision::fp32;
  activation act_ = activation::none;
  bool per_row_ = false;
  backend kernels_ = native_backend();
  std::vector<float> weights_, bias_;
  std::optional<packed_weights> int8_;
  std::optional<packed_half_weights> half_;
  std::optional<packed_weight_only> weight_only_;
  std::optional<observer> observer_;
  std::string observer_name_;
  std::optional<qparams> input_qparams_;
  std::size_t observed_ = 0;
};

}  // namespace nn
SQUINT_NAMESPACE_END

// SPDX-License-Identifier: Apache-2.0
// qat/batch_norm.hpp: BatchNorm over the channels of NHWC images, for FP32 training, as
// PyTorch's BatchNorm2d computes it: in training, each channel normalized by its batch mean and
// biased variance, the running statistics updated with momentum and the unbiased variance; in
// evaluation, the running statistics. A quantized model has no BatchNorm of its own: prepare_qat
// and convert fold it into the convolution before it (nn::fold_batch_norm, running statistics).
#pragma once

#include <cmath>
#include <cstddef>
#include <vector>

#include "squint/conv/geometry.hpp"
#include "squint/nn/linear.hpp"
#include "squint/qat/quantizers.hpp"

SQUINT_NAMESPACE_BEGIN
namespace qat {

/// A BatchNorm's parameters and running statistics (one entry per channel each), and the
/// activation after it.
struct batch_norm_state {
  std::vector<float> gamma, beta, running_mean, running_var;
  float eps = 1e-5f;
  float momentum = 0.1f;  ///< weight of the batch in each running-statistics update
  nn::activation act = nn::activation::none;
};

/// The state of a fresh BatchNorm: gamma 1, beta 0, running mean 0 and variance 1.
inline batch_norm_state identity_batch_norm(std::size_t channels, nn::activation act = nn::activation::none) {
  return {std::vector<float>(channels, 1.0f), std::vector<float>(channels, 0.0f), std::vector<float>(channels, 0.0f),
          std::vector<float>(channels, 1.0f), 1e-5f, 0.1f, act};
}

class batch_norm {
 public:
  /// @throws squint::error on no channels, vectors of different sizes, a negative variance, eps
  ///         not > 0, or momentum outside [0, 1].
  explicit batch_norm(batch_norm_state s) : s_(std::move(s)) {
    const std::size_t c = s_.gamma.size();
    squint::detail::require(c > 0 && s_.beta.size() == c && s_.running_mean.size() == c && s_.running_var.size() == c,
                            "qat::batch_norm: gamma, beta, running mean and variance need one entry per channel");
    for (float v : s_.running_var) squint::detail::require(v >= 0.0f, "qat::batch_norm: negative running variance ", v);
    squint::detail::require(s_.eps > 0.0f, "qat::batch_norm: eps must be positive, got ", s_.eps);
    squint::detail::require(s_.momentum >= 0.0f && s_.momentum <= 1.0f, "qat::batch_norm: momentum ", s_.momentum,
                            " is outside [0, 1]");
    dgamma_.assign(c, 0.0f);
    dbeta_.assign(c, 0.0f);
  }

  std::size_t channels() const { return s_.gamma.size(); }
  const batch_norm_state& state() const { return s_; }

  /// y = act(gamma (x - mean) / sqrt(var + eps) + beta) per channel over x (NHWC, `in`): the
  /// batch's statistics when training (updating the running ones), else the running ones. y
  /// must stay valid until backward().
  /// @throws squint::error on a channel count other than channels() or null pointers with elements.
  void forward(const float* x, const image_shape& in, float* y, bool training) {
    const std::size_t c = channels(), n = in.pixels();
    squint::detail::require(in.channels == c, "qat::batch_norm::forward: ", in.channels, " channels, the layer has ", c);
    squint::detail::require_matrix("qat::batch_norm::forward", "x", x, n, c);
    squint::detail::require_matrix("qat::batch_norm::forward", "y", y, n, c);
    training_ = training;
    n_ = n;
    y_ = y;
    mean_.assign(c, 0.0f);
    inv_std_.assign(c, 0.0f);
    if (training && n > 0) {
      std::vector<double> sum(c, 0.0), squares(c, 0.0);
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < c; ++j) sum[j] += x[i * c + j];
      for (std::size_t j = 0; j < c; ++j) mean_[j] = static_cast<float>(sum[j] / static_cast<double>(n));
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < c; ++j) {
          const double d = static_cast<double>(x[i * c + j]) - mean_[j];
          squares[j] += d * d;
        }
      const double unbiased = n > 1 ? static_cast<double>(n) / static_cast<double>(n - 1) : 1.0;
      for (std::size_t j = 0; j < c; ++j) {
        const double var = squares[j] / static_cast<double>(n);
        inv_std_[j] = static_cast<float>(1.0 / std::sqrt(var + s_.eps));
        s_.running_mean[j] = (1.0f - s_.momentum) * s_.running_mean[j] + s_.momentum * mean_[j];
        s_.running_var[j] = (1.0f - s_.momentum) * s_.running_var[j] + s_.momentum * static_cast<float>(var * unbiased);
      }
    } else {
      for (std::size_t j = 0; j < c; ++j) {
        mean_[j] = s_.running_mean[j];
        inv_std_[j] = 1.0f / std::sqrt(s_.running_var[j] + s_.eps);
      }
    }
    xhat_.resize(n * c);
    const bool relu = s_.act == nn::activation::relu;
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < c; ++j) {
        const float h = (x[i * c + j] - mean_[j]) * inv_std_[j];
        const float v = s_.gamma[j] * h + s_.beta[j];
        xhat_[i * c + j] = h;
        y[i * c + j] = relu && !(v > 0.0f) ? 0.0f : v;
      }
  }

  /// Given dy for the last forward(): gamma's and beta's gradients, and dx (may be null).
  /// @throws squint::error on null dy with elements.
  void backward(const float* dy, float* dx) {
    const std::size_t c = channels(), n = n_;
    squint::detail::require(dy != nullptr || n == 0, "qat::batch_norm::backward: argument 'dy' is null");
    const bool relu = s_.act == nn::activation::relu;
    std::vector<float> g(n * c);
    std::fill(dgamma_.begin(), dgamma_.end(), 0.0f);
    std::fill(dbeta_.begin(), dbeta_.end(), 0.0f);
    std::vector<double> sum_g(c, 0.0), sum_gh(c, 0.0);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < c; ++j) {
        const float v = relu && !(y_[i * c + j] > 0.0f) ? 0.0f : dy[i * c + j];
        g[i * c + j] = v;
        sum_g[j] += v;
        sum_gh[j] += static_cast<double>(v) * xhat_[i * c + j];
      }
    for (std::size_t j = 0; j < c; ++j) {
      dbeta_[j] = static_cast<float>(sum_g[j]);
      dgamma_[j] = static_cast<float>(sum_gh[j]);
    }
    if (dx == nullptr) return;
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < c; ++j) {
        const float dh = g[i * c + j] * s_.gamma[j];
        if (!training_) {
          dx[i * c + j] = dh * inv_std_[j];
          continue;
        }
        // d/dx of (x - mean) / std with the batch's mean and std depending on x.
        const float mean_g = static_cast<float>(sum_g[j] / static_cast<double>(n)) * s_.gamma[j];
        const float mean_gh = static_cast<float>(sum_gh[j] / static_cast<double>(n)) * s_.gamma[j];
        dx[i * c + j] = inv_std_[j] * (dh - mean_g - xhat_[i * c + j] * mean_gh);
      }
  }

  /// gamma and beta with their last gradients (no weight decay, as the demos train them).
  std::vector<parameter> parameters() {
    return {{s_.gamma.data(), dgamma_.data(), s_.gamma.size(), false},
            {s_.beta.data(), dbeta_.data(), s_.beta.size(), false}};
  }

 private:
  batch_norm_state s_;
  bool training_ = true;
  std::size_t n_ = 0;
  const float* y_ = nullptr;
  std::vector<float> mean_, inv_std_, xhat_, dgamma_, dbeta_;
};

}  // namespace qat
SQUINT_NAMESPACE_END

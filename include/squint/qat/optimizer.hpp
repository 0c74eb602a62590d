// SPDX-License-Identifier: Apache-2.0
// qat/optimizer.hpp: SGD with momentum and Adam over a model's parameters, as PyTorch's
// torch.optim.SGD and torch.optim.Adam update them (weight decay added to the gradient of the
// parameters that take it). The state is kept per parameter, in the order parameters() lists
// them; that order must stay the same from step to step.
#pragma once

#include <cmath>
#include <cstddef>
#include <vector>

#include "squint/qat/quantizers.hpp"

SQUINT_NAMESPACE_BEGIN
namespace qat {

namespace detail {
inline void check_state(const char* optimizer, std::vector<std::vector<float>>& state,
                        const std::vector<parameter>& params) {
  if (state.empty())
    for (const parameter& p : params) state.emplace_back(p.size, 0.0f);
  squint::detail::require(state.size() == params.size(), optimizer, "::step: ", params.size(),
                          " parameters, the optimizer has state for ", state.size());
  for (std::size_t i = 0; i < params.size(); ++i)
    squint::detail::require(state[i].size() == params[i].size, optimizer, "::step: parameter ", i, " has ",
                            params[i].size, " values, its state ", state[i].size());
}
}  // namespace detail

/// SGD with momentum: buf = momentum * buf + (g + decay * w); w -= lr * buf.
class sgd {
 public:
  explicit sgd(float momentum = 0.9f, float weight_decay = 0.0f) : momentum_(momentum), decay_(weight_decay) {}

  /// One update of every parameter with learning rate lr.
  /// @throws squint::error if the parameters differ in number or size from the first step's.
  void step(const std::vector<parameter>& params, float lr) {
    detail::check_state("qat::sgd", buf_, params);
    for (std::size_t i = 0; i < params.size(); ++i) {
      const parameter& p = params[i];
      const float decay = p.decay ? decay_ : 0.0f;
      float* b = buf_[i].data();
      for (std::size_t k = 0; k < p.size; ++k) {
        b[k] = momentum_ * b[k] + (p.grad[k] + decay * p.value[k]);
        p.value[k] -= lr * b[k];
      }
    }
  }

 private:
  float momentum_, decay_;
  std::vector<std::vector<float>> buf_;
};

/// Adam (Kingma and Ba 2015) with bias correction.
class adam {
 public:
  explicit adam(float beta1 = 0.9f, float beta2 = 0.999f, float eps = 1e-8f, float weight_decay = 0.0f)
      : beta1_(beta1), beta2_(beta2), eps_(eps), decay_(weight_decay) {}

  /// One update of every parameter with learning rate lr.
  /// @throws squint::error if the parameters differ in number or size from the first step's.
  void step(const std::vector<parameter>& params, float lr) {
    detail::check_state("qat::adam", m_, params);
    detail::check_state("qat::adam", v_, params);
    ++t_;
    const double c1 = 1.0 - std::pow(static_cast<double>(beta1_), static_cast<double>(t_));
    const double c2 = 1.0 - std::pow(static_cast<double>(beta2_), static_cast<double>(t_));
    const float step_size = static_cast<float>(lr / c1), root_c2 = static_cast<float>(std::sqrt(c2));
    for (std::size_t i = 0; i < params.size(); ++i) {
      const parameter& p = params[i];
      const float decay = p.decay ? decay_ : 0.0f;
      float* m = m_[i].data();
      float* v = v_[i].data();
      for (std::size_t k = 0; k < p.size; ++k) {
        const float g = p.grad[k] + decay * p.value[k];
        m[k] = beta1_ * m[k] + (1.0f - beta1_) * g;
        v[k] = beta2_ * v[k] + (1.0f - beta2_) * g * g;
        p.value[k] -= step_size * m[k] / (std::sqrt(v[k]) / root_c2 + eps_);
      }
    }
  }

 private:
  float beta1_, beta2_, eps_, decay_;
  std::size_t t_ = 0;
  std::vector<std::vector<float>> m_, v_;
};

}  // namespace qat
SQUINT_NAMESPACE_END

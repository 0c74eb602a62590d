// SPDX-License-Identifier: Apache-2.0
// qat/loss.hpp: softmax cross-entropy, the classification loss the training path ends in.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "squint/error.hpp"

SQUINT_NAMESPACE_BEGIN
namespace qat {

struct loss_result {
  double loss = 0.0;        ///< mean cross-entropy over the rows
  std::size_t correct = 0;  ///< rows whose largest logit is the label (first largest on ties)
};

/// Mean softmax cross-entropy of logits (m x classes) against labels, and its gradient dlogits
/// (m x classes) = (softmax - one_hot) / m; dlogits may alias logits. Computed in double per row
/// after subtracting the row's maximum.
/// @throws squint::error on null pointers with rows, classes == 0 or a label >= classes.
inline loss_result softmax_cross_entropy(const float* logits, const std::uint8_t* labels, std::size_t m,
                                         std::size_t classes, float* dlogits) {
  squint::detail::require(classes > 0, "qat::softmax_cross_entropy: classes must be positive");
  squint::detail::require(m == 0 || (logits && labels && dlogits), "qat::softmax_cross_entropy: null argument with ",
                          m, " rows");
  for (std::size_t i = 0; i < m; ++i)
    squint::detail::require(labels[i] < classes, "qat::softmax_cross_entropy: label ", +labels[i], " of row ", i,
                            " is not below classes = ", classes);
  loss_result r;
  for (std::size_t i = 0; i < m; ++i) {
    const float* z = logits + i * classes;
    std::size_t best = 0;
    for (std::size_t c = 1; c < classes; ++c)
      if (z[c] > z[best]) best = c;
    r.correct += best == labels[i];
    const double top = z[best];
    double sum = 0.0;
    for (std::size_t c = 0; c < classes; ++c) sum += std::exp(static_cast<double>(z[c]) - top);
    r.loss += std::log(sum) - (static_cast<double>(z[labels[i]]) - top);
    float* d = dlogits + i * classes;
    for (std::size_t c = 0; c < classes; ++c) {
      const double p = std::exp(static_cast<double>(z[c]) - top) / sum;
      d[c] = static_cast<float>((p - (c == labels[i] ? 1.0 : 0.0)) / static_cast<double>(m));
    }
  }
  if (m > 0) r.loss /= static_cast<double>(m);
  return r;
}

}  // namespace qat
SQUINT_NAMESPACE_END

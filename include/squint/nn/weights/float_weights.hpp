// SPDX-License-Identifier: Apache-2.0
// nn/weights/float_weights.hpp: FP32 weights on Eigen's GEMM, the reference every other form is
// measured against.
#pragma once

#include <Eigen/Core>

#include "squint/nn/weights/form.hpp"

SQUINT_NAMESPACE_BEGIN
namespace nn {

class float_weights final : public weight_form {
 public:
  static constexpr std::uint64_t element_bytes = 4;

  float_weights(const float* w, std::size_t out, std::size_t in, std::size_t ldw) : weight_form(out, in), w_(out * in) {
    for (std::size_t j = 0; j < out; ++j)
      for (std::size_t i = 0; i < in; ++i) w_[j * in + i] = w[j * ldw + i];
  }
  static weights_ptr pack(const float* w, std::size_t out, std::size_t in, std::size_t ldw, const backend&) {
    return std::make_shared<float_weights>(w, out, in, ldw);
  }
  static weights_ptr load(detail::reader& r, std::size_t out, std::size_t in, const backend&) {
    std::vector<float> w(out * in);
    for (float& v : w) v = r.f32("weights");
    return std::make_shared<float_weights>(w.data(), out, in, in);
  }

  std::size_t bytes() const override { return w_.size() * sizeof(float); }
  std::vector<float> values() const override { return w_; }
  void save(detail::writer& w) const override {
    for (float v : w_) w.f32(v);
  }

  void run(const float* x, std::size_t m, const epilogue& e, float* y, const parallelism& par) const override {
    using row_major = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    const std::size_t n = out(), k = in();
    const Eigen::Map<const row_major> a(x, static_cast<Eigen::Index>(m), static_cast<Eigen::Index>(k));
    const Eigen::Map<const row_major> w(w_.data(), static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(k));
    squint::detail::split_columns(par, m, n, k, 16, [&](std::size_t j0, std::size_t j1) {
      const auto cols = static_cast<Eigen::Index>(j1 - j0);
      Eigen::Map<row_major, 0, Eigen::OuterStride<>> c(y + j0, static_cast<Eigen::Index>(m), cols,
                                                       Eigen::OuterStride<>(static_cast<Eigen::Index>(n)));
      c.noalias() = a * w.middleRows(static_cast<Eigen::Index>(j0), cols).transpose();
      for (std::size_t i = 0; i < m; ++i)
        for (std::size_t j = j0; j < j1; ++j) {
          const float v = y[i * n + j] + (e.bias ? e.bias[j] : 0.0f);
          y[i * n + j] = e.relu && !(v > 0.0f) ? 0.0f : v;
        }
    });
  }

 private:
  std::vector<float> w_;
};

}  // namespace nn
SQUINT_NAMESPACE_END

// SPDX-License-Identifier: Apache-2.0
// nn/weights/float_weights.hpp: FP32 weights on gemm_float (squint's float-panel kernels), the
// baseline every other form is measured against.
#pragma once

#include "squint/gemm/fp32.hpp"
#include "squint/nn/weights/form.hpp"

SQUINT_NAMESPACE_BEGIN
namespace nn {

class float_weights final : public weight_form {
 public:
  static constexpr std::uint64_t element_bits = 32;

  float_weights(const float* w, std::size_t out, std::size_t in, std::size_t ldw, const backend& kernels)
      : weight_form(out, in), w_(packed_float_weights::from_float(w, out, in, ldw)), kernels_(kernels) {}
  static weights_ptr pack(const float* w, std::size_t out, std::size_t in, std::size_t ldw, const pack_options&,
                          const backend& kernels) {
    return std::make_shared<float_weights>(w, out, in, ldw, kernels);
  }
  static weights_ptr load(detail::reader& r, std::size_t out, std::size_t in, const backend& kernels) {
    std::vector<float> w(out * in);
    for (float& v : w) v = r.f32("weights");
    return std::make_shared<float_weights>(w.data(), out, in, in, kernels);
  }

  std::size_t bytes() const override { return w_.bytes(); }
  std::vector<float> values() const override { return w_.values(); }
  void save(detail::writer& w) const override {
    for (float v : w_.values()) w.f32(v);
  }

  void run(const float* x, std::size_t m, const epilogue& e, float* y, const parallelism& par) const override {
    gemm_float(x, m, in(), w_, e.bias, e.relu, y, out(), par, kernels_.gemm_float);
  }

 private:
  packed_float_weights w_;
  backend kernels_;
};

}  // namespace nn
SQUINT_NAMESPACE_END

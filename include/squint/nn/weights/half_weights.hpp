// SPDX-License-Identifier: Apache-2.0
// nn/weights/half_weights.hpp: FP16 weights, FP32 arithmetic (gemm_half): half the bytes, no
// calibration.
#pragma once

#include "squint/gemm/fp16.hpp"
#include "squint/nn/weights/form.hpp"

SQUINT_NAMESPACE_BEGIN
namespace nn {

class half_weights final : public weight_form {
 public:
  static constexpr std::uint64_t element_bits = 16;

  half_weights(packed_half_weights packed, const backend& kernels)
      : weight_form(packed.n(), packed.k()), packed_(std::move(packed)), kernels_(kernels) {}
  static weights_ptr pack(const float* w, std::size_t out, std::size_t in, std::size_t ldw, const pack_options&,
                          const backend& kernels) {
    return std::make_shared<half_weights>(packed_half_weights::from_float(w, out, in, ldw), kernels);
  }
  static weights_ptr load(detail::reader& r, std::size_t out, std::size_t in, const backend& kernels) {
    std::vector<std::uint16_t> bits(out * in);
    for (std::uint16_t& v : bits) v = r.uint<std::uint16_t>("weights");
    return std::make_shared<half_weights>(packed_half_weights::from_bits(bits.data(), out, in), kernels);
  }

  std::size_t bytes() const override { return packed_.bytes(); }
  std::vector<float> values() const override {
    std::vector<float> w(out() * in());
    for (std::size_t j = 0; j < out(); ++j)
      for (std::size_t i = 0; i < in(); ++i) w[j * in() + i] = packed_.at(j, i);
    return w;
  }
  void save(detail::writer& w) const override {
    for (std::size_t j = 0; j < out(); ++j)
      for (std::size_t i = 0; i < in(); ++i) w.uint(packed_.bits(j, i));
  }
  void run(const float* x, std::size_t m, const epilogue& e, float* y, const parallelism& par) const override {
    squint::detail::run_panels(kernels_.gemm_half, x, m, in(), in(), packed_.data(), out(), e.bias, e.relu, y, out(),
                               par);
  }

 private:
  packed_half_weights packed_;
  backend kernels_;
};

}  // namespace nn
SQUINT_NAMESPACE_END

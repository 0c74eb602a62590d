// SPDX-License-Identifier: Apache-2.0
// nn/weights/fp8_weight_only.hpp: FP8 E4M3FN weights with a scale per output channel (amax / 448),
// decoded in registers, FP32 arithmetic (gemm_fp8): a quarter of float's bytes with a float
// format's relative precision. Its model-file payload: `out` f32 scales, then out x in E4M3FN
// codes row by row.
#pragma once

#include "squint/gemm/fp8.hpp"
#include "squint/nn/weights/form.hpp"

SQUINT_NAMESPACE_BEGIN
namespace nn {

class fp8_weight_only_weights final : public weight_form {
 public:
  static constexpr std::uint64_t element_bits = 8;

  fp8_weight_only_weights(packed_fp8_weights packed, const backend& kernels)
      : weight_form(packed.n(), packed.k()), packed_(std::move(packed)), kernels_(kernels) {}
  static weights_ptr pack(const float* w, std::size_t out, std::size_t in, std::size_t ldw, const pack_options&,
                          const backend& kernels) {
    return std::make_shared<fp8_weight_only_weights>(packed_fp8_weights::from_float(w, out, in, ldw), kernels);
  }
  static weights_ptr load(detail::reader& r, std::size_t out, std::size_t in, const backend& kernels) {
    std::vector<float> scale(out);
    for (float& v : scale) v = r.f32("scales");
    const std::uint8_t* codes = r.take(out * in, "weights");
    return std::make_shared<fp8_weight_only_weights>(packed_fp8_weights::from_fp8(codes, out, in, in, scale), kernels);
  }

  const packed_fp8_weights& packed() const { return packed_; }
  std::size_t bytes() const override { return packed_.bytes(); }
  std::vector<float> values() const override {
    std::vector<float> w(out() * in());
    for (std::size_t j = 0; j < out(); ++j)
      for (std::size_t i = 0; i < in(); ++i)
        w[j * in() + i] = reference::dequantize_fp8_value(packed_.at(j, i), packed_.scales()[j], fp8_format::e4m3fn);
    return w;
  }
  void save(detail::writer& w) const override {
    for (float s : packed_.scales()) w.f32(s);
    for (std::size_t j = 0; j < out(); ++j)
      for (std::size_t i = 0; i < in(); ++i) w.uint(packed_.at(j, i));
  }
  void run(const float* x, std::size_t m, const epilogue& e, float* y, const parallelism& par) const override {
    gemm_fp8(x, m, in(), packed_, e.bias, e.relu, y, out(), par, kernels_.gemm_fp8);
  }

 private:
  packed_fp8_weights packed_;
  backend kernels_;
};

}  // namespace nn
SQUINT_NAMESPACE_END

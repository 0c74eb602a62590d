// SPDX-License-Identifier: Apache-2.0
// nn/weights/int8_weight_only.hpp: int8 codes with per-channel scales, decoded to float in the
// kernel (gemm_weight_only): a quarter of FP32's bytes for batch-1 decoding, no calibration.
#pragma once

#include "squint/gemm/weight_only.hpp"
#include "squint/nn/weights/form.hpp"
#include "squint/nn/weights/int8_codes.hpp"

SQUINT_NAMESPACE_BEGIN
namespace nn {

class int8_weight_only_weights final : public weight_form {
 public:
  static constexpr std::uint64_t element_bits = 8;

  int8_weight_only_weights(packed_weight_only packed, const backend& kernels)
      : weight_form(packed.n(), packed.k()), packed_(std::move(packed)), kernels_(kernels) {}
  static weights_ptr pack(const float* w, std::size_t out, std::size_t in, std::size_t ldw, const pack_options& options,
                          const backend& kernels) {
    return std::make_shared<int8_weight_only_weights>(
        packed_weight_only::from_float(w, out, in, ldw, options.int8_spec()), kernels);
  }
  static weights_ptr load(detail::reader& r, std::size_t out, std::size_t in, const backend& kernels) {
    const detail::int8_codes c = detail::read_int8_codes(r, out, in);
    return std::make_shared<int8_weight_only_weights>(packed_weight_only::from_int8(c.codes, out, in, in, c.scale),
                                                      kernels);
  }

  std::size_t bytes() const override { return packed_.bytes(); }
  std::vector<float> values() const override { return detail::int8_values(packed_, packed_.scales()); }
  void save(detail::writer& w) const override { detail::save_int8_codes(packed_, packed_.scales(), w); }
  void run(const float* x, std::size_t m, const epilogue& e, float* y, const parallelism& par) const override {
    squint::detail::run_weight_only(kernels_.gemm_weight_only, x, m, in(), packed_, e.bias, e.relu, y, out(), par);
  }

 private:
  packed_weight_only packed_;
  backend kernels_;
};

}  // namespace nn
SQUINT_NAMESPACE_END

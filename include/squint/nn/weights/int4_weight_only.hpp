// SPDX-License-Identifier: Apache-2.0
// nn/weights/int4_weight_only.hpp: INT4 weights with a scale per output channel and group of
// `pack_options::int4_group` inputs (round to nearest, symmetric [-7, 7], amax / 7), decoded in
// registers, FP32 arithmetic (gemm_int4): an eighth of float's bytes plus the scales. Its
// model-file payload: int4_codes.hpp's.
#pragma once

#include "squint/gemm/int4.hpp"
#include "squint/nn/weights/form.hpp"
#include "squint/nn/weights/int4_codes.hpp"

SQUINT_NAMESPACE_BEGIN
namespace nn {

class int4_weight_only_weights final : public weight_form {
 public:
  static constexpr std::uint64_t element_bits = 4;

  int4_weight_only_weights(packed_int4_weights packed, const backend& kernels)
      : weight_form(packed.n(), packed.k()), packed_(std::move(packed)), kernels_(kernels) {}
  static weights_ptr pack(const float* w, std::size_t out, std::size_t in, std::size_t ldw, const pack_options& options,
                          const backend& kernels) {
    return std::make_shared<int4_weight_only_weights>(
        packed_int4_weights::from_float(w, out, in, ldw, options.int4_group, options.int4_scales), kernels);
  }
  static weights_ptr load(detail::reader& r, std::size_t out, std::size_t in, const backend& kernels) {
    return std::make_shared<int4_weight_only_weights>(detail::read_int4_codes<packed_int4_weights>(r, out, in), kernels);
  }

  const packed_int4_weights& packed() const { return packed_; }
  std::size_t bytes() const override { return packed_.bytes(); }
  std::vector<float> values() const override { return detail::int4_values(packed_); }
  void save(detail::writer& w) const override { detail::save_int4_codes(packed_, w); }
  void run(const float* x, std::size_t m, const epilogue& e, float* y, const parallelism& par) const override {
    gemm_int4(x, m, in(), packed_, e.bias, e.relu, y, out(), par, kernels_.gemm_int4);
  }

 private:
  packed_int4_weights packed_;
  backend kernels_;
};

}  // namespace nn
SQUINT_NAMESPACE_END

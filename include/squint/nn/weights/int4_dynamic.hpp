// SPDX-License-Identifier: Apache-2.0
// nn/weights/int4_dynamic.hpp: W4A8 — the int4 weight-only form's codes and group scales (RTN)
// in the W4A8 kernels' packing; each call quantizes its float activations per row to int8 (on the
// backend's kernels) and runs exact int32 group sums (gemm_w4a8, llama.cpp's Q4_0 x Q8_0 scheme). The model-file
// payload is int4_codes.hpp's, as int4_weight_only's.
#pragma once

#include "squint/gemm/w4a8.hpp"
#include "squint/nn/weights/form.hpp"
#include "squint/nn/weights/int4_codes.hpp"

SQUINT_NAMESPACE_BEGIN
namespace nn {

class int4_dynamic_weights final : public weight_form {
 public:
  static constexpr std::uint64_t element_bits = 4;

  int4_dynamic_weights(packed_w4a8_weights packed, const backend& kernels)
      : weight_form(packed.n(), packed.k()), packed_(std::move(packed)), kernels_(kernels) {}
  static weights_ptr pack(const float* w, std::size_t out, std::size_t in, std::size_t ldw, const pack_options& options,
                          const backend& kernels) {
    return std::make_shared<int4_dynamic_weights>(
        packed_w4a8_weights::from_float(w, out, in, ldw, options.int4_group, options.int4_scales), kernels);
  }
  static weights_ptr load(detail::reader& r, std::size_t out, std::size_t in, const backend& kernels) {
    return std::make_shared<int4_dynamic_weights>(detail::read_int4_codes<packed_w4a8_weights>(r, out, in), kernels);
  }

  const packed_w4a8_weights& packed() const { return packed_; }
  std::size_t bytes() const override { return packed_.bytes(); }
  std::vector<float> values() const override { return detail::int4_values(packed_); }
  void save(detail::writer& w) const override { detail::save_int4_codes(packed_, w); }
  void run(const float* x, std::size_t m, const epilogue& e, float* y, const parallelism& par) const override {
    gemm_w4a8(x, m, in(), packed_, e.bias, e.relu, y, out(), par, kernels_.gemm_w4a8,
              {kernels_.min_max, kernels_.quantize_s8_channels});
  }

 private:
  packed_w4a8_weights packed_;
  backend kernels_;
};

}  // namespace nn
SQUINT_NAMESPACE_END

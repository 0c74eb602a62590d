// SPDX-License-Identifier: Apache-2.0
// nn/weights/int4_weight_only.hpp: INT4 weights with a scale per output channel and group of
// `pack_options::int4_group` inputs (round to nearest, symmetric [-7, 7], amax / 7), decoded in
// registers, FP32 arithmetic (gemm_int4): an eighth of float's bytes plus the scales. Its
// model-file payload: the group size (u32), out x groups f32 scales, then the out x in codes two
// per byte, row by row, low nibble first (ONNX's int4 order), each code + 8.
#pragma once

#include "squint/gemm/int4.hpp"
#include "squint/nn/weights/form.hpp"

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
        packed_int4_weights::from_float(w, out, in, ldw, options.int4_group), kernels);
  }
  static weights_ptr load(detail::reader& r, std::size_t out, std::size_t in, const backend& kernels) {
    const auto group = r.uint<std::uint32_t>("int4 group");
    squint::detail::require(group > 0 && group % 16 == 0, "nn::load: int4 group ", group,
                            " is not a positive multiple of 16");
    const std::size_t groups = (in + group - 1) / group;
    squint::detail::require(out * groups <= r.remaining() / 4, "nn::load: file is truncated (", out * groups,
                            " int4 scales)");
    std::vector<float> scale(out * groups);
    for (float& v : scale) v = r.f32("scales");
    const std::uint8_t* bytes = r.take((out * in + 1) / 2, "weights");
    std::vector<std::int8_t> codes(out * in);
    for (std::size_t e = 0; e < codes.size(); ++e)
      codes[e] = static_cast<std::int8_t>(((bytes[e / 2] >> (4 * (e % 2))) & 0xF) - 8);
    return std::make_shared<int4_weight_only_weights>(packed_int4_weights::from_int4(codes.data(), out, in, in, group, scale),
                                                      kernels);
  }

  const packed_int4_weights& packed() const { return packed_; }
  std::size_t bytes() const override { return packed_.bytes(); }
  std::vector<float> values() const override {
    std::vector<float> w(out() * in());
    for (std::size_t j = 0; j < out(); ++j)
      for (std::size_t i = 0; i < in(); ++i)
        w[j * in() + i] = static_cast<float>(packed_.at(j, i)) * packed_.scale(j, i / packed_.group());
    return w;
  }
  void save(detail::writer& w) const override {
    w.uint(static_cast<std::uint32_t>(packed_.group()));
    for (std::size_t j = 0; j < out(); ++j)
      for (std::size_t g = 0; g < packed_.groups(); ++g) w.f32(packed_.scale(j, g));
    std::uint8_t byte = 0;
    for (std::size_t e = 0; e < out() * in(); ++e) {
      const auto nibble = static_cast<std::uint8_t>(packed_.at(e / in(), e % in()) + 8);
      if (e % 2 == 0) {
        byte = nibble;
      } else {
        w.uint(static_cast<std::uint8_t>(byte | nibble << 4));
      }
    }
    if (out() * in() % 2 == 1) w.uint(byte);
  }
  void run(const float* x, std::size_t m, const epilogue& e, float* y, const parallelism& par) const override {
    gemm_int4(x, m, in(), packed_, e.bias, e.relu, y, out(), par, kernels_.gemm_int4);
  }

 private:
  packed_int4_weights packed_;
  backend kernels_;
};

}  // namespace nn
SQUINT_NAMESPACE_END

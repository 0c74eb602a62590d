// SPDX-License-Identifier: Apache-2.0
// nn/serialize.hpp: save a built model once, load it in milliseconds for serving.
//
// Format, version 1. Every integer is little-endian whatever the host, every float an IEEE-754
// binary32 bit pattern stored as a little-endian u32:
//
//   magic      8 bytes   "SQUINTNN"
//   version    u32       1
//   layers     u32
//   per layer:
//     precision  u8      0 fp32, 1 fp16, 2 int8_dynamic, 3 int8_static, 4 int8_weight_only,
//                        5 fp8_weight_only, 6 int4_weight_only, 7 int4_dynamic
//     activation u8      0 none, 1 relu
//     flags      u8      bit 0 per_row, bit 1 has bias, bit 2 7-bit activations (reduce_range,
//                        int8_dynamic / int8_static only); other bits 0
//     reserved   u8      0
//     out, in    u64, u64
//     int8_static only: input scale f32, input zero point i32
//     weights    fp32: out*in f32 | fp16: out*in u16 (half bits) |
//                int8_*: out f32 scales, then out*in i8 codes | fp8_weight_only: out f32 scales,
//                then out*in E4M3FN codes | int4_*: group u32, out*groups f32 scales,
//                then out*in codes + 8 two per byte, low nibble first; all row-major (one row
//                per output)
//     bias       out f32, when flag bit 1 is set
//   checksum   u64       FNV-1a 64 of every byte before it
//
// Loading checks magic, version, every field's range, layer-to-layer sizes, truncation, trailing
// bytes and the checksum, and throws squint::error saying which; packing for the running CPU
// happens at load time.
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <istream>
#include <iterator>
#include <ostream>
#include <string>
#include <vector>

#include "squint/nn/format.hpp"
#include "squint/nn/sequential.hpp"

SQUINT_NAMESPACE_BEGIN
namespace nn {

namespace detail {

/// Reads and writes linear's private state: the layer's header and bias here, the weights by
/// the layer's stored form, which the precision's recipe names.
struct linear_access {
  static void save(const linear& l, writer& w) {
    squint::detail::require(l.ready(), "nn::save: an int8_static layer must be frozen before it is saved");
    const recipe& r = *l.recipe_;
    w.uint(r.code);
    w.uint(static_cast<std::uint8_t>(l.act_ == activation::relu ? 1 : 0));
    w.uint(static_cast<std::uint8_t>((l.per_row_ ? 1u : 0u) | (l.bias_.empty() ? 0u : 2u) |
                                     (l.input_.reduce_range() ? 4u : 0u)));
    w.uint(std::uint8_t{0});
    w.uint(static_cast<std::uint64_t>(l.out_));
    w.uint(static_cast<std::uint64_t>(l.in_));
    if (r.input == input_policy::calibrated) {
      w.f32(l.input_.frozen()->scale);
      w.uint(static_cast<std::uint32_t>(l.input_.frozen()->zero_point));
    }
    l.weights_->save(w);
    for (float v : l.bias_) w.f32(v);
  }

  static linear load(reader& r, std::size_t index, const backend& kernels) {
    const auto mode_code = r.uint<std::uint8_t>("precision");
    const recipe* layer_recipe = recipe_for_code(mode_code);
    squint::detail::require(layer_recipe != nullptr, "nn::load: layer ", index, " has unknown precision code ", +mode_code);
    const auto act_code = r.uint<std::uint8_t>("activation");
    squint::detail::require(act_code < 2, "nn::load: layer ", index, " has unknown activation code ", +act_code);
    const auto flags = r.uint<std::uint8_t>("flags");
    squint::detail::require((flags & ~7u) == 0, "nn::load: layer ", index, " has unknown flags ", +flags);
    squint::detail::require(r.uint<std::uint8_t>("reserved") == 0, "nn::load: layer ", index,
                            " has a non-zero reserved byte");
    const auto out = r.uint<std::uint64_t>("out"), in = r.uint<std::uint64_t>("in");
    squint::detail::require(out > 0 && in > 0, "nn::load: layer ", index, " has size ", out, " x ", in);
    // Sizes are checked against the bytes left before anything of that size is allocated.
    squint::detail::require(out <= r.remaining() && in <= r.remaining() &&
                                static_cast<double>(out) * static_cast<double>(in) *
                                        static_cast<double>(layer_recipe->element_bits) <=
                                    8.0 * static_cast<double>(r.remaining()),
                            "nn::load: file is truncated (layer ", index, " declares ", out, " x ", in,
                            " weights, ", r.remaining(), " bytes left)");
    linear l;
    l.out_ = static_cast<std::size_t>(out);
    l.in_ = static_cast<std::size_t>(in);
    l.recipe_ = layer_recipe;
    l.act_ = act_code == 1 ? activation::relu : activation::none;
    l.per_row_ = (flags & 1u) != 0;
    l.kernels_ = kernels;
    const bool reduce_range = (flags & 4u) != 0;
    squint::detail::require(!reduce_range || layer_recipe->input != input_policy::floating, "nn::load: layer ", index,
                            " has 7-bit activations (flag 4) but takes floats");
    l.input_ = input_quantizer(layer_recipe->input, std::nullopt, reduce_range);
    if (layer_recipe->input == input_policy::calibrated) {
      qparams p;
      p.scale = r.f32("input scale");
      p.zero_point = static_cast<std::int32_t>(r.uint<std::uint32_t>("input zero point"));
      validate(p, range_of(quant_spec{dtype::uint8, qscheme::affine, reduce_range}), "nn::load: input qparams");
      l.input_ = input_quantizer::frozen_at(p, reduce_range);
    }
    l.weights_ = layer_recipe->load(r, l.out_, l.in_, kernels);
    if (flags & 2u) {
      l.bias_.resize(l.out_);
      for (float& v : l.bias_) v = r.f32("bias");
    }
    return l;
  }
};

}  // namespace detail

/// The model in squint's binary format (see the top of this header).
/// @throws squint::error if a layer is an int8_static one that was not frozen.
inline std::vector<std::uint8_t> serialize(const sequential& model) {
  detail::writer w;
  w.bytes(detail::format_magic, sizeof detail::format_magic);
  w.uint(format_version);
  w.uint(static_cast<std::uint32_t>(model.size()));
  for (const linear& l : model.layers()) detail::linear_access::save(l, w);
  w.uint(detail::fnv1a(w.out.data(), w.out.size()));
  return std::move(w.out);
}

/// Rebuilds a model from serialize()'s bytes, packed for `kernels`.
/// @throws squint::error naming what is wrong: magic, version, a field, sizes, truncation,
///         trailing bytes or checksum.
inline sequential deserialize(const std::vector<std::uint8_t>& data, const backend& kernels = native_backend()) {
  detail::reader r(data);
  const std::uint8_t* magic = r.take(sizeof detail::format_magic, "magic");
  squint::detail::require(std::memcmp(magic, detail::format_magic, sizeof detail::format_magic) == 0,
                          "nn::load: not a squint model (wrong magic)");
  const auto version = r.uint<std::uint32_t>("version");
  squint::detail::require(version == format_version, "nn::load: format version ", version,
                          " is not supported (this squint reads version ", format_version, ")");
  const auto layers = r.uint<std::uint32_t>("layer count");
  sequential model;
  for (std::uint32_t l = 0; l < layers; ++l) {
    linear layer = detail::linear_access::load(r, l, kernels);
    squint::detail::require(model.size() == 0 || model.out_features() == layer.in_features(), "nn::load: layer ", l,
                            " takes ", layer.in_features(), " inputs, the previous gives ", model.out_features());
    model.add(std::move(layer));
  }
  const std::size_t body = r.position();
  const auto checksum = r.uint<std::uint64_t>("checksum");
  squint::detail::require(r.remaining() == 0, "nn::load: size mismatch, ", r.remaining(),
                          " bytes after the checksum");
  squint::detail::require(checksum == detail::fnv1a(data.data(), body), "nn::load: checksum mismatch (file is corrupt)");
  return model;
}

/// Writes the model to `out`. @throws squint::error on an unfrozen int8_static layer or a write error.
inline void save(const sequential& model, std::ostream& out) {
  const std::vector<std::uint8_t> bytes = serialize(model);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  squint::detail::require(static_cast<bool>(out), "nn::save: write failed");
}

/// Writes the model to the file at `path`. @throws squint::error if it cannot be written.
inline void save(const sequential& model, const std::string& path) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  squint::detail::require(static_cast<bool>(out), "nn::save: cannot open '", path, "' for writing");
  save(model, out);
}

/// Reads a model from `in` (to its end). @throws squint::error as deserialize.
inline sequential load(std::istream& in, const backend& kernels = native_backend()) {
  const std::vector<std::uint8_t> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  return deserialize(bytes, kernels);
}

/// Reads the model file at `path`. @throws squint::error if it cannot be read or is invalid.
inline sequential load(const std::string& path, const backend& kernels = native_backend()) {
  std::ifstream in(path, std::ios::binary);
  squint::detail::require(static_cast<bool>(in), "nn::load: cannot open '", path, "'");
  return load(in, kernels);
}

}  // namespace nn
SQUINT_NAMESPACE_END

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
// happens at load time. Graphs (nn::graph) have a file of their own in the same envelope: see
// serialize(const graph&).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <istream>
#include <iterator>
#include <ostream>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "squint/nn/format.hpp"
#include "squint/nn/graph.hpp"
#include "squint/nn/sequential.hpp"

SQUINT_NAMESPACE_BEGIN
namespace nn {

namespace detail {

/// The fields every layer record starts with (precision, activation, flags, reserved).
struct layer_header {
  const recipe* mode = nullptr;
  activation act = activation::none;
  std::uint8_t flags = 0;  ///< bit 0 per_row, bit 1 has bias, bit 2 7-bit activations
};

inline void write_header(writer& w, const recipe& mode, activation act, std::uint8_t flags) {
  w.uint(mode.code);
  w.uint(static_cast<std::uint8_t>(act == activation::relu ? 1 : 0));
  w.uint(flags);
  w.uint(std::uint8_t{0});
}

/// Reads and checks a layer header; `what` and `index` name the record in errors ("layer 2").
inline layer_header read_header(reader& r, const char* what, std::size_t index, std::uint8_t allowed_flags) {
  layer_header h;
  const auto mode_code = r.uint<std::uint8_t>("precision");
  h.mode = recipe_for_code(mode_code);
  squint::detail::require(h.mode != nullptr, "nn::load: ", what, " ", index, " has unknown precision code ", +mode_code);
  const auto act_code = r.uint<std::uint8_t>("activation");
  squint::detail::require(act_code < 2, "nn::load: ", what, " ", index, " has unknown activation code ", +act_code);
  h.act = act_code == 1 ? activation::relu : activation::none;
  h.flags = r.uint<std::uint8_t>("flags");
  squint::detail::require((h.flags & ~allowed_flags) == 0, "nn::load: ", what, " ", index, " has unknown flags ",
                          +h.flags);
  squint::detail::require(r.uint<std::uint8_t>("reserved") == 0, "nn::load: ", what, " ", index,
                          " has a non-zero reserved byte");
  return h;
}

/// The activation policy's fields: int8_static's frozen qparams.
inline void write_input(writer& w, const recipe& mode, const input_quantizer& q) {
  if (mode.input != input_policy::calibrated) return;
  w.f32(q.frozen()->scale);
  w.uint(static_cast<std::uint32_t>(q.frozen()->zero_point));
}
inline input_quantizer read_input(reader& r, const layer_header& h, const char* what, std::size_t index) {
  const bool reduce_range = (h.flags & 4u) != 0;
  squint::detail::require(!reduce_range || h.mode->input != input_policy::floating, "nn::load: ", what, " ", index,
                          " has 7-bit activations (flag 4) but takes floats");
  if (h.mode->input != input_policy::calibrated) return input_quantizer(h.mode->input, std::nullopt, reduce_range);
  qparams p;
  p.scale = r.f32("input scale");
  p.zero_point = static_cast<std::int32_t>(r.uint<std::uint32_t>("input zero point"));
  validate(p, range_of(quant_spec{dtype::uint8, qscheme::affine, reduce_range}), "nn::load: input qparams");
  return input_quantizer::frozen_at(p, reduce_range);
}

/// Checks that `count` weights of `bits` each can still be in the file before any is allocated.
inline void require_weights(const reader& r, const char* what, std::size_t index, std::uint64_t rows,
                            std::uint64_t cols, std::size_t bits) {
  squint::detail::require(rows <= r.remaining() && cols <= r.remaining() &&
                              static_cast<double>(rows) * static_cast<double>(cols) * static_cast<double>(bits) <=
                                  8.0 * static_cast<double>(r.remaining()),
                          "nn::load: file is truncated (", what, " ", index, " declares ", rows, " x ", cols,
                          " weights, ", r.remaining(), " bytes left)");
}

/// Reads and writes linear's private state: the layer's header and bias here, the weights by
/// the layer's stored form, which the precision's recipe names.
struct linear_access {
  static void save(const linear& l, writer& w) {
    squint::detail::require(l.ready(), "nn::save: an int8_static layer must be frozen before it is saved");
    const recipe& r = *l.recipe_;
    write_header(w, r, l.act_,
                 static_cast<std::uint8_t>((l.per_row_ ? 1u : 0u) | (l.bias_.empty() ? 0u : 2u) |
                                           (l.input_.reduce_range() ? 4u : 0u)));
    w.uint(static_cast<std::uint64_t>(l.out_));
    w.uint(static_cast<std::uint64_t>(l.in_));
    write_input(w, r, l.input_);
    l.weights_->save(w);
    for (float v : l.bias_) w.f32(v);
  }

  static linear load(reader& r, std::size_t index, const backend& kernels, const char* what = "layer") {
    const layer_header h = read_header(r, what, index, 7u);
    const auto out = r.uint<std::uint64_t>("out"), in = r.uint<std::uint64_t>("in");
    squint::detail::require(out > 0 && in > 0, "nn::load: ", what, " ", index, " has size ", out, " x ", in);
    require_weights(r, what, index, out, in, h.mode->element_bits);
    linear l;
    l.out_ = static_cast<std::size_t>(out);
    l.in_ = static_cast<std::size_t>(in);
    l.recipe_ = h.mode;
    l.act_ = h.act;
    l.per_row_ = (h.flags & 1u) != 0;
    l.kernels_ = kernels;
    l.input_ = read_input(r, h, what, index);
    l.weights_ = h.mode->load(r, l.out_, l.in_, kernels);
    if (h.flags & 2u) {
      l.bias_.resize(l.out_);
      for (float& v : l.bias_) v = r.f32("bias");
    }
    return l;
  }
};

/// A convolution's geometry: the filter (4 u64) and its parameters (9 u64, padding mode u8).
inline void write_geometry(writer& w, const filter_shape* f, const conv2d_params& p) {
  if (f)
    for (std::size_t v : {f->out_channels, f->group_channels, f->kernel_h, f->kernel_w}) w.uint(std::uint64_t{v});
  for (std::size_t v : {p.stride_h, p.stride_w, p.dilation_h, p.dilation_w, p.pad_top, p.pad_left, p.pad_bottom,
                        p.pad_right, p.groups})
    w.uint(std::uint64_t{v});
  w.uint(static_cast<std::uint8_t>(p.padding));
}
inline std::size_t read_size(reader& r, const char* field) {
  const auto v = r.uint<std::uint64_t>(field);
  // 2^20 bounds every product of a few of them well inside 64 bits (allocations are checked
  // against the bytes left separately).
  squint::detail::require(v <= (std::uint64_t{1} << 20), "nn::load: ", field, " ", v, " is out of range");
  return static_cast<std::size_t>(v);
}
inline conv2d_params read_params(reader& r) {
  conv2d_params p;
  for (std::size_t* v : {&p.stride_h, &p.stride_w, &p.dilation_h, &p.dilation_w, &p.pad_top, &p.pad_left,
                         &p.pad_bottom, &p.pad_right, &p.groups})
    *v = read_size(r, "convolution parameter");
  const auto padding = r.uint<std::uint8_t>("padding mode");
  squint::detail::require(padding < 3, "nn::load: unknown padding mode ", +padding);
  p.padding = static_cast<padding_mode>(padding);
  return p;
}

/// Reads and writes conv2d's private state: header, geometry, the activation policy, each
/// group's weights in the layer's stored form, the bias.
struct conv2d_access {
  static void save(const conv2d& c, writer& w) {
    squint::detail::require(c.ready(), "nn::save: an int8_static layer must be frozen before it is saved");
    const recipe& r = *c.recipe_;
    write_header(w, r, c.act_,
                 static_cast<std::uint8_t>((c.bias_.empty() ? 0u : 2u) | (c.input_.reduce_range() ? 4u : 0u)));
    write_geometry(w, &c.filter_, c.params_);
    write_input(w, r, c.input_);
    for (const weights_ptr& g : c.groups_) g->save(w);
    for (float v : c.bias_) w.f32(v);
  }

  static conv2d load(reader& r, std::size_t index, const backend& kernels) {
    const layer_header h = read_header(r, "node", index, 6u);
    conv2d c;
    c.filter_.out_channels = read_size(r, "out channels");
    c.filter_.group_channels = read_size(r, "group channels");
    c.filter_.kernel_h = read_size(r, "kernel height");
    c.filter_.kernel_w = read_size(r, "kernel width");
    c.params_ = read_params(r);
    squint::detail::check_filter("nn::load", c.filter_, c.params_);
    const std::size_t depth = c.filter_.taps() * c.filter_.group_channels,
                      ocg = c.filter_.out_channels / c.params_.groups;
    squint::detail::require(depth <= gemm_max_k || h.mode->input == input_policy::floating, "nn::load: node ", index,
                            " has depth ", depth, " above gemm_max_k = ", gemm_max_k);
    require_weights(r, "node", index, c.filter_.out_channels, depth, h.mode->element_bits);
    c.recipe_ = h.mode;
    c.act_ = h.act;
    c.kernels_ = kernels;
    c.input_ = read_input(r, h, "node", index);
    for (std::size_t k = 0; k < c.params_.groups; ++k) c.groups_.push_back(h.mode->load(r, ocg, depth, kernels));
    c.use_depthwise_kernel();
    if (h.flags & 2u) {
      c.bias_.resize(c.filter_.out_channels);
      for (float& v : c.bias_) v = r.f32("bias");
    }
    return c;
  }
};


constexpr char graph_magic[8] = {'S', 'Q', 'U', 'I', 'N', 'T', 'G', 'R'};

/// The ranges graph::calibrate() recorded, for the graph file.
struct graph_access {
  static const std::vector<std::pair<float, float>>& ranges(const graph& g) { return g.ranges_; }
  static std::vector<std::pair<float, float>>& ranges(graph& g) { return g.ranges_; }
};
/// A node's kind in the file: its op's index in nn::node_op.
enum class node_kind : std::uint8_t { conv2d, linear, pool, add, flatten };
static_assert(std::is_same_v<std::variant_alternative_t<0, node_op>, conv2d> &&
                  std::is_same_v<std::variant_alternative_t<1, node_op>, linear> &&
                  std::is_same_v<std::variant_alternative_t<2, node_op>, pool> &&
                  std::is_same_v<std::variant_alternative_t<3, node_op>, add> &&
                  std::is_same_v<std::variant_alternative_t<4, node_op>, flatten>,
              "graph files number the ops as nn::node_op orders them");
constexpr std::uint32_t model_input = 0xFFFFFFFFu;

/// body(writer) between a magic and version and the checksum (the same envelope for both model
/// kinds).
template <class Body>
std::vector<std::uint8_t> write_envelope(const char (&magic)[8], std::uint32_t version, Body body) {
  writer w;
  w.bytes(magic, sizeof magic);
  w.uint(version);
  body(w);
  w.uint(fnv1a(w.out.data(), w.out.size()));
  return std::move(w.out);
}

/// The bytes into the file at `path`, and the whole file at `path`.
inline void write_file(const std::vector<std::uint8_t>& bytes, const std::string& path) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  squint::detail::require(static_cast<bool>(out), "nn::save: cannot open '", path, "' for writing");
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  squint::detail::require(static_cast<bool>(out), "nn::save: write failed");
}
inline std::vector<std::uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  squint::detail::require(static_cast<bool>(in), "nn::load: cannot open '", path, "'");
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// Reads a magic, a version in [oldest, newest] and the checksum around body(reader, version)
/// (the same envelope for both model kinds).
template <class Body>
auto read_envelope(const std::vector<std::uint8_t>& data, const char (&magic)[8], const char* kind,
                   std::uint32_t oldest, std::uint32_t newest, Body body) {
  reader r(data);
  const std::uint8_t* m = r.take(sizeof magic, "magic");
  squint::detail::require(std::memcmp(m, magic, sizeof magic) == 0, "nn::load: not a squint ", kind, " (wrong magic)");
  const auto version = r.uint<std::uint32_t>("version");
  squint::detail::require(version >= oldest && version <= newest, "nn::load: format version ", version,
                          " is not supported (this squint reads ", kind, " versions ", oldest, " to ", newest, ")");
  auto model = body(r, version);
  const std::size_t end = r.position();
  const auto checksum = r.uint<std::uint64_t>("checksum");
  squint::detail::require(r.remaining() == 0, "nn::load: size mismatch, ", r.remaining(),
                          " bytes after the checksum");
  squint::detail::require(checksum == fnv1a(data.data(), end), "nn::load: checksum mismatch (file is corrupt)");
  return model;
}

}  // namespace detail

/// The model in squint's binary format (see the top of this header).
/// @throws squint::error if a layer is an int8_static one that was not frozen.
inline std::vector<std::uint8_t> serialize(const sequential& model) {
  return detail::write_envelope(detail::format_magic, format_version, [&](detail::writer& w) {
    w.uint(static_cast<std::uint32_t>(model.size()));
    for (const linear& l : model.layers()) detail::linear_access::save(l, w);
  });
}

/// Rebuilds a model from serialize()'s bytes, packed for `kernels`.
/// @throws squint::error naming what is wrong: magic, version, a field, sizes, truncation,
///         trailing bytes or checksum.
inline sequential deserialize(const std::vector<std::uint8_t>& data, const backend& kernels = native_backend()) {
  return detail::read_envelope(data, detail::format_magic, "model", format_version, format_version,
                               [&](detail::reader& r, std::uint32_t) {
    const auto layers = r.uint<std::uint32_t>("layer count");
    sequential model;
    for (std::uint32_t l = 0; l < layers; ++l) {
      linear layer = detail::linear_access::load(r, l, kernels);
      squint::detail::require(model.size() == 0 || model.out_features() == layer.in_features(), "nn::load: layer ", l,
                              " takes ", layer.in_features(), " inputs, the previous gives ", model.out_features());
      model.add(std::move(layer));
    }
    return model;
  });
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

/// A graph model in squint's binary format: magic "SQUINTGR", version u32, node count u32, per
/// node its name (u32 length, bytes), kind u8 (0 conv2d, 1 linear, 2 pool, 3 add, 4 flatten),
/// input count u8 and inputs u32 (earlier node indices, 0xFFFFFFFF for the model's input), then
/// the op: a linear layer's record as in a sequential file; a convolution's header as a linear
/// layer's (flags: bit 1 bias, bit 2 7-bit activations), filter (4 u64: out channels, group
/// channels, kernel height, width), parameters (9 u64: strides, dilations, pads top, left,
/// bottom, right, groups; padding mode u8), int8_static's input qparams, each group's weights in
/// its form, the bias; pooling: kind u8, window height and width u64, the window's parameters as
/// a convolution's, count_include_pad u8; add: relu u8. Then (version 2) the ranges calibrate()
/// recorded: a u32 count (0, or node count + 1) and as many f32 pairs (min, max; +inf, -inf for
/// none), the nodes' then the input's. FNV-1a 64 checksum last.
/// @throws squint::error if a layer is an int8_static one that was not frozen.
inline std::vector<std::uint8_t> serialize(const graph& model) {
  return detail::write_envelope(detail::graph_magic, graph_format_version, [&](detail::writer& w) {
    w.uint(static_cast<std::uint32_t>(model.size()));
    for (std::size_t i = 0; i < model.size(); ++i) {
      const std::string& name = model.name(i);
      w.uint(static_cast<std::uint32_t>(name.size()));
      w.bytes(name.data(), name.size());
      const node_op& op = model.op(i);
      w.uint(static_cast<std::uint8_t>(op.index()));
      const std::vector<std::size_t>& inputs = model.inputs(i);
      w.uint(static_cast<std::uint8_t>(inputs.size()));
      for (std::size_t from : inputs)
        w.uint(from < i ? static_cast<std::uint32_t>(from) : detail::model_input);
      if (const auto* c = std::get_if<conv2d>(&op)) detail::conv2d_access::save(*c, w);
      else if (const auto* l = std::get_if<linear>(&op)) detail::linear_access::save(*l, w);
      else if (const auto* p = std::get_if<pool>(&op)) {
        w.uint(static_cast<std::uint8_t>(p->type));
        w.uint(std::uint64_t{p->params.kernel_h});
        w.uint(std::uint64_t{p->params.kernel_w});
        detail::write_geometry(w, nullptr, p->params.window);
        w.uint(static_cast<std::uint8_t>(p->params.count_include_pad ? 1 : 0));
      } else if (const auto* a = std::get_if<add>(&op)) {
        w.uint(static_cast<std::uint8_t>(a->relu ? 1 : 0));
      }
    }
    const std::vector<std::pair<float, float>>& ranges = detail::graph_access::ranges(model);
    w.uint(static_cast<std::uint32_t>(ranges.size()));
    for (const auto& [lo, hi] : ranges) w.f32(lo), w.f32(hi);
  });
}

/// Rebuilds a graph from serialize()'s bytes, packed for `kernels`.
/// @throws squint::error naming what is wrong: magic, version, a field, a node's name or inputs,
///         sizes, truncation, trailing bytes or checksum.
inline graph deserialize_graph(const std::vector<std::uint8_t>& data, const backend& kernels = native_backend()) {
  return detail::read_envelope(data, detail::graph_magic, "graph", 1, graph_format_version,
                               [&](detail::reader& r, std::uint32_t version) {
    const auto count = r.uint<std::uint32_t>("node count");
    graph model;
    for (std::uint32_t i = 0; i < count; ++i) {
      const auto length = r.uint<std::uint32_t>("name length");
      const std::uint8_t* text = r.take(length, "name");
      std::string name(reinterpret_cast<const char*>(text), length);
      const auto kind = r.uint<std::uint8_t>("node kind");
      squint::detail::require(kind <= static_cast<std::uint8_t>(detail::node_kind::flatten), "nn::load: node ", i,
                              " has unknown kind ", +kind);
      const auto inputs = r.uint<std::uint8_t>("input count");
      squint::detail::require(inputs == (kind == static_cast<std::uint8_t>(detail::node_kind::add) ? 2 : 1),
                              "nn::load: node ", i, " has ", +inputs, " inputs");
      std::vector<std::string> names;
      for (std::uint8_t k = 0; k < inputs; ++k) {
        const auto from = r.uint<std::uint32_t>("input");
        squint::detail::require(from == detail::model_input || from < i, "nn::load: node ", i, " reads node ", from,
                                ", which does not come before it");
        names.push_back(from == detail::model_input ? std::string("input") : model.name(from));
      }
      node_op op = flatten{};
      switch (static_cast<detail::node_kind>(kind)) {
        case detail::node_kind::conv2d: op = detail::conv2d_access::load(r, i, kernels); break;
        case detail::node_kind::linear: op = detail::linear_access::load(r, i, kernels, "node"); break;
        case detail::node_kind::pool: {
          pool p;
          const auto type = r.uint<std::uint8_t>("pool kind");
          squint::detail::require(type < 3, "nn::load: node ", i, " has unknown pool kind ", +type);
          p.type = static_cast<pool::kind>(type);
          p.params.kernel_h = detail::read_size(r, "window height");
          p.params.kernel_w = detail::read_size(r, "window width");
          p.params.window = detail::read_params(r);
          const auto include_pad = r.uint<std::uint8_t>("count_include_pad");
          squint::detail::require(include_pad < 2, "nn::load: node ", i, " has count_include_pad ", +include_pad);
          p.params.count_include_pad = include_pad == 1;
          op = p;
          break;
        }
        case detail::node_kind::add: {
          const auto relu = r.uint<std::uint8_t>("relu");
          squint::detail::require(relu < 2, "nn::load: node ", i, " has relu ", +relu);
          op = add{relu == 1};
          break;
        }
        case detail::node_kind::flatten: break;
      }
      model.add(std::move(name), std::move(op), std::move(names));
    }
    if (version >= 2) {
      const auto ranges = r.uint<std::uint32_t>("range count");
      squint::detail::require(ranges == 0 || ranges == count + 1, "nn::load: ", ranges, " ranges for ", count,
                              " nodes");
      std::vector<std::pair<float, float>>& kept = detail::graph_access::ranges(model);
      for (std::uint32_t i = 0; i < ranges; ++i) {
        const float lo = r.f32("range"), hi = r.f32("range");
        squint::detail::require((lo <= hi && std::isfinite(lo) && std::isfinite(hi)) || (lo == HUGE_VALF && hi == -HUGE_VALF),
                                "nn::load: range ", i, " is [", lo, ", ", hi, "]");
        kept.emplace_back(lo, hi);
      }
    }
    return model;
  });
}

/// Writes the graph to the file at `path`. @throws squint::error on an unfrozen int8_static
/// layer or a write error.
inline void save(const graph& model, const std::string& path) { detail::write_file(serialize(model), path); }

/// Reads the graph file at `path`. @throws squint::error if it cannot be read or is invalid.
inline graph load_graph(const std::string& path, const backend& kernels = native_backend()) {
  return deserialize_graph(detail::read_file(path), kernels);
}

}  // namespace nn
SQUINT_NAMESPACE_END

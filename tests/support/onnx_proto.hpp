// SPDX-License-Identifier: Apache-2.0
// onnx_proto.hpp: a minimal protobuf wire-format reader for ONNX TensorProto and node attributes.
//
// Enough of onnx.proto to read the backend test cases shipped in Debian's libonnx-testdata
// without linking protobuf: dims, data_type, raw_data and the typed repeated fields of a
// TensorProto, and the integer attributes of a model's first node.
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace squint_test::onnx {

enum data_type : int { float32 = 1, uint8 = 2, int8 = 3, int32 = 6, int64 = 7 };

struct tensor {
  std::vector<std::int64_t> dims;
  int type = 0;
  std::string raw;                  // raw_data, little-endian
  std::vector<float> float_data;    // field 4
  std::vector<std::int64_t> ints;   // int32_data (5) or int64_data (7)

  std::size_t numel() const {
    std::size_t n = 1;
    for (auto d : dims) n *= static_cast<std::size_t>(d);
    return n;
  }
  /// Elements converted to T (T is the element type named by `type`).
  template <class T>
  std::vector<T> values() const {
    std::vector<T> out(numel());
    if (!raw.empty()) {
      if (raw.size() != out.size() * sizeof(T)) throw std::runtime_error("onnx tensor: raw_data size mismatch");
      std::memcpy(out.data(), raw.data(), raw.size());
    } else if (type == float32) {
      for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<T>(float_data.at(i));
    } else {
      for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<T>(ints.at(i));
    }
    return out;
  }
};

/// Reads fields from its own copy of a message (sub-messages come back as temporaries).
class reader {
 public:
  explicit reader(std::string bytes)
      : bytes_(std::move(bytes)), p_(bytes_.data()), end_(bytes_.data() + bytes_.size()) {}
  reader(const reader&) = delete;
  reader& operator=(const reader&) = delete;
  bool done() const { return p_ >= end_; }
  std::uint64_t varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ >= end_) throw std::runtime_error("protobuf: truncated varint");
      const auto byte = static_cast<std::uint8_t>(*p_++);
      v |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
      if (!(byte & 0x80)) return v;
    }
    throw std::runtime_error("protobuf: varint too long");
  }
  std::string bytes() {
    const auto n = static_cast<std::size_t>(varint());
    if (static_cast<std::size_t>(end_ - p_) < n) throw std::runtime_error("protobuf: truncated field");
    std::string s(p_, n);
    p_ += n;
    return s;
  }
  std::uint32_t fixed32() {
    std::uint32_t v;
    if (end_ - p_ < 4) throw std::runtime_error("protobuf: truncated fixed32");
    std::memcpy(&v, p_, 4);
    p_ += 4;
    return v;
  }
  void skip(int wire) {
    switch (wire) {
      case 0: varint(); break;
      case 1: p_ += 8; break;
      case 2: bytes(); break;
      case 5: p_ += 4; break;
      default: throw std::runtime_error("protobuf: unsupported wire type");
    }
  }

 private:
  std::string bytes_;
  const char* p_;
  const char* end_;
};

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// Repeated scalar field, packed (wire 2) or not.
template <class Read>
void repeated(reader& r, int wire, Read read_one) {
  if (wire != 2) {
    read_one(r);
    return;
  }
  reader packed(r.bytes());
  while (!packed.done()) read_one(packed);
}

inline tensor parse_tensor(const std::string& bytes) {
  tensor t;
  reader r(bytes);
  while (!r.done()) {
    const auto key = r.varint();
    const int field = static_cast<int>(key >> 3), wire = static_cast<int>(key & 7);
    if (field == 1) {
      repeated(r, wire, [&](reader& x) { t.dims.push_back(static_cast<std::int64_t>(x.varint())); });
    } else if (field == 2) {
      t.type = static_cast<int>(r.varint());
    } else if (field == 4) {
      repeated(r, wire, [&](reader& x) {
        const std::uint32_t bits = x.fixed32();
        float f;
        std::memcpy(&f, &bits, 4);
        t.float_data.push_back(f);
      });
    } else if (field == 5 || field == 7) {
      repeated(r, wire, [&](reader& x) {
        const std::uint64_t v = x.varint();
        t.ints.push_back(field == 5 ? static_cast<std::int32_t>(v) : static_cast<std::int64_t>(v));
      });
    } else if (field == 9) {
      t.raw = r.bytes();
    } else {
      r.skip(wire);
    }
  }
  return t;
}

inline tensor load_tensor(const std::string& path) { return parse_tensor(slurp(path)); }

/// The integer attributes of a model's first node: `i` as one value, `ints` (packed or not) as
/// a list, by name.
inline std::map<std::string, std::vector<std::int64_t>> first_node_int_attributes(const std::string& model_path) {
  std::map<std::string, std::vector<std::int64_t>> attributes;
  reader model(slurp(model_path));
  while (!model.done()) {
    const auto key = model.varint();
    if ((key >> 3) != 7 || (key & 7) != 2) {
      model.skip(static_cast<int>(key & 7));
      continue;
    }
    reader graph(model.bytes());
    while (!graph.done()) {
      const auto gkey = graph.varint();
      if ((gkey >> 3) != 1 || (gkey & 7) != 2) {
        graph.skip(static_cast<int>(gkey & 7));
        continue;
      }
      reader node(graph.bytes());
      while (!node.done()) {
        const auto nkey = node.varint();
        if ((nkey >> 3) != 5 || (nkey & 7) != 2) {
          node.skip(static_cast<int>(nkey & 7));
          continue;
        }
        reader attribute(node.bytes());
        std::string name;
        std::vector<std::int64_t> values;
        while (!attribute.done()) {
          const auto akey = attribute.varint();
          const auto field = akey >> 3, wire = akey & 7;
          if (field == 1 && wire == 2) {
            name = attribute.bytes();
          } else if ((field == 3 || field == 8) && wire == 0) {
            values.push_back(static_cast<std::int64_t>(attribute.varint()));
          } else if (field == 8 && wire == 2) {
            reader packed(attribute.bytes());
            while (!packed.done()) values.push_back(static_cast<std::int64_t>(packed.varint()));
          } else {
            attribute.skip(static_cast<int>(wire));
          }
        }
        if (!values.empty()) attributes[name] = values;
      }
      return attributes;  // first node only
    }
  }
  return attributes;
}

}  // namespace squint_test::onnx

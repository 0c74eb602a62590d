// SPDX-License-Identifier: Apache-2.0
// onnxruntime_baseline.hpp: ONNX Runtime as a benchmark baseline, through its C API.
//
// Each baseline is a one-node ONNX model written here in protobuf's wire format (only the
// fields of onnx.proto that a node, its initializers, inputs and outputs need), so the
// benchmarks link libonnxruntime alone: no protobuf, no Python. Weights are initializers, so ORT
// prepacks them when the session is created, as it would for a real model.
#pragma once

#include <onnxruntime_c_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace squint_bench::ort {

/// TensorProto.DataType codes (the same numbers as ONNXTensorElementDataType).
enum element : int { float32 = 1, uint8 = 2, int8 = 3, int32 = 6 };

/// A protobuf message under construction: fields appended in wire format.
class message {
 public:
  message& varint(int field, std::uint64_t v) {
    key(field, 0);
    put_varint(v);
    return *this;
  }
  message& bytes(int field, const void* data, std::size_t n) {
    key(field, 2);
    put_varint(n);
    bytes_.append(static_cast<const char*>(data), n);
    return *this;
  }
  message& text(int field, const std::string& s) { return bytes(field, s.data(), s.size()); }
  message& sub(int field, const message& m) { return bytes(field, m.bytes_.data(), m.bytes_.size()); }
  const std::string& wire() const { return bytes_; }

 private:
  void key(int field, int wire_type) { put_varint(static_cast<std::uint64_t>(field) << 3 | static_cast<unsigned>(wire_type)); }
  void put_varint(std::uint64_t v) {
    for (; v >= 0x80; v >>= 7) bytes_.push_back(static_cast<char>((v & 0x7f) | 0x80));
    bytes_.push_back(static_cast<char>(v));
  }
  std::string bytes_;
};

/// A graph input or output (ValueInfoProto) or, with `raw` bytes, an initializer (TensorProto).
struct tensor {
  std::string name;
  element type;
  std::vector<std::int64_t> dims;
  std::string raw;  // little-endian element bytes; initializers only
};

template <class T>
std::string raw_bytes(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

/// One node: `inputs` name graph inputs, initializers or "" (an omitted optional input).
struct node {
  std::string op_type;
  std::string domain;  // "" for ONNX, "com.microsoft" for ORT's contrib ops
  std::vector<std::string> inputs;
  std::vector<std::pair<std::string, std::int64_t>> attributes;  // integer attributes
};

/// ModelProto bytes for `n` reading `inputs` and `initializers`, writing the single `output`.
inline std::string model(const node& n, const std::vector<tensor>& inputs, const std::vector<tensor>& initializers,
                         const tensor& output) {
  // onnx.proto field numbers: ModelProto ir_version 1, graph 7, opset_import 8; GraphProto node 1,
  // name 2, initializer 5, input 11, output 12; NodeProto input 1, output 2, op_type 4,
  // attribute 5, domain 7; AttributeProto name 1, i 3, type 20 (INT = 2); TensorProto dims 1,
  // data_type 2, name 8, raw_data 9; ValueInfoProto name 1, type 2; TypeProto tensor_type 1;
  // TypeProto.Tensor elem_type 1, shape 2; TensorShapeProto dim 1; Dimension dim_value 1.
  const auto value_info = [](const tensor& t) {
    message shape;
    for (auto d : t.dims) shape.sub(1, message().varint(1, static_cast<std::uint64_t>(d)));
    return message().text(1, t.name).sub(2, message().sub(1, message().varint(1, t.type).sub(2, shape)));
  };
  message nd;
  for (const auto& in : n.inputs) nd.text(1, in);
  nd.text(2, output.name).text(4, n.op_type);
  for (const auto& a : n.attributes)
    nd.sub(5, message().text(1, a.first).varint(3, static_cast<std::uint64_t>(a.second)).varint(20, 2));
  if (!n.domain.empty()) nd.text(7, n.domain);

  message graph;
  graph.sub(1, nd).text(2, "baseline");
  for (const auto& t : initializers) {
    message init;
    for (auto d : t.dims) init.varint(1, static_cast<std::uint64_t>(d));
    graph.sub(5, init.varint(2, t.type).text(8, t.name).text(9, t.raw));
  }
  for (const auto& t : inputs) graph.sub(11, value_info(t));
  graph.sub(12, value_info(output));

  message m;
  m.varint(1, 8).sub(7, graph).sub(8, message().text(1, "").varint(2, 17));
  if (!n.domain.empty()) m.sub(8, message().text(1, n.domain).varint(2, 1));
  return m.wire();
}

inline const OrtApi& api() {
  static const OrtApi* a = [] {
    const OrtApi* p = OrtGetApiBase()->GetApi(ORT_API_VERSION);
    if (!p) throw std::runtime_error("onnxruntime: the library is older than its header (API " +
                                     std::to_string(ORT_API_VERSION) + ")");
    return p;
  }();
  return *a;
}

inline void check(OrtStatus* s) {
  if (!s) return;
  const std::string what = std::string("onnxruntime: ") + api().GetErrorMessage(s);
  api().ReleaseStatus(s);
  throw std::runtime_error(what);
}

inline OrtEnv* env() {
  static OrtEnv* e = [] {
    OrtEnv* p = nullptr;
    check(api().CreateEnv(ORT_LOGGING_LEVEL_ERROR, "squint_bench", &p));
    return p;
  }();
  return e;
}

/// A session over one model, run on caller-owned buffers (ORT writes the output in place).
class session {
 public:
  session(const std::string& model_bytes, int threads) {
    OrtSessionOptions* o = nullptr;
    check(api().CreateSessionOptions(&o));
    try {
      check(api().SetIntraOpNumThreads(o, threads));
      check(api().SetInterOpNumThreads(o, 1));
      check(api().SetSessionGraphOptimizationLevel(o, ORT_ENABLE_ALL));
      check(api().CreateSessionFromArray(env(), model_bytes.data(), model_bytes.size(), o, &session_));
    } catch (...) {
      api().ReleaseSessionOptions(o);
      throw;
    }
    api().ReleaseSessionOptions(o);
    check(api().CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &memory_));
  }
  session(const session&) = delete;
  session& operator=(const session&) = delete;
  ~session() {
    for (auto* v : values_) api().ReleaseValue(v);
    api().ReleaseMemoryInfo(memory_);
    api().ReleaseSession(session_);
  }

  /// Binds `data` (dims as in `t`) to the graph input named t.name.
  template <class T>
  void input(const tensor& t, T* data) {
    input_names_.push_back(t.name);
    inputs_.push_back(wrap(t, data));
  }
  template <class T>
  void output(const tensor& t, T* data) {
    output_name_ = t.name;
    output_ = wrap(t, data);
  }

  void run() {
    std::vector<const char*> names;
    for (const auto& n : input_names_) names.push_back(n.c_str());
    const char* out_name = output_name_.c_str();
    check(api().Run(session_, nullptr, names.data(), inputs_.data(), inputs_.size(), &out_name, 1, &output_));
  }

 private:
  template <class T>
  OrtValue* wrap(const tensor& t, T* data) {
    std::size_t n = 1;
    for (auto d : t.dims) n *= static_cast<std::size_t>(d);
    OrtValue* v = nullptr;
    check(api().CreateTensorWithDataAsOrtValue(memory_, data, n * sizeof(T), t.dims.data(), t.dims.size(),
                                               static_cast<ONNXTensorElementDataType>(t.type), &v));
    values_.push_back(v);
    return v;
  }

  OrtSession* session_ = nullptr;
  OrtMemoryInfo* memory_ = nullptr;
  std::vector<OrtValue*> values_;
  std::vector<std::string> input_names_;
  std::vector<const OrtValue*> inputs_;
  std::string output_name_;
  OrtValue* output_ = nullptr;
};

/// A linear layer y = x W^T + b as one ORT node reading graph input "A" (m x k floats) and
/// writing "Y" (m x n floats), with the buffers it was bound to.
struct float_layer {
  std::vector<float> x, y;
  std::unique_ptr<session> run;

  float_layer(const std::string& model_bytes, const float* input, std::size_t m, std::size_t n, std::size_t k,
              int threads)
      : x(input, input + m * k), y(m * n), run(new session(model_bytes, threads)) {
    run->input(a(m, k), x.data());
    run->output(tensor{"Y", float32, {static_cast<std::int64_t>(m), static_cast<std::int64_t>(n)}, {}}, y.data());
  }
  void forward() { run->run(); }

  static tensor a(std::size_t m, std::size_t k) {
    return {"A", float32, {static_cast<std::int64_t>(m), static_cast<std::int64_t>(k)}, {}};
  }
};

/// The symmetric scale of w[0..count): max|w| / qmax (1 for all zeros).
inline float symmetric_scale(const float* w, std::size_t count, int qmax) {
  float amax = 0;
  for (std::size_t i = 0; i < count; ++i) amax = std::max(amax, std::fabs(w[i]));
  return amax > 0 ? amax / static_cast<float>(qmax) : 1.0f;
}

/// DynamicQuantizeMatMul (com.microsoft, what ORT's dynamic quantization emits for MatMul):
/// activations quantized to uint8 per tensor at run time, int8 weights (k x n, as ORT stores B)
/// with per-column scales, float out, then the bias.
inline std::string dynamic_quantize_matmul(const float* w, std::size_t n, std::size_t k, const float* bias,
                                           std::size_t m) {
  std::vector<std::int8_t> b(k * n);
  std::vector<float> scale(n);
  for (std::size_t j = 0; j < n; ++j) {
    scale[j] = symmetric_scale(w + j * k, k, 127);
    for (std::size_t i = 0; i < k; ++i)
      b[i * n + j] = static_cast<std::int8_t>(std::lrint(std::min(127.0f, std::max(-127.0f, w[j * k + i] / scale[j]))));
  }
  const auto nn = static_cast<std::int64_t>(n), kk = static_cast<std::int64_t>(k);
  return model({"DynamicQuantizeMatMul", "com.microsoft", {"A", "B", "b_scale", "", "bias"}, {}},
               {float_layer::a(m, k)},
               {{"B", int8, {kk, nn}, raw_bytes(b)},
                {"b_scale", float32, {nn}, raw_bytes(scale)},
                {"bias", float32, {nn}, raw_bytes(std::vector<float>(bias, bias + n))}},
               {"Y", float32, {static_cast<std::int64_t>(m), nn}, {}});
}

/// MatMulNBits (com.microsoft, what ORT's 4-bit weight quantizer emits): int4 codes with the
/// default zero point 8, blocks of `block` along k (low nibble first) with fp32 scales;
/// accuracy level 4 quantizes the activations to int8 per block and runs integer dot products.
inline std::string matmul_nbits(const float* w, std::size_t n, std::size_t k, const float* bias, std::size_t m,
                                std::size_t block) {
  const std::size_t blocks = (k + block - 1) / block;
  std::vector<std::uint8_t> b(n * blocks * (block / 2));
  std::vector<float> scale(n * blocks);
  for (std::size_t j = 0; j < n; ++j)
    for (std::size_t g = 0; g < blocks; ++g) {
      const std::size_t first = g * block, count = std::min(block, k - first);
      const float s = scale[j * blocks + g] = symmetric_scale(w + j * k + first, count, 7);
      for (std::size_t i = 0; i < count; ++i) {
        const long q = std::lrint(std::min(7.0f, std::max(-8.0f, w[j * k + first + i] / s))) + 8;
        b[(j * blocks + g) * (block / 2) + i / 2] |= static_cast<std::uint8_t>(q << (4 * (i % 2)));
      }
    }
  const auto nn = static_cast<std::int64_t>(n), kk = static_cast<std::int64_t>(k),
             nb = static_cast<std::int64_t>(blocks), blob = static_cast<std::int64_t>(block / 2);
  return model({"MatMulNBits",
                "com.microsoft",
                {"A", "B", "scales", "", "", "bias"},
                {{"K", kk}, {"N", nn}, {"bits", 4}, {"block_size", static_cast<std::int64_t>(block)}, {"accuracy_level", 4}}},
               {float_layer::a(m, k)},
               {{"B", uint8, {nn, nb, blob}, raw_bytes(b)},
                {"scales", float32, {nn, nb}, raw_bytes(scale)},
                {"bias", float32, {nn}, raw_bytes(std::vector<float>(bias, bias + n))}},
               {"Y", float32, {static_cast<std::int64_t>(m), nn}, {}});
}

}  // namespace squint_bench::ort

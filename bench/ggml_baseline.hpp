// SPDX-License-Identifier: Apache-2.0
// ggml_baseline.hpp: llama.cpp's matrix kernels (ggml's CPU backend) as a benchmark baseline.
//
// A linear layer as llama.cpp runs it when decoding: weights quantized by ggml itself (Q4_0,
// Q4_K, Q8_0) and, where ggml's CPU backend has a repacked layout for the type on this CPU
// (Q4_0 and Q4_K on AVX2 and above), loaded into its CPU_REPACK buffer as llama.cpp loads them;
// float activations in (ggml quantizes them per block inside mul_mat), float out plus the bias;
// a persistent thread pool, as llama.cpp attaches one.
#pragma once

#include <ggml-alloc.h>
#include <ggml-backend.h>
#include <ggml-cpu.h>
#include <ggml.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace squint_bench::ggml {

/// The CPU backend's repacking buffer type, or null when this build of ggml has none.
inline ggml_backend_buffer_type_t repack_buffer_type() {
  ggml_backend_reg_t reg = ggml_backend_cpu_reg();
  auto extra = reinterpret_cast<ggml_backend_dev_get_extra_bufts_t>(
      ggml_backend_reg_get_proc_address(reg, "ggml_backend_dev_get_extra_bufts"));
  if (!extra) return nullptr;
  for (auto* b = extra(ggml_backend_reg_dev_get(reg, 0)); b && *b; ++b)
    if (std::strcmp(ggml_backend_buft_name(*b), "CPU_REPACK") == 0) return *b;
  return nullptr;
}

/// ggml's log without its informational lines (one per repacked tensor).
inline void quiet(ggml_log_level level, const char* text, void*) {
  if (level >= GGML_LOG_LEVEL_WARN) std::fputs(text, stderr);
}

/// A layer's n x k weights (row-major float in) in ggml type `type`, and its float bias.
class weights {
 public:
  weights(ggml_type type, const float* w, std::size_t n, std::size_t k, const float* bias) : k_(k) {
    ggml_log_set(quiet, nullptr);
    ggml_init_params p{2 * ggml_tensor_overhead(), nullptr, true};
    ctx_w_ = ggml_init(p);
    ctx_b_ = ggml_init(p);
    w_ = ggml_new_tensor_2d(ctx_w_, type, static_cast<std::int64_t>(k), static_cast<std::int64_t>(n));
    b_ = ggml_new_tensor_1d(ctx_b_, GGML_TYPE_F32, static_cast<std::int64_t>(n));
    // The repacking buffer leaves tensor->extra null for a type or shape it cannot repack here.
    if (auto* repack = repack_buffer_type()) {
      buf_w_ = ggml_backend_alloc_ctx_tensors_from_buft(ctx_w_, repack);
      repacked_ = buf_w_ && w_->extra;
      if (!repacked_ && buf_w_) {
        ggml_backend_buffer_free(buf_w_);
        w_->buffer = nullptr;
        w_->data = nullptr;
        buf_w_ = nullptr;
      }
    }
    if (!buf_w_) buf_w_ = ggml_backend_alloc_ctx_tensors_from_buft(ctx_w_, ggml_backend_cpu_buffer_type());
    buf_b_ = ggml_backend_alloc_ctx_tensors_from_buft(ctx_b_, ggml_backend_cpu_buffer_type());
    if (!buf_w_ || !buf_b_) throw std::runtime_error("ggml: weight buffer allocation failed");
    std::vector<std::uint8_t> q(ggml_row_size(type, static_cast<std::int64_t>(k)) * n);
    ggml_quantize_chunk(type, w, q.data(), 0, static_cast<std::int64_t>(n), static_cast<std::int64_t>(k), nullptr);
    ggml_backend_tensor_set(w_, q.data(), 0, q.size());
    ggml_backend_tensor_set(b_, bias, 0, n * sizeof(float));
  }
  weights(const weights&) = delete;
  weights& operator=(const weights&) = delete;
  ~weights() {
    ggml_backend_buffer_free(buf_w_);
    ggml_backend_buffer_free(buf_b_);
    ggml_free(ctx_w_);
    ggml_free(ctx_b_);
  }
  bool repacked() const { return repacked_; }
  std::size_t bytes() const { return ggml_nbytes(w_); }

 private:
  friend class layer;
  std::size_t k_;
  ggml_context* ctx_w_ = nullptr;
  ggml_context* ctx_b_ = nullptr;
  ggml_tensor* w_ = nullptr;
  ggml_tensor* b_ = nullptr;
  ggml_backend_buffer_t buf_w_ = nullptr;
  ggml_backend_buffer_t buf_b_ = nullptr;
  bool repacked_ = false;
};

/// y = x W^T + b for m rows of x on the CPU backend with `threads` threads.
class layer {
 public:
  layer(const weights& w, std::size_t m, int threads) {
    ggml_init_params p{4 * ggml_tensor_overhead() + ggml_graph_overhead(), nullptr, true};
    ctx_ = ggml_init(p);
    x_ = ggml_new_tensor_2d(ctx_, GGML_TYPE_F32, static_cast<std::int64_t>(w.k_), static_cast<std::int64_t>(m));
    ggml_set_input(x_);
    y_ = ggml_add(ctx_, ggml_mul_mat(ctx_, w.w_, x_), w.b_);
    ggml_set_output(y_);
    graph_ = ggml_new_graph(ctx_);
    ggml_build_forward_expand(graph_, y_);
    backend_ = ggml_backend_cpu_init();
    ggml_threadpool_params tp = ggml_threadpool_params_default(threads);
    pool_ = ggml_threadpool_new(&tp);
    ggml_backend_cpu_set_n_threads(backend_, threads);
    ggml_backend_cpu_set_threadpool(backend_, pool_);
    alloc_ = ggml_gallocr_new(ggml_backend_get_default_buffer_type(backend_));
    if (!ggml_gallocr_alloc_graph(alloc_, graph_)) throw std::runtime_error("ggml: graph allocation failed");
  }
  layer(const layer&) = delete;
  layer& operator=(const layer&) = delete;
  ~layer() {
    ggml_gallocr_free(alloc_);
    ggml_backend_free(backend_);
    ggml_threadpool_free(pool_);
    ggml_free(ctx_);
  }

  void forward(const float* x, float* y) {
    ggml_backend_tensor_set(x_, x, 0, ggml_nbytes(x_));
    if (ggml_backend_graph_compute(backend_, graph_) != GGML_STATUS_SUCCESS) throw std::runtime_error("ggml: compute failed");
    ggml_backend_tensor_get(y_, y, 0, ggml_nbytes(y_));
  }

 private:
  ggml_context* ctx_ = nullptr;
  ggml_tensor* x_ = nullptr;
  ggml_tensor* y_ = nullptr;
  ggml_cgraph* graph_ = nullptr;
  ggml_backend_t backend_ = nullptr;
  ggml_threadpool* pool_ = nullptr;
  ggml_gallocr_t alloc_ = nullptr;
};

}  // namespace squint_bench::ggml

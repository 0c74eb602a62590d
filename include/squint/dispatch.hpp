// SPDX-License-Identifier: Apache-2.0
// dispatch.hpp: runtime dispatch — the best kernels the running CPU supports, chosen once.
//
// Needs the configuration written by squint_add_runtime_dispatch (CMake): include it only from
// targets set up with that helper. squint::runtime mirrors the checked entry points of
// squint/quantize.hpp; the arguments are validated the same way and the integers are the same
// on every arch. Choice: the first arch in the configured list (best first) that squint's CPU
// detection reports available, unless SQUINT_ISA=<name> in the environment or force_isa()
// names one; naming an arch that is not compiled in or not supported by this CPU is a
// squint::error, never a crash.
#pragma once

#include <squint_dispatch_config.hpp>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "squint/arch/cpu.hpp"
#include "squint/conv/conv.hpp"
#include "squint/conv/float_conv.hpp"
#include "squint/detail/instantiate.hpp"
#include "squint/fp8.hpp"
#include "squint/gemm/fp16.hpp"
#include "squint/gemm/fp32.hpp"
#include "squint/gemm/fp8.hpp"
#include "squint/gemm/int4.hpp"
#include "squint/gemm/int8_grouped.hpp"
#include "squint/gemm/w4a8.hpp"
#include "squint/gemm/gemm.hpp"
#include "squint/gemm/weight_only.hpp"
#include "squint/nn/backend.hpp"
#include "squint/observers/granularity.hpp"
#include "squint/quantize.hpp"

#define SQUINT_X(A) SQUINT_DECLARE_KERNELS(A)
SQUINT_DISPATCH_FAMILIES
#undef SQUINT_X
#define SQUINT_X(A) SQUINT_DECLARE_GEMM_KERNELS(A)
SQUINT_DISPATCH_GEMM_ARCHS
#undef SQUINT_X

SQUINT_NAMESPACE_BEGIN
namespace runtime {
namespace detail {

template <class TA>
using gemm_fn = void (*)(const TA*, std::size_t, std::size_t, std::int32_t, const packed_weights&, std::int32_t*,
                         std::size_t, const parallelism&, const squint::detail::output_stage*);

/// Whether the GEMM micro-kernels of G are compiled into this target.
template <class G>
constexpr bool gemm_compiled() {
  bool compiled = false;
#define SQUINT_X(A) compiled = compiled || std::is_same_v<G, A>;
  SQUINT_DISPATCH_GEMM_ARCHS
#undef SQUINT_X
  return compiled;
}

/// The next best GEMM arch a CPU with Arch can run (scalar at the end of every chain).
template <class Arch>
struct gemm_fallback {
  using type = arch::scalar;
};
template <>
struct gemm_fallback<arch::avx512_vnni> {
  using type = arch::avx512bw;
};
template <>
struct gemm_fallback<arch::avx512bw> {
  using type = arch::avx2;
};
template <>
struct gemm_fallback<arch::avx2_vnni> {
  using type = arch::avx2;
};
template <>
struct gemm_fallback<arch::neon64_i8mm> {
  using type = arch::neon64_dotprod;
};
template <>
struct gemm_fallback<arch::neon64_dotprod> {
  using type = arch::neon64;
};

/// The GEMM micro-kernel a CPU with Arch runs: its own, else (not compiled in) the next best one
/// such a CPU can run, down to the scalar kernel.
template <class Arch, bool = std::is_same_v<Arch, arch::scalar> || gemm_compiled<Arch>()>
struct gemm_arch_of {
  using type = Arch;
};
template <class Arch>
struct gemm_arch_of<Arch, false> {
  using type = typename gemm_arch_of<typename gemm_fallback<Arch>::type>::type;
};
template <class Arch>
using gemm_arch_t = typename gemm_arch_of<Arch>::type;

template <class TA>
using conv_fn = void (*)(const TA*, const conv2d_geometry&, std::int32_t, const packed_conv&, std::int32_t*,
                         const parallelism&, const squint::detail::output_stage*);

/// The kernels of one family, as function pointers.
struct kernel_table {
  const char* name;
  bool (*available)();
  void (*quantize_s8)(const float*, std::int8_t*, std::size_t, float, std::int32_t, bool) noexcept;
  void (*quantize_u8)(const float*, std::uint8_t*, std::size_t, float, std::int32_t, bool) noexcept;
  void (*quantize_channels_s8)(const float*, std::int8_t*, std::size_t, std::size_t, std::size_t, const float*,
                               const std::int32_t*, bool) noexcept;
  void (*quantize_channels_u8)(const float*, std::uint8_t*, std::size_t, std::size_t, std::size_t, const float*,
                               const std::int32_t*, bool) noexcept;
  void (*dequantize_s8)(const std::int8_t*, float*, std::size_t, float, std::int32_t) noexcept;
  void (*dequantize_u8)(const std::uint8_t*, float*, std::size_t, float, std::int32_t) noexcept;
  void (*requantize_s8)(const std::int32_t*, std::int8_t*, std::size_t, std::size_t, std::size_t, const float*,
                        std::int32_t) noexcept;
  void (*requantize_u8)(const std::int32_t*, std::uint8_t*, std::size_t, std::size_t, std::size_t, const float*,
                        std::int32_t) noexcept;
  squint::detail::requantize_fn<std::int8_t> requantize_row_s8;
  squint::detail::requantize_fn<std::uint8_t> requantize_row_u8;
  squint::detail::float_stage_fn float_stage;
  squint::detail::fake_quant_fn fake_quant;
  squint::detail::fp8_quantize_fn fp8_quantize;
  squint::detail::fp8_dequantize_fn fp8_dequantize;
  void (*float_to_half)(const float*, std::uint16_t*, std::size_t) noexcept;
  void (*half_to_float)(const std::uint16_t*, float*, std::size_t) noexcept;
  void (*min_max)(const float*, std::size_t, float*, float*, std::size_t*) noexcept;
  void (*min_max_columns)(const float*, std::size_t, std::size_t, float*, float*, std::size_t*) noexcept;
  void (*histogram)(const float*, std::size_t, bool, double, double, double, std::size_t, std::uint64_t*,
                    std::uint64_t*) noexcept;
  gemm_fn<std::uint8_t> gemm_u8;
  gemm_fn<std::int8_t> gemm_s8;
  conv_fn<std::uint8_t> conv_u8;
  conv_fn<std::int8_t> conv_s8;
  void (*gemm_half)(const float*, std::size_t, std::size_t, std::size_t, const std::uint16_t*, std::size_t,
                    const float*, bool, float*, std::size_t) noexcept;
  float_gemm_fn gemm_float;
  void (*gemm_weight_only)(const float*, std::size_t, std::size_t, std::size_t, const std::int8_t*, std::size_t,
                           const float*, const float*, bool, float*, std::size_t) noexcept;
  fp8_gemm_fn gemm_fp8;
  grouped_gemm_fn gemm_int4;
  grouped_gemm_fn gemm_int8_grouped;
  w4a8_gemm_fn gemm_w4a8;
};

template <class Arch>
kernel_table table_for() {
  using F = arch::family_t<Arch>;
  using namespace squint::kernels;
  return {Arch::name(),
          &is_available<Arch>,
          &quantize_kernel<F, std::int8_t>::per_tensor,
          &quantize_kernel<F, std::uint8_t>::per_tensor,
          &quantize_kernel<F, std::int8_t>::per_channel,
          &quantize_kernel<F, std::uint8_t>::per_channel,
          &dequantize_kernel<F, std::int8_t>::per_tensor,
          &dequantize_kernel<F, std::uint8_t>::per_tensor,
          &requantize_kernel<F, std::int8_t>::run,
          &requantize_kernel<F, std::uint8_t>::run,
          &requantize_kernel<F, std::int8_t>::row,
          &requantize_kernel<F, std::uint8_t>::row,
          &float_stage_kernel<F>::row,
          &fake_quant_kernel<F>::run,
          &fp8_kernel<F>::quantize,
          &fp8_kernel<F>::dequantize,
          &convert_kernel<F>::float_to_half,
          &convert_kernel<F>::half_to_float,
          &reduce_kernel<F>::min_max,
          &reduce_kernel<F>::min_max_columns,
          &reduce_kernel<F>::histogram,
          &squint::detail::gemm_s32<gemm_arch_t<Arch>, std::uint8_t>,
          &squint::detail::gemm_s32<gemm_arch_t<Arch>, std::int8_t>,
          &squint::detail::conv_s32<gemm_arch_t<Arch>, F, std::uint8_t>,
          &squint::detail::conv_s32<gemm_arch_t<Arch>, F, std::int8_t>,
          &half_gemm_kernel<F>::run,
          &float_gemm_kernel<F>::run,
          &weight_only_gemm_kernel<F>::run,
          &fp8_gemm_kernel<F>::run,
          &int4_gemm_kernel<F>::run,
          &int8_group_gemm_kernel<F>::run,
          &w4a8_gemm_kernel<gemm_arch_t<Arch>>::run};
}

/// Every configured arch, best first (scalar last).
inline const std::vector<kernel_table>& tables() {
#define SQUINT_X(A) table_for<A>(),
  static const std::vector<kernel_table> all{SQUINT_DISPATCH_ARCHS};
#undef SQUINT_X
  return all;
}

inline const kernel_table& find(const char* name) {
  for (const kernel_table& t : tables())
    if (std::strcmp(t.name, name) == 0) {
      squint::detail::require(t.available(), "force_isa: '", name, "' is compiled in but this CPU does not support it");
      return t;
    }
  std::string known;
  for (const kernel_table& t : tables()) known += std::string(known.empty() ? "" : ", ") + t.name;
  squint::detail::fail("force_isa: unknown or not compiled-in ISA '", name, "' (this binary has: ", known, ")");
}

inline const kernel_table& best() {
  for (const kernel_table& t : tables())
    if (t.available()) return t;
  return tables().back();
}

inline std::atomic<const kernel_table*>& active_slot() {
  static std::atomic<const kernel_table*> slot{nullptr};
  return slot;
}

/// The table in use: resolved on first use from SQUINT_ISA or the CPU.
inline const kernel_table& active() {
  const kernel_table* t = active_slot().load(std::memory_order_acquire);
  if (t != nullptr) return *t;
  const char* env = std::getenv("SQUINT_ISA");
  t = (env != nullptr && *env != '\0') ? &find(env) : &best();
  active_slot().store(t, std::memory_order_release);
  return *t;
}

/// The observers' kernels, following the table in use (force_isa included).
inline const squint::detail::observer_kernels& dispatched_observer_kernels() {
  static const squint::detail::observer_kernels k{
      []() { return active().name; },
      [](const float* x, std::size_t n, float* lo, float* hi, std::size_t* nonfinite) noexcept {
        active().min_max(x, n, lo, hi, nonfinite);
      },
      [](const float* x, std::size_t rows, std::size_t channels, float* lo, float* hi, std::size_t* nonfinite) noexcept {
        active().min_max_columns(x, rows, channels, lo, hi, nonfinite);
      },
      [](const float* x, std::size_t n, bool magnitude, double lo, double width, double hi, std::size_t bins,
         std::uint64_t* counts, std::uint64_t* top_edge) noexcept {
        active().histogram(x, n, magnitude, lo, width, hi, bins, counts, top_edge);
      }};
  return k;
}

/// Set as the program starts wherever this header is included: observers and nn calibration then
/// run the running CPU's reduction kernels, as squint::runtime's entry points do.
inline const bool observers_dispatched =
    (squint::detail::observer_kernels_slot().store(&dispatched_observer_kernels(), std::memory_order_release), true);

}  // namespace detail

/// Names of the ISAs compiled into this binary, best first.
inline std::vector<std::string> compiled_isas() {
  std::vector<std::string> names;
  for (const auto& t : detail::tables()) names.emplace_back(t.name);
  return names;
}

/// The ISA the runtime entry points use.
inline const char* isa() { return detail::active().name; }

/// Pins the ISA (for tests, benchmarks, debugging); nullptr or "" returns to automatic choice.
/// @throws squint::error if the ISA is not compiled in or this CPU lacks it (nothing changes).
inline void force_isa(const char* name) {
  if (name == nullptr || *name == '\0') {
    detail::active_slot().store(&detail::best(), std::memory_order_release);
    return;
  }
  detail::active_slot().store(&detail::find(name), std::memory_order_release);
}

/// squint::quantize on the dispatched kernels.
template <class T>
void quantize(tensor_view<const float> x, tensor_view<T> q, qparams p, quantize_mode mode = quantize_mode::divide) {
  squint::detail::require_same_shape("quantize", x, q);
  validate(p, full_range(dtype_of<T>()), "quantize");
  const auto& t = detail::active();
  const squint::detail::nearest_rounding_scope rounding;
  if constexpr (std::is_same_v<T, std::int8_t>)
    t.quantize_s8(x.data(), q.data(), x.size(), p.scale, p.zero_point, mode == quantize_mode::reciprocal);
  else
    t.quantize_u8(x.data(), q.data(), x.size(), p.scale, p.zero_point, mode == quantize_mode::reciprocal);
}

template <class T>
void quantize(const float* x, T* q, std::size_t n, qparams p, quantize_mode mode = quantize_mode::divide) {
  runtime::quantize(tensor_view<const float>(x, n), tensor_view<T>(q, n), p, mode);
}

/// Per-channel squint::quantize on the dispatched kernels.
template <class T>
void quantize(tensor_view<const float> x, tensor_view<T> q, const per_channel_qparams& p,
              quantize_mode mode = quantize_mode::divide) {
  squint::detail::require_same_shape("quantize", x, q);
  const axis_split s = squint::detail::require_per_channel("quantize", x.extents(), p, full_range(dtype_of<T>()));
  const auto& t = detail::active();
  const squint::detail::nearest_rounding_scope rounding;
  const bool reciprocal = mode == quantize_mode::reciprocal;
  if constexpr (std::is_same_v<T, std::int8_t>)
    t.quantize_channels_s8(x.data(), q.data(), s.outer, s.channels, s.inner, p.scale.data(), p.zero_point.data(), reciprocal);
  else
    t.quantize_channels_u8(x.data(), q.data(), s.outer, s.channels, s.inner, p.scale.data(), p.zero_point.data(), reciprocal);
}

/// squint::quantize_fp8 on the dispatched kernels (per tensor, or per channel along `axis`).
inline void quantize_fp8(tensor_view<const float> x, tensor_view<std::uint8_t> q, float scale, fp8_format format,
                         bool saturate = true) {
  squint::quantize_fp8(x, q, scale, format, saturate, detail::active().fp8_quantize);
}
inline void quantize_fp8(tensor_view<const float> x, tensor_view<std::uint8_t> q, const std::vector<float>& scale,
                         int axis, fp8_format format, bool saturate = true) {
  squint::quantize_fp8(x, q, scale, axis, format, saturate, detail::active().fp8_quantize);
}

/// squint::dequantize_fp8 on the dispatched kernels.
inline void dequantize_fp8(tensor_view<const std::uint8_t> q, tensor_view<float> x, float scale, fp8_format format) {
  squint::dequantize_fp8(q, x, scale, format, detail::active().fp8_dequantize);
}
inline void dequantize_fp8(tensor_view<const std::uint8_t> q, tensor_view<float> x, const std::vector<float>& scale,
                           int axis, fp8_format format) {
  squint::dequantize_fp8(q, x, scale, axis, format, detail::active().fp8_dequantize);
}

/// squint::dequantize on the dispatched kernels.
template <class T>
void dequantize(tensor_view<const T> q, tensor_view<float> x, qparams p) {
  squint::detail::require_same_shape("dequantize", q, x);
  validate(p, full_range(dtype_of<T>()), "dequantize");
  const auto& t = detail::active();
  const squint::detail::nearest_rounding_scope rounding;
  if constexpr (std::is_same_v<T, std::int8_t>) t.dequantize_s8(q.data(), x.data(), q.size(), p.scale, p.zero_point);
  else t.dequantize_u8(q.data(), x.data(), q.size(), p.scale, p.zero_point);
}

template <class T>
void dequantize(const T* q, float* x, std::size_t n, qparams p) {
  runtime::dequantize(tensor_view<const T>(q, n), tensor_view<float>(x, n), p);
}

/// squint::requantize (float multipliers) on the dispatched kernels.
template <class T>
void requantize(tensor_view<const std::int32_t> acc, tensor_view<T> q, const std::vector<float>& multiplier,
                std::int32_t zero_point, int axis = -1) {
  const axis_split s = squint::detail::check_requantize("requantize", acc, q, multiplier, zero_point, axis);
  const auto& t = detail::active();
  const squint::detail::nearest_rounding_scope rounding;
  if constexpr (std::is_same_v<T, std::int8_t>)
    t.requantize_s8(acc.data(), q.data(), s.outer, s.channels, s.inner, multiplier.data(), zero_point);
  else
    t.requantize_u8(acc.data(), q.data(), s.outer, s.channels, s.inner, multiplier.data(), zero_point);
}

/// squint::float_to_half / half_to_float on the dispatched kernels.
inline void float_to_half(tensor_view<const float> x, tensor_view<std::uint16_t> h) {
  squint::detail::require_same_shape("float_to_half", x, h);
  detail::active().float_to_half(x.data(), h.data(), x.size());
}
inline void half_to_float(tensor_view<const std::uint16_t> h, tensor_view<float> x) {
  squint::detail::require_same_shape("half_to_float", h, x);
  detail::active().half_to_float(h.data(), x.data(), h.size());
}

/// The requantize kernel of the active ISA for output codes TC (the output stages use it).
template <class TC>
squint::detail::requantize_fn<TC> active_requantize() {
  if constexpr (std::is_same_v<TC, std::int8_t>) return detail::active().requantize_row_s8;
  else return detail::active().requantize_row_u8;
}

/// The GEMM of the active ISA for A's element type.
template <class TA>
detail::gemm_fn<TA> active_gemm() {
  if constexpr (std::is_same_v<TA, std::int8_t>) return detail::active().gemm_s8;
  else return detail::active().gemm_u8;
}

/// squint::gemm (int32 output) on the dispatched micro-kernel.
template <class TA>
void gemm(const TA* a, std::size_t m, std::size_t lda, std::int32_t a_zero_point, const packed_weights& b,
          std::int32_t* c, std::size_t ldc, const parallelism& par = {}) {
  squint::detail::check_gemm("gemm", a, m, lda, a_zero_point, b, c, ldc);
  active_gemm<TA>()(a, m, lda, a_zero_point, b, c, ldc, par, nullptr);
}

/// squint::gemm (float output) on the dispatched micro-kernel.
template <class TA>
void gemm(const TA* a, std::size_t m, std::size_t lda, qparams a_params, const packed_weights& b, const float* bias,
          bool relu, float* c, std::size_t ldc, const parallelism& par = {}) {
  squint::detail::gemm_to_float(active_gemm<TA>(), a, m, lda, a_params, b, bias, relu, c, ldc, par,
                                detail::active().float_stage);
}

/// squint::gemm (requantized output) on the dispatched micro-kernel.
template <class TA, class TC>
void gemm(const TA* a, std::size_t m, std::size_t lda, qparams a_params, const packed_weights& b,
          const std::int32_t* bias, qparams c_params, bool relu, TC* c, std::size_t ldc,
          const parallelism& par = {}) {
  squint::detail::gemm_to_codes(active_gemm<TA>(), a, m, lda, a_params, b, bias, c_params, relu, c, ldc, par,
                                active_requantize<TC>());
}

/// The convolution of the active ISA for x's element type.
template <class TA>
detail::conv_fn<TA> active_conv() {
  if constexpr (std::is_same_v<TA, std::int8_t>) return detail::active().conv_s8;
  else return detail::active().conv_u8;
}

/// squint::conv2d (int32 output) on the dispatched kernels.
template <class TA>
void conv2d(const TA* x, const image_shape& in, std::int32_t x_zero_point, const packed_conv& w, std::int32_t* y,
            const parallelism& par = {}) {
  const conv2d_geometry g = squint::detail::check_conv("conv2d", x, in, x_zero_point, w, y);
  active_conv<TA>()(x, g, x_zero_point, w, y, par, nullptr);
}

/// squint::conv2d (float output) on the dispatched kernels.
template <class TA>
void conv2d(const TA* x, const image_shape& in, qparams x_params, const packed_conv& w, const float* bias,
            activation act, float* y, const parallelism& par = {}) {
  squint::detail::conv_to_float(active_conv<TA>(), x, in, x_params, w, bias, act, y, par,
                                detail::active().float_stage);
}

/// squint::conv2d (requantized output) on the dispatched kernels.
template <class TA, class TC>
void conv2d(const TA* x, const image_shape& in, qparams x_params, const packed_conv& w, const std::int32_t* bias,
            qparams y_params, activation act, TC* y, const parallelism& par = {}) {
  squint::detail::conv_to_codes(active_conv<TA>(), x, in, x_params, w, bias, y_params, act, y, par,
                                active_requantize<TC>());
}

/// squint::gemm_half on the dispatched kernels.
inline void gemm_half(const float* a, std::size_t m, std::size_t lda, const packed_half_weights& b, const float* bias,
                      bool relu, float* c, std::size_t ldc, const parallelism& par = {}) {
  squint::detail::check_panel_gemm("gemm_half", a, m, lda, b.k(), b.n(), c, ldc);
  squint::detail::run_panels(detail::active().gemm_half, a, m, b.k(), lda, b.data(), b.n(), bias, relu, c, ldc, par);
}

/// squint::gemm_float on the dispatched kernels.
inline void gemm_float(const float* a, std::size_t m, std::size_t lda, const packed_float_weights& b, const float* bias,
                       bool relu, float* c, std::size_t ldc, const parallelism& par = {}) {
  squint::gemm_float(a, m, lda, b, bias, relu, c, ldc, par, detail::active().gemm_float);
}

/// squint::gemm_fp8 on the dispatched kernels.
inline void gemm_fp8(const float* a, std::size_t m, std::size_t lda, const packed_fp8_weights& b, const float* bias,
                     bool relu, float* c, std::size_t ldc, const parallelism& par = {}) {
  squint::gemm_fp8(a, m, lda, b, bias, relu, c, ldc, par, detail::active().gemm_fp8);
}

/// squint::gemm_int4 on the dispatched kernels.
inline void gemm_int4(const float* a, std::size_t m, std::size_t lda, const packed_int4_weights& b, const float* bias,
                      bool relu, float* c, std::size_t ldc, const parallelism& par = {}) {
  squint::gemm_int4(a, m, lda, b, bias, relu, c, ldc, par, detail::active().gemm_int4);
}

/// squint::gemm_int8_grouped on the dispatched kernels.
inline void gemm_int8_grouped(const float* a, std::size_t m, std::size_t lda, const packed_int8_grouped_weights& b,
                              const float* bias, bool relu, float* c, std::size_t ldc, const parallelism& par = {}) {
  squint::gemm_int8_grouped(a, m, lda, b, bias, relu, c, ldc, par, detail::active().gemm_int8_grouped);
}

/// squint::gemm_w4a8 on the dispatched kernels (its activation quantization too).
inline void gemm_w4a8(const float* a, std::size_t m, std::size_t lda, const packed_w4a8_weights& b, const float* bias,
                      bool relu, float* c, std::size_t ldc, const parallelism& par = {}) {
  const detail::kernel_table& t = detail::active();
  squint::gemm_w4a8(a, m, lda, b, bias, relu, c, ldc, par, t.gemm_w4a8, {t.min_max, t.quantize_channels_s8});
}

/// squint::gemm_weight_only on the dispatched kernels.
inline void gemm_weight_only(const float* a, std::size_t m, std::size_t lda, const packed_weight_only& b,
                             const float* bias, bool relu, float* c, std::size_t ldc, const parallelism& par = {}) {
  squint::detail::check_panel_gemm("gemm_weight_only", a, m, lda, b.k(), b.n(), c, ldc);
  squint::detail::run_weight_only(detail::active().gemm_weight_only, a, m, lda, b, bias, relu, c, ldc, par);
}

namespace detail {
/// Each float filter form's GEMM on the dispatched kernels.
struct runtime_float_gemm {
  void operator()(const packed_float_weights& b, const float* a, std::size_t m, std::size_t lda, const float* bias,
                  bool relu, float* c, std::size_t ldc) const {
    runtime::gemm_float(a, m, lda, b, bias, relu, c, ldc);
  }
  void operator()(const packed_half_weights& b, const float* a, std::size_t m, std::size_t lda, const float* bias,
                  bool relu, float* c, std::size_t ldc) const {
    runtime::gemm_half(a, m, lda, b, bias, relu, c, ldc);
  }
  void operator()(const packed_weight_only& b, const float* a, std::size_t m, std::size_t lda, const float* bias,
                  bool relu, float* c, std::size_t ldc) const {
    runtime::gemm_weight_only(a, m, lda, b, bias, relu, c, ldc);
  }
};
}  // namespace detail

/// squint::conv2d with float filters (FP32, FP16, int8 weight-only) on the dispatched kernels.
template <class Packed>
void conv2d(const float* x, const image_shape& in, const packed_float_conv<Packed>& w, const float* bias,
            activation act, float* y, const parallelism& par = {}) {
  squint::detail::conv_float_checked(x, in, w, bias, act, y, par, detail::runtime_float_gemm{});
}

/// squint::finite_min_max on the dispatched kernels.
inline std::pair<float, float> finite_min_max(tensor_view<const float> x) {
  squint::detail::require_data("finite_min_max", "x", x);
  float lo = HUGE_VALF, hi = -HUGE_VALF;
  std::size_t nonfinite = 0;
  detail::active().min_max(x.data(), x.size(), &lo, &hi, &nonfinite);
  return {lo, hi};
}

/// The active ISA's kernels for squint::nn layers (a snapshot: force_isa later does not change
/// layers already built).
inline nn::backend backend() {
  const detail::kernel_table& t = detail::active();
  return {t.name,
          t.gemm_u8 != &squint::detail::gemm_s32<arch::scalar, std::uint8_t>,
          t.gemm_u8,
          t.gemm_half,
          t.gemm_float,
          t.gemm_weight_only,
          t.gemm_fp8,
          t.gemm_int4,
          t.gemm_w4a8,
          t.quantize_u8,
          t.quantize_channels_s8,
          t.dequantize_s8,
          t.min_max,
          t.float_stage,
          t.fake_quant,
          t.requantize_row_u8,
          t.conv_u8};
}

}  // namespace runtime
SQUINT_NAMESPACE_END

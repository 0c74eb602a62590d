// SPDX-License-Identifier: Apache-2.0
// nn/backend.hpp: the kernels a layer runs on, and the precision it runs in.
//
// A backend is a table of kernel pointers: native_backend() holds the kernels this translation
// unit's compiler flags allow (static dispatch), squint::runtime::backend() (squint/dispatch.hpp)
// those of the running CPU. Layers copy the table when built, so one program can hold layers
// on different backends.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

#include "squint/conv/conv.hpp"
#include "squint/gemm/fp16.hpp"
#include "squint/gemm/fp32.hpp"
#include "squint/gemm/fp8.hpp"
#include "squint/gemm/int4.hpp"
#include "squint/gemm/w4a8.hpp"
#include "squint/gemm/gemm.hpp"
#include "squint/gemm/weight_only.hpp"
#include "squint/kernels/fake_quant.hpp"
#include "squint/kernels/quantize.hpp"
#include "squint/kernels/reduce.hpp"

SQUINT_NAMESPACE_BEGIN
namespace nn {

/// How a layer stores its weights and computes.
enum class precision : std::uint8_t {
  fp32,              ///< float weights, squint's float GEMM: the baseline
  fp16,              ///< fp16 weights, fp32 arithmetic (gemm_half): half the bytes, no calibration
  int8_dynamic,      ///< int8 weights; activations quantized per call from their own range
  int8_static,       ///< int8 weights; activation qparams frozen after calibration
  int8_weight_only,  ///< int8 weights, float activations and arithmetic (batch-1 decoding)
  automatic,         ///< int8_dynamic where the CPU has a fast int8 GEMM, else fp16
  fp8_weight_only,   ///< FP8 E4M3FN weights (scale per channel), float activations and arithmetic
  int4_weight_only,  ///< int4 weights (scale per channel and group of inputs), float arithmetic
  int4_dynamic,      ///< the same int4 weights x int8 activations quantized per row per call (W4A8)
};

/// The name used in tables and files ("fp32", "int8_dynamic", ...).
inline const char* to_string(precision p) {
  switch (p) {
    case precision::fp32: return "fp32";
    case precision::fp16: return "fp16";
    case precision::int8_dynamic: return "int8_dynamic";
    case precision::int8_static: return "int8_static";
    case precision::int8_weight_only: return "int8_weight_only";
    case precision::automatic: return "automatic";
    case precision::fp8_weight_only: return "fp8_weight_only";
    case precision::int4_weight_only: return "int4_weight_only";
    case precision::int4_dynamic: return "int4_dynamic";
  }
  return "unknown";
}

/// The precision named `name` (as to_string writes it).
/// @throws squint::error on an unknown name.
inline precision precision_from_string(const std::string& name) {
  for (precision p : {precision::fp32, precision::fp16, precision::int8_dynamic, precision::int8_static,
                      precision::int8_weight_only, precision::automatic, precision::fp8_weight_only,
                      precision::int4_weight_only, precision::int4_dynamic})
    if (name == to_string(p)) return p;
  detail::fail("precision_from_string: unknown precision '", name, "'");
}

/// The kernels a layer calls, as plain function pointers.
struct backend {
  const char* isa;  ///< name of the kernels' ISA
  bool fast_int8;   ///< the int8 GEMM is a SIMD micro-kernel (x86 or NEON), not the scalar one
  void (*gemm_u8)(const std::uint8_t*, std::size_t, std::size_t, std::int32_t, const packed_weights&, std::int32_t*,
                  std::size_t, const parallelism&, const squint::detail::output_stage*);
  void (*gemm_half)(const float*, std::size_t, std::size_t, std::size_t, const std::uint16_t*, std::size_t,
                    const float*, bool, float*, std::size_t) noexcept;
  float_gemm_fn gemm_float;
  void (*gemm_weight_only)(const float*, std::size_t, std::size_t, std::size_t, const std::int8_t*, std::size_t,
                           const float*, const float*, bool, float*, std::size_t) noexcept;
  fp8_gemm_fn gemm_fp8;
  grouped_gemm_fn gemm_int4;
  w4a8_gemm_fn gemm_w4a8;
  void (*quantize_u8)(const float*, std::uint8_t*, std::size_t, float, std::int32_t, bool) noexcept;
  void (*quantize_s8_channels)(const float*, std::int8_t*, std::size_t, std::size_t, std::size_t, const float*,
                               const std::int32_t*, bool) noexcept;
  void (*dequantize_s8)(const std::int8_t*, float*, std::size_t, float, std::int32_t) noexcept;
  void (*min_max)(const float*, std::size_t, float*, float*, std::size_t*) noexcept;
  squint::detail::float_stage_fn float_stage;  ///< the integer forms' float output stage
  squint::detail::fake_quant_fn fake_quant;    ///< fake quantization and its gradients (squint::qat)
  squint::detail::requantize_fn<std::uint8_t> requantize_u8;  ///< the full-integer pipeline's output stage
  /// The int8 convolution (its depthwise kernels serve nn::conv2d's depthwise layers).
  void (*conv_u8)(const std::uint8_t*, const conv2d_geometry&, std::int32_t, const packed_conv&, std::int32_t*,
                  const parallelism&, const squint::detail::output_stage*);

  /// The precision `automatic` stands for on this backend; other precisions are returned as is.
  precision resolve(precision p) const {
    if (p != precision::automatic) return p;
    return fast_int8 ? precision::int8_dynamic : precision::fp16;
  }
};

/// The kernels of this translation unit's flags (arch::native).
inline backend native_backend() {
  using gemm_arch = squint::detail::gemm_native;
  return {gemm_arch::name(),
          !std::is_same_v<gemm_arch, arch::scalar>,
          &squint::detail::gemm_s32_native<std::uint8_t>,
          &kernels::half_gemm_kernel<arch::native>::run,
          &kernels::float_gemm_kernel<arch::native>::run,
          &kernels::weight_only_gemm_kernel<arch::native>::run,
          &kernels::fp8_gemm_kernel<arch::native>::run,
          &kernels::int4_gemm_kernel<arch::native>::run,
          &kernels::w4a8_gemm_kernel<gemm_arch>::run,
          &kernels::quantize_kernel<arch::native, std::uint8_t>::per_tensor,
          &kernels::quantize_kernel<arch::native, std::int8_t>::per_channel,
          &kernels::dequantize_kernel<arch::native, std::int8_t>::per_tensor,
          &kernels::reduce_kernel<arch::native>::min_max,
          &kernels::float_stage_kernel<arch::native>::row,
          &kernels::fake_quant_kernel<arch::native>::run,
          &kernels::requantize_kernel<arch::native, std::uint8_t>::row,
          &squint::detail::conv_s32_native<std::uint8_t>};
}

}  // namespace nn
SQUINT_NAMESPACE_END

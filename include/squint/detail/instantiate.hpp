// SPDX-License-Identifier: Apache-2.0
// detail/instantiate.hpp: explicit instantiation of every kernel for one arch family.
//
// SQUINT_INSTANTIATE_KERNELS(A) goes in a translation unit compiled with A's flags (the files
// squint_add_runtime_dispatch generates); SQUINT_DECLARE_KERNELS(A) (extern template) goes in
// the baseline translation units that call them, so they never compile A's code themselves.
// Only kernel families are instantiated: a VNNI tag reuses its family's float kernels.
#pragma once

#include <cstdint>

#include "squint/conv/depthwise.hpp"
#include "squint/gemm/fp16.hpp"
#include "squint/gemm/fp32.hpp"
#include "squint/gemm/fp8.hpp"
#include "squint/gemm/int4.hpp"
#include "squint/gemm/int8_grouped.hpp"
#include "squint/gemm/w4a8.hpp"
#include "squint/gemm/microkernels.hpp"
#include "squint/gemm/weight_only.hpp"
#include "squint/kernels/convert.hpp"
#include "squint/kernels/fake_quant.hpp"
#include "squint/kernels/fp8.hpp"
#include "squint/kernels/quantize.hpp"
#include "squint/kernels/reduce.hpp"

#define SQUINT_KERNEL_LIST(M, A)                                 \
  M(::squint::kernels::quantize_kernel<A, std::int8_t>)          \
  M(::squint::kernels::quantize_kernel<A, std::uint8_t>)         \
  M(::squint::kernels::dequantize_kernel<A, std::int8_t>)        \
  M(::squint::kernels::dequantize_kernel<A, std::uint8_t>)       \
  M(::squint::kernels::requantize_kernel<A, std::int8_t>)        \
  M(::squint::kernels::requantize_kernel<A, std::uint8_t>)       \
  M(::squint::kernels::float_stage_kernel<A>)                     \
  M(::squint::kernels::convert_kernel<A>)                        \
  M(::squint::kernels::fake_quant_kernel<A>)                     \
  M(::squint::kernels::fp8_kernel<A>)                            \
  M(::squint::kernels::reduce_kernel<A>)                         \
  M(::squint::kernels::half_gemm_kernel<A>)                      \
  M(::squint::kernels::float_gemm_kernel<A>)                     \
  M(::squint::kernels::weight_only_gemm_kernel<A>)               \
  M(::squint::kernels::fp8_gemm_kernel<A>)                       \
  M(::squint::kernels::int4_gemm_kernel<A>)                      \
  M(::squint::kernels::int8_group_gemm_kernel<A>)                \
  M(::squint::kernels::depthwise_kernel<A>)

#define SQUINT_DETAIL_INSTANTIATE(...) template struct __VA_ARGS__;
#define SQUINT_DETAIL_DECLARE(...) extern template struct __VA_ARGS__;

#define SQUINT_INSTANTIATE_KERNELS(A) SQUINT_KERNEL_LIST(SQUINT_DETAIL_INSTANTIATE, A)
#define SQUINT_DECLARE_KERNELS(A) SQUINT_KERNEL_LIST(SQUINT_DETAIL_DECLARE, A)

// The GEMM micro-kernels are instantiated per arch, not per family (VNNI, dot product and i8mm
// have kernels of their own).
#define SQUINT_INSTANTIATE_GEMM_KERNELS(A) \
  template struct ::squint::kernels::gemm_kernel<A>; \
  template struct ::squint::kernels::w4a8_gemm_kernel<A>;
#define SQUINT_DECLARE_GEMM_KERNELS(A) \
  extern template struct ::squint::kernels::gemm_kernel<A>; \
  extern template struct ::squint::kernels::w4a8_gemm_kernel<A>;

// SPDX-License-Identifier: Apache-2.0
// x86_steps_emulated.cpp: squint's x86 GEMM micro-kernels, every step (AVX-512 VNNI, AVX-512BW,
// AVX-VNNI, AVX2, the 7-bit ones), compiled with AVX2 flags only, the wider instructions emulated by SIMDe.
// The kernel code is squint's own header, unchanged; this file only maps intrinsic names to
// SIMDe and instantiates the driver under tags of its own (no symbol shared with the real
// kernels). It lets an AVX2-only CPU check the AVX-512 kernels, and any CPU the AVX-VNNI one.
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

// SIMDe 0.7.4 gaps: _mm512_madd_epi16's alias takes four arguments, and it has neither the
// masked 32-bit stores, nor _mm512_cvtepi32_ps, nor AVX-VNNI's VEX spelling of vpdpbusd (same
// operation as AVX512VL's). The conversion below rounds as the kernels' callers set it (nearest).
#undef _mm512_madd_epi16
#define _mm512_madd_epi16(a, b) simde_mm512_madd_epi16(a, b)
#define _mm256_dpbusd_avx_epi32(src, a, b) simde_mm256_dpbusd_epi32(src, a, b)
#define _mm512_mask_storeu_epi32(p, mask, v) squint_test_mask_storeu_epi32(p, mask, v)
static void squint_test_mask_storeu_epi32(void* p, simde__mmask16 mask, simde__m512i v) {
  std::int32_t lanes[16];
  simde_mm512_storeu_si512(lanes, v);
  for (int j = 0; j < 16; ++j)
    if ((mask >> j) & 1) std::memcpy(static_cast<char*>(p) + 4 * j, &lanes[j], 4);
}

#define _mm512_mask_storeu_ps(p, mask, v) squint_test_mask_storeu_ps(p, mask, v)
static void squint_test_mask_storeu_ps(float* p, simde__mmask16 mask, simde__m512 v) {
  float lanes[16];
  simde_mm512_storeu_ps(lanes, v);
  for (int j = 0; j < 16; ++j)
    if ((mask >> j) & 1) p[j] = lanes[j];
}
#define _mm512_cvtepi32_ps(v) squint_test_cvtepi32_ps(v)
static simde__m512 squint_test_cvtepi32_ps(simde__m512i v) {
  std::int32_t lanes[16];
  float converted[16];
  simde_mm512_storeu_si512(lanes, v);
  for (int j = 0; j < 16; ++j) converted[j] = static_cast<float>(lanes[j]);
  return simde_mm512_loadu_ps(converted);
}

// Nor the requantizing epilogue's conversions: to int32 in the current rounding mode (the
// callers' round-to-nearest), and int32 to bytes by truncation.
#define _mm512_cvtps_epi32(v) squint_test_cvtps_epi32(v)
static simde__m512i squint_test_cvtps_epi32(simde__m512 v) {
  float lanes[16];
  std::int32_t converted[16];
  simde_mm512_storeu_ps(lanes, v);
  for (int j = 0; j < 16; ++j) converted[j] = static_cast<std::int32_t>(std::nearbyint(lanes[j]));
  return simde_mm512_loadu_si512(converted);
}
#define _mm512_cvtepi32_epi8(v) squint_test_cvtepi32_epi8(v)
static simde__m128i squint_test_cvtepi32_epi8(simde__m512i v) {
  std::int32_t lanes[16];
  std::uint8_t bytes[16];
  simde_mm512_storeu_si512(lanes, v);
  for (int j = 0; j < 16; ++j) bytes[j] = static_cast<std::uint8_t>(lanes[j]);
  return simde_mm_loadu_si128(bytes);
}

#define SQUINT_X86_STEPS_EMULATED 1
#include "squint/gemm/microkernels/x86.hpp"
#include "simde/x86_steps_emulated.hpp"

namespace squint_test::emulated {

namespace {
struct avx512_vnni_tag {};
struct avx512bw_tag {};
struct avx2_vnni_tag {};
struct avx2_tag {};
}  // namespace

void gemm_kernel(step s, const squint::kernels::gemm_kernel_params& p) {
  using namespace squint::kernels::detail_gemm;
  switch (s) {
    case step::avx512_vnni:
      run_x86<avx512_vnni_tag, dpbusd_zmm<avx512_vnni_tag>>(p);
      break;
    case step::avx512bw:
      run_x86<avx512bw_tag, sign_trick_zmm<avx512bw_tag>>(p);
      break;
    case step::avx2_vnni:
      run_x86<avx2_vnni_tag, dpbusd_ymm<avx2_vnni_tag>>(p);
      break;
    case step::avx2:
      run_x86<avx2_tag, sign_trick_ymm<avx2_tag>>(p);
      break;
    case step::avx512bw_u7:
      dot_panels<avx512bw_tag, u7_zmm<avx512bw_tag>, false>(p);
      break;
    case step::avx2_u7:
      dot_panels<avx2_tag, u7_ymm<avx2_tag>, false>(p);
      break;
  }
}

}  // namespace squint_test::emulated

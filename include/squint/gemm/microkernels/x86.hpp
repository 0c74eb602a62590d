// SPDX-License-Identifier: Apache-2.0
// gemm/microkernels/x86.hpp: the x86 int8 GEMM micro-kernels (AVX-512 VNNI, AVX-512BW, AVX-VNNI,
// AVX2), one register-blocked driver over a per-ISA 4-byte dot product step.
//
// Every step multiplies one broadcast A quadruple by a vector of 4-k weight groups (16 channels
// per zmm, 8 per ymm) and adds the four products of each channel into its int32 lane:
//   vpdpbusd (AVX-512 VNNI, AVX-VNNI): u8 x s8 with no intermediate saturation. int8 A is
//     flipped to u8 (a ^ 0x80 = a + 128) and 128 * colsum subtracted at the end.
//   sign trick (AVX2, AVX-512BW): vpmaddubsw saturates its int16 pair sums (2 * 255 * -128 does
//     not fit), so A is made signed (u8 a ^ 0x80 = a - 128, 128 * colsum added back) and
//     multiplied as |a| (<= 128, as u8) times b * sign(a) (|b| <= 127 for narrow weights): a pair
//     is at most 2 * 128 * 127 = 32512, exact, then vpmaddwd adds pairs into int32. AVX-512 has
//     no vpsignb: b is negated under the sign mask of a (vpmovb2m, masked vpsubb). Packed
//     weights holding -128 run the scalar kernel on these ISAs instead (see gemm_s32).
//   7-bit A (AVX2, AVX-512BW): activation codes in [0, 127] times any int8 weight make pairs of
//     at most 2 * 127 * 128 = 32512, so plain vpmaddubsw + vpmaddwd is exact: one instruction
//     less per vector than the sign trick, no flip, and weights holding -128 are fine. The
//     driver takes it for the blocks of rows whose bytes all fit (run_u7).
// Register blocking (FBGEMM/ruy style outer product): R rows x V vectors of C stay in registers
// over all of K; each 4-k group loads V weight vectors once and broadcasts each row's A
// quadruple once, straight from memory. VNNI zmm: 8 rows x 2 vectors (32 channels, 16
// accumulators of 32 registers). The sign trick prepares |a| and the sign once per row and
// group, so it takes more vectors per row: AVX-512BW 4 rows x 4 zmm (64 channels, 13% faster
// than 8 x 2 on this Zen 4), AVX2 2 rows x 4 ymm (32 channels, 8 accumulators of 16 registers,
// 5-25% faster than 4 x 2); AVX-VNNI 3 rows x 4 ymm.
// Each ISA's step is defined only under its compile flags, and only the kernel of the arch a
// translation unit instantiates is ever used there (no inline code shared across flag sets).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "squint/arch/tags.hpp"
#include "squint/gemm/microkernels/common.hpp"

#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace squint::kernels::detail_gemm {

// The steps, each templated on the arch tag it is compiled for (its symbols carry the tag) and
// defined only where the compile flags allow. SQUINT_X86_STEPS_EMULATED defines them all for
// tests/simde, which compiles them against SIMDe's emulated AVX-512 / VNNI intrinsics.
template <class Arch>
struct dpbusd_zmm;
template <class Arch>
struct sign_trick_zmm;
template <class Arch>
struct dpbusd_ymm;
template <class Arch>
struct sign_trick_ymm;
template <class Arch>
struct u7_zmm;
template <class Arch>
struct u7_ymm;

#if (defined(__AVX512BW__) && defined(__AVX512VL__)) || defined(SQUINT_X86_STEPS_EMULATED)
/// What the zmm steps share: 16 int32 lanes, loads and a masked store.
template <class Arch>
struct zmm_common {
  using vec = __m512i;
  static constexpr std::size_t lanes = 16, rows = 8, vectors = 2;
  static vec zero() { return _mm512_setzero_si512(); }
  static vec broadcast(std::int32_t quad) { return _mm512_set1_epi32(quad); }
  static vec load(const void* p) { return _mm512_loadu_si512(p); }
  static vec flip(vec a) { return _mm512_xor_si512(a, _mm512_set1_epi32(static_cast<int>(0x80808080u))); }
  static vec add(vec x, vec y) { return _mm512_add_epi32(x, y); }
  static __mmask16 mask(std::size_t count) {
    return static_cast<__mmask16>(count >= 16 ? 0xffffu : (1u << count) - 1u);
  }
  static void store(std::int32_t* c, vec v, std::size_t count) { _mm512_mask_storeu_epi32(c, mask(count), v); }
  // The float output stage's operations (gemm_float_epilogue).
  using fvec = __m512;
  static vec sub(vec x, vec y) { return _mm512_sub_epi32(x, y); }
  static vec mullo(vec x, vec y) { return _mm512_mullo_epi32(x, y); }
  static fvec to_float(vec v) { return _mm512_cvtepi32_ps(v); }
  static fvec fbroadcast(float x) { return _mm512_set1_ps(x); }
  static fvec fload(const float* p) { return _mm512_load_ps(p); }
  static fvec fmul(fvec x, fvec y) { return _mm512_mul_ps(x, y); }
  static fvec fadd(fvec x, fvec y) { return _mm512_add_ps(x, y); }
  static fvec fmax(fvec x, fvec y) { return _mm512_max_ps(x, y); }
  static fvec fmin(fvec x, fvec y) { return _mm512_min_ps(x, y); }
  static void fstore(float* c, fvec v, std::size_t count) { _mm512_mask_storeu_ps(c, mask(count), v); }
  static vec round(fvec v) { return _mm512_cvtps_epi32(v); }
  /// The first `count` lanes, each already a code in [0, 255], as bytes.
  static void store_codes(std::uint8_t* c, vec v, std::size_t count) {
    const __m128i bytes = _mm512_cvtepi32_epi8(v);
    if (count >= 16) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(c), bytes);
    } else {
      alignas(16) std::uint8_t lanes[16];
      _mm_store_si128(reinterpret_cast<__m128i*>(lanes), bytes);
      std::memcpy(c, lanes, count);
    }
  }
};

/// AVX-512BW: the sign trick on 16 lanes.
template <class Arch>
struct sign_trick_zmm : zmm_common<Arch> {
  using vec = __m512i;
  struct operand {
    __m512i magnitude;  // |a| as u8 (128 for -128)
    __mmask64 negative;
  };
  static constexpr bool unsigned_a = false;
  static constexpr std::size_t rows = 4, vectors = 4;
  static operand prepare(vec a) { return {_mm512_abs_epi8(a), _mm512_movepi8_mask(a)}; }
  static vec dot(vec acc, const operand& a, vec b) {
    const __m512i signed_b = _mm512_mask_sub_epi8(b, a.negative, _mm512_setzero_si512(), b);
    const __m512i pairs = _mm512_maddubs_epi16(a.magnitude, signed_b);
    return _mm512_add_epi32(acc, _mm512_madd_epi16(pairs, _mm512_set1_epi16(1)));
  }
};

/// AVX-512BW on 7-bit A: vpmaddubsw straight on the codes, in the sign trick's block shape.
template <class Arch>
struct u7_zmm : zmm_common<Arch> {
  using vec = __m512i;
  using operand = __m512i;
  static constexpr bool unsigned_a = true;
  static constexpr std::size_t rows = 4, vectors = 4;
  static operand prepare(vec a) { return a; }
  static vec dot(vec acc, operand a, vec b) {
    return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(a, b), _mm512_set1_epi16(1)));
  }
};
#endif

#if (defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__)) || defined(SQUINT_X86_STEPS_EMULATED)
/// AVX-512 VNNI: vpdpbusd on 16 lanes.
template <class Arch>
struct dpbusd_zmm : zmm_common<Arch> {
  using vec = __m512i;
  using operand = __m512i;
  static constexpr bool unsigned_a = true;
  static operand prepare(vec a) { return a; }
  static vec dot(vec acc, operand a, vec b) { return _mm512_dpbusd_epi32(acc, a, b); }
};
#endif

#if defined(__AVX2__)
/// What the ymm steps share: 8 int32 lanes, AVX2 loads and a masked store.
template <class Arch>
struct ymm_common {
  using vec = __m256i;
  static constexpr std::size_t lanes = 8, rows = 2, vectors = 4;
  static vec zero() { return _mm256_setzero_si256(); }
  static vec broadcast(std::int32_t quad) { return _mm256_set1_epi32(quad); }
  static vec load(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
  static vec flip(vec a) { return _mm256_xor_si256(a, _mm256_set1_epi32(static_cast<int>(0x80808080u))); }
  static vec add(vec x, vec y) { return _mm256_add_epi32(x, y); }
  static __m256i mask(std::size_t count) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(count)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static void store(std::int32_t* c, vec v, std::size_t count) {
    if (count >= 8) _mm256_storeu_si256(reinterpret_cast<__m256i*>(c), v);
    else if (count > 0) _mm256_maskstore_epi32(reinterpret_cast<int*>(c), mask(count), v);
  }
  // The float output stage's operations (gemm_float_epilogue).
  using fvec = __m256;
  static vec sub(vec x, vec y) { return _mm256_sub_epi32(x, y); }
  static vec mullo(vec x, vec y) { return _mm256_mullo_epi32(x, y); }
  static fvec to_float(vec v) { return _mm256_cvtepi32_ps(v); }
  static fvec fbroadcast(float x) { return _mm256_set1_ps(x); }
  static fvec fload(const float* p) { return _mm256_load_ps(p); }
  static fvec fmul(fvec x, fvec y) { return _mm256_mul_ps(x, y); }
  static fvec fadd(fvec x, fvec y) { return _mm256_add_ps(x, y); }
  static fvec fmax(fvec x, fvec y) { return _mm256_max_ps(x, y); }
  static fvec fmin(fvec x, fvec y) { return _mm256_min_ps(x, y); }
  static void fstore(float* c, fvec v, std::size_t count) {
    if (count >= 8) _mm256_storeu_ps(c, v);
    else if (count > 0) _mm256_maskstore_ps(c, mask(count), v);
  }
  static vec round(fvec v) { return _mm256_cvtps_epi32(v); }
  /// The first `count` lanes, each already a code in [0, 255], as bytes.
  static void store_codes(std::uint8_t* c, vec v, std::size_t count) {
    const __m128i words = _mm_packus_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    const __m128i bytes = _mm_packus_epi16(words, words);
    if (count >= 8) {
      _mm_storel_epi64(reinterpret_cast<__m128i*>(c), bytes);
    } else {
      alignas(16) std::uint8_t lanes[16];
      _mm_store_si128(reinterpret_cast<__m128i*>(lanes), bytes);
      std::memcpy(c, lanes, count);
    }
  }
};

/// AVX2: the sign trick on 8 lanes.
template <class Arch>
struct sign_trick_ymm : ymm_common<Arch> {
  using vec = __m256i;
  struct operand {
    __m256i magnitude;  // |a| as u8 (128 for -128)
    __m256i sign;       // a itself: vpsignb negates b where a < 0
  };
  static constexpr bool unsigned_a = false;
  static operand prepare(vec a) { return {_mm256_abs_epi8(a), a}; }
  static vec dot(vec acc, const operand& a, vec b) {
    const __m256i pairs = _mm256_maddubs_epi16(a.magnitude, _mm256_sign_epi8(b, a.sign));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
  }
};

/// AVX2 on 7-bit A: vpmaddubsw straight on the codes, in the sign trick's block shape.
template <class Arch>
struct u7_ymm : ymm_common<Arch> {
  using vec = __m256i;
  using operand = __m256i;
  static constexpr bool unsigned_a = true;
  static operand prepare(vec a) { return a; }
  static vec dot(vec acc, operand a, vec b) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1)));
  }
};
#endif

#if (defined(__AVX2__) && defined(__AVXVNNI__)) || (defined(__AVX2__) && defined(SQUINT_X86_STEPS_EMULATED))
/// AVX-VNNI: VEX vpdpbusd on 8 lanes.
template <class Arch>
struct dpbusd_ymm : ymm_common<Arch> {
  using vec = __m256i;
  using operand = __m256i;
  static constexpr std::size_t rows = 3;  // 12 accumulators; weights can be vpdpbusd's memory operand
  static constexpr bool unsigned_a = true;
  static operand prepare(vec a) { return a; }
  static vec dot(vec acc, operand a, vec b) { return _mm256_dpbusd_avx_epi32(acc, a, b); }
};
#endif

/// The step of each x86 arch with a kernel of its own.
template <class Arch>
using x86_step = std::conditional_t<
    std::is_same_v<Arch, arch::avx512_vnni>, dpbusd_zmm<Arch>,
    std::conditional_t<std::is_same_v<Arch, arch::avx512bw>, sign_trick_zmm<Arch>,
                       std::conditional_t<std::is_same_v<Arch, arch::avx2_vnni>, dpbusd_ymm<Arch>,
                                          sign_trick_ymm<Arch>>>>;

/// The 7-bit step of the archs whose full-range step is the sign trick.
template <class Arch>
using x86_u7_step = std::conditional_t<std::is_same_v<Arch, arch::avx512bw>, u7_zmm<Arch>, u7_ymm<Arch>>;

/// One panel group's float output stage (gemm_float_epilogue), its per-channel values staged in
/// aligned arrays of the group's width (zero past n) so that the kernel loads whole vectors.
struct group_epilogue {
  const float* multiplier;            // a_scale * b_scale[j] per tensor; b_scale[j] per row
  const float* bias;                  // or null
  const std::int32_t* column_sums;    // with row_zero_points
  const float* row_scales;            // per row, or null (per tensor)
  const std::int32_t* row_zero_points;  // per row, or null
  bool relu;
  float cap;
  float* c;  // the block's first row and the group's first channel
  std::size_t ldc;
  std::uint8_t* codes;  // instead of c: requantized codes (gemm_float_epilogue::codes)
  std::int32_t zero_point, code_lo, code_hi;
};

/// The float stage of one block of accumulators in registers, in float_output's order of
/// operations: subtract the row's zero-point term, convert, scale, add the bias, clamp (never
/// contracted to an FMA, in whatever translation unit it is compiled).
template <class D, std::size_t R, std::size_t V>
SQUINT_NO_FP_CONTRACT void store_float(typename D::vec (&acc)[R][V], const group_epilogue& e, std::size_t cols) {
  using fvec = typename D::fvec;
  const fvec zero = D::fbroadcast(0.0f), top = D::fbroadcast(e.cap);
  SQUINT_UNROLL
  for (std::size_t r = 0; r < R; ++r) {
    SQUINT_UNROLL
    for (std::size_t v = 0; v < V; ++v) {
      const std::size_t first = v * D::lanes;
      if (first >= cols) continue;
      typename D::vec x = acc[r][v];
      if (e.row_zero_points)
        x = D::sub(x, D::mullo(D::broadcast(e.row_zero_points[r]), D::load(e.column_sums + first)));
      const fvec multiplier = e.row_scales ? D::fmul(D::fbroadcast(e.row_scales[r]), D::fload(e.multiplier + first))
                                           : D::fload(e.multiplier + first);
      fvec y = D::fmul(D::to_float(x), multiplier);
      if (e.codes) {  // clamped before rounding to integers: the codes' clamp, as requantize_kernel
        y = D::fmin(D::fmax(y, D::fbroadcast(static_cast<float>(e.code_lo - e.zero_point))),
                    D::fbroadcast(static_cast<float>(e.code_hi - e.zero_point)));
        D::store_codes(e.codes + r * e.ldc + first, D::add(D::round(y), D::broadcast(e.zero_point)), cols - first);
        continue;
      }
      if (e.bias) y = D::fadd(y, D::fload(e.bias + first));
      if (e.relu) y = D::fmin(top, D::fmax(y, zero));
      D::fstore(e.c + r * e.ldc + first, y, cols - first);
    }
  }
}

/// R rows x V vectors of C over all of K with the step D. `panel` holds the first vector's panel; a vector covers D::lanes
/// channels of a 16-channel, 64-byte-per-group panel. `cols` columns of C are written, as int32
/// or through `to_float` (non-null). `last`: the block holds the call's last row of A.
template <class Arch, class D, std::size_t R, std::size_t V, bool Flip>
void dot_block(const std::uint8_t* a, std::size_t lda, std::size_t k, const std::int8_t* panel,
               std::size_t panel_stride, const typename D::vec* compensation, std::int32_t* c, std::size_t ldc,
               std::size_t cols, const group_epilogue* to_float, bool last) {
  using vec = typename D::vec;
  constexpr std::size_t per_panel = 16 / D::lanes, vector_bytes = 64 / per_panel;
  vec acc[R][V];
  SQUINT_UNROLL
  for (std::size_t r = 0; r < R; ++r) {
    SQUINT_UNROLL
    for (std::size_t v = 0; v < V; ++v) acc[r][v] = compensation[v];
  }
  auto step = [&](std::size_t g, auto quad_of) {
    vec b[V];
    SQUINT_UNROLL
    for (std::size_t v = 0; v < V; ++v)
      b[v] = D::load(panel + (v / per_panel) * panel_stride + g * 64 + (v % per_panel) * vector_bytes);
    SQUINT_UNROLL
    for (std::size_t r = 0; r < R; ++r) {
      vec av = D::broadcast(quad_of(r));
      if (Flip) av = D::flip(av);
      const auto operand = D::prepare(av);
      SQUINT_UNROLL
      for (std::size_t v = 0; v < V; ++v) acc[r][v] = D::dot(acc[r][v], operand, b[v]);
    }
  };
  const std::size_t full = k / k_group;
  for (std::size_t g = 0; g < full; ++g)
    step(g, [&](std::size_t r) {
      std::int32_t quad;
      std::memcpy(&quad, a + r * lda + g * k_group, k_group);
      return quad;
    });
  // The partial last group. The packed weights are zero past k, so whatever bytes A has there
  // add nothing: a row followed by another row of the call reads its group whole (up to 3 bytes
  // past k: in the next row, in bounds, once lda >= 3); only the call's last row stops at k
  // (half the time for K = 9, a grey image's 3x3 convolution).
  if (full * k_group < k)
    step(full, [&](std::size_t r) {
      if ((last && r + 1 == R) || lda < k_group - 1)
        return static_cast<std::int32_t>(load_quad<Arch>(a + r * lda, full * k_group, k));
      std::int32_t quad;
      std::memcpy(&quad, a + r * lda + full * k_group, k_group);
      return quad;
    });
  if (to_float) {
    store_float<D, R, V>(acc, *to_float, cols);
    return;
  }
  SQUINT_UNROLL
  for (std::size_t r = 0; r < R; ++r) {
    SQUINT_UNROLL
    for (std::size_t v = 0; v < V; ++v) {
      const std::size_t first = v * D::lanes;
      if (first < cols) D::store(c + r * ldc + first, acc[r][v], cols - first);
    }
  }
}

template <class Arch, class D, std::size_t V, bool Flip>
void dot_rows(const std::uint8_t* a, std::size_t m, std::size_t lda, std::size_t k, const std::int8_t* panel,
              std::size_t panel_stride, const typename D::vec* compensation, std::int32_t* c, std::size_t ldc,
              std::size_t cols, const group_epilogue* to_float) {
  for_row_blocks<D::rows>(m, [&](auto rows, std::size_t i) {
    group_epilogue rows_stage;
    if (to_float) {
      rows_stage = *to_float;
      if (rows_stage.codes) rows_stage.codes += i * rows_stage.ldc;
      else rows_stage.c += i * rows_stage.ldc;
      if (rows_stage.row_scales) rows_stage.row_scales += i;
      if (rows_stage.row_zero_points) rows_stage.row_zero_points += i;
    }
    dot_block<Arch, D, decltype(rows)::value, V, Flip>(a + i * lda, lda, k, panel, panel_stride, compensation,
                                                       c ? c + i * ldc : nullptr, ldc, cols,
                                                       to_float ? &rows_stage : nullptr, i + decltype(rows)::value == m);
  });
}

/// All of C, D::vectors vectors of channels at a time (fewer for the last panel of zmm).
template <class Arch, class D, bool Flip>
void dot_panels(const gemm_kernel_params& p) {
  using vec = typename D::vec;
  constexpr std::size_t V = D::vectors, per_panel = 16 / D::lanes, step_panels = V / per_panel;
  // Flipping A's bytes by 0x80 shifts every product by 128 * b: take it back per channel.
  constexpr std::int32_t correction = D::unsigned_a ? -128 : 128;
  const std::size_t panel_stride = p.k_groups * 64, panels = (p.n + 15) / 16;
  const gemm_float_epilogue* f = p.to_float;
  for (std::size_t p0 = 0; p0 < panels;) {
    // Whole steps of V vectors, then the panels left one at a time.
    const std::size_t count = panels - p0 >= step_panels ? step_panels : 1;
    const std::size_t first = p0 * 16, width = count * 16, cols = p.n - first < width ? p.n - first : width;
    alignas(64) std::int32_t terms[V * D::lanes] = {};
    for (std::size_t j = 0; j < width; ++j)
      terms[j] = static_cast<std::int32_t>(
          (Flip ? static_cast<std::uint32_t>(correction * p.column_sums[first + j]) : 0u) +
          (p.column_offsets ? static_cast<std::uint32_t>(p.column_offsets[first + j]) : 0u));
    vec compensation[V];
    SQUINT_UNROLL
    for (std::size_t v = 0; v < V; ++v) compensation[v] = D::load(terms + v * D::lanes);
    alignas(64) float multiplier[V * D::lanes] = {}, bias[V * D::lanes] = {};
    alignas(64) std::int32_t sums[V * D::lanes] = {};
    group_epilogue stage{};
    if (f) {
      for (std::size_t j = 0; j < cols; ++j) {
        multiplier[j] = f->per_row ? f->b_scales[first + j] : f->a_scales[0] * f->b_scales[first + j];
        if (f->bias) bias[j] = f->bias[first + j];
        if (f->row_zero_points) sums[j] = f->column_sums[first + j];
      }
      stage = {multiplier, f->bias ? bias : nullptr, sums, f->per_row ? f->a_scales : nullptr, f->row_zero_points,
               f->relu, f->cap, f->codes ? nullptr : f->c + first, f->ldc, f->codes ? f->codes + first : nullptr,
               f->zero_point, f->code_lo, f->code_hi};
    }
    const std::int8_t* panel = p.packed + p0 * panel_stride;
    std::int32_t* c = f ? nullptr : p.c + first;
    if (count == step_panels)
      dot_rows<Arch, D, V, Flip>(p.a, p.m, p.lda, p.k, panel, panel_stride, compensation, c, p.ldc, cols,
                                 f ? &stage : nullptr);
    else if constexpr (step_panels > 1)
      dot_rows<Arch, D, per_panel, Flip>(p.a, p.m, p.lda, p.k, panel, panel_stride, compensation, c, p.ldc, cols,
                                         f ? &stage : nullptr);
    p0 += count;
  }
}

/// The kernel of gemm_kernel<Arch> on x86: A's bytes are flipped where the step wants the other
/// signedness.
template <class Arch, class D = x86_step<Arch>>
void run_x86(const gemm_kernel_params& p) {
  if (p.a_signed == D::unsigned_a)
    dot_panels<Arch, D, true>(p);
  else
    dot_panels<Arch, D, false>(p);
}

/// run_x86 for A whose bytes are all in [0, 127] (the same codes signed or not): the 7-bit step.
template <class Arch>
void run_x86_u7(const gemm_kernel_params& p) {
  dot_panels<Arch, x86_u7_step<Arch>, false>(p);
}

}  // namespace squint::kernels::detail_gemm

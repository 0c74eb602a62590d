// SPDX-License-Identifier: Apache-2.0
// gemm/gemm.hpp: exact INT8 GEMM C = (A - a_zp) . (B - b_zp)^T on packed weights, with int32,
// float and requantized outputs.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <type_traits>
#include <vector>

#include "squint/gemm/microkernels.hpp"
#include "squint/gemm/pack.hpp"
#include "squint/gemm/parallel.hpp"
#include "squint/quantize.hpp"

SQUINT_NAMESPACE_BEGIN

/// Largest K for which int32 accumulation is exact for any codes and zero points: each product
/// (a - a_zp)(b - b_zp) is at most 255 * 255 in magnitude, and 33025 * 65025 < 2^31. Larger K is
/// rejected with squint::error (split the product along K and add the int32 results yourself).
inline constexpr std::size_t gemm_max_k = 2147483647u / (255u * 255u);

namespace detail {

/// The GEMM micro-kernel static dispatch uses in this translation unit.
#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
using gemm_native = arch::avx512_vnni;
#elif defined(__AVX512BW__) && defined(__AVX512VL__)
using gemm_native = arch::avx512bw;
#elif defined(__AVXVNNI__) && defined(__AVX2__)
using gemm_native = arch::avx2_vnni;
#elif XSIMD_WITH_AVX2 && defined(__FMA__) && defined(__F16C__)
using gemm_native = arch::avx2;
#elif defined(__aarch64__) && defined(__ARM_FEATURE_MATMUL_INT8)
using gemm_native = arch::neon64_i8mm;
#elif defined(__aarch64__) && defined(__ARM_FEATURE_DOTPROD)
using gemm_native = arch::neon64_dotprod;
#elif defined(__aarch64__) && defined(__ARM_NEON)
using gemm_native = arch::neon64;
#else
using gemm_native = arch::scalar;
#endif

template <class TA>
void check_gemm(const char* function, const TA* a, std::size_t m, std::size_t lda, std::int32_t a_zero_point,
                const packed_weights& b, const void* c, std::size_t ldc) {
  const std::size_t k = b.k();
  require_matrix(function, "a", a, m, k, lda);
  require_matrix(function, "c", static_cast<const char*>(c), m, b.n(), ldc);
  require(m <= 1 || lda >= k, function, ": lda ", lda, " is smaller than k ", k);
  require(m <= 1 || ldc >= b.n(), function, ": ldc ", ldc, " is smaller than n ", b.n());
  require(k <= gemm_max_k, function, ": k = ", k, " exceeds ", gemm_max_k,
          ", the largest depth int32 accumulation is exact for; split the product along k");
  const quant_range r = full_range(dtype_of<TA>());
  require(a_zero_point >= r.qmin && a_zero_point <= r.qmax, function, ": a_zero_point ", a_zero_point,
          " is outside [", r.qmin, ", ", r.qmax, "]");
}

struct float_output;
template <class TC>
struct code_output;

/// What a GEMM does with each finished block of int32 accumulators: null `finish` writes them
/// to C as they are; otherwise the task that computed a block (rows [i0, i0 + rows), columns
/// [j0, j0 + cols), leading dimension ldacc, in a scratch tile it may overwrite) hands it to
/// `finish` at once, while it is still in L1/L2, so the output stage runs on every thread and no
/// m x n int32 buffer exists (FBGEMM's outProcess design). Called concurrently on disjoint blocks.
/// `column_terms` (n entries, or null) are int32 values added to every row of channel j in the
/// micro-kernel's registers, with the zero-point terms (an int32 bias in accumulator units).
/// `in_registers` (the float_output `context` points to, or null) lets the kernels that can
/// (gemm_kernel_fuses_float) apply that float stage to their accumulators before any store;
/// the tiles and `finish` remain for the others, with the same result bit for bit.
/// `codes_in_registers` does the same for a uint8 requantized stage (code_output<uint8_t>).
struct output_stage {
  void (*finish)(const void* context, std::int32_t* acc, std::size_t ldacc, std::size_t i0, std::size_t rows,
                 std::size_t j0, std::size_t cols) = nullptr;
  const void* context = nullptr;
  const std::int32_t* column_terms = nullptr;
  const float_output* in_registers = nullptr;
  const code_output<std::uint8_t>* codes_in_registers = nullptr;
};

/// The terms that depend on the channel only, for the kernels' column offsets:
/// -a_zp * colsum_j(b) + k * a_zp * b_zp[j] + extra[j] (extra may be null), modulo 2^32 (the
/// true result fits int32 since k is bounded, so overflows of partial terms cancel). Empty when
/// there are none.
inline std::vector<std::int32_t> column_offsets(std::int32_t a_zero_point, const packed_weights& b,
                                                const std::int32_t* extra) {
  if (a_zero_point == 0 && extra == nullptr) return {};
  const std::vector<std::int32_t>& b_zp = b.zero_points();
  const std::int32_t* colsum = b.column_sums();
  std::vector<std::int32_t> offsets(b.panels() * packed_weights::panel_width, 0);
  for (std::size_t j = 0; j < b.n(); ++j)
    offsets[j] = static_cast<std::int32_t>(static_cast<std::uint32_t>(
        -static_cast<std::int64_t>(a_zero_point) * colsum[j] + static_cast<std::int64_t>(b.k()) * a_zero_point * b_zp[j] +
        (extra ? extra[j] : 0)));
  return offsets;
}

/// A rank-one correction: c[i][j] -= x[i] * y[j] for `rows` x `cols`, modulo 2^32 (the zero-point
/// terms that depend on both the row and the channel).
inline void subtract_outer(const std::int32_t* x, const std::int32_t* y, std::size_t rows, std::size_t cols,
                           std::int32_t* c, std::size_t ldc) {
  for (std::size_t i = 0; i < rows; ++i) {
    const auto xi = static_cast<std::uint32_t>(x[i]);
    auto* row = reinterpret_cast<std::uint32_t*>(c + i * ldc);
    for (std::size_t j = 0; j < cols; ++j) row[j] -= xi * static_cast<std::uint32_t>(y[j]);
  }
}

/// Row sums of `rows` x k bytes of A (row stride lda, signed or unsigned), modulo 2^32.
inline void row_sums(const std::uint8_t* a, bool a_signed, std::size_t rows, std::size_t k, std::size_t lda,
                     std::int32_t* sums) {
  for (std::size_t i = 0; i < rows; ++i) {
    std::uint32_t sum = 0;
    const std::uint8_t* row = a + i * lda;
    if (a_signed)
      for (std::size_t kk = 0; kk < k; ++kk) sum += static_cast<std::uint32_t>(static_cast<std::int8_t>(row[kk]));
    else
      for (std::size_t kk = 0; kk < k; ++kk) sum += row[kk];
    sums[i] = static_cast<std::int32_t>(sum);
  }
}

/// Whether every byte of `rows` x k bytes of A (row stride lda) lies in [0, 127].
inline bool fits_7_bits(const std::uint8_t* a, std::size_t rows, std::size_t k, std::size_t lda) {
  for (std::size_t i = 0; i < rows; ++i) {
    const std::uint8_t* row = a + i * lda;
    std::uint64_t high = 0;
    std::size_t kk = 0;
    for (; kk + 8 <= k; kk += 8) {
      std::uint64_t word;
      std::memcpy(&word, row + kk, 8);
      high |= word;
    }
    for (; kk < k; ++kk) high |= row[kk];
    if ((high & 0x8080808080808080ull) != 0) return false;
  }
  return true;
}

/// An output stage's float kernel (float_stage_kernel::row).
using float_stage_fn = void (*)(const std::int32_t*, float*, std::size_t, const float*, const float*, bool,
                                float) noexcept;

/// Float output: c[i][j] = float(acc) * (a_scale[i or 0] * b_scale[j]) + bias[j], then ReLU.
/// `a_scales` holds one scale per row with `per_row`, else one for all. With per-row activation
/// zero points (squint::nn's per-row dynamic INT8; the GEMM then ran with zero point 0),
/// acc -= row_zero_points[i] * column_sums[j] first, modulo 2^32.
struct float_output {
  const float* a_scales;
  bool per_row;
  const float* b_scales;
  const float* bias;
  bool relu;
  float* c;
  std::size_t ldc;
  const std::int32_t* row_zero_points = nullptr;
  const std::int32_t* column_sums = nullptr;
  float cap = HUGE_VALF;  ///< upper clamp with relu (6 for ReLU6)
  /// The float stage kernel (runtime dispatch passes the CPU's; otherwise this TU's own).
  float_stage_fn stage = &kernels::float_stage_kernel<arch::native>::row;

  /// This stage for the block at row i0 and channel j0 of C, as the micro-kernels apply it.
  kernels::gemm_float_epilogue epilogue(std::size_t i0, std::size_t j0) const {
    return {per_row ? a_scales + i0 : a_scales,
            per_row,
            b_scales + j0,
            bias ? bias + j0 : nullptr,
            row_zero_points ? row_zero_points + i0 : nullptr,
            column_sums ? column_sums + j0 : nullptr,
            relu,
            cap,
            c + i0 * ldc + j0,
            ldc};
  }

  static void finish(const void* context, std::int32_t* acc, std::size_t ldacc, std::size_t i0, std::size_t rows,
                     std::size_t j0, std::size_t cols) {
    const auto& o = *static_cast<const float_output*>(context);
    const nearest_rounding_scope rounding;
    if (o.row_zero_points) subtract_outer(o.row_zero_points + i0, o.column_sums + j0, rows, cols, acc, ldacc);
    float multiplier[256];
    for (std::size_t i = 0; i < rows;) {
      // Rows sharing a scale go together (all of them per tensor, one at a time per row).
      const std::size_t count = o.per_row ? 1 : rows;
      const float a_scale = o.a_scales[o.per_row ? i0 + i : 0];
      for (std::size_t c0 = 0; c0 < cols; c0 += 256) {
        const std::size_t width = std::min<std::size_t>(256, cols - c0);
        for (std::size_t j = 0; j < width; ++j) multiplier[j] = a_scale * o.b_scales[j0 + c0 + j];
        for (std::size_t r = 0; r < count; ++r)
          o.stage(acc + (i + r) * ldacc + c0, o.c + (i0 + i + r) * o.ldc + j0 + c0, width, multiplier,
                  o.bias ? o.bias + j0 + c0 : nullptr, o.relu, o.cap);
      }
      i += count;
    }
  }
};

/// Requantized output: c[i][j] = requantize(acc, multiplier[j], zero point), then within
/// [zero point, cap] with relu (cap: the code of 6 for ReLU6). An int32 bias reaches acc
/// through output_stage::column_terms when the
/// sum cannot overflow; otherwise `saturating_bias` (n entries) is added here, saturated to int32.
/// An output stage's requantize kernel (requantize_kernel::row).
template <class TC>
using requantize_fn = void (*)(const std::int32_t*, TC*, std::size_t, const float*, std::int32_t, std::int32_t,
                               std::int32_t) noexcept;

template <class TC>
struct code_output {
  const float* multiplier;
  std::int32_t zero_point;
  bool relu;
  TC* c;
  std::size_t ldc;
  const std::int32_t* saturating_bias = nullptr;
  std::int32_t cap = std::numeric_limits<std::int32_t>::max();
  /// The requantize kernel (runtime dispatch passes the CPU's; otherwise this TU's own).
  requantize_fn<TC> requantize = &kernels::requantize_kernel<arch::native, TC>::row;

  /// This stage for the block at row i0 and channel j0 of C, as the micro-kernels apply it
  /// (output_stage::codes_in_registers: uint8 codes, the bias in the accumulators).
  kernels::gemm_float_epilogue epilogue(std::size_t i0, std::size_t j0) const {
    static_assert(std::is_same_v<TC, std::uint8_t>, "the micro-kernels write uint8 codes only");
    static constexpr float one = 1.0f;
    kernels::gemm_float_epilogue e{&one, false, multiplier + j0, nullptr, nullptr, nullptr, false, 0.0f, nullptr, ldc};
    e.codes = c + i0 * ldc + j0;
    e.zero_point = zero_point;
    e.code_lo = relu ? zero_point : 0;
    e.code_hi = relu ? std::clamp<std::int32_t>(cap, zero_point, 255) : 255;
    return e;
  }

  static void finish(const void* context, std::int32_t* acc, std::size_t ldacc, std::size_t i0, std::size_t rows,
                     std::size_t j0, std::size_t cols) {
    const auto& o = *static_cast<const code_output*>(context);
    const nearest_rounding_scope rounding;
    if (o.saturating_bias)
      for (std::size_t i = 0; i < rows; ++i)
        for (std::size_t j = 0; j < cols; ++j) {
          const std::int64_t v = static_cast<std::int64_t>(acc[i * ldacc + j]) + o.saturating_bias[j0 + j];
          acc[i * ldacc + j] = static_cast<std::int32_t>(std::clamp<std::int64_t>(v, std::numeric_limits<std::int32_t>::min(),
                                                                         std::numeric_limits<std::int32_t>::max()));
        }
    // Narrow blocks that are dense on both sides (a depthwise layer's few channels) go several
    // rows per kernel call, with the multipliers repeated: the kernels vectorize along a row,
    // and a row shorter than their 4-vector step would run entirely through the padded tail.
    const bool dense = ldacc == cols && o.ldc == cols;
    const std::size_t group = dense ? std::max<std::size_t>(1, 256 / cols) : 1;
    const float* multiplier = o.multiplier + j0;
    thread_local std::vector<float> repeated;
    if (group > 1) {
      repeated.resize(group * cols);
      for (std::size_t i = 0; i < group; ++i) std::copy(multiplier, multiplier + cols, repeated.begin() + i * cols);
      multiplier = repeated.data();
    }
    const std::int32_t lo = o.relu ? o.zero_point : std::numeric_limits<TC>::min();
    const std::int32_t hi = o.relu ? std::clamp<std::int32_t>(o.cap, o.zero_point, std::numeric_limits<TC>::max())
                                   : std::numeric_limits<TC>::max();
    for (std::size_t i = 0; i < rows; i += group) {
      const std::size_t n = std::min(group, rows - i) * cols;
      o.requantize(acc + i * ldacc, o.c + (i0 + i) * o.ldc + j0, n, multiplier, o.zero_point, lo, hi);
    }
  }
};

/// One product's prepared state on the kernel of `Arch` (weights holding -128 run the scalar
/// kernel where Arch's is exact for narrow weights only, unless the rows' codes fit in 7 bits):
/// the kernels and the column offsets.
/// run() takes any block of A's rows, so the GEMM and the convolution (on im2col tiles) share
/// the blocking, the zero-point terms and the fused output stage.
template <class Arch>
class gemm_blocks {
 public:
  gemm_blocks(const packed_weights& b, std::int32_t a_zero_point, const output_stage* stage)
      : b_(b),
        stage_(stage),
        kernel_(kernels::gemm_kernel_needs_narrow<Arch>() && !b.narrow() ? &kernels::gemm_kernel<arch::scalar>::run
                                                                          : &kernels::gemm_kernel<Arch>::run),
        kernel_u7_(kernels::has_u7_gemm_kernel<Arch>() ? &kernels::gemm_kernel<Arch>::run_u7 : nullptr),
        kernel_fuses_(kernels::gemm_kernel_fuses_float<Arch>() && kernel_ == &kernels::gemm_kernel<Arch>::run),
        offsets_(column_offsets(a_zero_point, b, stage ? stage->column_terms : nullptr)) {}

  /// Output channels per register block of the kernel: work is split in multiples of it.
  static constexpr std::size_t width() { return kernels::gemm_kernel_width<Arch>(); }

  /// Rows [0, rows) of A at `a` (row stride lda) times channels [j0, j1): int32 results into c
  /// (row 0 of the block, channel 0; ldc), or each finished tile through the stage, reported
  /// as rows from `i0` and channels from `channel_base + j0`.
  void run(const std::uint8_t* a, bool a_signed, std::size_t rows, std::size_t lda, std::size_t i0, std::size_t j0,
           std::size_t j1, std::int32_t* c, std::size_t ldc, std::size_t channel_base = 0) const {
    if (rows == 0 || j0 >= j1) return;
    const std::size_t k = b_.k();
    // Staged output: blocks of up to 512 channels (whole kernel blocks) x 8192 / channels rows
    // (at most 256), whose int32 tile (<= 32 KiB) stays in cache for the stage; wide blocks keep
    // the stage's vector loops long.
    const std::size_t col_step = stage_ ? std::min((j1 - j0 + width() - 1) / width() * width(), 512 / width() * width()) : j1 - j0;
    const std::size_t row_step = stage_ ? std::clamp<std::size_t>(8192 / col_step, 1, std::min<std::size_t>(rows, 256)) : rows;
    thread_local std::vector<std::int32_t> tile, rowsum;
    if (stage_) tile.resize(row_step * std::min(col_step, j1 - j0));
    const float_output* fused = stage_ && k > 0 && b_.symmetric() ? stage_->in_registers : nullptr;
    const code_output<std::uint8_t>* fused_codes =
        stage_ && k > 0 && b_.symmetric() ? stage_->codes_in_registers : nullptr;
    std::optional<nearest_rounding_scope> rounding;  // the fused stage converts int32 to float
    if (fused || fused_codes) rounding.emplace();
    const std::size_t panel_bytes = b_.k_groups() * packed_weights::panel_width * packed_weights::k_group;
    for (std::size_t r0 = 0; r0 < rows; r0 += row_step) {
      const std::size_t n_rows = std::min(row_step, rows - r0);
      const std::uint8_t* a_rows = a + r0 * lda;
      // Codes in [0, 127] (7-bit activations, e.g. reduce_range) take the faster exact kernel.
      const kernel_fn kernel = kernel_u7_ && fits_7_bits(a_rows, n_rows, k, lda) ? kernel_u7_ : kernel_;
      const bool in_registers = (fused || fused_codes) && (kernel == kernel_u7_ || kernel_fuses_);
      // Asymmetric weights: b_zp[j] * rowsum_i(a) comes off every element.
      if (!b_.symmetric()) {
        rowsum.resize(n_rows);
        row_sums(a_rows, a_signed, n_rows, k, lda, rowsum.data());
      }
      for (std::size_t c0 = j0; c0 < j1; c0 += col_step) {
        const std::size_t cols = std::min(col_step, j1 - c0);
        std::int32_t* out = stage_ ? tile.data() : c + r0 * ldc + c0;
        const std::size_t ld = stage_ ? cols : ldc;
        if (k == 0) {  // no products: only the column terms (an int32 bias) remain
          for (std::size_t i = 0; i < n_rows; ++i)
            for (std::size_t j = 0; j < cols; ++j) out[i * ld + j] = offsets_.empty() ? 0 : offsets_[c0 + j];
        } else {
          kernels::gemm_kernel_params p{a_rows, n_rows, k, lda, a_signed,
                                        b_.panel(0) + c0 / packed_weights::panel_width * panel_bytes,
                                        b_.column_sums() + c0, offsets_.empty() ? nullptr : offsets_.data() + c0, cols,
                                        b_.k_groups(), out, ld};
          kernels::gemm_float_epilogue to_float;
          if (in_registers) {
            to_float = fused ? fused->epilogue(i0 + r0, channel_base + c0)
                             : fused_codes->epilogue(i0 + r0, channel_base + c0);
            p.to_float = &to_float;
          }
          kernel(p);
          if (in_registers) continue;
          if (!b_.symmetric()) subtract_outer(rowsum.data(), b_.zero_points().data() + c0, n_rows, cols, out, ld);
        }
        if (stage_) stage_->finish(stage_->context, out, ld, i0 + r0, n_rows, channel_base + c0, cols);
      }
    }
  }

 private:
  using kernel_fn = void (*)(const kernels::gemm_kernel_params&) noexcept;
  const packed_weights& b_;
  const output_stage* stage_;
  kernel_fn kernel_;
  kernel_fn kernel_u7_;
  bool kernel_fuses_;  // kernel_ takes gemm_kernel_params::to_float (kernel_u7_, where there is one, always does)
  std::vector<std::int32_t> offsets_;
};

/// Unchecked GEMM on the kernel of `Arch`, split into `par.threads` tasks over the kernel's
/// register blocks of channels or over rows: int32 results into c (ldc), or each block through
/// `stage` (then c is not used).
template <class Arch, class TA>
void gemm_s32(const TA* a, std::size_t m, std::size_t lda, std::int32_t a_zero_point, const packed_weights& b,
              std::int32_t* c, std::size_t ldc, const parallelism& par = {}, const output_stage* stage = nullptr) {
  const std::size_t n = b.n(), k = b.k();
  if (m == 0 || n == 0) return;
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(a);
  constexpr bool a_signed = std::is_same_v<TA, std::int8_t>;
  const gemm_blocks<Arch> blocks_of(b, a_zero_point, stage);
  auto block = [&](std::size_t i0, std::size_t i1, std::size_t j0, std::size_t j1) {
    blocks_of.run(bytes + i0 * lda, a_signed, i1 - i0, lda, i0, j0, j1, stage ? nullptr : c + i0 * ldc, ldc);
  };
  // Never more tasks than kernel blocks or rows to share out.
  const std::size_t width = gemm_blocks<Arch>::width();
  const std::size_t blocks = (n + width - 1) / width;
  const std::size_t tasks = task_count(par, std::max(blocks, m), m, n, k);
  if (tasks == 1) {
    block(0, m, 0, n);
  } else if (blocks >= tasks) {  // split the output channels, in whole kernel blocks
    split_columns(par, m, n, k, width, [&](std::size_t j0, std::size_t j1) { block(0, m, j0, j1); });
  } else {  // few channels, many rows: split the rows
    run_tasks(par, tasks, [&](std::size_t t) {
      const std::size_t i0 = m * t / tasks, i1 = m * (t + 1) / tasks;
      if (i0 < i1) block(i0, i1, 0, n);
    });
  }
}

/// True when acc + bias[j] cannot leave int32 for any codes at depth k (|acc| <= k * 255 * 255),
/// so the bias can ride in the kernels' wrapping column offsets.
inline bool bias_fits_offsets(const std::int32_t* bias, std::size_t n, std::size_t k) {
  const std::int64_t headroom = std::int64_t{2147483647} - static_cast<std::int64_t>(k) * 255 * 255;
  for (std::size_t j = 0; j < n; ++j)
    if (bias[j] > headroom || -static_cast<std::int64_t>(bias[j]) > headroom) return false;
  return true;
}

/// Checks that a_scale * b_scales[j] is finite for every channel (the float stage's multipliers).
inline void check_scale_products(const char* function, float a_scale, const std::vector<float>& b_scales) {
  for (std::size_t j = 0; j < b_scales.size(); ++j)
    require(std::isfinite(a_scale * b_scales[j]), function, ": the input scale ", a_scale, " times the scale ",
            b_scales[j], " of channel ", j, " overflows float32");
}

/// The requantized stage's multipliers a_scale * b_scales[j] / c_scale, each finite and > 0.
inline std::vector<float> output_multipliers(const char* function, float a_scale, const std::vector<float>& b_scales,
                                             float c_scale) {
  std::vector<float> multiplier(b_scales.size());
  for (std::size_t j = 0; j < b_scales.size(); ++j) {
    multiplier[j] = a_scale * b_scales[j] / c_scale;
    require(std::isfinite(multiplier[j]) && multiplier[j] > 0.0f, function, ": output multiplier of channel ", j,
            " is ", multiplier[j]);
  }
  return multiplier;
}

/// Float output stage over a GEMM `s32(a, m, lda, zp, b, c, ldc, par, stage)`.
template <class TA, class S32>
void gemm_to_float(S32 s32, const TA* a, std::size_t m, std::size_t lda, qparams a_params, const packed_weights& b,
                   const float* bias, bool relu, float* c, std::size_t ldc, const parallelism& par,
                   float_stage_fn float_stage = &kernels::float_stage_kernel<arch::native>::row) {
  check_gemm("gemm", a, m, lda, a_params.zero_point, b, c, ldc);
  validate(a_params, full_range(dtype_of<TA>()), "gemm: a_params");
  check_scale_products("gemm", a_params.scale, b.scales());
  const float_output out{&a_params.scale, false, b.scales().data(), bias, relu, c, ldc, nullptr, nullptr, HUGE_VALF,
                         float_stage};
  const output_stage stage{&float_output::finish, &out, nullptr, &out};
  s32(a, m, lda, a_params.zero_point, b, nullptr, 0, par, &stage);
}

/// Requantized output stage over a GEMM.
template <class TA, class TC, class S32>
void gemm_to_codes(S32 s32, const TA* a, std::size_t m, std::size_t lda, qparams a_params, const packed_weights& b,
                   const std::int32_t* bias, qparams c_params, bool relu, TC* c, std::size_t ldc,
                   const parallelism& par,
                   requantize_fn<TC> requantize = &kernels::requantize_kernel<arch::native, TC>::row) {
  check_gemm("gemm", a, m, lda, a_params.zero_point, b, c, ldc);
  validate(a_params, full_range(dtype_of<TA>()), "gemm: a_params");
  validate(c_params, full_range(dtype_of<TC>()), "gemm: c_params");
  const std::size_t n = b.n();
  const std::vector<float> multiplier = output_multipliers("gemm", a_params.scale, b.scales(), c_params.scale);
  const bool fold = bias == nullptr || bias_fits_offsets(bias, n, b.k());
  const code_output<TC> out{multiplier.data(), c_params.zero_point, relu, c, ldc, fold ? nullptr : bias,
                            std::numeric_limits<std::int32_t>::max(), requantize};
  output_stage stage{&code_output<TC>::finish, &out, fold ? bias : nullptr};
  if constexpr (std::is_same_v<TC, std::uint8_t>)
    if (fold) stage.codes_in_registers = &out;
  s32(a, m, lda, a_params.zero_point, b, nullptr, 0, par, &stage);
}

template <class TA>
void gemm_s32_native(const TA* a, std::size_t m, std::size_t lda, std::int32_t a_zero_point, const packed_weights& b,
                     std::int32_t* c, std::size_t ldc, const parallelism& par, const output_stage* stage) {
  gemm_s32<gemm_native>(a, m, lda, a_zero_point, b, c, ldc, par, stage);
}

}  // namespace detail

/// C (m x n, int32, row stride ldc) = (A - a_zero_point) . (B - b_zero_point)^T, exact.
/// A is m x k uint8 or int8 with row stride lda; B holds k and n. Results are identical on
/// every ISA. Static dispatch: the kernel this translation unit's
/// flags allow (squint/dispatch.hpp's runtime::gemm picks per CPU).
/// @throws squint::error on null pointers with elements, lda < k, ldc < n, k > gemm_max_k or a
///         zero point outside A's range. Nothing is written on error.
template <class TA>
void gemm(const TA* a, std::size_t m, std::size_t lda, std::int32_t a_zero_point, const packed_weights& b,
          std::int32_t* c, std::size_t ldc, const parallelism& par = {}) {
  detail::check_gemm("gemm", a, m, lda, a_zero_point, b, c, ldc);
  detail::gemm_s32_native(a, m, lda, a_zero_point, b, c, ldc, par, nullptr);
}

/// Float output: C[i][j] = float(acc) * (a.scale * b.scale[j]) + bias[j], then max(0, .) with
/// `relu`. `bias` has n entries or is null.
template <class TA>
void gemm(const TA* a, std::size_t m, std::size_t lda, qparams a_params, const packed_weights& b, const float* bias,
          bool relu, float* c, std::size_t ldc, const parallelism& par = {}) {
  detail::gemm_to_float(&detail::gemm_s32_native<TA>, a, m, lda, a_params, b, bias, relu, c, ldc, par);
}

/// Requantized output: C[i][j] = clamp(round_half_even(float(acc + bias[j]) * a.scale * b.scale[j] /
/// c.scale) + c.zero_point) in TC, then at least c.zero_point with `relu`. `bias` (int32, in
/// accumulator units, n entries) may be null; acc + bias saturates to int32 (never wraps).
template <class TA, class TC>
void gemm(const TA* a, std::size_t m, std::size_t lda, qparams a_params, const packed_weights& b,
          const std::int32_t* bias, qparams c_params, bool relu, TC* c, std::size_t ldc,
          const parallelism& par = {}) {
  detail::gemm_to_codes(&detail::gemm_s32_native<TA>, a, m, lda, a_params, b, bias, c_params, relu, c, ldc, par);
}

SQUINT_NAMESPACE_END

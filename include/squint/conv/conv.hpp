// SPDX-License-Identifier: Apache-2.0
// conv/conv.hpp: exact INT8 2-D convolution of NHWC images with packed filters, with int32,
// float and requantized outputs.
//
// How each filter runs:
//   1x1, stride 1, no padding: a GEMM over the image as it is (pixels x channels).
//   other filters: im2col on tiles of output pixels that stay in cache (at most 128 KiB of
//     bytes; never the whole (H * W) x (taps * C) matrix), each tile handed to the GEMM's
//     micro-kernels and output stages (gemm_blocks) per group. Taps in the padding copy
//     zero-point bytes, which add nothing, as ONNX pads.
//   depthwise: conv/depthwise.hpp's kernels over an indirection of tap pointers (the input
//     zero point's term folded into their initial sums).
// Output stages run per finished tile on the thread that computed it, as in the GEMM.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "squint/conv/depthwise.hpp"
#include "squint/conv/im2col.hpp"
#include "squint/conv/pack.hpp"
#include "squint/gemm/gemm.hpp"

SQUINT_NAMESPACE_BEGIN

namespace detail {

/// Checks a convolution call and resolves its geometry.
template <class TA>
conv2d_geometry check_conv(const char* function, const TA* x, const image_shape& in, std::int32_t x_zero_point,
                           const packed_conv& w, const void* y) {
  const conv2d_geometry g = resolve(function, in, w.filter(), w.params());
  require_matrix(function, "x", x, g.in.pixels(), g.in.channels);
  require_matrix(function, "y", static_cast<const char*>(y), g.out.pixels(), g.out.channels);
  const quant_range r = full_range(dtype_of<TA>());
  require(x_zero_point >= r.qmin && x_zero_point <= r.qmax, function, ": x_zero_point ", x_zero_point,
          " is outside [", r.qmin, ", ", r.qmax, "]");
  return g;
}

/// Unchecked convolution: GEMM-shaped filters on GemmArch's micro-kernels, depthwise ones on
/// DwArch's kernel; int32 results into y (NHWC), or each finished tile through `stage`.
template <class GemmArch, class DwArch, class TA>
void conv_s32(const TA* x, const conv2d_geometry& g, std::int32_t x_zero_point, const packed_conv& w,
              std::int32_t* y, const parallelism& par = {}, const output_stage* stage = nullptr) {
  const std::size_t m = g.out.pixels(), oc = g.out.channels, taps = g.filter.taps();
  if (m == 0) return;
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(x);
  constexpr bool a_signed = std::is_same_v<TA, std::int8_t>;
  const std::vector<std::uint8_t> pad_row(g.in.channels, static_cast<std::uint8_t>(x_zero_point));
  auto split_rows = [&](std::size_t tasks, auto&& rows) {
    run_tasks(par, tasks, [&](std::size_t t) {
      const std::size_t i0 = m * t / tasks, i1 = m * (t + 1) / tasks;
      if (i0 < i1) rows(i0, i1);
    });
  };
  if (w.depthwise()) {
    // The kernels take no zero point: -x_zp * sum_t w_t joins the column terms.
    std::vector<std::int32_t> init(oc);
    for (std::size_t c = 0; c < oc; ++c)
      init[c] = static_cast<std::int32_t>(
          static_cast<std::uint32_t>(stage && stage->column_terms ? stage->column_terms[c] : 0) -
          static_cast<std::uint32_t>(x_zero_point) * static_cast<std::uint32_t>(w.depthwise_sums()[c]));
    // Tiles of pixels whose int32 results (<= 32 KiB) stay in cache for the stage.
    const std::size_t step = std::max<std::size_t>(1, 8192 / oc);
    // A depthwise multiply-add costs ~16x a GEMM one (no reduction to block): weigh the work
    // so that a layer of a few million of them still gets its threads.
    split_rows(task_count(par, m, m, oc * 16, taps), [&](std::size_t i0, std::size_t i1) {
      thread_local std::vector<std::int32_t> tile;
      thread_local std::vector<const std::uint8_t*> tap_pointers;
      tap_pointers.resize(taps);
      if (stage) tile.resize(step * oc);
      for (std::size_t r0 = i0; r0 < i1; r0 += step) {
        const std::size_t rows = std::min(step, i1 - r0);
        std::int32_t* out = stage ? tile.data() : y + r0 * oc;
        window_walker<std::uint8_t> walk(bytes, g, pad_row.data(), r0, tap_pointers.data());
        for (std::size_t r = 0; r < rows; ++r) {
          if (r > 0) walk.next();
          kernels::depthwise_kernel<DwArch>::run(tap_pointers.data(), taps, a_signed, w.depthwise_weights(), oc,
                                                 init.data(), out + r * oc);
        }
        if (stage) stage->finish(stage->context, out, oc, r0, rows, 0, oc);
      }
    });
    return;
  }
  const std::size_t groups = g.groups(), ocg = g.group_out_channels(), depth = g.depth();
  // Each group's stage sees its own slice of the column terms (the int32 bias).
  std::vector<output_stage> stages(groups);
  std::vector<gemm_blocks<GemmArch>> runners;
  runners.reserve(groups);
  for (std::size_t k = 0; k < groups; ++k) {
    if (stage) {
      stages[k] = *stage;
      if (stage->column_terms) stages[k].column_terms = stage->column_terms + k * ocg;
    }
    runners.emplace_back(w.group(k), x_zero_point, stage ? &stages[k] : nullptr);
  }
  const bool direct = g.pointwise();
  const std::size_t tile_rows = direct ? m : std::clamp<std::size_t>(131072 / std::max<std::size_t>(depth, 1), 8, 256);
  auto process = [&](std::size_t i0, std::size_t i1, std::size_t j0, std::size_t j1) {
    thread_local std::vector<std::uint8_t> tile;
    thread_local std::vector<const std::uint8_t*> tap_pointers;
    tap_pointers.resize(taps);
    for (std::size_t r0 = i0; r0 < i1; r0 += tile_rows) {
      const std::size_t rows = std::min(tile_rows, i1 - r0);
      for (std::size_t k = 0; k < groups; ++k) {
        const std::uint8_t* a = bytes + r0 * g.in.channels;
        std::size_t lda = g.in.channels;
        if (!direct) {
          tile.resize(rows * depth);
          im2col(bytes, g, k, pad_row.data(), r0, rows, tap_pointers.data(), tile.data());
          a = tile.data();
          lda = depth;
        }
        runners[k].run(a, a_signed, rows, lda, r0, j0, j1, stage ? nullptr : y + r0 * oc + k * ocg, oc, k * ocg);
      }
    }
  };
  const std::size_t width = gemm_blocks<GemmArch>::width();
  const std::size_t blocks = groups == 1 ? (ocg + width - 1) / width : 1;
  const std::size_t tasks = task_count(par, std::max(blocks, m), m, oc, depth);
  if (tasks == 1) {
    process(0, m, 0, ocg);
  } else if (m >= 32 * tasks || blocks < tasks) {  // rows: no im2col row is built twice
    split_rows(tasks, [&](std::size_t i0, std::size_t i1) { process(i0, i1, 0, ocg); });
  } else {  // few pixels (7 x 7 at batch 1), many channels: split the channels
    split_columns(par, m, ocg, depth, width, [&](std::size_t j0, std::size_t j1) { process(0, m, j0, j1); });
  }
}

/// Float output stage over a convolution `s32(x, geometry, zp, w, y, par, stage)`.
template <class TA, class S32>
void conv_to_float(S32 s32, const TA* x, const image_shape& in, qparams x_params, const packed_conv& w,
                   const float* bias, activation act, float* y, const parallelism& par,
                   float_stage_fn float_stage = &kernels::float_stage_kernel<arch::native>::row) {
  const conv2d_geometry g = check_conv("conv2d", x, in, x_params.zero_point, w, y);
  validate(x_params, full_range(dtype_of<TA>()), "conv2d: x_params");
  check_scale_products("conv2d", x_params.scale, w.scales());
  const float_output out{&x_params.scale, false, w.scales().data(), bias, act != activation::none, y,
                         g.out.channels, nullptr, nullptr, activation_cap(act), float_stage};
  const output_stage stage{&float_output::finish, &out, nullptr, &out};
  s32(x, g, x_params.zero_point, w, nullptr, par, &stage);
}

/// Requantized output stage over a convolution.
template <class TA, class TC, class S32>
void conv_to_codes(S32 s32, const TA* x, const image_shape& in, qparams x_params, const packed_conv& w,
                   const std::int32_t* bias, qparams y_params, activation act, TC* y, const parallelism& par,
                   requantize_fn<TC> requantize = &kernels::requantize_kernel<arch::native, TC>::row) {
  const conv2d_geometry g = check_conv("conv2d", x, in, x_params.zero_point, w, y);
  validate(x_params, full_range(dtype_of<TA>()), "conv2d: x_params");
  const quant_range range = full_range(dtype_of<TC>());
  validate(y_params, range, "conv2d: y_params");
  const std::vector<float> multiplier = output_multipliers("conv2d", x_params.scale, w.scales(), y_params.scale);
  const std::size_t depth = w.depthwise() ? g.filter.taps() : g.depth();
  const bool fold = bias == nullptr || bias_fits_offsets(bias, g.out.channels, depth);
  const std::int32_t cap = act == activation::relu6 ? reference::quantize_value(6.0f, y_params, range) : range.qmax;
  const code_output<TC> out{multiplier.data(), y_params.zero_point, act != activation::none, y, g.out.channels,
                            fold ? nullptr : bias, cap, requantize};
  const output_stage stage{&code_output<TC>::finish, &out, fold ? bias : nullptr};
  s32(x, g, x_params.zero_point, w, nullptr, par, &stage);
}

template <class TA>
void conv_s32_native(const TA* x, const conv2d_geometry& g, std::int32_t x_zero_point, const packed_conv& w,
                     std::int32_t* y, const parallelism& par, const output_stage* stage) {
  conv_s32<gemm_native, arch::native>(x, g, x_zero_point, w, y, par, stage);
}

}  // namespace detail

/// y = conv2d(x - x_zero_point, w - w_zero_point) in int32, exact: x is an NHWC batch of
/// uint8 or int8 images of shape `in`, y the NHWC output (w.geometry(in).out), dense. Static
/// dispatch (squint/dispatch.hpp's runtime::conv2d picks per CPU); every ISA gives the same
/// integers.
/// @throws squint::error on a shape that does not fit the filter (see squint::resolve), null
///         pointers with elements, or a zero point outside x's range. Nothing is written on error.
template <class TA>
void conv2d(const TA* x, const image_shape& in, std::int32_t x_zero_point, const packed_conv& w, std::int32_t* y,
            const parallelism& par = {}) {
  const conv2d_geometry g = detail::check_conv("conv2d", x, in, x_zero_point, w, y);
  detail::conv_s32_native(x, g, x_zero_point, w, y, par, nullptr);
}

/// Float output: y = float(acc) * (x.scale * w.scale[o]) + bias[o], then `act` (ReLU, ReLU6).
/// `bias` has out_channels entries or is null.
template <class TA>
void conv2d(const TA* x, const image_shape& in, qparams x_params, const packed_conv& w, const float* bias,
            activation act, float* y, const parallelism& par = {}) {
  detail::conv_to_float(&detail::conv_s32_native<TA>, x, in, x_params, w, bias, act, y, par);
}

/// Requantized output (ONNX QLinearConv): y = clamp(round_half_even(float(acc + bias[o]) *
/// x.scale * w.scale[o] / y.scale) + y.zero_point) in TC, then `act` (ReLU clamps at the zero
/// point, ReLU6 also at the code of 6). `bias` (int32, accumulator units) may be null; acc + bias
/// saturates to int32.
template <class TA, class TC>
void conv2d(const TA* x, const image_shape& in, qparams x_params, const packed_conv& w, const std::int32_t* bias,
            qparams y_params, activation act, TC* y, const parallelism& par = {}) {
  detail::conv_to_codes(&detail::conv_s32_native<TA>, x, in, x_params, w, bias, y_params, act, y, par);
}

SQUINT_NAMESPACE_END

// SPDX-License-Identifier: Apache-2.0
// conv/im2col.hpp: the windows of an NHWC convolution as tap pointers (XNNPACK's indirection) and
// as rows of cache-sized im2col tiles, for any element type, and the tiled driver the float
// convolutions and squint::nn's convolution layer run their GEMMs in.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <vector>

#include "squint/conv/geometry.hpp"
#include "squint/gemm/parallel.hpp"

SQUINT_NAMESPACE_BEGIN
namespace detail {

/// The input pixels (channel 0) under the windows of consecutive output pixels, tap by tap, in
/// `taps` (kernel_h x kernel_w pointers); taps in the padding point at `pad_row` (as many
/// padding values as the image has channels: an integer image's zero point, or 0.0f). Output pixels step through the batch in NHWC
/// order without divisions, and along a row, away from the left and right padding, each tap
/// just moves by the stride (a full window costs a bounds check per tap).
template <class T>
class window_walker {
 public:
  window_walker(const T* x, const conv2d_geometry& g, const T* pad_row, std::size_t pixel,
                const T** taps)
      : x_(x),
        g_(g),
        pad_row_(pad_row),
        taps_(taps),
        n_(pixel / g.out.width / g.out.height),
        oy_(pixel / g.out.width % g.out.height),
        ox_(pixel % g.out.width) {
    fill();
  }

  void next() {
    const bool was_interior = interior(ox_);
    if (++ox_ == g_.out.width) {
      ox_ = 0;
      if (++oy_ == g_.out.height) {
        oy_ = 0;
        ++n_;
      }
    }
    if (ox_ > 0 && was_interior && interior(ox_)) {
      const std::size_t step = g_.params.stride_w * g_.in.channels;
      for (std::size_t t = 0; t < g_.filter.taps(); ++t)
        if (taps_[t] != pad_row_) taps_[t] += step;
    } else {
      fill();
    }
  }

 private:
  /// Whether every tap of output column ox falls inside the image's width.
  bool interior(std::size_t ox) const {
    const conv2d_params& p = g_.params;
    const std::size_t left = ox * p.stride_w;
    return left >= p.pad_left && left - p.pad_left + (g_.filter.kernel_w - 1) * p.dilation_w < g_.in.width;
  }

  void fill() {
    const conv2d_params& p = g_.params;
    const T* image = x_ + n_ * g_.in.height * g_.in.width * g_.in.channels;
    const T** tap = taps_;
    for (std::size_t ky = 0; ky < g_.filter.kernel_h; ++ky) {
      // Unsigned wrap-around puts positions in the top or left padding past the image too.
      const std::size_t iy = oy_ * p.stride_h + ky * p.dilation_h - p.pad_top;
      for (std::size_t kx = 0; kx < g_.filter.kernel_w; ++kx) {
        const std::size_t ix = ox_ * p.stride_w + kx * p.dilation_w - p.pad_left;
        *tap++ = iy < g_.in.height && ix < g_.in.width ? image + (iy * g_.in.width + ix) * g_.in.channels : pad_row_;
      }
    }
  }

  const T* x_;
  const conv2d_geometry& g_;
  const T* pad_row_;
  const T** taps_;
  std::size_t n_, oy_, ox_;
};

/// n bytes from src to dst in fixed-size copies the compiler inlines (16 bytes at a time, the
/// last copy overlapping the one before), where a memcpy call per tap would cost more than the
/// copy: a 32-channel uint8 tap is 32 bytes.
inline void copy_bytes(void* dst, const void* src, std::size_t n) {
  auto* d = static_cast<unsigned char*>(dst);
  const auto* s = static_cast<const unsigned char*>(src);
  if (n >= 16) {
    std::size_t i = 0;
    for (; i + 16 <= n; i += 16) std::memcpy(d + i, s + i, 16);
    if (i < n) std::memcpy(d + n - 16, s + n - 16, 16);
  } else if (n >= 8) {
    std::memcpy(d, s, 8);
    std::memcpy(d + n - 8, s + n - 8, 8);
  } else if (n >= 4) {
    std::memcpy(d, s, 4);
    std::memcpy(d + n - 4, s + n - 4, 4);
  } else {
    for (std::size_t i = 0; i < n; ++i) d[i] = s[i];
  }
}

/// im2col of a one-channel image (a grey first layer: a row is taps single elements): along each
/// run of output pixels in one output row, tap by tap, with plain indices instead of tap
/// pointers (a third of the instructions per row).
template <class T>
void im2col_one_channel(const T* x, const conv2d_geometry& g, T pad, std::size_t r0, std::size_t rows, T* tile) {
  const conv2d_params& p = g.params;
  const std::size_t kh = g.filter.kernel_h, kw = g.filter.kernel_w, taps = kh * kw;
  const std::size_t ow = g.out.width, oh = g.out.height, w = g.in.width, h = g.in.height;
  std::size_t done = 0;
  while (done < rows) {
    const std::size_t pixel = r0 + done, ox0 = pixel % ow, oy = pixel / ow % oh, n = pixel / ow / oh;
    const std::size_t run = std::min(ow - ox0, rows - done);
    const T* image = x + n * h * w;
    T* out = tile + done * taps;
    for (std::size_t ky = 0; ky < kh; ++ky) {
      // Unsigned wrap-around puts positions in the top or left padding past the image too.
      const std::size_t iy = oy * p.stride_h + ky * p.dilation_h - p.pad_top;
      for (std::size_t kx = 0; kx < kw; ++kx) {
        T* column = out + ky * kw + kx;
        if (iy >= h) {
          for (std::size_t i = 0; i < run; ++i) column[i * taps] = pad;
          continue;
        }
        const T* row = image + iy * w;
        for (std::size_t i = 0; i < run; ++i) {
          const std::size_t ix = (ox0 + i) * p.stride_w + kx * p.dilation_w - p.pad_left;
          column[i * taps] = ix < w ? row[ix] : pad;
        }
      }
    }
    done += run;
  }
}

/// Rows [r0, r0 + rows) of group `group`'s im2col matrix (taps x group channels per row).
template <class T>
void im2col(const T* x, const conv2d_geometry& g, std::size_t group, const T* pad_row, std::size_t r0,
            std::size_t rows, const T** taps, T* tile) {
  const std::size_t cg = g.filter.group_channels, count = g.filter.taps(), offset = group * cg;
  if (g.in.channels == 1) {
    im2col_one_channel(x, g, pad_row[0], r0, rows, tile);
    return;
  }
  const std::size_t kw = g.filter.kernel_w;
  // With one group and no horizontal dilation, a kernel row's taps inside the image are one run
  // of kw x channels elements (copied whole when that is at least a 16-byte copy).
  const bool runs = g.groups() == 1 && g.params.dilation_w == 1 && kw > 1 && kw * cg * sizeof(T) >= 16;
  window_walker<T> walk(x, g, pad_row, r0, taps);
  for (std::size_t r = 0; r < rows; ++r) {
    if (r > 0) walk.next();
    if (runs) {
      for (std::size_t t = 0; t < count; t += kw) {
        if (taps[t] != pad_row && taps[t + kw - 1] != pad_row) {
          copy_bytes(tile, taps[t], kw * cg * sizeof(T));
          tile += kw * cg;
          continue;
        }
        for (std::size_t kx = 0; kx < kw; ++kx, tile += cg) copy_bytes(tile, taps[t + kx], cg * sizeof(T));
      }
    } else if (cg == 1) {  // one channel per group (depthwise-like): no call per element
      for (std::size_t t = 0; t < count; ++t) *tile++ = taps[t][offset];
    } else {
      for (std::size_t t = 0; t < count; ++t, tile += cg) copy_bytes(tile, taps[t] + offset, cg * sizeof(T));
    }
  }
}

/// Runs `gemm(a, rows, lda, r0, group)` over the whole convolution in tiles: for each group,
/// rows [r0, r0 + rows) of its im2col matrix in a thread's cache-sized tile (up to 128 Ki
/// elements, at least 16 rows: GEMMs that reload their weight panels per call run deep rows at
/// half speed in smaller tiles), or the image itself for a 1x1 filter at stride 1 without
/// padding. Padding taps read `pad_value`. Threads split the output pixels.
template <class T, class Gemm>
void for_each_tile(const T* x, const conv2d_geometry& g, T pad_value, const parallelism& par, Gemm gemm) {
  const std::size_t m = g.out.pixels(), taps = g.filter.taps(), depth = g.depth();
  if (m == 0) return;
  const std::vector<T> pad_row(g.in.channels, pad_value);
  const bool direct = g.pointwise();
  const std::size_t tile_rows = direct ? m : std::clamp<std::size_t>(131072 / depth, 16, 4096);
  const std::size_t tasks = task_count(par, m, m, g.out.channels, depth);
  run_tasks(par, tasks, [&](std::size_t t) {
    const std::size_t i0 = m * t / tasks, i1 = m * (t + 1) / tasks;
    thread_local std::vector<T> tile;
    thread_local std::vector<const T*> tap_pointers;
    tap_pointers.resize(taps);
    for (std::size_t r0 = i0; r0 < i1; r0 += tile_rows) {
      const std::size_t rows = std::min(tile_rows, i1 - r0);
      for (std::size_t k = 0; k < g.groups(); ++k) {
        if (direct) {
          gemm(x + r0 * g.in.channels, rows, g.in.channels, r0, k);
          continue;
        }
        tile.resize(rows * depth);
        im2col(x, g, k, pad_row.data(), r0, rows, tap_pointers.data(), tile.data());
        gemm(static_cast<const T*>(tile.data()), rows, depth, r0, k);
      }
    }
  });
}

}  // namespace detail
SQUINT_NAMESPACE_END

// SPDX-License-Identifier: Apache-2.0
// nn/weights/form.hpp: how a layer stores its weights, behind one small interface.
//
// Each stored form (float, fp16, int8 per channel for the integer GEMM, int8 weight-only, and
// the low-bit and fp8 forms to come) is one type in this folder: it packs the weights once,
// runs the product in its own kernels, reports its bytes, and writes and reads its payload of a
// model file. The op (nn::linear) holds a form and never asks which one it is; the activation
// policy decides whether the form sees float activations or uint8 codes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "squint/gemm/pack.hpp"
#include "squint/gemm/parallel.hpp"
#include "squint/nn/backend.hpp"
#include "squint/nn/format.hpp"
#include "squint/qparams.hpp"

SQUINT_NAMESPACE_BEGIN
namespace nn {

/// What follows the product: a bias (one per output, or null) and an optional ReLU.
/// How the int8 weight forms quantize float weights per output channel (symmetric, zero point 0).
enum class int8_weight_range : std::uint8_t {
  narrow,  ///< [-127, 127], scale amax / 127: exact on every GEMM kernel (squint's default)
  full,    ///< [-128, 127], scale amax / 127.5: PyTorch's per_channel_symmetric qint8 weights
           ///< (a layer whose codes reach -128 runs 8-bit activations on the scalar kernel of
           ///< AVX2 / AVX-512BW; 7-bit activations keep their fast kernel)
};

/// What a form's pack() takes besides the weights.
struct pack_options {
  int8_weight_range int8_range = int8_weight_range::narrow;
  /// int4_weight_only and int4_dynamic: inputs per scale (a multiple of 16).
  std::size_t int4_group = 32;
  /// int4_weight_only and int4_dynamic: how the group scales are kept (fp32, or fp16 bits).
  group_scale_format int4_scales = group_scale_format::fp32;

  /// The quant_spec of int8 weights quantized with these options.
  quant_spec int8_spec() const {
    return {dtype::int8, qscheme::symmetric, false, int8_range == int8_weight_range::narrow};
  }
};

struct epilogue {
  const float* bias = nullptr;
  bool relu = false;
};

/// Activations quantized for an integer form: uint8 codes (m x in, dense) and their qparams,
/// one for all rows or, with `per_row`, one per row.
struct quantized_input {
  const std::uint8_t* codes = nullptr;
  const qparams* params = nullptr;
  bool per_row = false;
};

/// A layer's weights, out x in, in one stored form. Immutable once packed: forms are shared
/// between copies of a layer and used from several threads at once.
class weight_form {
 public:
  weight_form(std::size_t out, std::size_t in) : out_(out), in_(in) {}
  virtual ~weight_form() = default;
  weight_form(const weight_form&) = delete;
  weight_form& operator=(const weight_form&) = delete;

  std::size_t out() const { return out_; }
  std::size_t in() const { return in_; }
  /// Bytes held: the weights in their stored form and their per-channel terms.
  virtual std::size_t bytes() const = 0;
  /// W (out x in, row-major) as the product uses it.
  virtual std::vector<float> values() const = 0;
  /// Appends the form's payload (the "weights" field of a model file).
  virtual void save(detail::writer& w) const = 0;

  /// Whether the form multiplies float activations (run) or uint8 codes (run_quantized).
  virtual bool takes_codes() const { return false; }
  /// y (m x out, dense) = epilogue(x . W^T) for float x (m x in, dense).
  virtual void run(const float*, std::size_t, const epilogue&, float*, const parallelism&) const {
    squint::detail::fail("weight_form::run: this form multiplies quantized activations only");
  }
  /// y = epilogue(the product of the dequantized codes and W), the integer part exact.
  virtual void run_quantized(const quantized_input&, std::size_t, const epilogue&, float*, const parallelism&) const {
    squint::detail::fail("weight_form::run_quantized: this form multiplies float activations only");
  }
  /// The full-integer step: y (m x out, dense uint8 codes) = the integer product of x's codes
  /// (one qparams for all rows) and W, plus the bias in accumulator units (round(bias /
  /// (x scale * channel scale)), ONNX QLinearConv's int32 bias), requantized into y_params;
  /// ReLU clamps at y's zero point.
  virtual void run_requantized(const quantized_input&, std::size_t, const epilogue&, qparams, std::uint8_t*,
                               const parallelism&) const {
    squint::detail::fail("weight_form::run_requantized: only int8 weights (int8_dynamic / int8_static) have a "
                         "requantized output");
  }
  /// The int8 codes and per-channel scales, where the form stores them so (int8_dynamic,
  /// int8_static), for an op that runs them on a kernel of another shape (the depthwise
  /// convolution); null for every other form.
  virtual const packed_weights* int8_codes() const { return nullptr; }
  /// The exact int32 accumulators of run_quantized (m x out), for verification.
  virtual void accumulate(const quantized_input&, std::size_t, std::int32_t*, const parallelism&) const {
    squint::detail::fail("weight_form::accumulate: this form multiplies float activations only");
  }

 private:
  std::size_t out_, in_;
};

using weights_ptr = std::shared_ptr<const weight_form>;

}  // namespace nn
SQUINT_NAMESPACE_END

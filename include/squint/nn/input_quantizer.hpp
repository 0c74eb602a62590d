// SPDX-License-Identifier: Apache-2.0
// nn/input_quantizer.hpp: how an op's float activations become the uint8 codes an integer weight
// form multiplies — the activation policy, apart from the op (linear, conv2d) and the form.
//
// floating: the form takes floats, nothing is quantized. dynamic: each call's codes come from
// its own finite range (PyTorch's quantize_dynamic). calibrated: an observer sees the
// activations while the model computes in float, then its qparams are frozen (static INT8).
// With reduce_range the codes are 7-bit, [0, 127] (PyTorch's x86 qconfigs): values beyond the
// range saturate at 127, and the GEMM runs its faster exact 7-bit kernel where the CPU has one
// (AVX2, AVX-512BW without VNNI).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "squint/nn/backend.hpp"
#include "squint/nn/observer.hpp"
#include "squint/nn/weights/recipes.hpp"

SQUINT_NAMESPACE_BEGIN
namespace nn {

class input_quantizer {
 public:
  input_quantizer() = default;
  /// The calibrated policy starts with `obs`, or min-max when none is given (on 7-bit codes with
  /// reduce_range).
  /// @throws squint::error with reduce_range and an observer whose spec does not have it.
  input_quantizer(input_policy policy, const std::optional<observer>& obs, bool reduce_range = false)
      : policy_(policy), reduce_range_(reduce_range && policy != input_policy::floating) {
    if (policy != input_policy::calibrated) return;
    squint::detail::require(!reduce_range || !obs || obs->spec().reduce_range, "input observer '",
                            obs ? obs->name() : "",
                            "': 7-bit activations (reduce_range) need an observer whose quant_spec has reduce_range");
    observer_ = obs ? *obs : observers::min_max(spec());
  }

  /// A calibrated policy frozen at `p` with no observer (a loaded model's).
  /// @throws squint::error on qparams invalid for the codes.
  static input_quantizer frozen_at(qparams p, bool reduce_range = false) {
    input_quantizer q;
    q.policy_ = input_policy::calibrated;
    q.reduce_range_ = reduce_range;
    validate(p, range_of(q.spec()), "input qparams");
    q.frozen_ = p;
    return q;
  }

  input_policy policy() const { return policy_; }
  /// Whether the codes are 7-bit ([0, 127]; never for the floating policy).
  bool reduce_range() const { return reduce_range_; }
  /// False only for a calibrated policy that is not frozen yet.
  bool ready() const { return policy_ != input_policy::calibrated || frozen_.has_value(); }
  /// A calibrated policy before freeze(): the op computes in float and shows its input here.
  bool calibrating() const { return policy_ == input_policy::calibrated && !frozen_; }
  /// The frozen qparams of a calibrated policy.
  std::optional<qparams> frozen() const { return frozen_; }
  /// The observer's name ("" unless calibrated).
  std::string observer_name() const { return observer_ ? observer_->name() : observer_name_; }

  /// Shows activations to the observer. @throws squint::error unless calibrating().
  void observe(tensor_view<const float> x, const char* op) {
    squint::detail::require(calibrating(), op, "::calibrate: only an int8_static layer before freeze() calibrates");
    observer_->observe(x);
    observed_ += x.size() > 0;
  }

  /// Freezes the observer's qparams.
  /// @throws squint::error unless calibrating() and the observer has seen data.
  void freeze(const char* op) {
    squint::detail::require(calibrating(), op, "::freeze: only an int8_static layer before freeze() can be frozen");
    squint::detail::require(observed_ > 0, op, "::freeze: the observer has seen no data; calibrate() first");
    set(observer_->qparams(), op);
  }

  /// Freezes with known qparams (uint8 range, [0, 127] with reduce_range).
  /// @throws squint::error unless the policy is calibrated, or on qparams invalid for the codes.
  void set(qparams p, const char* op) {
    squint::detail::require(policy_ == input_policy::calibrated, op, "::set_input_qparams: the layer is not int8_static");
    validate(p, range_of(spec()), "set_input_qparams: p");
    frozen_ = p;
    if (observer_) observer_name_ = observer_->name();
    observer_.reset();
  }

  /// The uint8 codes of x[0, count) with the frozen qparams, or with those of its own finite
  /// range (dynamic); returns the qparams used.
  qparams quantize(const float* x, std::size_t count, std::uint8_t* codes, const backend& kernels) const {
    const squint::detail::nearest_rounding_scope rounding;
    qparams p;
    if (frozen_) {
      p = *frozen_;
    } else {
      float lo = HUGE_VALF, hi = -HUGE_VALF;
      std::size_t nonfinite = 0;
      kernels.min_max(x, count, &lo, &hi, &nonfinite);
      if (lo > hi) lo = hi = 0.0f;
      p = choose_qparams(lo, hi, spec());
    }
    kernels.quantize_u8(x, codes, count, p.scale, p.zero_point, false);
    if (reduce_range_)
      for (std::size_t i = 0; i < count; ++i) codes[i] = codes[i] < 128 ? codes[i] : std::uint8_t{127};
    return p;
  }

 private:
  /// The activations' codes: uint8 affine, halved with reduce_range.
  quant_spec spec() const {
    quant_spec s;
    s.reduce_range = reduce_range_;
    return s;
  }

  input_policy policy_ = input_policy::floating;
  bool reduce_range_ = false;
  std::optional<observer> observer_;
  std::string observer_name_;
  std::optional<qparams> frozen_;
  std::size_t observed_ = 0;
};

}  // namespace nn
SQUINT_NAMESPACE_END

// SPDX-License-Identifier: Apache-2.0
// nn/observer.hpp: any per-tensor observer behind one type, so a layer can hold the one the
// user picked; and the activation observers squint offers by name.
#pragma once

#include <memory>
#include <string>
#include <utility>

#include "squint/observers/histogram.hpp"
#include "squint/observers/minmax.hpp"

SQUINT_NAMESPACE_BEGIN
namespace nn {

/// A per-tensor observer of any type with observe(tensor_view<const float>) and qparams().
/// Copies are independent (the wrapped observer is cloned).
class observer {
 public:
  template <class O>
  observer(O o, std::string name) : self_(std::make_unique<model<O>>(std::move(o))), name_(std::move(name)) {}
  observer(const observer& other) : self_(other.self_->clone()), name_(other.name_) {}
  observer& operator=(const observer& other) {
    if (this != &other) {
      self_ = other.self_->clone();
      name_ = other.name_;
    }
    return *this;
  }
  observer(observer&&) noexcept = default;
  observer& operator=(observer&&) noexcept = default;

  void observe(tensor_view<const float> x) { self_->observe(x); }
  squint::qparams qparams() const { return self_->qparams(); }
  const quant_spec& spec() const { return self_->spec(); }
  const std::string& name() const { return name_; }

 private:
  struct concept_t {
    virtual ~concept_t() = default;
    virtual void observe(tensor_view<const float> x) = 0;
    virtual squint::qparams qparams() const = 0;
    virtual const quant_spec& spec() const = 0;
    virtual std::unique_ptr<concept_t> clone() const = 0;
  };
  template <class O>
  struct model final : concept_t {
    explicit model(O o) : obs(std::move(o)) {}
    void observe(tensor_view<const float> x) override { obs.observe(x); }
    squint::qparams qparams() const override { return obs.qparams(); }
    const quant_spec& spec() const override { return obs.spec(); }
    std::unique_ptr<concept_t> clone() const override { return std::make_unique<model>(obs); }
    O obs;
  };
  std::unique_ptr<concept_t> self_;
  std::string name_;
};

/// Activation observers for static INT8 (uint8 affine, the activation type of the GEMM).
namespace observers {

inline observer min_max(const quant_spec& spec = {}) { return {min_max_observer<>(spec), "minmax"}; }
inline observer moving_average(float averaging_constant = 0.01f, const quant_spec& spec = {}) {
  return {moving_average_observer<>(spec, averaging_constant), "moving_average"};
}
/// ONNX Runtime's moving_average=True calibration: the mean of the batches' ranges.
inline observer batch_mean(const quant_spec& spec = {}) { return {batch_mean_observer<>(spec), "batch_mean"}; }
inline observer histogram(calibration_method method, const quant_spec& spec = {}, histogram_options options = {}) {
  options.method = method;
  const char* names[] = {"entropy", "percentile", "mse", "l2"};
  std::string name = names[static_cast<int>(method)];
  if (method == calibration_method::percentile) {
    std::string p = std::to_string(options.percentile);
    p.erase(p.find_last_not_of('0') + 1);
    if (!p.empty() && p.back() == '.') p.pop_back();
    name += "_" + p;
  }
  return {histogram_observer<>(spec, options), name};
}
inline observer entropy(const quant_spec& spec = {}) { return histogram(calibration_method::entropy, spec); }
inline observer percentile(double percent = 99.99, const quant_spec& spec = {}) {
  histogram_options options;
  options.percentile = percent;
  return histogram(calibration_method::percentile, spec, options);
}
inline observer mse(const quant_spec& spec = {}) { return histogram(calibration_method::mse, spec); }
inline observer l2(const quant_spec& spec = {}) { return histogram(calibration_method::l2, spec); }

}  // namespace observers
}  // namespace nn
SQUINT_NAMESPACE_END

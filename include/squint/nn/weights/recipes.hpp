// SPDX-License-Identifier: Apache-2.0
// nn/weights/recipes.hpp: which stored form each precision packs its weights into, whether its
// activations reach the form as uint8 codes, and its code in model files. The one table a new
// precision adds a row to; layers and the serializer only read it.
#pragma once

#include <cstdint>

#include "squint/nn/weights/float_weights.hpp"
#include "squint/nn/weights/fp8_weight_only.hpp"
#include "squint/nn/weights/half_weights.hpp"
#include "squint/nn/weights/int4_dynamic.hpp"
#include "squint/nn/weights/int4_weight_only.hpp"
#include "squint/nn/weights/int8_weight_only.hpp"
#include "squint/nn/weights/int8_weights.hpp"

SQUINT_NAMESPACE_BEGIN
namespace nn {

/// How a layer's activations reach its weight form.
enum class input_policy : std::uint8_t {
  floating,    ///< as they are, in float
  dynamic,     ///< uint8 codes from each call's own range (per tensor, or per row)
  calibrated,  ///< uint8 codes with qparams an observer froze after calibration
};

struct recipe {
  precision mode;
  std::uint8_t code;             ///< the precision byte of a layer in a model file
  input_policy input;            ///< how activations reach the form
  std::uint64_t element_bits;    ///< file bits per weight, to check sizes before reading them
  weights_ptr (*pack)(const float* w, std::size_t out, std::size_t in, std::size_t ldw, const pack_options& options,
                      const backend& kernels);
  weights_ptr (*load)(detail::reader& r, std::size_t out, std::size_t in, const backend& kernels);
};

namespace detail {

template <class Form>
constexpr recipe make_recipe(precision mode, std::uint8_t code, input_policy input) {
  return {mode, code, input, Form::element_bits, &Form::pack, &Form::load};
}

inline const recipe* recipe_table(std::size_t& count) {
  static const recipe table[] = {
      make_recipe<float_weights>(precision::fp32, 0, input_policy::floating),
      make_recipe<half_weights>(precision::fp16, 1, input_policy::floating),
      make_recipe<int8_weights>(precision::int8_dynamic, 2, input_policy::dynamic),
      make_recipe<int8_weights>(precision::int8_static, 3, input_policy::calibrated),
      make_recipe<int8_weight_only_weights>(precision::int8_weight_only, 4, input_policy::floating),
      make_recipe<fp8_weight_only_weights>(precision::fp8_weight_only, 5, input_policy::floating),
      make_recipe<int4_weight_only_weights>(precision::int4_weight_only, 6, input_policy::floating),
      make_recipe<int4_dynamic_weights>(precision::int4_dynamic, 7, input_policy::floating),
  };
  count = sizeof table / sizeof table[0];
  return table;
}

}  // namespace detail

/// The recipe of a resolved precision (not `automatic`).
/// @throws squint::error for a precision without one.
inline const recipe& recipe_for(precision p) {
  std::size_t count = 0;
  const recipe* table = detail::recipe_table(count);
  for (std::size_t r = 0; r < count; ++r)
    if (table[r].mode == p) return table[r];
  squint::detail::fail("nn: precision ", to_string(p), " has no weight form (resolve it with a backend first)");
}

/// The recipe whose file code is `code`, or null.
inline const recipe* recipe_for_code(std::uint8_t code) {
  std::size_t count = 0;
  const recipe* table = detail::recipe_table(count);
  for (std::size_t r = 0; r < count; ++r)
    if (table[r].code == code) return &table[r];
  return nullptr;
}

}  // namespace nn
SQUINT_NAMESPACE_END

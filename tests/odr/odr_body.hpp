// SPDX-License-Identifier: Apache-2.0
// odr_body.hpp: the body both ODR translation units compile; only the function name differs.
#include <typeinfo>

#include "odr/odr_lib.hpp"
#include "squint/squint.hpp"

odr_result ODR_FUNCTION(const std::vector<float>& x) {
  odr_result r;
  r.native = squint::arch::native::name();
  r.abi = typeid(squint::qparams).name();
  squint::min_max_observer<> observer({squint::dtype::int8, squint::qscheme::symmetric});
  observer.observe({x.data(), x.size()});
  const squint::qparams p = observer.qparams();
  r.scale = p.scale;
  r.q.resize(x.size());
  squint::quantize(x.data(), r.q.data(), x.size(), p);
  squint::min_max_observer<squint::granularity::per_channel> channels({}, 1);
  const squint::shape s{x.size() / 8, 8};
  channels.observe({x.data(), s});
  r.c.resize(x.size());
  squint::quantize<std::uint8_t>({x.data(), s}, {r.c.data(), s}, channels.qparams());
  return r;
}

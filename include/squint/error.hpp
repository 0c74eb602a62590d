// SPDX-License-Identifier: Apache-2.0
// error.hpp: squint::error and the argument checks every public entry point uses.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <string>

#include "squint/config.hpp"

SQUINT_NAMESPACE_BEGIN

/// Thrown by public entry points on invalid arguments. The message names the function, the
/// argument and the offending value. Nothing the caller passed in is modified when it is thrown.
class error : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

namespace detail {

/// Throws squint::error (or prints and aborts when exceptions are disabled) with the streamed
/// concatenation of `parts`.
template <class... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  std::ostringstream message;
  message << "squint: ";
  (message << ... << parts);
#if SQUINT_USE_EXCEPTIONS
  throw error(message.str());
#else
  std::fprintf(stderr, "%s\n", message.str().c_str());
  std::abort();
#endif
}

template <class... Parts>
void require(bool condition, const Parts&... parts) {
  if (!condition) fail(parts...);
}

}  // namespace detail

SQUINT_NAMESPACE_END

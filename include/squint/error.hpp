// SPDX-License-Identifier: Apache-2.0
// error.hpp: squint::error and the argument checks every public entry point uses.
#pragma once

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <limits>
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

/// a * b, or squint::error naming `function` and `what` when the product does not fit size_t.
/// Every size product a public entry point forms from its arguments goes through here, so that
/// sizes that wrap around can never pass a check meant for their true value.
inline std::size_t checked_mul(std::size_t a, std::size_t b, const char* function, const char* what) {
  require(b == 0 || a <= std::numeric_limits<std::size_t>::max() / b, function, ": ", what, " ", a, " x ", b,
          " overflows size_t");
  return a * b;
}

/// Checks a row-major rows x cols matrix argument with leading dimension `ld` (0: cols): its
/// element count and extent fit size_t, and `data` is not null when it has elements.
template <class T>
void require_matrix(const char* function, const char* argument, const T* data, std::size_t rows, std::size_t cols,
                    std::size_t ld = 0) {
  const std::size_t elements = checked_mul(rows, cols, function, argument);
  if (rows > 1) (void)checked_mul(rows - 1, ld > cols ? ld : cols, function, argument);
  require(data != nullptr || elements == 0, function, ": argument '", argument, "' is null with ", rows, " x ",
          cols, " elements");
}

}  // namespace detail

SQUINT_NAMESPACE_END

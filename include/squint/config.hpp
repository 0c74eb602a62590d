// SPDX-License-Identifier: Apache-2.0
// config.hpp: version, ABI namespace and exception configuration.
#pragma once

#define SQUINT_VERSION_MAJOR 0
#define SQUINT_VERSION_MINOR 1
#define SQUINT_VERSION_PATCH 0

// Everything lives in squint::v0 so that a future ABI change can coexist with this one in a
// process that links two squint-using libraries (the nlohmann/json inline-namespace approach).
#define SQUINT_NAMESPACE_BEGIN \
  namespace squint {           \
  inline namespace v0 {
#define SQUINT_NAMESPACE_END \
  }                          \
  }

#ifndef SQUINT_USE_EXCEPTIONS
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS) || defined(_CPPUNWIND)
#define SQUINT_USE_EXCEPTIONS 1
#else
#define SQUINT_USE_EXCEPTIONS 0
#endif
#endif

// SPDX-License-Identifier: Apache-2.0
// odr_a.cpp: odr_body.hpp with AVX2 flags (see tests/CMakeLists.txt).
#define ODR_FUNCTION run_odr_a
#include "odr/odr_body.hpp"

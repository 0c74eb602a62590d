// SPDX-License-Identifier: Apache-2.0
// odr_b.cpp: odr_body.hpp with the baseline flags.
#define ODR_FUNCTION run_odr_b
#include "odr/odr_body.hpp"

// SPDX-License-Identifier: Apache-2.0
// squint.hpp: the whole public API in one include.
#pragma once

#include "squint/config.hpp"
#include "squint/error.hpp"
#include "squint/gemm/fp16.hpp"
#include "squint/gemm/gemm.hpp"
#include "squint/gemm/pack.hpp"
#include "squint/gemm/weight_only.hpp"
#include "squint/nn.hpp"
#include "squint/observers/calibration.hpp"
#include "squint/observers/granularity.hpp"
#include "squint/observers/histogram.hpp"
#include "squint/observers/minmax.hpp"
#include "squint/qparams.hpp"
#include "squint/quantize.hpp"
#include "squint/reference/gemm.hpp"
#include "squint/reference/quantize.hpp"
#include "squint/reference/requantize.hpp"
#include "squint/tensor.hpp"

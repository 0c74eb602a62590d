// SPDX-License-Identifier: Apache-2.0
// nn.hpp: quantized layers — squint::nn::linear in every precision, sequential models with
// calibration and mixed precision, error analysis, cross-layer equalization, and save/load.
#pragma once

#include "squint/nn/analysis.hpp"
#include "squint/nn/awq.hpp"
#include "squint/nn/backend.hpp"
#include "squint/nn/conv2d.hpp"
#include "squint/nn/equalize.hpp"
#include "squint/nn/gptq.hpp"
#include "squint/nn/graph.hpp"
#include "squint/nn/integer_graph.hpp"
#include "squint/nn/linear.hpp"
#include "squint/nn/observer.hpp"
#include "squint/nn/sequential.hpp"
#include "squint/nn/serialize.hpp"

// SPDX-License-Identifier: Apache-2.0
// qat.hpp: quantization-aware training — fake quantization with STE and LSQ gradients, training
// layers (linear, conv2d, BatchNorm) and graphs, loss, optimizers, prepare_qat -> train -> convert,
// GPTQ for the float CNNs trained here.
#pragma once

#include "squint/qat/batch_norm.hpp"
#include "squint/qat/conv2d.hpp"
#include "squint/qat/conv_bn2d.hpp"
#include "squint/qat/fake_quant.hpp"
#include "squint/qat/gptq.hpp"
#include "squint/qat/graph.hpp"
#include "squint/qat/linear.hpp"
#include "squint/qat/loss.hpp"
#include "squint/qat/optimizer.hpp"
#include "squint/qat/quantizers.hpp"
#include "squint/qat/sequential.hpp"

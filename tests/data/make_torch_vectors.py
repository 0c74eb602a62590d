#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Generates torch_vectors.txt: seeded inputs and the qparams / codes PyTorch computes for them.

Run with Debian's python3-torch 1.13 (`/usr/bin/python3 tests/data/make_torch_vectors.py`).
PyTorch is never needed to build or test squint: the output is committed and read by
tests/torch_vectors_test.cpp.

Format: whitespace-separated tokens. Floats are float32 values written as exact hex floats.
  observer <kind> <granularity> <dtype> <scheme> <reduce_range> <qmin> <qmax> <custom> <avg> <axis>
    batch <rank> <dims...> <n> <values...>      (repeated)
    expect <channels> <scales...> <zero_points...>
  quantize <dtype> <scale> <zero_point> <n> <values...> <codes...>
  quantize_per_channel <dtype> <axis> <rank> <dims...> <channels> <scales...> <zps...> <n> <values...> <codes...>
  fake_quantize <scale> <zero_point> <qmin> <qmax> <n> <values...> <outputs...>
  fake_quantize_per_channel <axis> <qmin> <qmax> <rank> <dims...> <channels> <scales...> <zps...> <n> <values...> <outputs...>
"""
import sys
import warnings

import torch
from torch.ao.quantization.observer import (MinMaxObserver, MovingAverageMinMaxObserver,
                                            MovingAveragePerChannelMinMaxObserver,
                                            PerChannelMinMaxObserver)

warnings.filterwarnings("ignore")
torch.manual_seed(20261125)
out = []


def hexf(v):
    return float(v).hex()


def tensor_tokens(t):
    t = t.contiguous()
    return [str(t.dim())] + [str(d) for d in t.shape] + [str(t.numel())] + [hexf(v) for v in t.flatten().tolist()]


def batches(kind):
    """Seeded batches with different shapes and ranges, including awkward ones."""
    if kind == "normal":
        return [torch.randn(37) * 2.0 + 0.5, torch.randn(5, 13) * 3.0 - 1.0, torch.randn(64) * 0.7]
    if kind == "positive":
        return [torch.rand(50) * 6.0, torch.rand(7, 3) * 9.0 + 0.25]
    if kind == "negative":
        return [-torch.rand(33) * 4.0 - 0.5, -torch.rand(21) * 2.0]
    if kind == "constant":
        return [torch.full((9,), 3.25), torch.full((4,), 3.25)]
    if kind == "zeros":
        return [torch.zeros(16)]
    if kind == "single":
        return [torch.tensor([-0.731])]
    if kind == "wide":
        return [torch.randn(100) * 1000.0, torch.randn(100) * 1e-3]
    raise ValueError(kind)


DTYPES = {"uint8": torch.quint8, "int8": torch.qint8}
SCHEMES = {("per_tensor", "affine"): torch.per_tensor_affine,
           ("per_tensor", "symmetric"): torch.per_tensor_symmetric,
           ("per_channel", "affine"): torch.per_channel_affine,
           ("per_channel", "symmetric"): torch.per_channel_symmetric}


def emit_observer(kind, gran, dtype, scheme, reduce_range, custom, avg, axis, data):
    kwargs = dict(dtype=DTYPES[dtype], qscheme=SCHEMES[(gran, scheme)], reduce_range=reduce_range)
    if custom:
        kwargs.update(quant_min=custom[0], quant_max=custom[1])
    if kind == "moving_average":
        kwargs["averaging_constant"] = avg
    if gran == "per_channel":
        kwargs["ch_axis"] = axis
        cls = PerChannelMinMaxObserver if kind == "minmax" else MovingAveragePerChannelMinMaxObserver
    else:
        cls = MinMaxObserver if kind == "minmax" else MovingAverageMinMaxObserver
    obs = cls(**kwargs)
    for b in data:
        obs(b)
    scale, zp = obs.calculate_qparams()
    rec = ["observer", kind, gran, dtype, scheme, str(int(reduce_range)), str(obs.quant_min),
           str(obs.quant_max), str(int(bool(custom))), hexf(avg), str(axis)]
    for b in data:
        rec += ["batch"] + tensor_tokens(b)
    rec += ["expect", str(scale.numel())] + [hexf(s) for s in scale.tolist()] + [str(int(z)) for z in zp.tolist()]
    out.append(" ".join(rec))


for kind in ("minmax", "moving_average"):
    for avg in ((0.01,) if kind == "minmax" else (0.01, 0.25)):
        for dtype in ("uint8", "int8"):
            for scheme in ("affine", "symmetric"):
                for reduce_range in (False, True):
                    if dtype == "uint8" and scheme == "symmetric" and reduce_range:
                        continue  # PyTorch refuses this combination
                    for data in ("normal", "positive", "negative", "constant", "zeros", "single", "wide"):
                        emit_observer(kind, "per_tensor", dtype, scheme, reduce_range, None, avg, 0,
                                      batches(data))
        # Custom quantization ranges (PyTorch keeps them, halves them with reduce_range).
        for dtype, scheme, custom in (("uint8", "symmetric", (0, 127)), ("int8", "symmetric", (-127, 127)),
                                      ("uint8", "affine", (0, 127)), ("int8", "affine", (-64, 63)),
                                      ("uint8", "symmetric", (0, 15))):
            emit_observer(kind, "per_tensor", dtype, scheme, False, custom, avg, 0, batches("normal"))
        # Per channel, every axis of a 3-d tensor.
        for dtype in ("uint8", "int8"):
            for scheme in ("affine", "symmetric"):
                for axis in (0, 1, 2):
                    data = [torch.randn(4, 5, 6) * torch.rand(1) * 4, torch.randn(3, 5, 6) if axis else
                            torch.randn(4, 2, 6), torch.rand(4, 5, 6) - 0.9]
                    if axis == 2:
                        data[1] = torch.randn(2, 3, 6)
                    emit_observer(kind, "per_channel", dtype, scheme, False, None, avg, axis, data)

# quantize_per_tensor: PyTorch multiplies by the float32 reciprocal of the scale.
for dtype, tdtype in DTYPES.items():
    for _ in range(6):
        scale = float(torch.rand(1) * 0.2 + 1e-3)
        scale32 = float(torch.tensor(scale, dtype=torch.float32))
        zp = int(torch.randint(0, 256, (1,))) if dtype == "uint8" else int(torch.randint(-128, 128, (1,)))
        k = torch.randint(-300, 300, (200,)).float()
        ties = (k + 0.5) * scale32  # within an ulp of a rounding tie after scaling
        # No NaN or values whose scaled form overflows int32: PyTorch converts those through x86's
        # cvtps2dq and returns garbage (0 for 1e30 with uint8); squint saturates them instead.
        x = torch.cat([torch.randn(200) * 100 * scale32, ties, torch.nextafter(ties, ties + 1),
                       torch.nextafter(ties, ties - 1), torch.tensor([0.0, -0.0, 1e6, -1e6])])
        q = torch.quantize_per_tensor(x, scale, zp, tdtype).int_repr().int()
        out.append(" ".join(["quantize", dtype, hexf(scale32), str(zp), str(x.numel())] +
                            [hexf(v) for v in x.tolist()] + [str(v) for v in q.tolist()]))

for dtype, tdtype in DTYPES.items():
    for axis in (0, 1, 2):
        x = torch.randn(3, 4, 5) * 3
        channels = x.shape[axis]
        scales = (torch.rand(channels, dtype=torch.float64) * 0.1 + 0.01).float().double()
        zps = torch.randint(0, 256, (channels,)) if dtype == "uint8" else torch.randint(-128, 128, (channels,))
        q = torch.quantize_per_channel(x, scales, zps, axis, tdtype).int_repr().int()
        out.append(" ".join(["quantize_per_channel", dtype, str(axis)] + tensor_tokens(x)[:4] +
                            [str(channels)] + [hexf(s) for s in scales.tolist()] + [str(int(z)) for z in zps.tolist()] +
                            [str(x.numel())] + [hexf(v) for v in x.flatten().tolist()] + [str(v) for v in q.flatten().tolist()]))

for qmin, qmax in ((0, 255), (-128, 127), (-127, 127), (0, 15)):
    scale = float(torch.tensor(float(torch.rand(1) * 0.05 + 0.01), dtype=torch.float32))
    zp = (qmin + qmax + 1) // 2
    x = torch.randn(300) * 2
    y = torch.fake_quantize_per_tensor_affine(x, scale, zp, qmin, qmax)
    out.append(" ".join(["fake_quantize", hexf(scale), str(zp), str(qmin), str(qmax), str(x.numel())] +
                        [hexf(v) for v in x.tolist()] + [hexf(v) for v in y.tolist()]))
    x = torch.randn(4, 3, 5) * 2
    scales = torch.rand(3) * 0.05 + 0.01
    zps = torch.randint(qmin, qmax + 1, (3,), dtype=torch.int32)
    y = torch.fake_quantize_per_channel_affine(x, scales, zps, 1, qmin, qmax)
    out.append(" ".join(["fake_quantize_per_channel", "1", str(qmin), str(qmax)] + tensor_tokens(x)[:4] + ["3"] +
                        [hexf(s) for s in scales.tolist()] + [str(int(z)) for z in zps.tolist()] + [str(x.numel())] +
                        [hexf(v) for v in x.flatten().tolist()] + [hexf(v) for v in y.flatten().tolist()]))

header = "# Generated by tests/data/make_torch_vectors.py with torch " + torch.__version__ + "; do not edit.\n"
with open(sys.argv[1] if len(sys.argv) > 1 else "torch_vectors.txt", "w") as f:
    f.write(header + "\n".join(out) + "\n")

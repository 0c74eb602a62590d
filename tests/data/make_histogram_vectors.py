#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Generates histogram_vectors.txt: seeded calibration batches and the clipping range, scale and
zero point that the histogram calibrators of PyTorch and of NVIDIA's pytorch-quantization
(TensorRT's toolkit) compute for them, for squint's pytorch and tensorrt calibration profiles
(tests/histogram_vectors_test.cpp reads the file).

The algorithms are ported here line by line and run on torch's own operators (histc, linspace,
arange, bucketize, bincount, cumsum, the float32 elementwise arithmetic), as the originals do:
  torch/ao/quantization/observer.py (PyTorch >= 2.5, with the spike fix of #156457)
      HistogramObserver.forward, _combine_histograms, _upscale_histogram (16 sub-bins per bin),
      _non_linear_param_search, _compute_quantization_error, _get_norm; the qparams of the range
      come from Debian's torch 1.13 _calculate_qparams (unchanged since).
      Debian's torch is 1.13, whose own HistogramObserver truncates its histogram bounds to
      integers (fixed in 2.0) and merges by another scheme (replaced in 2.5), so it is not called.
  pytorch_quantization/calib/histogram.py
      HistogramCalibrator.collect (torch_hist=True: histc of |x| on [0, amax], linspace edges,
      growth by arange with the first bin width; torch_hist=False: np.histogram of |x| on its own
      range, growth by appending np.arange edges), _compute_amax_entropy (start_bin 128, stride 1),
      _compute_amax_percentile, _compute_amax_mse (fake quant of tensor_quant.py's _tensor_quant,
      narrow range), calibrate_weights (per channel: np.histogram of |w_c| on [0, max |w_c|]);
      the exported scale amax / max_bound in float32.
torch's CPU kernels for linspace and arange round differently with the vector width they run:
this file is made with torch's default dispatch on x86 (AVX2: 8 lanes, ATEN_CPU_CAPABILITY
unset, also on AVX-512 machines), which squint's histograms follow.

Run with Debian's python3-torch, numpy and scipy:
  `/usr/bin/python3 tests/data/make_histogram_vectors.py > tests/data/histogram_vectors.txt`.

Format, one case per line; floats as the 8 hex digits of their float32 bits:
  l2 <dtype> <scheme> <reduce_range> <bins> <batches> (<n> <values...>){batches}
     range <min> <max> expect <scale> <zero_point>
  tensorrt <entropy|percentile|mse> <dtype> <reduce_range> <bins> <percentile> <batches>
     (<n> <values...>){batches} amax <amax> expect <scale> <zero_point>
  tensorrt_numpy (the same, HistogramCalibrator(torch_hist=False))
  tensorrt_weights <percentile|mse> <dtype> <bins> <percentile> <channels> <per_channel>
     <values...> expect (<scale> <zero_point>){channels}
  linspace <start> <end> <steps> <fnv>     torch.linspace (two threads), FNV-1a 64 of the bits
  arange <end> <step> <size> <fnv>          torch.arange(0, end, step)
"""
import os
import struct
import warnings

os.environ.pop("ATEN_CPU_CAPABILITY", None)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.stats import entropy  # noqa: E402

warnings.filterwarnings("ignore")
torch.set_num_threads(max(2, torch.get_num_threads()))
torch.manual_seed(20261202)
rng = np.random.default_rng(20261202)
F32 = np.float32


def bits(v):
    return "%08x" % struct.unpack("<I", struct.pack("<f", float(v)))[0]


# --- PyTorch >= 2.5 HistogramObserver --------------------------------------------------------
class TorchHistogram:
    def __init__(self, bins, dtype_bits=8, upsample_rate=16):
        self.bins = bins
        self.upsample_rate = upsample_rate
        self.dst_nbins = 2 ** dtype_bits
        self.histogram = torch.zeros(bins)
        self.min_val = torch.tensor(float("inf"))
        self.max_val = torch.tensor(float("-inf"))

    def _upscale_histogram(self, histogram, orig_min, orig_max, update_min, update_max):
        histogram = histogram.repeat_interleave(self.upsample_rate) / self.upsample_rate
        bin_size = (orig_max - orig_min) / (self.bins * self.upsample_rate)
        mid_points = torch.linspace(orig_min, orig_max, self.bins * self.upsample_rate + 1)[:-1] + 0.5 * bin_size
        boundaries = torch.linspace(update_min, update_max, self.bins + 1)
        buckets = torch.bucketize(mid_points, boundaries, right=True) - 1
        buckets[buckets >= self.bins] = self.bins - 1
        buckets[buckets < 0] = 0
        return torch.bincount(buckets, weights=histogram, minlength=self.bins)

    def _combine_histograms(self, orig_hist, orig_min, orig_max, update_hist, update_min, update_max):
        if update_min == orig_min and update_max == orig_max:
            return orig_hist + update_hist
        if orig_min == orig_max:
            bin_value = torch.sum(orig_hist)
            transformed = torch.histc(orig_min, bins=self.bins, min=float(update_min), max=float(update_max)) * bin_value
            return transformed + update_hist
        transformed = self._upscale_histogram(orig_hist, orig_min, orig_max, update_min, update_max)
        return update_hist + transformed

    def forward(self, x):
        if x.numel() == 0:
            return
        x_min, x_max = torch.aminmax(x)
        if x_min == -torch.inf or x_max == torch.inf:
            x = x[x.abs() != torch.inf]
            if x.numel() == 0:
                return
            x_min, x_max = torch.aminmax(x)
        if self.min_val == float("inf") or self.max_val == float("-inf"):
            self.min_val, self.max_val = x_min.clone(), x_max.clone()
            self.histogram = torch.histc(x, self.bins, min=float(x_min), max=float(x_max))
            return
        new_min = torch.min(self.min_val, x_min)
        new_max = torch.max(self.max_val, x_max)
        update = torch.histc(x, self.bins, min=float(new_min), max=float(new_max))
        if new_min == self.min_val and new_max == self.max_val:
            self.histogram = self.histogram + update
        else:
            self.histogram = self._combine_histograms(self.histogram, self.min_val, self.max_val, update, new_min,
                                                      new_max)
            self.min_val, self.max_val = new_min, new_max

    @staticmethod
    def _get_norm(delta_begin, delta_end, density):
        norm = (delta_end * delta_end * delta_end - delta_begin * delta_begin * delta_begin) / 3
        return density * norm

    def _compute_quantization_error(self, next_start_bin, next_end_bin):
        bin_width = (self.max_val.item() - self.min_val.item()) / self.bins
        dst_bin_width = bin_width * (next_end_bin - next_start_bin + 1) / self.dst_nbins
        if dst_bin_width == 0.0:
            return 0.0
        src_bin = torch.arange(self.bins)
        src_bin_begin = (src_bin - next_start_bin) * bin_width
        src_bin_end = src_bin_begin + bin_width
        dst_bin_of_begin = torch.clamp(torch.div(src_bin_begin, dst_bin_width, rounding_mode="floor"), 0,
                                       self.dst_nbins - 1)
        dst_bin_of_begin_center = (dst_bin_of_begin + 0.5) * dst_bin_width
        dst_bin_of_end = torch.clamp(torch.div(src_bin_end, dst_bin_width, rounding_mode="floor"), 0,
                                     self.dst_nbins - 1)
        density = self.histogram / bin_width
        norm = torch.zeros(self.bins)
        delta_begin = src_bin_begin - dst_bin_of_begin_center
        delta_end = dst_bin_width / 2
        norm += self._get_norm(delta_begin, torch.ones(self.bins) * delta_end, density)
        norm += (dst_bin_of_end - dst_bin_of_begin - 1) * self._get_norm(torch.tensor(-dst_bin_width / 2),
                                                                         torch.tensor(dst_bin_width / 2), density)
        dst_bin_of_end_center = dst_bin_of_end * dst_bin_width + dst_bin_width / 2
        delta_begin = -dst_bin_width / 2
        delta_end = src_bin_end - dst_bin_of_end_center
        norm += self._get_norm(torch.tensor(delta_begin), delta_end, density)
        return norm.sum().item()

    def search(self):
        bin_width = (self.max_val - self.min_val) / self.bins
        total = torch.sum(self.histogram).item()
        c_sum = torch.cumsum(self.histogram, dim=0)
        stepsize = 1e-5
        alpha, beta = 0.0, 1.0
        start_bin, end_bin = 0, self.bins - 1
        norm_min = float("inf")
        while alpha < beta:
            next_alpha = alpha + stepsize
            next_beta = beta - stepsize
            l, r = start_bin, end_bin
            while l < end_bin and c_sum[l] < next_alpha * total:
                l = l + 1
            while r > start_bin and c_sum[r] > next_beta * total:
                r = r - 1
            next_start_bin, next_end_bin = start_bin, end_bin
            if (l - start_bin) > (end_bin - r):
                next_start_bin = l
                alpha = next_alpha
            else:
                next_end_bin = r
                beta = next_beta
            if next_start_bin == start_bin and next_end_bin == end_bin:
                continue
            norm = self._compute_quantization_error(next_start_bin, next_end_bin)
            if norm > norm_min:
                break
            norm_min = norm
            start_bin, end_bin = next_start_bin, next_end_bin
        return self.min_val + bin_width * start_bin, self.min_val + bin_width * (end_bin + 1)


TORCH_DTYPES = {"uint8": torch.quint8, "int8": torch.qint8}


def torch_qparams(lo, hi, dtype, scheme, reduce_range):
    obs = torch.ao.quantization.MinMaxObserver(
        dtype=TORCH_DTYPES[dtype], reduce_range=reduce_range,
        qscheme=torch.per_tensor_symmetric if scheme == "symmetric" else torch.per_tensor_affine)
    scale, zp = obs._calculate_qparams(lo.reshape(()), hi.reshape(()))
    return float(scale), int(zp)


# --- pytorch-quantization HistogramCalibrator ------------------------------------------------
class TensorRTHistogram:
    def __init__(self, num_bins, torch_hist=True):
        self._num_bins = num_bins
        self._torch_hist = torch_hist
        self._calib_bin_edges = None
        self._calib_hist = None

    def collect(self, x):
        if torch.min(x) < 0.:
            x = x.abs()
        x = x.float()
        if not self._torch_hist:
            x_np = x.cpu().detach().numpy()
            if self._calib_bin_edges is None and self._calib_hist is None:
                self._calib_hist, self._calib_bin_edges = np.histogram(x_np, bins=self._num_bins)
            else:
                temp_amax = np.max(x_np)
                if temp_amax > self._calib_bin_edges[-1]:
                    width = self._calib_bin_edges[1] - self._calib_bin_edges[0]
                    new_bin_edges = np.arange(self._calib_bin_edges[-1] + width, temp_amax + width, width)
                    self._calib_bin_edges = np.hstack((self._calib_bin_edges, new_bin_edges))
                hist, self._calib_bin_edges = np.histogram(x_np, bins=self._calib_bin_edges)
                hist[:len(self._calib_hist)] += self._calib_hist
                self._calib_hist = hist
            return
        x_max = x.max()
        if self._calib_bin_edges is None and self._calib_hist is None:
            self._calib_hist = torch.histc(x, bins=self._num_bins, min=0, max=float(x_max))
            self._calib_bin_edges = torch.linspace(0, x_max, self._num_bins + 1)
        else:
            if x_max > self._calib_bin_edges[-1]:
                width = self._calib_bin_edges[1] - self._calib_bin_edges[0]
                self._num_bins = int((x_max / width).ceil().item())
                self._calib_bin_edges = torch.arange(0, x_max + width, width)
            hist = torch.histc(x, bins=self._num_bins, min=0, max=float(self._calib_bin_edges[-1]))
            hist[:self._calib_hist.numel()] += self._calib_hist
            self._calib_hist = hist

    def compute_amax(self, method, num_bits, unsigned, percentile):
        if self._torch_hist:
            calib_hist = self._calib_hist.int().cpu().numpy()
            calib_bin_edges = self._calib_bin_edges.cpu().numpy()
        else:
            calib_hist, calib_bin_edges = self._calib_hist, self._calib_bin_edges
        return trt_amax(method, calib_hist, calib_bin_edges, num_bits, unsigned, percentile)


def trt_amax(method, calib_hist, calib_bin_edges, num_bits, unsigned, percentile):
    if method == "entropy":
        return trt_entropy(calib_hist, calib_bin_edges, num_bits, unsigned)
    if method == "mse":
        return trt_mse(calib_hist, calib_bin_edges, num_bits, unsigned)
    total = calib_hist.sum()
    cdf = np.cumsum(calib_hist / total)
    idx = np.searchsorted(cdf, percentile / 100)
    return torch.tensor(calib_bin_edges[idx].item())


def trt_entropy(calib_hist, calib_bin_edges, num_bits, unsigned, stride=1, start_bin=128):
    bins = calib_hist[:]
    bins[0] = bins[1]
    total_data = np.sum(bins)
    divergences = []
    nbins = 1 << (num_bits - 1 + int(unsigned))
    starting, stop = start_bin, len(bins)
    new_density_counts = np.zeros(nbins, dtype=np.float64)
    for i in range(starting, stop + 1, stride):
        new_density_counts.fill(0)
        space = np.linspace(0, i, num=nbins + 1)
        digitized_space = np.digitize(range(i), space) - 1
        digitized_space[bins[:i] == 0] = -1
        for idx, digitized in enumerate(digitized_space):
            if digitized != -1:
                new_density_counts[digitized] += bins[idx]
        counter = {}
        for d in digitized_space:
            counter[d] = counter.get(d, 0) + 1
        for key, val in counter.items():
            if key != -1:
                new_density_counts[key] = new_density_counts[key] / val
        new_density = np.zeros(i, dtype=np.float64)
        for idx, digitized in enumerate(digitized_space):
            if digitized != -1:
                new_density[idx] = new_density_counts[digitized]
        reference_density = np.array(bins[:len(digitized_space)])
        reference_density[-1] += np.sum(bins[i:])
        divergences.append(entropy(reference_density, new_density))
    divergences = np.array(divergences)
    last_argmin = len(divergences) - 1 - np.argmin(divergences[::-1])
    return torch.tensor(calib_bin_edges[last_argmin * stride + starting].item())


def trt_fake_quant(inputs, amax, num_bits, unsigned):
    max_bound = torch.tensor((2.0 ** (num_bits - 1 + int(unsigned))) - 1.0)
    min_bound = 0 if unsigned else -max_bound
    scale = max_bound / amax
    epsilon = 1. / (1 << 24)
    if amax <= epsilon:
        scale = torch.tensor(0.0)
    outputs = torch.clamp((inputs * scale).round_(), min_bound, max_bound)
    if amax <= epsilon:
        scale = torch.tensor(1.0)
    return outputs / scale


def trt_mse(calib_hist, calib_bin_edges, num_bits, unsigned, stride=1, start_bin=128):
    counts = torch.from_numpy(calib_hist[:]).float()
    edges = torch.from_numpy(calib_bin_edges[:]).float()
    centers = (edges[1:] + edges[:-1]) / 2
    mses, arguments = [], []
    for i in range(start_bin, len(centers), stride):
        amax = centers[i]
        quant_centers = trt_fake_quant(centers, amax, num_bits, unsigned)
        mses.append(((quant_centers - centers) ** 2 * counts).mean())
        arguments.append(i)
    return centers[arguments[int(np.argmin(mses))]]


def trt_scale(amax, num_bits, unsigned):
    max_bound = F32(2.0 ** (num_bits - 1 + int(unsigned)) - 1.0)
    scale = F32(F32(amax) / max_bound)
    return (F32(1.0), 0) if scale == 0 else (scale, 0)


def fnv(t):
    h = 0xcbf29ce484222325
    for byte in t.numpy().astype("<f4").tobytes():
        h = ((h ^ byte) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


# --- data ------------------------------------------------------------------------------------
def data(kind, n):
    if kind == "normal":
        return (rng.standard_normal(n) * rng.uniform(0.01, 10) + rng.uniform(-1, 1)).astype(F32)
    if kind == "heavy":
        return (rng.standard_cauchy(n) * rng.uniform(0.01, 3)).astype(F32)
    if kind == "positive":
        return np.abs(rng.standard_normal(n) * 3).astype(F32)
    if kind == "negative":
        return (-np.abs(rng.standard_normal(n) * 2) - F32(0.5)).astype(F32)
    if kind == "relu":
        return np.maximum(rng.standard_normal(n) * 2, 0).astype(F32)
    if kind == "zero":
        return np.zeros(n, dtype=F32)
    if kind == "tiny":
        return (rng.standard_normal(n) * 1e-6).astype(F32)
    raise ValueError(kind)


def batches_for(case, kind):
    nb = 1 + case % 4
    out = []
    constant = F32(rng.choice([2.5, -7.0, 1000.0, 1e-3]))
    for b in range(nb):
        n = 1 if case % 13 == 0 else 3000 if case % 10 == 9 and b == 0 else int(rng.integers(16, 300))
        x = np.full(n, constant, dtype=F32) if kind == "constant" else data(kind, n)
        if case % 3 == 1 and kind not in ("constant", "zero"):
            x = (x * F32(1.0 + 0.7 * b)).astype(F32)  # a range growing batch by batch
        out.append(x)
    return out


def batch_tokens(batches):
    tokens = [str(len(batches))]
    for b in batches:
        tokens += [str(len(b))] + [bits(v) for v in b]
    return tokens


lines = ["# Generated by tests/data/make_histogram_vectors.py with torch %s, numpy %s; do not edit."
         % (torch.__version__, np.__version__)]
kinds = ["normal", "heavy", "positive", "negative", "relu", "constant", "zero", "tiny"]

for case in range(96):
    kind = kinds[case % len(kinds)]
    batches = batches_for(case, kind)
    dtype = "uint8" if rng.integers(0, 2) else "int8"
    scheme = "symmetric" if rng.integers(0, 3) == 0 else "affine"
    reduce_range = bool(rng.integers(0, 4) == 0)
    if dtype == "uint8" and scheme == "symmetric":
        reduce_range = False  # PyTorch refuses this combination
    bins = 2048 if case % 5 else int(rng.choice([256, 512, 1000]))
    h = TorchHistogram(bins)
    for b in batches:
        h.forward(torch.from_numpy(b))
    lo, hi = h.search()
    scale, zp = torch_qparams(lo, hi, dtype, scheme, reduce_range)
    lines.append(" ".join(["l2", dtype, scheme, str(int(reduce_range)), str(bins)] + batch_tokens(batches) +
                          ["range", bits(lo), bits(hi), "expect", bits(scale), str(zp)]))

for case in range(192):
    kind = kinds[case % len(kinds)]
    batches = batches_for(case, kind)
    torch_hist = case < 144
    method = ("entropy", "percentile", "mse")[case % 3]
    dtype = "uint8" if kind in ("positive", "relu") and rng.integers(0, 2) else "int8"
    reduce_range = bool(rng.integers(0, 5) == 0)
    bins = 2048 if case % 4 else int(rng.choice([256, 512, 1000]))
    percentile = float(rng.choice([99.99, 99.9, 99.0, 100.0]))
    num_bits, unsigned = (7 if reduce_range else 8), dtype == "uint8"
    h = TensorRTHistogram(bins, torch_hist)
    for b in batches:
        h.collect(torch.from_numpy(b))
    if len(h._calib_hist) > 8192:
        continue  # a heavy tail grew the histogram past what the Python entropy search runs in seconds
    amax = h.compute_amax(method, num_bits, unsigned, percentile)
    scale, zp = trt_scale(amax, num_bits, unsigned)
    lines.append(" ".join(["tensorrt" if torch_hist else "tensorrt_numpy", method, dtype, str(int(reduce_range)), str(bins), float(percentile).hex()] +
                          batch_tokens(batches) + ["amax", bits(amax), "expect", bits(scale), str(zp)]))

for case in range(24):
    method = "mse" if case % 2 else "percentile"
    dtype = "int8"
    bins = 2048 if case % 3 else 512
    percentile = float(rng.choice([99.99, 99.9, 100.0]))
    channels, per_channel = int(rng.integers(1, 6)), int(rng.integers(1, 200))
    w = (rng.standard_normal((channels, per_channel)) * rng.uniform(0.01, 0.5, (channels, 1))).astype(F32)
    if case % 4 == 3:
        w[0, :] = 0  # an all-zero channel: np.histogram widens its range to [-0.5, 0.5]
    expect = []
    for c in range(channels):
        x = np.abs(w[c])
        hist, edges = np.histogram(x, bins=bins, range=(0, x.max()))
        if method == "mse" and x.max() == 0:
            amax = F32(0)  # pytorch-quantization raises "Negative values in amax" here; squint gives scale 1
        else:
            amax = trt_amax(method, hist, edges.astype(F32), 8, False, percentile)
        scale, zp = trt_scale(amax, 8, False)
        expect += [bits(scale), str(zp)]
    lines.append(" ".join(["tensorrt_weights", method, dtype, str(bins), float(percentile).hex(), str(channels),
                           str(per_channel)] + [bits(v) for v in w.flatten()] + ["expect"] + expect))
for case in range(24):
    start = F32(0.0) if case % 3 == 0 else F32(rng.standard_normal() * 5)
    end = F32(start + F32(rng.uniform(1e-3, 20)))
    steps = (2049, 32769, 257, 1001, 16, 2)[case % 6]
    lines.append(" ".join(["linspace", bits(start), bits(end), str(steps),
                           fnv(torch.linspace(torch.tensor(start), torch.tensor(end), steps))]))
    width = F32(rng.uniform(1e-4, 1e-2))
    top = F32(width * F32(rng.uniform(2000, 3000)))
    a = torch.arange(0, torch.tensor(top) + torch.tensor(width), torch.tensor(width))
    lines.append(" ".join(["arange", bits(F32(top + width)), bits(width), str(a.numel()), fnv(a)]))
print("\n".join(lines))

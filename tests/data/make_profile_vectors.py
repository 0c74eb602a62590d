#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Generates profile_vectors.txt: seeded calibration data and the scale and zero point that ONNX
Runtime's and NVIDIA pytorch-quantization's (TensorRT's toolkit) min-max calibration compute for
it, for squint's calibration profiles (tests/profile_vectors_test.cpp reads the file).

Neither library is in Debian, so their algorithms are ported here with numpy, following:
  onnxruntime/python/tools/quantization/quant_utils.py  get_qmin_qmax_for_qType, compute_scale_zp
  onnxruntime/python/tools/quantization/calibrate.py    MinMaxCalibrater (per-batch ReduceMin /
      ReduceMax; nanmin/nanmax across batches, or nanmean with moving_average=True within one
      collect_data call; symmetric=True -> (-m, m))
  pytorch_quantization/calib/max.py                     MaxCalibrator (running max of |x|)
  pytorch_quantization/tensor_quant.py                  the exported scale amax / max_bound
                                                        (float32; amax 0 -> 1), zero point 0
  onnxruntime/python/tools/quantization/calibrate.py    HistogramCollector.collect_value and
      collect_absolute_value (one collect_data call: the batches stacked), get_entropy_threshold,
      compute_percentile; quant_utils.py smooth_distribution. numpy's np.histogram and scipy's
      scipy.stats.entropy are called as ORT calls them.
Run with Debian's numpy and scipy:
  `/usr/bin/python3 tests/data/make_profile_vectors.py > tests/data/profile_vectors.txt`.

Format, one case per line, floats as exact hex:
  <profile> <observer> <dtype> <scheme> <reduce_range> <symmetric_range> <min_real_range|none>
  <batches> (<n> <values...>){batches} expect <scale> <zero_point>
  ort_histogram <entropy|percentile> <bins> <quantized_bins> <percentile> <symmetric> <dtype> <scheme>
  <batches> (<n> <values...>){batches} range <lo> <hi> expect <scale> <zero_point>
  ort_histogram_calls (the same fields, each batch its own collect_data call: collect_value's
  merge_histogram and collect_absolute_value's appended edges between calls)
"""
import numpy as np
from scipy.stats import entropy

rng = np.random.default_rng(20261202)
F32 = np.float32


def ort_qmin_qmax(dtype, reduce_range, symmetric):
    if reduce_range:
        return (-64, 64) if dtype == "int8" else (0, 127)
    if symmetric:
        return (-127, 127) if dtype == "int8" else (0, 254)
    return (-128, 127) if dtype == "int8" else (0, 255)


def ort_compute_scale_zp(rmin, rmax, qmin, qmax, symmetric, min_real_range):
    rmin = np.minimum(F32(rmin), F32(0))
    rmax = np.maximum(F32(rmax), F32(0))
    if min_real_range is not None:
        rmax = max(rmax, F32(rmin + F32(min_real_range)))
    if symmetric:
        absmax = np.maximum(np.abs(rmin), np.abs(rmax))
        rmin, rmax = -absmax, absmax
    dr = np.array(rmax - rmin, dtype=np.float64)
    qr = np.array(qmax, dtype=np.float64) - np.array(qmin, dtype=np.float64)
    scale = np.array(dr / qr)
    if scale < np.finfo(np.float32).tiny:
        return F32(1.0), 0
    if symmetric:
        zp = int(np.round((qmin + qmax) / np.float64(2.0)))
    else:
        zp = int(np.round(qmin - rmin / scale))
    return F32(scale), zp


def ort_case(observer, dtype, scheme, reduce_range, symmetric_range, mrr, batches):
    mins = [np.min(b) for b in batches]
    maxs = [np.max(b) for b in batches]
    if observer == "batch_mean":
        lo, hi = np.nanmean(np.array(mins, dtype=F32)), np.nanmean(np.array(maxs, dtype=F32))
    else:
        lo, hi = np.nanmin(np.array(mins, dtype=F32)), np.nanmax(np.array(maxs, dtype=F32))
    if symmetric_range:
        m = np.nanmax([np.abs(lo), np.abs(hi)])
        lo, hi = -m, m
    symmetric = scheme == "symmetric"
    qmin, qmax = ort_qmin_qmax(dtype, reduce_range, symmetric)
    return ort_compute_scale_zp(F32(lo), F32(hi), qmin, qmax, symmetric, mrr)


def trt_case(dtype, reduce_range, batches):
    amax = F32(0)
    for b in batches:
        amax = max(amax, F32(np.max(np.abs(b))))
    bits = 7 if reduce_range else 8
    max_bound = F32(2 ** (bits - 1 + (1 if dtype == "uint8" else 0)) - 1)
    if amax == 0:
        return F32(1.0), 0
    return F32(amax / max_bound), 0


def ort_smooth_distribution(p, eps=0.0001):
    is_zeros = (p == 0).astype(np.float32)
    is_nonzeros = (p != 0).astype(np.float32)
    n_zeros = is_zeros.sum()
    n_nonzeros = p.size - n_zeros
    if not n_nonzeros:
        return None
    eps1 = eps * float(n_zeros) / float(n_nonzeros)
    if not eps1 < 1.0:  # ORT asserts here; squint scores the candidate as infinite
        return None
    hist = p.astype(np.float32)
    hist += eps * is_zeros + (-eps1) * is_nonzeros
    return hist


def ort_entropy_threshold(histogram, num_quantized_bins):
    hist, hist_edges, min_value, max_value = histogram
    num_bins = hist.size
    zero_bin_index = num_bins // 2
    num_half_quantized_bin = num_quantized_bins // 2
    dtype = hist_edges.dtype
    kl_divergence = np.zeros(zero_bin_index - num_half_quantized_bin + 1)
    thresholds = [(np.array(0, dtype=dtype), np.array(0, dtype=dtype)) for _ in range(kl_divergence.size)]
    for i in range(num_half_quantized_bin, zero_bin_index + 1, 1):
        start_index = zero_bin_index - i
        end_index = zero_bin_index + i + 1 if (zero_bin_index + i + 1) <= num_bins else num_bins
        thresholds[i - num_half_quantized_bin] = (np.array(hist_edges[start_index], dtype=dtype),
                                                  np.array(hist_edges[end_index], dtype=dtype))
        sliced_distribution = hist[start_index:end_index].copy()
        p = sliced_distribution.copy()
        p[0] += sum(hist[:start_index])
        p[-1] += sum(hist[end_index:])
        nonzeros = (p != 0).astype(np.int64)
        quantized_bins = np.zeros(num_quantized_bins, dtype=np.int64)
        num_merged_bins = sliced_distribution.size // num_quantized_bins
        for index in range(num_quantized_bins):
            start = index * num_merged_bins
            end = start + num_merged_bins
            quantized_bins[index] = sum(sliced_distribution[start:end])
        quantized_bins[-1] += sum(sliced_distribution[num_quantized_bins * num_merged_bins:])
        q = np.zeros(p.size, dtype=np.int64)
        for index in range(num_quantized_bins):
            start = index * num_merged_bins
            end = start + num_merged_bins
            norm = sum(nonzeros[start:end])
            if norm != 0:
                q[start:end] = quantized_bins[index] / norm
        p = ort_smooth_distribution(p)
        q = ort_smooth_distribution(q)
        if p is None or q is None:
            kl_divergence[i - num_half_quantized_bin] = float("inf")
        else:
            kl_divergence[i - num_half_quantized_bin] = entropy(p, q)
    optimal = thresholds[int(np.argmin(kl_divergence))]
    if optimal[0] < min_value:
        optimal = (min_value, optimal[1])
    if optimal[1] > max_value:
        optimal = (optimal[0], max_value)
    return optimal


def ort_percentile(histogram, percentile, symmetric):
    hist, hist_edges, min_value, max_value = histogram
    total = hist.sum()
    cdf = np.cumsum(hist / total)
    if symmetric:
        idx_right = np.searchsorted(cdf, percentile / 100.0)
        t = (-np.array(hist_edges[idx_right], dtype=hist_edges.dtype), np.array(hist_edges[idx_right], dtype=hist_edges.dtype))
    else:
        cut = (100.0 - percentile) / 200.0
        idx_right = np.searchsorted(cdf, 1.0 - cut)
        idx_left = np.searchsorted(cdf, cut)
        t = (np.array(hist_edges[idx_left], dtype=hist_edges.dtype), np.array(hist_edges[idx_right], dtype=hist_edges.dtype))
    if t[0] < min_value:
        t = (min_value, t[1])
    if t[1] > max_value:
        t = (t[0], max_value)
    return t


def ort_histogram_case(method, bins, qbins, percentile, symmetric, dtype, scheme, batches):
    data_arr = np.concatenate(batches).astype(np.float32).flatten()
    min_value, max_value = np.min(data_arr), np.max(data_arr)
    if method == "percentile" and symmetric:  # collect_absolute_value
        hist, edges = np.histogram(np.absolute(data_arr), bins=bins)
        lo, hi = ort_percentile((hist, edges, min_value, max_value), percentile, True)
    else:  # collect_value
        threshold = max(abs(min_value), abs(max_value))
        hist, edges = np.histogram(data_arr, bins, range=(-threshold, threshold))
        histogram = (hist, edges, min_value, max_value)
        if method == "entropy":
            lo, hi = ort_entropy_threshold(histogram, qbins)
        else:
            lo, hi = ort_percentile(histogram, percentile, False)
    sym = scheme == "symmetric"
    qmin, qmax = ort_qmin_qmax(dtype, False, sym)
    scale, zp = ort_compute_scale_zp(F32(lo), F32(hi), qmin, qmax, sym, None)
    return F32(lo), F32(hi), scale, zp


def ort_collect_value(histogram, data_arr, num_bins):
    """HistogramCollector.collect_value on one collect_data call, with merge_histogram."""
    min_value, max_value = np.min(data_arr), np.max(data_arr)
    threshold = max(abs(min_value), abs(max_value))
    if histogram is None:
        hist, hist_edges = np.histogram(data_arr, num_bins, range=(-threshold, threshold))
        return (hist, hist_edges, min_value, max_value, threshold)
    old_hist, old_hist_edges, old_min, old_max, old_threshold = histogram
    new_min, new_max, new_threshold = min_value, max_value, threshold
    if new_threshold <= old_threshold:
        new_hist, _ = np.histogram(data_arr, len(old_hist), range=(-old_threshold, old_threshold))
        return (new_hist + old_hist, old_hist_edges, min(old_min, new_min), max(old_max, new_max), old_threshold)
    if old_threshold == 0:
        hist, hist_edges = np.histogram(data_arr, len(old_hist), range=(-new_threshold, new_threshold))
        hist += old_hist
    else:
        old_num_bins = len(old_hist)
        old_stride = 2 * old_threshold / old_num_bins
        half_increased_bins = int((new_threshold - old_threshold) // old_stride + 1)
        new_num_bins = old_num_bins + 2 * half_increased_bins
        if new_num_bins > 8192:
            raise ValueError("the test skips histograms grown past 8192 bins")
        new_threshold = half_increased_bins * old_stride + old_threshold
        hist, hist_edges = np.histogram(data_arr, new_num_bins, range=(-new_threshold, new_threshold))
        hist[half_increased_bins:new_num_bins - half_increased_bins] += old_hist
    return (hist, hist_edges, min(old_min, new_min), max(old_max, new_max), new_threshold)


def ort_collect_absolute_value(histogram, data_arr, num_bins):
    """HistogramCollector.collect_absolute_value on one collect_data call."""
    min_value, max_value = np.min(data_arr), np.max(data_arr)
    data_arr = np.absolute(data_arr)
    if histogram is None:
        hist, hist_edges = np.histogram(data_arr, bins=num_bins)
        return (hist, hist_edges, min_value, max_value)
    old_hist, old_hist_edges, old_min, old_max = histogram
    temp_amax = np.max(data_arr)
    if temp_amax > old_hist_edges[-1]:
        width = old_hist_edges[1] - old_hist_edges[0]
        if (temp_amax - old_hist_edges[-1]) / width > 8192:
            raise ValueError("the test skips histograms grown past 8192 bins")
        new_bin_edges = np.arange(old_hist_edges[-1] + width, temp_amax + width, width)
        old_hist_edges = np.hstack((old_hist_edges, new_bin_edges))
    hist, hist_edges = np.histogram(data_arr, bins=old_hist_edges)
    hist[:len(old_hist)] += old_hist
    return (hist, hist_edges, min(old_min, min_value), max(old_max, max_value))


def ort_histogram_calls_case(method, bins, qbins, percentile, symmetric, dtype, scheme, batches):
    """As ort_histogram_case, with each batch its own collect_data call."""
    histogram = None
    absolute = method == "percentile" and symmetric
    for b in batches:
        data_arr = np.asarray(b, dtype=np.float32).flatten()
        if absolute:
            histogram = ort_collect_absolute_value(histogram, data_arr, bins)
        else:
            histogram = ort_collect_value(histogram, data_arr, bins)
    hist4 = histogram[:4]
    if len(hist4[0]) > 4096:
        raise ValueError("a heavy tail grew the histogram past what the Python entropy search runs in seconds")
    if absolute:
        lo, hi = ort_percentile(hist4, percentile, True)
    elif method == "entropy":
        lo, hi = ort_entropy_threshold(hist4, qbins)
    else:
        lo, hi = ort_percentile(hist4, percentile, False)
    sym = scheme == "symmetric"
    qmin, qmax = ort_qmin_qmax(dtype, False, sym)
    scale, zp = ort_compute_scale_zp(F32(lo), F32(hi), qmin, qmax, sym, None)
    return F32(lo), F32(hi), scale, zp


def data(kind, n):
    if kind == "normal":
        return (rng.standard_normal(n) * rng.uniform(0.01, 10)).astype(F32)
    if kind == "heavy":
        return (rng.standard_cauchy(n) * rng.uniform(0.01, 3)).astype(F32)
    if kind == "positive":
        return np.abs(rng.standard_normal(n) * 3).astype(F32)
    if kind == "negative":
        return (-np.abs(rng.standard_normal(n) * 2) - F32(0.5)).astype(F32)
    if kind == "constant":
        return np.full(n, F32(rng.choice([2.5, -7.0, 1000.0, 1e-3])), dtype=F32)
    if kind == "zero":
        return np.zeros(n, dtype=F32)
    if kind == "tiny":
        return (rng.standard_normal(n) * 1e-9).astype(F32)
    if kind == "huge":
        return (rng.standard_normal(n) * 1e30).astype(F32)
    raise ValueError(kind)


def hexf(v):
    return float(v).hex()


lines = ["# Generated by tests/data/make_profile_vectors.py with numpy %s; do not edit." % np.__version__]
kinds = ["normal", "heavy", "positive", "negative", "constant", "zero", "tiny", "huge"]
for case in range(420):
    kind = kinds[case % len(kinds)]
    nb = 1 + int(rng.integers(0, 4)) if case % 5 else 1
    sizes = [1 if (case % 17 == 0) else int(rng.integers(1, 40)) for _ in range(nb)]
    batches = [data(kind, n) for n in sizes]
    dtype = "int8" if rng.integers(0, 2) else "uint8"
    reduce_range = bool(rng.integers(0, 4) == 0)
    if case % 3 == 2:
        profile, observer, scheme, symrange, mrr = "tensorrt", "max", "symmetric", False, None
        scale, zp = trt_case(dtype, reduce_range, batches)
    else:
        profile = "onnxruntime"
        observer = "batch_mean" if rng.integers(0, 2) else "minmax"
        scheme = "symmetric" if rng.integers(0, 2) else "affine"
        symrange = bool(rng.integers(0, 3) == 0)
        mrr = float(F32(rng.choice([1e-4, 0.5, 3.0]))) if rng.integers(0, 5) == 0 else None
        scale, zp = ort_case(observer, dtype, scheme, reduce_range, symrange, mrr, batches)
    tokens = [profile, observer, dtype, scheme, str(int(reduce_range)), str(int(symrange)),
              "none" if mrr is None else hexf(mrr), str(nb)]
    for b in batches:
        tokens += [str(len(b))] + [hexf(v) for v in b]
    tokens += ["expect", hexf(scale), str(zp)]
    lines.append(" ".join(tokens))
for case in range(160):
    kind = kinds[case % len(kinds)]
    nb = 1 + int(rng.integers(0, 3))
    sizes = [int(rng.integers(1, 250)) if case % 11 else 1 for _ in range(nb)]
    batches = [data(kind, n) for n in sizes]
    method = "entropy" if case % 2 == 0 else "percentile"
    if method == "entropy":
        bins, qbins = int(rng.choice([128, 256, 512, 1000, 2048])), int(rng.choice([128, 128, 64, 100]))
        percentile, symmetric = 99.999, True
    else:
        bins, qbins = int(rng.choice([128, 1000, 2048])), 128
        percentile, symmetric = float(rng.choice([99.999, 99.9, 99.0, 90.0, 100.0])), bool(rng.integers(0, 2))
    dtype = "int8" if rng.integers(0, 2) else "uint8"
    scheme = "symmetric" if rng.integers(0, 2) else "affine"
    try:
        lo, hi, scale, zp = ort_histogram_case(method, bins, qbins, percentile, symmetric, dtype, scheme, batches)
    except IndexError:  # np.histogram itself fails on the |x| of a huge constant (1.9e30 +- 0.5 == 1.9e30)
        continue
    tokens = ["ort_histogram", method, str(bins), str(qbins), float(percentile).hex(), str(int(symmetric)), dtype,
              scheme, str(nb)]
    for b in batches:
        tokens += [str(len(b))] + [hexf(v) for v in b]
    tokens += ["range", hexf(lo), hexf(hi), "expect", hexf(scale), str(zp)]
    lines.append(" ".join(tokens))
# Several collect_data calls, one per batch: ORT widens the value histogram by whole bins and
# appends |x| bins between calls; ranges that grow call by call.
for case in range(72):
    kind = kinds[case % len(kinds)]
    nb = 2 + int(rng.integers(0, 3))
    batches = []
    for b in range(nb):
        x = data(kind, int(rng.integers(1, 200)) if case % 9 else 1)
        if case % 2 == 0 and kind not in ("constant", "zero"):
            x = (x * F32(1.0 + 0.6 * b)).astype(F32)
        batches.append(x)
    method = "entropy" if case % 2 == 0 else "percentile"
    bins = int(rng.choice([128, 256, 1000, 2048]))
    qbins = int(rng.choice([128, 64])) if method == "entropy" else 128
    percentile = float(rng.choice([99.999, 99.9, 99.0, 100.0]))
    symmetric = bool(rng.integers(0, 2))
    dtype = "int8" if rng.integers(0, 2) else "uint8"
    scheme = "symmetric" if rng.integers(0, 2) else "affine"
    try:
        lo, hi, scale, zp = ort_histogram_calls_case(method, bins, qbins, percentile, symmetric, dtype, scheme, batches)
    except (IndexError, ValueError):  # np.histogram fails on huge constants, arange on runaway growth
        continue
    tokens = ["ort_histogram_calls", method, str(bins), str(qbins), float(percentile).hex(), str(int(symmetric)),
              dtype, scheme, str(nb)]
    for b in batches:
        tokens += [str(len(b))] + [hexf(v) for v in b]
    tokens += ["range", hexf(lo), hexf(hi), "expect", hexf(scale), str(zp)]
    lines.append(" ".join(tokens))
print("\n".join(lines))

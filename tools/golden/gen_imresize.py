"""Reference values for evit's MATLAB-compatible imresize (tests/test_sr_metrics.cpp, [srmetrics]).

Run: /usr/bin/python3 tools/golden/gen_imresize.py  ->  tests/golden/imresize.safetensors
The reference is matlab_imresize.py (numpy port of MATLAB's algorithm). Keys:
  <case>.x (input, f64), <case>.y (output), <case>.scale (f64 scalar, 0 when a size is given),
  <case>.size (i64 [2]); rgb_to_y.x / rgb_to_y.y.
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Golden  # noqa: E402
from matlab_imresize import imresize  # noqa: E402

rng = np.random.default_rng(1234)
g = Golden("imresize")


def case(name, x, scale=None, size=None):
    y = imresize(x, scale=scale, size=size)
    g.add(name, "x", torch.from_numpy(np.ascontiguousarray(x)))
    g.add(name, "y", torch.from_numpy(np.ascontiguousarray(y)))
    g.add(name, "scale", torch.tensor([0.0 if scale is None else float(scale)], dtype=torch.float64))
    g.add(name, "size", torch.tensor(list(y.shape[-2:]), dtype=torch.int64))


# Random planes: every pixel matters, borders included.
case("down2", rng.uniform(0, 255, (16, 22)), scale=1 / 2)
case("down3", rng.uniform(0, 255, (15, 21)), scale=1 / 3)
case("down4", rng.uniform(0, 255, (20, 28)), scale=1 / 4)
case("down2_odd", rng.uniform(0, 1, (13, 9)), scale=1 / 2)      # ceil(6.5) outputs
case("up2", rng.uniform(0, 255, (7, 9)), scale=2)
case("up3", rng.uniform(0, 255, (5, 6)), scale=3)
case("up4", rng.uniform(0, 255, (4, 7)), scale=4)
case("up1_5", rng.uniform(0, 1, (6, 5)), scale=1.5)
# Multi-channel and batched inputs ([C,H,W], [N,C,H,W]).
case("chw_down2", rng.uniform(0, 1, (3, 10, 12)), scale=1 / 2)
case("nchw_up2", rng.uniform(0, 1, (2, 2, 5, 4)), scale=2)
# Explicit output sizes with different scales per axis (exercises the dimension order).
case("size_mixed", rng.uniform(0, 255, (10, 12)), size=(7, 20))
case("size_mixed2", rng.uniform(0, 255, (9, 8)), size=(18, 5))
# Smooth image down and back up (the SR bicubic baseline path).
yy, xx = np.mgrid[0:24, 0:32]
smooth = 128 + 60 * np.sin(xx / 5.0) * np.cos(yy / 7.0)
case("smooth_down4", smooth, scale=1 / 4)
case("smooth_up4", imresize(smooth, scale=1 / 4), scale=4)

rgb = rng.uniform(0, 1, (3, 4, 5))
y = 16 + 65.481 * rgb[0] + 128.553 * rgb[1] + 24.966 * rgb[2]
g.add("rgb_to_y", "x", torch.from_numpy(rgb))
g.add("rgb_to_y", "y", torch.from_numpy(y))


# PSNR / SSIM references (numpy, written from Wang et al.'s definition: 11x11 Gaussian window
# sigma 1.5 normalised, 'valid' filtering, K1 0.01, K2 0.03, L 255, mean of the map).
def ssim_ref(a, b, L=255.0):
    k = np.exp(-(np.arange(11) - 5.0) ** 2 / (2 * 1.5 ** 2))
    win = np.outer(k, k)
    win /= win.sum()

    def filt(x):
        h, w = x.shape[0] - 10, x.shape[1] - 10
        return np.array([[np.sum(win * x[i:i + 11, j:j + 11]) for j in range(w)] for i in range(h)])

    C1, C2 = (0.01 * L) ** 2, (0.03 * L) ** 2
    m1, m2 = filt(a), filt(b)
    v1, v2, c = filt(a * a) - m1 ** 2, filt(b * b) - m2 ** 2, filt(a * b) - m1 * m2
    return np.mean((2 * m1 * m2 + C1) * (2 * c + C2) / ((m1 ** 2 + m2 ** 2 + C1) * (v1 + v2 + C2)))


for name, border in (("metrics_b0", 0), ("metrics_b3", 3)):
    a = np.round(rng.uniform(0, 255, (22, 27)))
    b = np.clip(np.round(a + rng.normal(0, 12, a.shape)), 0, 255)
    ca, cb = (a, b) if border == 0 else (a[border:-border, border:-border], b[border:-border, border:-border])
    g.add(name, "a", torch.from_numpy(a))
    g.add(name, "b", torch.from_numpy(b))
    g.add(name, "border", torch.tensor([border], dtype=torch.int64))
    g.add(name, "psnr", torch.tensor([10 * np.log10(255.0 ** 2 / np.mean((ca - cb) ** 2))], dtype=torch.float64))
    g.add(name, "ssim", torch.tensor([ssim_ref(ca, cb)], dtype=torch.float64))
g.write()

"""A numpy port of MATLAB's imresize(A, scale, 'bicubic') (antialiasing on), written from the
published algorithm (contributions(): Keys cubic a=-0.5, kernel stretched by 1/scale when
shrinking, symmetric mirroring, normalised weights, the dimension with the smaller scale first).
Used only to generate reference values for the C++ tests; numpy only."""
import math

import numpy as np


def cubic(x):
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    return ((1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1) +
            (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2)))


def contributions(in_len, out_len, scale):
    if scale < 1:
        kernel = lambda x: scale * cubic(scale * x)
        width = 4.0 / scale
    else:
        kernel = cubic
        width = 4.0
    x = np.arange(1, out_len + 1, dtype=np.float64)[:, None]
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    p = int(math.ceil(width)) + 2
    ind = left + np.arange(p)[None, :]          # 1-based
    w = kernel(u - ind)
    w = w / w.sum(axis=1, keepdims=True)
    aux = np.concatenate([np.arange(1, in_len + 1), np.arange(in_len, 0, -1)])
    ind = aux[np.mod(ind.astype(np.int64) - 1, len(aux))] - 1   # 0-based
    keep = np.any(w != 0, axis=0)
    return w[:, keep], ind[:, keep]


def resize_dim(a, axis, out_len, scale):
    w, ind = contributions(a.shape[axis], out_len, scale)
    a = np.moveaxis(a, axis, -1)
    out = (a[..., ind] * w).sum(axis=-1)
    return np.moveaxis(out, -1, axis)


def imresize(a, scale=None, size=None):
    """a: float array [..., H, W]. Either scale (same for both) or size=(out_h, out_w)."""
    a = np.asarray(a, dtype=np.float64)
    h, w = a.shape[-2], a.shape[-1]
    if size is None:
        size = (int(math.ceil(scale * h)), int(math.ceil(scale * w)))
        scales = (scale, scale)
    else:
        scales = (size[0] / h, size[1] / w)
    order = [0, 1] if scales[0] <= scales[1] else [1, 0]
    for d in order:
        a = resize_dim(a, a.ndim - 2 + d, size[d], scales[d])
    return a

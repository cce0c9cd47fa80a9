"""Golden values for avg_pool2d, max_pool2d, adaptive_avg_pool2d and interpolate
(tests/test_pool.cpp). Run: /usr/bin/python3 tools/golden/gen_pool.py"""
import torch
import torch.nn.functional as F

from common import Golden, leaf

g = Golden("pool")

# Pools.
g.case_grad("avg_k3s2p1", lambda x: F.avg_pool2d(x, 3, 2, 1), [leaf([2, 3, 7, 8], 1)])
g.case_grad("avg_k3s2p1_nopad", lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
            [leaf([2, 3, 7, 8], 2)])
g.case_grad("avg_ceil", lambda x: F.avg_pool2d(x, (3, 2), (2, 3), (1, 1), ceil_mode=True),
            [leaf([1, 2, 8, 9], 3)])
g.case_grad("avg_ceil_nopad",
            lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False),
            [leaf([1, 2, 6, 6], 4)])
g.case_grad("max_k3s2p1", lambda x: F.max_pool2d(x, 3, 2, 1), [leaf([2, 3, 7, 8], 5)])
g.case_grad("max_k2", lambda x: F.max_pool2d(x, 2), [leaf([1, 2, 6, 7], 6)])
g.case_grad("max_ceil", lambda x: F.max_pool2d(x, 3, 2, 1, ceil_mode=True), [leaf([1, 2, 6, 6], 7)])
g.case_grad("adaptive_5x3", lambda x: F.adaptive_avg_pool2d(x, (5, 3)), [leaf([2, 3, 7, 8], 8)])
g.case_grad("adaptive_1", lambda x: F.adaptive_avg_pool2d(x, 1), [leaf([2, 3, 5, 4], 9)])
g.case_grad("adaptive_up", lambda x: F.adaptive_avg_pool2d(x, (6, 7)), [leaf([1, 2, 4, 5], 10)])

# interpolate: every mode x align_corners x up/down, by size and by scale.
seed = 100
for mode in ["nearest", "bilinear", "bicubic"]:
    for ac in ([None] if mode == "nearest" else [False, True]):
        tag = mode + ("" if ac is None else ("_ac" if ac else "_noac"))
        cases = [("up_size", [1, 2, 5, 7], dict(size=(9, 16))),
                 ("down_size", [1, 2, 9, 11], dict(size=(4, 6))),
                 ("up_scale", [1, 2, 5, 7], dict(scale_factor=(2.0, 1.7))),
                 ("down_scale", [1, 2, 9, 11], dict(scale_factor=(0.6, 0.45))),
                 ("scale3", [1, 1, 4, 5], dict(scale_factor=3.0)),
                 ("odd_scale", [1, 1, 5, 6], dict(scale_factor=(1.1, 0.7)))]
        for name, shape, kw in cases:
            seed += 1
            g.case_grad(f"{tag}_{name}",
                        lambda x, kw=kw, mode=mode, ac=ac: F.interpolate(x, mode=mode, align_corners=ac, **kw),
                        [leaf(shape, seed)])

# The EfficientViT upsample: bicubic x2, align_corners=False, of a [1,2,5,7] tensor (f64, f32).
g.case_grad("bicubic_x2", lambda x: F.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False),
            [leaf([1, 2, 5, 7], 200)])
g.case_grad("bicubic_x2_f32",
            lambda x: F.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False),
            [leaf([1, 2, 5, 7], 201, dtype=torch.float32)])
g.case_grad("bilinear_f32",
            lambda x: F.interpolate(x, size=(13, 10), mode="bilinear", align_corners=False),
            [leaf([2, 3, 6, 7], 202, dtype=torch.float32)])
g.case_grad("nearest_f32", lambda x: F.interpolate(x, scale_factor=(1.5, 0.75), mode="nearest"),
            [leaf([1, 3, 6, 8], 203, dtype=torch.float32)])
g.write()

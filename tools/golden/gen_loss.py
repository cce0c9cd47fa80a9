"""Goldens for ops/loss.h and ops/softmax.h: cross_entropy (class indices with weights,
ignore_index, label smoothing, spatial targets; probability targets), BCE with logits and
pos_weight, mse / l1 / smooth_l1, softmax / log_softmax and scaled dot-product attention.

Run: /usr/bin/python3 tools/golden/gen_loss.py
Inputs are stored as x0, x1, ... in the order the C++ test passes them; options that are not
tensors are fixed per case name (see tests/test_loss.cpp and tests/test_softmax.cpp).
"""
import torch
import torch.nn.functional as F

from common import Golden, leaf


def targets(shape, C, seed, ignore_frac=0.0):
    g = torch.Generator().manual_seed(seed)
    t = torch.randint(0, C, shape, generator=g)
    if ignore_frac > 0:
        drop = torch.rand(shape, generator=g) < ignore_frac
        t[drop] = -100
    return t


def probs(shape, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(torch.randn(shape, generator=g, dtype=torch.float64) * 2, dim=1)


def main():
    g = Golden("loss")
    C = 7
    wC = torch.rand(C, generator=torch.Generator().manual_seed(99), dtype=torch.float64) + 0.2

    def ce(**kw):
        return lambda x, t, *w: F.cross_entropy(x, t, weight=(w[0] if w else None), **kw)

    x = lambda seed, shape=(6, C): leaf(shape, seed, -3.0, 3.0)
    t6 = targets((6,), C, 1)
    t6i = targets((6,), C, 2, ignore_frac=0.4)
    # --- class indices, [N, C]
    g.case_grad("ce_mean", ce(), [x(10), t6])
    g.case_grad("ce_sum", ce(reduction="sum"), [x(11), t6])
    g.case_grad("ce_none", ce(reduction="none"), [x(12), t6])
    g.case_grad("ce_weight_mean", ce(), [x(13), t6, wC])
    g.case_grad("ce_ignore_mean", ce(), [x(14), t6i])
    g.case_grad("ce_ignore_weight_mean", ce(), [x(15), t6i, wC])
    g.case_grad("ce_ignore_weight_sum", ce(reduction="sum"), [x(16), t6i, wC])
    g.case_grad("ce_ignore_none", ce(reduction="none"), [x(17), t6i, wC])
    g.case_grad("ce_ignore7_mean", ce(ignore_index=3), [x(18), t6])
    # label smoothing (0.1 / 0.2), with and without weight, with ignored targets
    g.case_grad("ce_ls_mean", ce(label_smoothing=0.1), [x(19), t6i])
    g.case_grad("ce_ls_sum", ce(label_smoothing=0.1, reduction="sum"), [x(20), t6i])
    g.case_grad("ce_ls_none", ce(label_smoothing=0.1, reduction="none"), [x(21), t6i])
    g.case_grad("ce_ls_weight_mean", ce(label_smoothing=0.2), [x(22), t6i, wC])
    g.case_grad("ce_ls_weight_none", ce(label_smoothing=0.2, reduction="none"), [x(23), t6i, wC])
    # --- spatial [N, C, H, W] with [N, H, W] targets
    ts = targets((2, 3, 4), C, 3, ignore_frac=0.25)
    xs = lambda seed: leaf((2, C, 3, 4), seed, -3.0, 3.0)
    g.case_grad("ce_sp_mean", ce(), [xs(30), ts])
    g.case_grad("ce_sp_weight_mean", ce(), [xs(31), ts, wC])
    g.case_grad("ce_sp_none", ce(reduction="none"), [xs(32), ts, wC])
    g.case_grad("ce_sp_ls_weight_mean", ce(label_smoothing=0.1), [xs(33), ts, wC])
    g.case_grad("ce_sp_ls_mean", ce(label_smoothing=0.1), [xs(34), ts])
    # --- probability targets (soft labels); the target is differentiable too
    def soft(seed, shape=(6, C)):
        return probs(shape, seed).requires_grad_(True)
    g.case_grad("ce_soft_mean", ce(), [x(40), soft(41)])
    g.case_grad("ce_soft_sum", ce(reduction="sum"), [x(42), soft(43)])
    g.case_grad("ce_soft_none", ce(reduction="none"), [x(44), soft(45)])
    g.case_grad("ce_soft_ls_weight_mean", ce(label_smoothing=0.1), [x(46), soft(47), wC])
    g.case_grad("ce_soft_sp_mean", ce(), [xs(48), soft(49, (2, C, 3, 4))])
    # --- BCE with logits: large logits test the stable form
    xb = lambda seed: leaf((4, 5), seed, -30.0, 30.0)
    tb = lambda seed: leaf((4, 5), seed, 0.0, 1.0)
    pw = leaf((5,), 52, 0.5, 3.0)
    for red in ("mean", "sum", "none"):
        g.case_grad(f"bce_{red}", lambda a, b, red=red: F.binary_cross_entropy_with_logits(a, b, reduction=red),
                    [xb(50), tb(51)])
        g.case_grad(f"bce_pw_{red}",
                    lambda a, b, p, red=red: F.binary_cross_entropy_with_logits(a, b, pos_weight=p, reduction=red),
                    [xb(53), tb(54), pw.detach().clone()])
    # --- regression losses
    xr = lambda seed: leaf((3, 4, 5), seed, -2.0, 2.0)
    for red in ("mean", "sum", "none"):
        g.case_grad(f"mse_{red}", lambda a, b, red=red: F.mse_loss(a, b, reduction=red), [xr(60), xr(61)])
        g.case_grad(f"l1_{red}", lambda a, b, red=red: F.l1_loss(a, b, reduction=red), [xr(62), xr(63)])
        g.case_grad(f"sl1_{red}", lambda a, b, red=red: F.smooth_l1_loss(a, b, reduction=red, beta=1.0),
                    [xr(64), xr(65)])
        g.case_grad(f"sl1b05_{red}", lambda a, b, red=red: F.smooth_l1_loss(a, b, reduction=red, beta=0.5),
                    [xr(66), xr(67)])
    g.write()

    s = Golden("softmax")
    s.case_grad("softmax_d1", lambda a: torch.softmax(a, 1), [leaf((3, 4, 5), 1, -5, 5)])
    s.case_grad("softmax_dlast", lambda a: torch.softmax(a, -1), [leaf((3, 4, 70), 2, -40, 40)])
    s.case_grad("softmax_d0", lambda a: torch.softmax(a, 0), [leaf((6, 3, 2), 3, -5, 5)])
    s.case_grad("log_softmax_d1", lambda a: torch.log_softmax(a, 1), [leaf((3, 4, 5), 4, -5, 5)])
    s.case_grad("log_softmax_dlast", lambda a: torch.log_softmax(a, -1), [leaf((3, 70), 5, -40, 40)])
    s.case_grad("softmax_f32", lambda a: torch.softmax(a, 1),
                [leaf((4, 100, 3), 6, -5, 5, dtype=torch.float32)])

    def sdpa(q, k, v, scale=None):
        sc = q.shape[-1] ** -0.5 if scale is None else scale
        return torch.softmax(q @ k.transpose(-1, -2) * sc, dim=-1) @ v
    s.case_grad("sdpa", sdpa, [leaf((2, 2, 5, 4), 10, -2, 2), leaf((2, 2, 6, 4), 11, -2, 2),
                               leaf((2, 2, 6, 3), 12)])
    s.case_grad("sdpa_scale03", lambda q, k, v: sdpa(q, k, v, 0.3),
                [leaf((1, 3, 20, 8), 13, -2, 2), leaf((1, 3, 7, 8), 14, -2, 2), leaf((1, 3, 7, 8), 15)])
    s.case_grad("sdpa_f32", sdpa, [leaf((1, 2, 33, 16), 16, -2, 2, dtype=torch.float32),
                                   leaf((1, 2, 40, 16), 17, -2, 2, dtype=torch.float32),
                                   leaf((1, 2, 40, 16), 18, dtype=torch.float32)])
    s.write()


if __name__ == "__main__":
    main()

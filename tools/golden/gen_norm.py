"""Golden values for batch_norm, layer_norm and layer_norm2d (tests/test_norm.cpp).
Run: /usr/bin/python3 tools/golden/gen_norm.py"""
import torch
import torch.nn.functional as F

from common import Golden, leaf

g = Golden("norm")
D = torch.float64

# batch_norm, training, affine, running stats: two training calls; the second is recorded with
# gradients, the running stats are recorded before the first and after the second call.
x_first = leaf([3, 4, 3, 3], 1, -2.0, 3.0).detach()
rm = leaf([4], 2, -0.5, 0.5).detach()
rv = leaf([4], 3, 0.5, 1.5).detach()
g.add("bn_train", "rm0", rm)
g.add("bn_train", "rv0", rv)
g.add("bn_train", "x_first", x_first)
F.batch_norm(x_first, rm, rv, None, None, training=True, momentum=0.1, eps=1e-5)
g.case_grad("bn_train",
            lambda x, w, b: F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.1, eps=1e-5),
            [leaf([3, 4, 3, 3], 4, -1.0, 2.0), leaf([4], 5, 0.5, 1.5), leaf([4], 6)])
g.add("bn_train", "rm", rm)
g.add("bn_train", "rv", rv)

# batch_norm, training, no affine, no running stats, 2-D input [N, C], eps 1e-3.
g.case_grad("bn_train_plain", lambda x: F.batch_norm(x, None, None, training=True, eps=1e-3),
            [leaf([6, 5], 7, -1.0, 1.0)])

# batch_norm, eval mode with running stats and affine.
rm_e = leaf([4], 8, -0.5, 0.5).detach()
rv_e = leaf([4], 9, 0.5, 1.5).detach()
g.add("bn_eval", "rm", rm_e)
g.add("bn_eval", "rv", rv_e)
g.case_grad("bn_eval", lambda x, w, b: F.batch_norm(x, rm_e, rv_e, w, b, training=False, eps=1e-5),
            [leaf([3, 4, 3, 3], 10), leaf([4], 11, 0.5, 1.5), leaf([4], 12)])

# batch_norm f32, training, a 5-D input with a large mean (cancellation check).
rm32 = torch.zeros(3, dtype=torch.float32)
rv32 = torch.ones(3, dtype=torch.float32)
g.add("bn_f32", "rm0", rm32)
g.add("bn_f32", "rv0", rv32)
g.case_grad("bn_f32", lambda x, w, b: F.batch_norm(x, rm32, rv32, w, b, training=True, momentum=0.2),
            [leaf([2, 3, 2, 3, 4], 13, 99.0, 101.0, torch.float32),
             leaf([3], 14, dtype=torch.float32), leaf([3], 15, dtype=torch.float32)])
g.add("bn_f32", "rm", rm32)
g.add("bn_f32", "rv", rv32)

# layer_norm over the last 1 and 2 dims.
g.case_grad("ln1", lambda x, w, b: F.layer_norm(x, [5], w, b, eps=1e-5),
            [leaf([2, 3, 5], 16), leaf([5], 17, 0.5, 1.5), leaf([5], 18)])
g.case_grad("ln2", lambda x, w, b: F.layer_norm(x, [3, 4], w, b, eps=1e-6),
            [leaf([2, 3, 4], 19), leaf([3, 4], 20, 0.5, 1.5), leaf([3, 4], 21)])
g.case_grad("ln_plain", lambda x: F.layer_norm(x, [6], None, None, eps=1e-5),
            [leaf([4, 6], 22)])


# layer_norm2d (EfficientViT's LayerNorm2d): per-pixel over C, biased variance.
def ln2d(x, w, b, eps):
    out = x - x.mean(dim=1, keepdim=True)
    out = out / torch.sqrt(out.square().mean(dim=1, keepdim=True) + eps)
    return out * w.view(1, -1, 1, 1) + b.view(1, -1, 1, 1)


g.case_grad("ln2d", lambda x, w, b: ln2d(x, w, b, 1e-6),
            [leaf([2, 5, 3, 4], 23), leaf([5], 24, 0.5, 1.5), leaf([5], 25)])
g.case_grad("ln2d_f32", lambda x, w, b: ln2d(x, w, b, 1e-5),
            [leaf([2, 7, 17, 19], 26, dtype=torch.float32), leaf([7], 27, dtype=torch.float32),
             leaf([7], 28, dtype=torch.float32)])
g.write()

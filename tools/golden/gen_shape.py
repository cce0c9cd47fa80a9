"""Golden values for cat, split, split_with_sizes, chunk, pad, pixel_shuffle/unshuffle.
Run: /usr/bin/python3 tools/golden/gen_shape.py  -> tests/golden/shape.safetensors"""
import torch
import torch.nn.functional as F

from common import Golden, leaf

g = Golden("shape")

g.case_grad("cat_dim0", lambda a, b: torch.cat([a, b], 0),
            [leaf([2, 3, 4], seed=1), leaf([3, 3, 4], seed=2)])
g.case_grad("cat_dim1", lambda a, b, c: torch.cat([a, b, c], 1),
            [leaf([2, 3, 4], seed=3), leaf([2, 1, 4], seed=4), leaf([2, 2, 4], seed=5)])
g.case_grad("cat_neg1_f32", lambda a, b: torch.cat([a, b], -1),
            [leaf([2, 3], seed=6, dtype=torch.float32), leaf([2, 5], seed=7, dtype=torch.float32)])


def pieces_case(name, x, make):
    """Stores every piece as '<name>.p<i>' and, for the gradients, y = cat of piece i scaled by
    (i + 1) and flattened, so a wrong piece boundary changes both y and the gradient."""
    ps = make(x.detach())
    for i, p in enumerate(ps):
        g.add(name, f"p{i}", p)
    g.case_grad(name, lambda t: torch.cat([(p * (i + 1)).reshape(-1)
                                           for i, p in enumerate(make(t))]), [x])


pieces_case("split_3_dim1", leaf([2, 8, 3], seed=8), lambda t: torch.split(t, 3, 1))
pieces_case("split_2_dim_neg1", leaf([3, 2, 4], seed=9), lambda t: torch.split(t, 2, -1))
pieces_case("split_sizes_dim0", leaf([6, 2, 3], seed=10),
            lambda t: torch.split(t, [1, 3, 2], 0))
pieces_case("chunk_3_dim1", leaf([2, 7, 3], seed=11), lambda t: torch.chunk(t, 3, 1))
pieces_case("chunk_4_of_5", leaf([5, 2], seed=12), lambda t: torch.chunk(t, 4, 0))

g.case_grad("pad_pos", lambda t: F.pad(t, (1, 2, 0, 3), value=0.5), [leaf([2, 3, 4, 5], seed=13)])
g.case_grad("pad_neg", lambda t: F.pad(t, (-1, 2, 1, -2)), [leaf([2, 3, 4, 5], seed=14)])
g.case_grad("pad_3dims_mixed", lambda t: F.pad(t, (1, -1, -1, 0, 2, 1), value=-3.0),
            [leaf([2, 3, 4, 5], seed=15)])
g.case_grad("pad_f32", lambda t: F.pad(t, (2, 2)), [leaf([3, 4], seed=16, dtype=torch.float32)])

g.case_grad("pixel_shuffle_r2", lambda t: F.pixel_shuffle(t, 2), [leaf([2, 8, 3, 4], seed=17)])
g.case_grad("pixel_shuffle_r3", lambda t: F.pixel_shuffle(t, 3), [leaf([1, 18, 2, 3], seed=18)])
g.case_grad("pixel_unshuffle_r2", lambda t: F.pixel_unshuffle(t, 2), [leaf([2, 2, 6, 4], seed=19)])
g.case_grad("pixel_unshuffle_r3", lambda t: F.pixel_unshuffle(t, 3), [leaf([1, 2, 6, 9], seed=20)])

g.write()

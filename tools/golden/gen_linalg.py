"""Golden values for matmul and linear (f64). Run: /usr/bin/python3 tools/golden/gen_linalg.py"""
import torch

from common import Golden, leaf

g = Golden("linalg")
mm = torch.matmul
g.case_grad("mm_2d", mm, [leaf((3, 4), 1), leaf((4, 5), 2)])
g.case_grad("dot_1d", mm, [leaf((4,), 3), leaf((4,), 4)])
g.case_grad("vec_mat", mm, [leaf((4,), 5), leaf((2, 4, 3), 6)])
g.case_grad("mat_vec", mm, [leaf((2, 3, 4), 7), leaf((4,), 8)])
g.case_grad("batched_fold", mm, [leaf((2, 3, 4), 9), leaf((4, 5), 10)])
g.case_grad("batched_broadcast", mm, [leaf((2, 1, 3, 4), 11), leaf((3, 4, 2), 12)])
g.case_grad("mat_batched", mm, [leaf((3, 4), 13), leaf((2, 4, 5), 14)])
g.case_grad("linear_bias", torch.nn.functional.linear, [leaf((2, 3, 4), 15), leaf((5, 4), 16), leaf((5,), 17)])
g.case_grad("linear_nobias", lambda x, w: torch.nn.functional.linear(x, w), [leaf((3, 4), 18), leaf((6, 4), 19)])
g.write()

"""Golden values for var, max/min (values + indices), global max/min and argmax.
Run: /usr/bin/python3 tools/golden/gen_reduce.py  -> tests/golden/reduce.safetensors"""
import torch

from common import Golden, leaf

g = Golden("reduce")

x = leaf([2, 3, 4, 5], seed=1)
g.case_grad("var_unbiased_023", lambda t: torch.var(t, dim=(0, 2, 3), unbiased=True), [x])
x = leaf([2, 3, 4, 5], seed=1)
g.case_grad("var_biased_023", lambda t: torch.var(t, dim=(0, 2, 3), unbiased=False), [x])
x = leaf([2, 3, 4, 5], seed=2)
g.case_grad("var_keepdim_1_neg1",
            lambda t: torch.var(t, dim=(1, -1), unbiased=True, keepdim=True), [x])
x = leaf([3, 4, 5], seed=3)
g.case_grad("var_all", lambda t: torch.var(t, unbiased=True), [x])
x = leaf([4, 6], seed=4, dtype=torch.float32)
g.case_grad("var_f32_dim0", lambda t: torch.var(t, dim=0, unbiased=False), [x])

# Random doubles: no ties, so first-occurrence and PyTorch's choice agree.
for name, fn, dim, keep in [("max_dim1", torch.max, 1, False), ("min_dim1", torch.min, 1, False),
                            ("max_dim_neg1_keep", torch.max, -1, True),
                            ("min_dim0_keep", torch.min, 0, True)]:
    x = leaf([2, 3, 4, 5], seed=10)
    g.case_grad(name, lambda t, fn=fn, dim=dim, keep=keep: fn(t, dim, keepdim=keep).values, [x])
    g.add(name, "indices", fn(x.detach(), dim, keepdim=keep).indices)

x = leaf([3, 4, 5], seed=11)
g.case_grad("max_all", lambda t: torch.max(t), [x])
x = leaf([3, 4, 5], seed=12)
g.case_grad("min_all", lambda t: torch.min(t), [x])

x = leaf([2, 3, 4, 5], seed=13).detach()
g.add("argmax_dim2", "x0", x)
g.add("argmax_dim2", "y", torch.argmax(x, 2))
g.add("argmax_dim0_keep", "x0", x)
g.add("argmax_dim0_keep", "y", torch.argmax(x, 0, keepdim=True))

g.write()

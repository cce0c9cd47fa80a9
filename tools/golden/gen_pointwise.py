"""Golden values for the pointwise family (arithmetic, math, comparisons, activations).
Run: /usr/bin/python3 tools/golden/gen_pointwise.py"""
import torch
import torch.nn.functional as F

from common import Golden, leaf

g = Golden("pointwise")

a = leaf([3, 4], 1)
b = leaf([4], 2)
g.case_grad("add_broadcast", torch.add, [a, b])
g.case_grad("sub_broadcast", torch.sub, [leaf([3, 4], 3), leaf([3, 1], 4)])
g.case_grad("mul_broadcast", torch.mul, [leaf([2, 3, 4], 5), leaf([3, 1], 6)])
g.case_grad("div", torch.div, [leaf([3, 4], 7), leaf([3, 4], 8, 0.5, 2.0)])
g.case_grad("neg", torch.neg, [leaf([5], 9)])
g.case_grad("exp", torch.exp, [leaf([3, 4], 10)])
g.case_grad("log", torch.log, [leaf([3, 4], 11, 0.1, 3.0)])
g.case_grad("sqrt", torch.sqrt, [leaf([3, 4], 12, 0.1, 3.0)])
g.case_grad("rsqrt", torch.rsqrt, [leaf([3, 4], 13, 0.1, 3.0)])
g.case_grad("abs", torch.abs, [leaf([3, 4], 14)])
g.case_grad("pow3", lambda x: torch.pow(x, 3.0), [leaf([3, 4], 15)])
g.case_grad("pow_half", lambda x: torch.pow(x, 0.5), [leaf([3, 4], 16, 0.1, 2.0)])
g.case_grad("clamp", lambda x: torch.clamp(x, -0.5, 0.5), [leaf([4, 5], 17)])
g.case_grad("maximum", torch.maximum, [leaf([3, 4], 18), leaf([4], 19)])
g.case_grad("minimum", torch.minimum, [leaf([3, 4], 20), leaf([3, 1], 21)])

x = leaf([4, 6], 22, -5.0, 5.0)
g.case_grad("relu", F.relu, [x])
g.case_grad("relu6", F.relu6, [leaf([4, 6], 23, -3.0, 9.0)])
g.case_grad("hardswish", F.hardswish, [leaf([4, 6], 24, -5.0, 5.0)])
g.case_grad("gelu", F.gelu, [leaf([4, 6], 25, -4.0, 4.0)])
g.case_grad("gelu_tanh", lambda t: F.gelu(t, approximate="tanh"), [leaf([4, 6], 26, -4.0, 4.0)])
g.case_grad("silu", F.silu, [leaf([4, 6], 27, -4.0, 4.0)])
g.case_grad("sigmoid", torch.sigmoid, [leaf([4, 6], 28, -4.0, 4.0)])
g.case_grad("tanh", torch.tanh, [leaf([4, 6], 29, -3.0, 3.0)])

cond = leaf([3, 4], 30).detach() > 0
wa, wb = leaf([3, 4], 31), leaf([4], 32)
y = torch.where(cond, wa, wb)
w = torch.randn(y.shape, generator=torch.Generator().manual_seed(0), dtype=y.dtype)
(y * w).sum().backward()
g.add("where", "cond", cond)
g.add("where", "x0", wa)
g.add("where", "x1", wb)
g.add("where", "w", w)
g.add("where", "y", y)
g.add("where", "grad0", wa.grad)
g.add("where", "grad1", wb.grad)

p, q = leaf([3, 4], 33).detach(), leaf([4], 34).detach()
q[1] = p[0, 1]
g.add("compare", "a", p)
g.add("compare", "b", q)
for name, fn in [("eq", torch.eq), ("ne", torch.ne), ("lt", torch.lt), ("le", torch.le),
                 ("gt", torch.gt), ("ge", torch.ge)]:
    g.add("compare", name, fn(p, q))

g.write()

"""Golden values for view ops and sum/mean (values and gradients of sum(y * w)).
Run: /usr/bin/python3 tools/golden/gen_views.py"""
import torch

from common import Golden, leaf

g = Golden("views")
x = lambda seed: leaf([2, 3, 4], seed)  # noqa: E731
g.case_grad("reshape", lambda t: t.reshape(4, -1), [x(1)])
g.case_grad("view", lambda t: t.view(6, 4), [x(2)])
g.case_grad("permute", lambda t: t.permute(2, 0, 1), [x(3)])
g.case_grad("transpose", lambda t: t.transpose(0, 2), [x(4)])
g.case_grad("slice", lambda t: t[:, 1:3, ::2], [x(5)])
g.case_grad("select", lambda t: t.select(1, -1), [x(6)])
g.case_grad("expand", lambda t: t.expand(5, 3, 4), [leaf([3, 1], 7)])
g.case_grad("squeeze", lambda t: t.squeeze(1), [leaf([2, 1, 4], 8)])
g.case_grad("unsqueeze", lambda t: t.unsqueeze(-1), [x(9)])
g.case_grad("flatten", lambda t: t.flatten(1), [x(10)])
g.case_grad("sum_all", lambda t: t.sum(), [x(11)])
g.case_grad("sum_dims", lambda t: t.sum(dim=(0, 2), keepdim=True), [x(12)])
g.case_grad("sum_neg", lambda t: t.sum(dim=-1), [x(13)])
g.case_grad("mean_all", lambda t: t.mean(), [x(14)])
g.case_grad("mean_dims", lambda t: t.mean(dim=(1,)), [x(15)])
g.case_grad("clone_permuted", lambda t: t.permute(1, 0, 2).contiguous(), [x(16)])
g.case_grad("to_f32_and_back", lambda t: t.float().double() * 2, [x(17)])
g.write()

"""Golden values for optim: five torch.optim.AdamW steps on two parameters with fixed gradients.
Run: /usr/bin/python3 tools/golden/gen_optim.py"""
import torch

from common import Golden

g = Golden("optim")
gen = torch.Generator().manual_seed(0)
w = torch.randn(4, 3, generator=gen, dtype=torch.float64).requires_grad_()
b = torch.randn(3, generator=gen, dtype=torch.float64).requires_grad_()
g.add("adamw", "w0", w)
g.add("adamw", "b0", b)
opt = torch.optim.AdamW([{"params": [w], "weight_decay": 0.05}, {"params": [b], "weight_decay": 0.0}],
                        lr=0.01, betas=(0.9, 0.98), eps=1e-8)
for step in range(5):
    gw = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    gb = torch.randn(3, generator=gen, dtype=torch.float64)
    g.add("adamw", f"gw{step}", gw)
    g.add("adamw", f"gb{step}", gb)
    w.grad, b.grad = gw.clone(), gb.clone()
    opt.step()
    g.add("adamw", f"w{step + 1}", w)
    g.add("adamw", f"b{step + 1}", b)
g.add("adamw", "exp_avg_sq_w", opt.state[w]["exp_avg_sq"])
g.write()

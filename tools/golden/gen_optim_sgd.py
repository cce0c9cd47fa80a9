"""Golden values for optim/sgd, optim/clip, optim/schedule and optim/ema.
Run: /usr/bin/python3 tools/golden/gen_optim_sgd.py  (writes tests/golden/optim_sgd.safetensors)

- sgd_<case>: torch.optim.SGD over five steps on two parameters with fixed gradients; parameter
  "b" has no gradient at step 0 (its momentum buffer is created one step later, as torch does).
- clip_norm_* / clip_value: torch.nn.utils.clip_grad_norm_ (norm_type 2) / clip_grad_value_.
- sched_*: the recipe's warmup + cosine formula computed in plain Python, and the same schedule
  built from torch's own schedulers (LinearLR warmup then CosineAnnealingLR via SequentialLR);
  the script checks that both agree before writing.
- ema: the reference EMA rule over a Conv2d + BatchNorm2d model's float state for a sequence of
  model states and global steps.
"""
import math

import torch

from common import Golden

g = Golden("optim_sgd")

# ---------------------------------------------------------------- SGD
SGD_CASES = {
    "plain": dict(lr=0.1),
    "wd": dict(lr=0.05, weight_decay=0.01),
    "momentum": dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=1e-3),
    "nesterov": dict(lr=0.02, momentum=0.8, nesterov=True, weight_decay=5e-4),
    "maximize": dict(lr=0.03, momentum=0.5, maximize=True),
}
for dtype, suffix in ((torch.float64, ""), (torch.float32, "_f32")):
    for name, kw in SGD_CASES.items():
        case = f"sgd_{name}{suffix}"
        gen = torch.Generator().manual_seed(1)
        w = torch.randn(4, 3, generator=gen, dtype=dtype).requires_grad_()
        b = torch.randn(3, generator=gen, dtype=dtype).requires_grad_()
        g.add(case, "w0", w)
        g.add(case, "b0", b)
        # Two groups: b uses half the group lr and no weight decay.
        kw_b = dict(kw)
        kw_b["lr"] = kw["lr"] * 0.5
        kw_b["weight_decay"] = 0.0
        opt = torch.optim.SGD([{"params": [w]}, {"params": [b], "lr": kw_b["lr"], "weight_decay": 0.0}], **kw)
        for step in range(5):
            gw = torch.randn(4, 3, generator=gen, dtype=dtype)
            gb = torch.randn(3, generator=gen, dtype=dtype)
            g.add(case, f"gw{step}", gw)
            g.add(case, f"gb{step}", gb)
            w.grad = gw.clone()
            b.grad = None if step == 0 else gb.clone()
            opt.step()
            g.add(case, f"w{step + 1}", w)
            g.add(case, f"b{step + 1}", b)
        if "momentum" in kw:
            g.add(case, "buf_w", opt.state[w]["momentum_buffer"])
            g.add(case, "buf_b", opt.state[b]["momentum_buffer"])

# ---------------------------------------------------------------- clipping
for name, max_norm in (("clip_norm_small", 0.5), ("clip_norm_large", 1e3)):
    gen = torch.Generator().manual_seed(2)
    ps = [torch.zeros(s, dtype=torch.float64, requires_grad=True) for s in ((5, 4), (7,), (2, 3, 3))]
    for i, p in enumerate(ps):
        p.grad = torch.randn(p.shape, generator=gen, dtype=torch.float64) * (i + 1)
        g.add(name, f"g{i}", p.grad)
    total = torch.nn.utils.clip_grad_norm_(ps, max_norm, norm_type=2.0)
    g.add(name, "total", total.reshape(()))
    for i, p in enumerate(ps):
        g.add(name, f"out{i}", p.grad)

gen = torch.Generator().manual_seed(3)
ps = [torch.zeros(s, dtype=torch.float64, requires_grad=True) for s in ((6, 5), (9,))]
for i, p in enumerate(ps):
    p.grad = torch.randn(p.shape, generator=gen, dtype=torch.float64) * 3
    g.add("clip_value", f"g{i}", p.grad)
torch.nn.utils.clip_grad_value_(ps, 2.0)
for i, p in enumerate(ps):
    g.add("clip_value", f"out{i}", p.grad)


# ---------------------------------------------------------------- schedule
def spec_lr(step, base_lr, warmup, decay, warmup_lr=0.0, min_lr=0.0):
    """The recipe: linear warmup lr*(step+1)/W, then cosine 0.5*lr*(1+cos(pi*t/T)) to the floor."""
    if step < warmup:
        return warmup_lr + (base_lr - warmup_lr) * (step + 1) / warmup
    t = step - warmup
    if t >= decay:
        return min_lr
    return min_lr + 0.5 * (base_lr - min_lr) * (1 + math.cos(math.pi * t / decay))


def torch_lrs(base_lr, warmup, decay, min_lr, n):
    """The same schedule from torch's schedulers (warmup_lr = 0): LinearLR ramps the factor
    1/W .. 1 over W-1 steps, i.e. lr*(s+1)/W; CosineAnnealingLR(T_max=T, eta_min) follows."""
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=base_lr)
    warm = torch.optim.lr_scheduler.LinearLR(opt, start_factor=1.0 / warmup, end_factor=1.0, total_iters=warmup - 1)
    cos = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=decay, eta_min=min_lr)
    sched = torch.optim.lr_scheduler.SequentialLR(opt, [warm, cos], milestones=[warmup])
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


SCHED = {
    "sched_spec": dict(base_lr=2e-3, warmup=20, decay=300, min_lr=0.0),
    "sched_floor": dict(base_lr=0.1, warmup=7, decay=50, min_lr=1e-3),
}
for case, c in SCHED.items():
    n = c["warmup"] + c["decay"]
    ours = [spec_lr(s, c["base_lr"], c["warmup"], c["decay"], 0.0, c["min_lr"]) for s in range(n + 5)]
    theirs = torch_lrs(c["base_lr"], c["warmup"], c["decay"], c["min_lr"], n)
    worst = max(abs(a - b) / c["base_lr"] for a, b in zip(ours, theirs))
    assert worst < 1e-9, (case, worst)
    g.add(case, "lr", torch.tensor(ours, dtype=torch.float64))
    g.add(case, "torch_lr", torch.tensor(theirs, dtype=torch.float64))
    g.add(case, "config", torch.tensor([c["base_lr"], c["warmup"], c["decay"], c["min_lr"]], dtype=torch.float64))
# warmup_lr != 0 (formula only; torch has no scheduler with this exact start).
g.add("sched_warmup_lr", "lr", torch.tensor([spec_lr(s, 0.5, 5, 10, 0.05, 0.0) for s in range(20)], dtype=torch.float64))

# ---------------------------------------------------------------- EMA
torch.manual_seed(4)
model = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3))
DECAY, WARM = 0.9998, 2000.0
shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}
for k, v in model.state_dict().items():
    g.add("ema", f"init.{k}", v)
STEPS = [1, 2, 3, 100, 2000, 20000]
for i, step in enumerate(STEPS):
    # A new model state: parameters and BN running stats move, num_batches_tracked counts.
    with torch.no_grad():
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                v.add_(torch.randn(v.shape, dtype=v.dtype) * 0.1)
            else:
                v.add_(1)
    for k, v in model.state_dict().items():
        g.add("ema", f"model{i}.{k}", v)
    d = DECAY * (1 - math.exp(-step / WARM))
    for k, v in model.state_dict().items():
        if v.dtype.is_floating_point:
            shadow[k] -= (1.0 - d) * (shadow[k] - v)
    for k, v in shadow.items():
        if v.dtype.is_floating_point:
            g.add("ema", f"shadow{i}.{k}", v)
g.add("ema", "steps", torch.tensor(STEPS, dtype=torch.int64))
g.write()

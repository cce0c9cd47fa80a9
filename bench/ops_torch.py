"""PyTorch twin of bench_ops: the same ops, shapes, iteration counts and timing rule.

Prints one JSON line per case: {"op": name, "median_ms": t, "runs": n}. Thread settings are
applied by run_op_bench.sh (OMP_NUM_THREADS, OPENBLAS_NUM_THREADS=1, malloc settings) and here
(torch.set_num_threads). Inputs and the output gradient are fresh random tensors every
iteration, made outside the timed region; each iteration times forward + backward.

    python3 bench/ops_torch.py THREADS [CASE (an exact name, or a substring of names)]
"""
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from op_cases import CASES, WARMUP, RUNS


def relu_linear_attention(q, k, v, eps=1e-15):
    # q, k, v: [B, H, d, N] (channels-first, as EfficientViT's LiteMLA lays them out)
    q = F.relu(q)
    k = F.relu(k)
    v = F.pad(v, (0, 0, 0, 1), mode="constant", value=1.0)  # [B, H, d+1, N]
    vk = torch.matmul(v, k.transpose(-1, -2))  # [B, H, d+1, d]
    out = torch.matmul(vk, q)  # [B, H, d+1, N]
    return out[:, :, :-1] / (out[:, :, -1:] + eps)


def make(case):
    kind, shapes = case["kind"], case["shapes"]
    ins = [torch.randn(s, requires_grad=True) for s in shapes]
    if kind == "conv":
        stride, pad, groups = case["stride"], case["padding"], case["groups"]
        return ins, lambda: F.conv2d(ins[0], ins[1], None, stride, pad, 1, groups)
    if kind == "linear_attention":
        return ins, lambda: relu_linear_attention(*ins)
    if kind == "batch_norm":
        c = shapes[0][1]
        rm, rv = torch.zeros(c), torch.ones(c)
        return ins, lambda: F.batch_norm(ins[0], rm, rv, ins[1], ins[2], True, 0.1, 1e-5)
    if kind == "batch_norm_hardswish":
        c = shapes[0][1]
        rm, rv = torch.zeros(c), torch.ones(c)
        return ins, lambda: F.hardswish(F.batch_norm(ins[0], rm, rv, ins[1], ins[2], True, 0.1, 1e-5))
    if kind == "hardswish":
        return ins, lambda: F.hardswish(ins[0])
    if kind == "matmul":
        return ins, lambda: torch.matmul(ins[0], ins[1])
    raise ValueError(kind)


def main():
    threads = int(sys.argv[1])
    only = sys.argv[2] if len(sys.argv) > 2 else None
    exact = any(c["name"] == only for c in CASES)  # an exact name selects that case alone
    torch.set_num_threads(threads)
    for case in CASES:
        if only and (case["name"] != only if exact else only not in case["name"]):
            continue
        times = []
        for it in range(WARMUP + RUNS):
            ins, fn = make(case)
            with torch.no_grad():  # the gradient's shape, made outside the timed region
                gy = torch.randn_like(fn())
            t0 = time.perf_counter()
            y = fn()
            y.backward(gy)
            t1 = time.perf_counter()
            if it >= WARMUP:
                times.append((t1 - t0) * 1e3)
        print(json.dumps({"op": case["name"], "median_ms": statistics.median(times), "runs": RUNS}),
              flush=True)


if __name__ == "__main__":
    main()

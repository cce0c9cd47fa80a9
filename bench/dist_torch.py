"""PyTorch's side of bench/run_dist_bench.sh: EfficientViT training steps of one global batch, in a
single process (RANKS = 1) or with DistributedDataParallel over the gloo backend on RANKS
processes of this machine, one thread each.

    python3 bench/dist_torch.py RANKS [--model efficientvit-b1] [--batch 16] [--size 224] [--runs 5]
                               [--rank R --init tcp://ADDRESS:PORT]

With --rank this process is that one rank of the job, started by the caller on its own machine
(CABLE=... bench/run_dist_bench.sh starts one per machine), and --init is where the ranks meet.

Each timed step: every rank draws the global batch from a generator of the step (fresh random
inputs), takes its contiguous share, forward, cross-entropy, backward (DDP averages the gradients
in buckets during backward), AdamW. Rank 0 prints one JSON line, as bench_dist does:
{"ranks": W, "batch": B, "size": S, "median_ms": t, "runs": n}.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "reference"))
import efficientvit_ref as ev  # noqa: E402

WARMUP = 2


def run(rank, args, init_method):
    torch.set_num_threads(1)
    ranks = args.ranks
    if ranks > 1:
        dist.init_process_group("gloo", init_method=init_method, rank=rank, world_size=ranks)
    torch.manual_seed(0)
    model = ev.create_model(args.model)
    model.train()
    if ranks > 1:
        model = torch.nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
    share = args.batch // ranks
    times = []
    for it in range(WARMUP + args.runs):
        g = torch.Generator().manual_seed(1000 + it)
        x = torch.randn(args.batch, 3, args.size, args.size, generator=g)
        y = torch.randint(0, 1000, (args.batch,), generator=g)
        x, y = x[rank * share:(rank + 1) * share], y[rank * share:(rank + 1) * share]
        if ranks > 1:
            dist.barrier()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()
        if it >= WARMUP:
            times.append((time.perf_counter() - t0) * 1e3)
    if rank == 0:
        print(json.dumps({"ranks": ranks, "batch": args.batch, "size": args.size,
                          "median_ms": round(statistics.median(times), 1), "runs": args.runs}), flush=True)
    if ranks > 1:
        dist.destroy_process_group()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("ranks", type=int)
    p.add_argument("--model", default="efficientvit-b1")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--rank", type=int, help="run this one rank of the job (with --init)")
    p.add_argument("--init", help="where the ranks meet, tcp://ADDRESS:PORT (with --rank)")
    args = p.parse_args()
    assert args.batch % args.ranks == 0, "the global batch must split evenly over the ranks"
    assert (args.rank is None) == (args.init is None), "--rank and --init go together"
    if args.rank is not None:
        run(args.rank, args, args.init)
        return 0
    with tempfile.TemporaryDirectory() as d:
        init_method = "file://" + os.path.join(d, "init")
        if args.ranks == 1:
            run(0, args, init_method)
        else:
            mp.spawn(run, args=(args, init_method), nprocs=args.ranks)
    return 0


if __name__ == "__main__":
    sys.exit(main())

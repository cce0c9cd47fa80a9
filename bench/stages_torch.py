"""Where a segmentation model's inference goes in PyTorch, part by part: the PyTorch side of
bench/bench_stages.cpp, on the reference model of tools/reference/efficientvit_ref.py.

    python3 bench/stages_torch.py THREADS [CASE (an exact name, or a substring of names)]

Prints one JSON line per part of each case, {"case": "<case> <part>", "median_ms": t, "runs": n},
the parts "stem", "stage1".."stage4", "head" (forward hooks on the backbone's input stem and
stages and on the head) and "total" (the whole pass). Timing rule as bench_stages: eval() under
torch.no_grad(), a fresh random input every pass, WARMUP untimed passes, then the median of RUNS.
Run with OMP_NUM_THREADS=THREADS OPENBLAS_NUM_THREADS=1 (bench/run_stage_bench.sh does).
"""
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "reference"))
import efficientvit_ref as ev  # noqa: E402

WARMUP = 3
RUNS = 20

# (case name, model, H, W): the same names as bench_stages.cpp.
CASES = [
    ("seg-b0 512x1024", "efficientvit-seg-b0-cityscapes", 512, 1024),
    ("seg-b1 512x1024", "efficientvit-seg-b1-cityscapes", 512, 1024),
]


def time_parts(model, h, w):
    """{part: [ms per timed pass]} for one model."""
    times, pass_index = {}, [0]

    def timed(module, part):
        start = {}

        def before(*_):
            start["t"] = time.perf_counter()

        def after(*_):
            if pass_index[0] >= WARMUP:
                times.setdefault(part, []).append((time.perf_counter() - start["t"]) * 1e3)

        module.register_forward_pre_hook(before)
        module.register_forward_hook(after)

    timed(model.backbone.input_stem, "stem")
    for i, stage in enumerate(model.backbone.stages, 1):
        timed(stage, "stage%d" % i)
    timed(model.head, "head")
    with torch.no_grad():
        for it in range(WARMUP + RUNS):
            pass_index[0] = it
            x = torch.randn(1, 3, h, w)
            t0 = time.perf_counter()
            model(x)
            if it >= WARMUP:
                times.setdefault("total", []).append((time.perf_counter() - t0) * 1e3)
    return times


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    torch.set_num_threads(int(sys.argv[1]))
    only = sys.argv[2] if len(sys.argv) > 2 else None
    torch.manual_seed(0)
    exact = any(c[0] == only for c in CASES)
    for name, model_name, h, w in CASES:
        if only and (name != only if exact else only not in name):
            continue
        model = ev.create_model(model_name).eval()
        for part, v in time_parts(model, h, w).items():  # in the order the parts run
            print(json.dumps({"case": f"{name} {part}", "median_ms": round(statistics.median(v), 3), "runs": RUNS}))
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Joins the evit and PyTorch benchmark outputs (JSON lines) into a Markdown table.
Usage: print_table.py EVIT.jsonl TORCH.jsonl THREADS TORCH_VERSION [WHAT IS TIMED]"""
import json
import sys


def load(path):
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return {r.get("op", r.get("case")): r for r in rows}


evit, torch_, threads, version = load(sys.argv[1]), load(sys.argv[2]), sys.argv[3], sys.argv[4]
what = sys.argv[5] if len(sys.argv) > 5 else "forward + backward"
runs = next(iter(evit.values()))["runs"] if evit else 0
print(f"threads: {threads}, PyTorch {version}, median of {runs} runs ({what}, fresh random inputs)")
gemm = next(iter(evit.values())).get("gemm") if evit else None
if gemm:
    print(f"evit's CPU GEMM: {gemm}")
print()
print("| case | evit ms | PyTorch ms | evit / PyTorch | evit peak MiB | PyTorch peak MiB | memory ratio |")
print("|---|---:|---:|---:|---:|---:|---:|")
for name, r in evit.items():
    t = torch_.get(name)
    ratio = f"{r['median_ms'] / t['median_ms']:.2f}" if t else "n/a"
    tms = f"{t['median_ms']:.2f}" if t else "n/a"
    # Peak resident memory over each process's resident memory when the case began.
    em, tm = r.get("peak_mib"), t.get("peak_mib") if t else None
    mem = f"{em / tm:.2f}" if em is not None and tm else "n/a"
    print(f"| {name} | {r['median_ms']:.2f} | {tms} | {ratio} | {em if em is not None else 'n/a'} | "
          f"{tm if tm is not None else 'n/a'} | {mem} |")

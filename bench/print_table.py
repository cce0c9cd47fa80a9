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
# The machine's f32 GEMM peak: the faster side's 2048^3 product (GFLOP/s). Each case's share of it
# uses evit's count of the case's work ("gflop", bench_models.cpp) for both sides.
peak_case = next((k for k in evit if k.startswith("gemm peak")), None)
peak = None
if peak_case and peak_case in torch_:
    flop = evit[peak_case]["gflop"]
    rates = {side: flop / (rows[peak_case]["median_ms"] / 1e3) for side, rows in (("evit", evit), ("PyTorch", torch_))}
    peak = max(rates.values())
    print(f"measured f32 GEMM peak ({peak_case}): {peak:.1f} GFLOP/s "
          f"(evit {rates['evit']:.1f}, PyTorch {rates['PyTorch']:.1f})")


def share(r, row):
    if peak is None or not r or not row.get("gflop"):
        return "n/a"
    return f"{100 * row['gflop'] / (r['median_ms'] / 1e3) / peak:.0f}%"


print()
print("| case | evit ms | PyTorch ms | evit / PyTorch | evit % of peak | PyTorch % of peak | evit peak MiB | "
      "PyTorch peak MiB | memory ratio |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for name, r in evit.items():
    t = torch_.get(name)
    ratio = f"{r['median_ms'] / t['median_ms']:.2f}" if t else "n/a"
    tms = f"{t['median_ms']:.2f}" if t else "n/a"
    # Peak resident memory over each process's resident memory when the case began.
    em, tm = r.get("peak_mib"), t.get("peak_mib") if t else None
    mem = f"{em / tm:.2f}" if em is not None and tm else "n/a"
    print(f"| {name} | {r['median_ms']:.2f} | {tms} | {ratio} | {share(r, r)} | {share(t, r)} | "
          f"{em if em is not None else 'n/a'} | {tm if tm is not None else 'n/a'} | {mem} |")

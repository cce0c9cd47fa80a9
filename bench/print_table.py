"""Joins the evit and PyTorch benchmark outputs (JSON lines) into a Markdown table.
Usage: print_table.py EVIT.jsonl TORCH.jsonl THREADS TORCH_VERSION [WHAT IS TIMED]

A case may appear several times in each file, one line per round (bench/run_model_bench.sh runs
each case's two sides in turn, round after round): its time is then the median over the rounds,
its ratio the median of the rounds' ratios (round i of evit against round i of PyTorch)."""
import json
import statistics
import sys


def load(path):
    """{case: [row of round 1, row of round 2, ...]} in file order."""
    rows = {}
    with open(path) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                rows.setdefault(r.get("op", r.get("case")), []).append(r)
    return rows


def med(rows, key):
    vals = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(vals) if vals else None


evit, torch_, threads, version = load(sys.argv[1]), load(sys.argv[2]), sys.argv[3], sys.argv[4]
what = sys.argv[5] if len(sys.argv) > 5 else "forward + backward"
first = next(iter(evit.values()))[0] if evit else {}
rounds = max((len(v) for v in evit.values()), default=0)
alternation = f", {rounds} rounds alternating the two sides (median over rounds)" if rounds > 1 else ""
print(f"threads: {threads}, PyTorch {version}, median of {first.get('runs', 0)} runs per process"
      f"{alternation} ({what}, fresh random inputs)")
if first.get("gemm"):
    print(f"evit's CPU GEMM: {first['gemm']}")
# The machine's f32 GEMM peak: the faster side's 2048^3 product (GFLOP/s). Each case's share of it
# uses evit's count of the case's work ("gflop", bench_models.cpp) for both sides.
peak_case = next((k for k in evit if k.startswith("gemm peak")), None)
peak = None
if peak_case and peak_case in torch_:
    flop = evit[peak_case][0]["gflop"]
    rates = {side: flop / (med(rows[peak_case], "median_ms") / 1e3) for side, rows in (("evit", evit), ("PyTorch", torch_))}
    peak = max(rates.values())
    print(f"measured f32 GEMM peak ({peak_case}): {peak:.1f} GFLOP/s "
          f"(evit {rates['evit']:.1f}, PyTorch {rates['PyTorch']:.1f})")


def share(ms, gflop):
    if peak is None or ms is None or not gflop:
        return "n/a"
    return f"{100 * gflop / (ms / 1e3) / peak:.0f}%"


def fmt(x, spec):
    return "n/a" if x is None else format(x, spec)


# Op rows carry neither a work count nor a memory figure: those get the four timing columns.
full = any("gflop" in r or "peak_mib" in r for rows in evit.values() for r in rows)
print()
if full:
    print("| case | evit ms | PyTorch ms | evit / PyTorch | evit % of peak | PyTorch % of peak | evit peak MiB | "
          "PyTorch peak MiB | memory ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
else:
    print("| case | evit ms | PyTorch ms | evit / PyTorch |")
    print("|---|---:|---:|---:|")
for name, er in evit.items():
    tr = torch_.get(name, [])
    ems, tms = med(er, "median_ms"), med(tr, "median_ms")
    pairs = list(zip(er, tr))  # round i with round i
    ratio = statistics.median(e["median_ms"] / t["median_ms"] for e, t in pairs) if pairs else None
    # Peak resident memory over each process's resident memory when the case began.
    em, tm = med(er, "peak_mib"), med(tr, "peak_mib")
    mem = em / tm if em is not None and tm else None
    gflop = er[0].get("gflop")
    if not full:
        print(f"| {name} | {ems:.2f} | {fmt(tms, '.2f')} | {fmt(ratio, '.2f')} |")
        continue
    print(f"| {name} | {ems:.2f} | {fmt(tms, '.2f')} | {fmt(ratio, '.2f')} | {share(ems, gflop)} | "
          f"{share(tms, gflop)} | {fmt(em, '.1f')} | {fmt(tm, '.1f')} | {fmt(mem, '.2f')} |")

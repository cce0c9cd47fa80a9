"""Joins the evit and PyTorch benchmark outputs (JSON lines) into a Markdown table."""
import json
import sys


def load(path):
    with open(path) as f:
        return {r["op"]: r for r in map(json.loads, filter(str.strip, f))}


evit, torch_, threads, version = load(sys.argv[1]), load(sys.argv[2]), sys.argv[3], sys.argv[4]
print(f"threads: {threads}, PyTorch {version}, median of {next(iter(evit.values()))['runs']} runs "
      "(forward + backward, fresh random inputs)")
print()
print("| op | evit ms | PyTorch ms | evit / PyTorch |")
print("|---|---:|---:|---:|")
for name, r in evit.items():
    t = torch_.get(name)
    ratio = f"{r['median_ms'] / t['median_ms']:.2f}" if t else "n/a"
    tms = f"{t['median_ms']:.2f}" if t else "n/a"
    print(f"| {name} | {r['median_ms']:.2f} | {tms} | {ratio} |")

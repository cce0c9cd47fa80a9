#!/usr/bin/env bash
# Times the classification training transform (decode, random-resized crop, flip, RandAugment,
# normalisation: the recipe of configs/imagenet_b1.json) in evit (bench_input) and in
# torchvision + timm on PIL images (input_torch.py), one thread each, over the same ImageNet-layout
# folder; the two sides alternate for R rounds and the medians of images per second are printed.
# Usage: bash bench/run_input_bench.sh [ROOT] [SPLIT] [ROUNDS]   (PYTHON=... picks the torch)
# ROOT defaults to the ImageNet samples of ../shared/data when present.
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:-../shared/data/imagenet_samples}
split=${2:-val}
rounds=${3:-5}
[ -d "$root/$split" ] || { echo "run_input_bench: no image folder $root/$split (pass ROOT SPLIT)" >&2; exit 2; }
if [ -z "${PYTHON:-}" ]; then
  if python3 -c "import torchvision, timm" 2>/dev/null; then PYTHON=python3; else PYTHON=/usr/bin/python3; fi
fi
"$PYTHON" -c "import torchvision, timm, PIL" || { echo "run_input_bench: $PYTHON lacks torchvision, timm or Pillow" >&2; exit 2; }
[ -x build/bench_input ] || { cmake -S . -B build >/dev/null && cmake --build build -j"$(nproc)" --target bench_input; }
out=$(mktemp -d)
for r in $(seq "$rounds"); do
  EVIT_NUM_THREADS=1 ./build/bench_input "$root" "$split" >> "$out/evit.jsonl"
  OMP_NUM_THREADS=1 "$PYTHON" bench/input_torch.py "$root" "$split" >> "$out/torch.jsonl"
done
versions=$("$PYTHON" -c "import torch, torchvision, timm, PIL; print(f'PyTorch {torch.__version__}, torchvision {torchvision.__version__}, timm {timm.__version__}, Pillow {PIL.__version__}')")
"$PYTHON" - "$out/evit.jsonl" "$out/torch.jsonl" "$rounds" "$versions" <<'PY'
import json, statistics, sys
def rates(path):
    return [json.loads(l)["images_per_s"] for l in open(path) if l.strip()]
evit, torch_ = rates(sys.argv[1]), rates(sys.argv[2])
images = json.loads(open(sys.argv[1]).readline())["images"]
e, t = statistics.median(evit), statistics.median(torch_)
print(f"input pipeline, 1 thread, {sys.argv[4]}; median of {sys.argv[3]} alternating rounds of {images} images")
print()
print("| side | images/s per core | evit / other (throughput) |")
print("|---|---:|---:|")
print(f"| evit | {e:.1f} | {e / t:.2f} |")
print(f"| torchvision + timm (PIL) | {t:.1f} | 1.00 |")
PY
rm -rf "$out"

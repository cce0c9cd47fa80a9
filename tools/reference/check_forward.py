"""End-to-end parity of `evit forward` with the PyTorch reference, on random weights.

For each model: build the reference with seeded random weights and random BatchNorm statistics,
write its state_dict and an input image as safetensors, run `build/evit forward`, and compare
the output and every stage feature. Run from the repository root after building:

  /usr/bin/python3 tools/reference/check_forward.py [evit binary]
"""
import os
import struct
import json
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "golden"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import write_safetensors  # noqa: E402
import efficientvit_ref as ref  # noqa: E402

CASES = [
    ("efficientvit-b0", (1, 3, 224, 224)),
    ("efficientvit-b1", (2, 3, 160, 192)),
    ("efficientvit-l1", (1, 3, 128, 128)),
    ("efficientvit-seg-b0-cityscapes", (1, 3, 256, 512)),
    ("efficientvit-seg-b1-ade20k", (1, 3, 192, 192)),
    ("efficientvit-seg-l2-cityscapes", (1, 3, 128, 256)),
]


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        assert v["dtype"] == "F32", v["dtype"]
        out[k] = torch.frombuffer(bytearray(data[b:e]), dtype=torch.float32).reshape(v["shape"])
    return out


def main():
    evit = sys.argv[1] if len(sys.argv) > 1 else "build/evit"
    torch.manual_seed(0)
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, shape in CASES:
            model = ref.create_model(name).eval()
            with torch.no_grad():  # non-trivial BN statistics so eval-mode BN is tested
                for m in model.modules():
                    if isinstance(m, torch.nn.BatchNorm2d):
                        m.running_mean.uniform_(-0.1, 0.1)
                        m.running_var.uniform_(0.5, 1.5)
                        m.weight.uniform_(0.5, 1.5)
                        m.bias.uniform_(-0.1, 0.1)
            x = torch.rand(shape)
            with torch.no_grad():
                feats = model.backbone(x) if hasattr(model.backbone, "__call__") else None
                y = model(x)
            w, i, o = (os.path.join(tmp, f) for f in ("w.safetensors", "x.safetensors", "y.safetensors"))
            write_safetensors(w, model.state_dict())
            write_safetensors(i, {"input": x})
            subprocess.run([evit, "forward", name, "--weights", w, "--input", i, "--output", o],
                           check=True, stdout=subprocess.DEVNULL)
            got = read_safetensors(o)
            expected = {"output": y}
            if isinstance(feats, dict):
                expected.update({k: v for k, v in feats.items() if k.startswith("stage") and k != "stage_final"})
            worst = 0.0
            for k, v in expected.items():
                err = ((got[k] - v).abs().max() / v.abs().max().clamp_min(1e-6)).item()
                worst = max(worst, err)
            ok = worst < 1e-4
            failures += not ok
            print(f"{'PASS' if ok else 'FAIL'} {name} {list(shape)}: {len(expected)} tensors, "
                  f"max error relative to max |ref| {worst:.2e}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

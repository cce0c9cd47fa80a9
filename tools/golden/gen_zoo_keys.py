"""Writes tests/golden/zoo_keys.json: for a few zoo models, the ordered state-dict entries of
the PyTorch reference (tools/reference/efficientvit_ref.py) as [key, shape, dtype]. The C++ model
tests compare their own state dict key for key, so checkpoints converted with
tools/pth_to_safetensors.py load without renaming.

    /usr/bin/python3 tools/golden/gen_zoo_keys.py
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
import torch  # noqa: E402

import efficientvit_ref as ev  # noqa: E402

MODELS = ["efficientvit-b1", "efficientvit-l1", "efficientvit-seg-b1-cityscapes",
          "efficientvit-seg-l2-ade20k"]
DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64"}


def main():
    out = {"torch": torch.__version__, "models": {}}
    for name in MODELS:
        sd = ev.create_model(name).state_dict()
        out["models"][name] = [[k, list(t.shape), DTYPES[t.dtype]] for k, t in sd.items()]
        print(f"{name}: {len(sd)} keys")
    path = os.path.join(HERE, "..", "..", "tests", "golden", "zoo_keys.json")
    with open(path, "w") as f:
        # one entry per line keeps diffs readable
        f.write('{\n  "torch": %s,\n  "models": {\n' % json.dumps(out["torch"]))
        items = list(out["models"].items())
        for mi, (name, rows) in enumerate(items):
            f.write('    %s: [\n' % json.dumps(name))
            f.write(",\n".join("      " + json.dumps(r) for r in rows))
            f.write("\n    ]%s\n" % ("," if mi + 1 < len(items) else ""))
        f.write("  }\n}\n")
    json.load(open(path))  # sanity: valid JSON
    print(f"wrote {os.path.normpath(path)}")


if __name__ == "__main__":
    main()

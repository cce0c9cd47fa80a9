"""Shared helpers for the golden-value generators (run with Debian's python3-torch:
/usr/bin/python3 tools/golden/gen_<family>.py). Each generator writes
tests/golden/<family>.safetensors with keys "<case>.<name>"; the C++ tests read them back.

safetensors is written by hand (struct + json): the format is tiny and Debian has no package
for it.
"""
import json
import os
import struct

import torch

GOLDEN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "golden")

_DTYPES = {
    torch.float32: "F32",
    torch.float64: "F64",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}


def write_safetensors(path, tensors, metadata=None):
    header = {}
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        data = t.numpy().tobytes() if t.dtype != torch.bool else t.to(torch.uint8).numpy().tobytes()
        header[name] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


class Golden:
    """Collects tensors for one family and writes them with the torch version as metadata."""

    def __init__(self, family):
        self.family = family
        self.tensors = {}

    def add(self, case, name, tensor):
        key = f"{case}.{name}"
        assert key not in self.tensors, key
        self.tensors[key] = tensor.detach().clone()

    def case_grad(self, case, fn, inputs, weight_seed=0):
        """Records inputs, output y = fn(*inputs) and the gradients of sum(y * w) for a fixed
        random w (stored as '<case>.w'), for every input that requires grad."""
        y = fn(*inputs)
        g = torch.Generator().manual_seed(weight_seed)
        w = torch.randn(y.shape, generator=g, dtype=y.dtype)
        (y * w).sum().backward()
        for i, x in enumerate(inputs):
            if isinstance(x, torch.Tensor):
                self.add(case, f"x{i}", x)
                if x.requires_grad:
                    self.add(case, f"grad{i}", x.grad)
        self.add(case, "w", w)
        self.add(case, "y", y)
        return y

    def write(self):
        os.makedirs(GOLDEN_DIR, exist_ok=True)
        path = os.path.join(GOLDEN_DIR, f"{self.family}.safetensors")
        write_safetensors(path, self.tensors, {"torch": torch.__version__, "family": self.family})
        print(f"wrote {path} ({len(self.tensors)} tensors)")


def leaf(shape, seed, lo=-1.0, hi=1.0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g, dtype=dtype) * (hi - lo) + lo).requires_grad_(True)

"""Converts a reference EfficientViT PyTorch checkpoint to safetensors with the same keys.

    /usr/bin/python3 tools/pth_to_safetensors.py INPUT.pth OUTPUT.safetensors [--strip-prefix module.]
        [--allow-pickle]

INPUT may hold a plain state dict or a dict with the state dict under "state_dict" or "model"
(other entries such as "epoch" or "optimizer" are then ignored). Every state-dict entry must be
a tensor; anything else is refused with the offending key named. Keys keep their order.
The file is read with torch.load(weights_only=True), which cannot run code from the pickle; a
checkpoint that also stores other Python objects (some trainers save floats or optimizer
state; torch 1.13's safe loader even rejects plain floats) needs --allow-pickle, which uses the
full unpickler: only for files from a trusted source.
dtypes: F32/F64/I64/I32/U8/BOOL are written as they are; F16/BF16 are widened to F32, the dtype
evit's models compute and load in on the CPU (a note is printed). Released SAM checkpoints (sam_vit_h_4b8939.pth
and the others) are plain state dicts and convert as they are.

The safetensors file is written by hand (8-byte little-endian header length, JSON header,
raw little-endian data), so no extra package is needed.
"""
import argparse
import json
import os
import struct
import sys

import torch

ST_DTYPES = {
    torch.float32: "F32",
    torch.float64: "F64",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}
WIDEN = (torch.float16, torch.bfloat16)


class ConversionError(Exception):
    pass


def load_checkpoint(path, allow_pickle=False):
    if allow_pickle:
        return torch.load(path, map_location="cpu")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except TypeError:  # torch older than 1.13 has no weights_only
        raise ConversionError("this torch has no safe (weights_only) loader; rerun with "
                              "--allow-pickle if the file is trusted")
    except Exception as e:  # pickle.UnpicklingError and friends
        raise ConversionError(f"the safe loader refused the file ({str(e).splitlines()[-1][-120:]}); "
                              "it holds more than tensors: rerun with --allow-pickle if the "
                              "file is trusted")


def extract_state_dict(obj):
    """Returns the state dict inside a loaded checkpoint object."""
    if not isinstance(obj, dict):
        raise ConversionError(f"checkpoint holds a {type(obj).__name__}, expected a dict "
                              "(state dict, or {'state_dict': ...} / {'model': ...})")
    for wrapper in ("state_dict", "model"):
        inner = obj.get(wrapper)
        if isinstance(inner, dict):
            return inner
    return obj


def convert_state_dict(sd, strip_prefix=None):
    """Checks entries and applies prefix stripping; returns an ordered dict name -> tensor."""
    out = {}
    widened = []
    for key, value in sd.items():
        if not isinstance(key, str):
            raise ConversionError(f"non-string key {key!r} in state dict")
        if not isinstance(value, torch.Tensor):
            raise ConversionError(f"entry {key!r} is a {type(value).__name__}, not a tensor; "
                                  "only tensors can be stored in safetensors")
        name = key[len(strip_prefix):] if strip_prefix and key.startswith(strip_prefix) else key
        if name in out:
            raise ConversionError(f"duplicate key {name!r} after stripping {strip_prefix!r}")
        t = value.detach().cpu()
        if t.dtype in WIDEN:
            widened.append(name)
            t = t.to(torch.float32)
        if t.dtype not in ST_DTYPES:
            raise ConversionError(f"entry {key!r} has unsupported dtype {t.dtype}")
        out[name] = t.contiguous()
    return out, widened


def tensor_bytes(t):
    if t.dtype == torch.bool:
        t = t.to(torch.uint8)
    return t.numpy().tobytes()  # numpy on x86/arm is little-endian, as safetensors requires


def write_safetensors(path, tensors, metadata=None):
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs, offset = [], 0
    for name, t in tensors.items():
        data = tensor_bytes(t)
        header[name] = {"dtype": ST_DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)  # pad so the data section starts 8-byte aligned
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def convert(inp, outp, strip_prefix=None, allow_pickle=False):
    sd = extract_state_dict(load_checkpoint(inp, allow_pickle))
    tensors, widened = convert_state_dict(sd, strip_prefix)
    if not tensors:
        raise ConversionError("no tensors found in checkpoint")
    write_safetensors(outp, tensors, {"format": "pt", "source": os.path.basename(inp)})
    return tensors, widened


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--strip-prefix", default=None,
                    help="remove this prefix from keys that start with it (e.g. 'module.')")
    ap.add_argument("--allow-pickle", action="store_true",
                    help="load with the full (code-executing) unpickler; trusted files only")
    args = ap.parse_args(argv)
    try:
        tensors, widened = convert(args.input, args.output, args.strip_prefix, args.allow_pickle)
    except ConversionError as e:
        print(f"pth_to_safetensors: error: {args.input}: {e}", file=sys.stderr)
        return 2
    if widened:
        print(f"note: {len(widened)} half-precision tensors widened to F32", file=sys.stderr)
    numel = sum(t.numel() for t in tensors.values())
    print(f"wrote {args.output}: {len(tensors)} tensors, {numel} elements")
    return 0


if __name__ == "__main__":
    sys.exit(main())

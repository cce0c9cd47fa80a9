"""Self-test of tools/pth_to_safetensors.py (run: /usr/bin/python3
tools/reference/test_pth_to_safetensors.py). Builds reference models, saves their state dicts
in the layouts released checkpoints use, converts them through the command line and reads the
result back with an independent reader written here; exits non-zero on any mismatch."""
import json
import os
import struct
import subprocess
import sys
import tempfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
TOOL = os.path.join(HERE, "..", "pth_to_safetensors.py")
sys.path.insert(0, HERE)
import efficientvit_ref as ev  # noqa: E402

DT = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64, "I32": torch.int32,
      "U8": torch.uint8, "BOOL": torch.bool}
SIZE = {"F32": 4, "F64": 8, "I64": 8, "I32": 4, "U8": 1, "BOOL": 1}


def read_safetensors(path):
    """Independent reader: validates header layout and offsets; returns (ordered dict, meta)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    assert 8 + n <= len(raw), "header runs past end of file"
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    meta = header.pop("__metadata__", {})
    out, end = {}, 0
    for name, e in header.items():
        b, eo = e["data_offsets"]
        numel = 1
        for s in e["shape"]:
            numel *= s
        assert eo - b == numel * SIZE[e["dtype"]], f"{name}: size does not match shape"
        assert b == end, f"{name}: data not contiguous"
        end = eo
        buf = bytearray(data[b:eo])
        if e["dtype"] == "BOOL":
            t = torch.frombuffer(buf, dtype=torch.uint8).to(torch.bool) if numel else torch.empty(0, dtype=torch.bool)
        else:
            t = torch.frombuffer(buf, dtype=DT[e["dtype"]]) if numel else torch.empty(0, dtype=DT[e["dtype"]])
        out[name] = t.reshape(e["shape"])
    assert end == len(data), "trailing bytes after the last tensor"
    return out, meta


def run(*args):
    return subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True)


failures = []


def check(cond, what):
    print(f"{'PASS' if cond else 'FAIL'}  {what}")
    if not cond:
        failures.append(what)


def same(sd, back):
    if list(sd.keys()) != list(back.keys()):
        return False
    return all(sd[k].dtype == back[k].dtype and sd[k].shape == back[k].shape
               and torch.equal(sd[k], back[k]) for k in sd)


def main():
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("efficientvit-b0", "efficientvit-seg-b0-cityscapes"):
            model = ev.create_model(name)
            # non-trivial buffers: one training-mode forward updates BN stats and counters
            model.train()(torch.randn(2, 3, 64, 64))
            sd = model.state_dict()
            # 1) plain state dict
            pth, st = os.path.join(tmp, "a.pth"), os.path.join(tmp, "a.safetensors")
            torch.save(sd, pth)
            r = run(pth, st)
            back, meta = read_safetensors(st) if r.returncode == 0 else ({}, {})
            check(r.returncode == 0 and same(sd, back), f"{name}: plain state dict round trip "
                  f"({len(sd)} keys)")
            check(back and back[[k for k in sd if k.endswith("num_batches_tracked")][0]].dtype
                  == torch.int64, f"{name}: num_batches_tracked stays I64")
            # the converted file loads strictly into a fresh reference model and reproduces it
            m2 = ev.create_model(name)
            m2.load_state_dict(back, strict=True)
            x = torch.randn(1, 3, 64, 64)
            with torch.no_grad():
                check(torch.equal(model.eval()(x), m2.eval()(x)),
                      f"{name}: converted weights give bitwise-identical forward")
            # 2) {"state_dict": {"module." + k}} with --strip-prefix
            torch.save({"state_dict": {"module." + k: v for k, v in sd.items()}, "epoch": 3}, pth)
            r = run(pth, st, "--strip-prefix", "module.")
            back, _ = read_safetensors(st) if r.returncode == 0 else ({}, {})
            check(r.returncode == 0 and same(sd, back),
                  f"{name}: {{'state_dict'}} wrapper + --strip-prefix module.")
            # 3) {"model": ...}
            torch.save({"model": sd, "epoch": 3}, pth)
            r = run(pth, st)
            back, _ = read_safetensors(st) if r.returncode == 0 else ({}, {})
            check(r.returncode == 0 and same(sd, back), f"{name}: {{'model'}} wrapper")
            # 3b) extra Python objects (a float) need --allow-pickle; without it a clear error
            torch.save({"model": sd, "optimizer": {"lr": 0.1}}, pth)
            os.remove(st)
            r = run(pth, st)
            check(r.returncode != 0 and "--allow-pickle" in r.stderr and not os.path.exists(st),
                  f"{name}: non-weights pickle refused without --allow-pickle")
            r = run(pth, st, "--allow-pickle")
            back, _ = read_safetensors(st) if r.returncode == 0 else ({}, {})
            check(r.returncode == 0 and same(sd, back), f"{name}: --allow-pickle loads it")

        # 4) non-tensor entry is refused and names the key; no output written
        bad = {"a.weight": torch.ones(2), "a.note": "hello"}
        pth, st = os.path.join(tmp, "bad.pth"), os.path.join(tmp, "bad.safetensors")
        torch.save(bad, pth)
        r = run(pth, st)
        check(r.returncode != 0 and "a.note" in r.stderr and "not a tensor" in r.stderr
              and not os.path.exists(st), f"non-tensor entry refused: {r.stderr.strip()}")
        # 5) half precision widened to F32, other dtypes kept
        mixed = {"h": torch.tensor([1.5, -2.25], dtype=torch.float16),
                 "d": torch.tensor([[1.0, 2.0]], dtype=torch.float64),
                 "i": torch.tensor(7), "b": torch.tensor([True, False]),
                 "v": torch.arange(12.0).reshape(3, 4).t()}  # non-contiguous view
        torch.save(mixed, pth)
        r = run(pth, st)
        back, _ = read_safetensors(st) if r.returncode == 0 else ({}, {})
        want = dict(mixed, h=mixed["h"].float())
        check(r.returncode == 0 and same(want, back), "F16 widened, F64/I64/BOOL kept, "
              "non-contiguous tensor written in logical order")
    print("ALL PASS" if not failures else f"{len(failures)} FAILED")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

"""ONNX Runtime parity of evit's ONNX export, and the goldens that let the C++ tests check it
without Python.

1. Runs the test "ONNX Runtime running the exported graphs reproduces evit's forward" with
   EVIT_ONNX_DUMP set: it writes each case's exported graph (deterministic weights, dynamic batch)
   with its inputs and evit's outputs.
2. Runs every graph in ONNX Runtime (CPU) and compares with evit's outputs: at most 1e-4 of the
   output's largest magnitude in f32, 5e-3 in f16, or the script fails.
3. When torch is installed: for the models the PyTorch reference builds (classification,
   segmentation, the SAM image encoder), exports the reference with the same weights through
   torch.onnx.export at the same opset, runs that in ONNX Runtime too, and compares.
4. Unless --check is given: writes tests/golden/onnx_runtime.safetensors, per case ONNX Runtime's
   outputs and the graph's structure digest (the C++ test refuses a golden made from another
   graph).

The SAM decoder graph runs on the export's own example prompts (two sets: clicks with a padding
point, a click with a box) and is compared with evit's prompt encoder and mask decoder.

Needs onnxruntime and numpy (torch and onnx for step 3). From the repository root, after building:

  python tools/reference/check_onnx.py [--check] [build dir]
"""
import json
import os
import struct
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import onnxruntime as ort

HERE = os.path.dirname(os.path.abspath(__file__))
TEST = "ONNX Runtime running the exported graphs reproduces evit's forward"
GOLDEN = os.path.join(HERE, "..", "..", "tests", "golden", "onnx_runtime.safetensors")
_DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "F16": np.float16}


def read_safetensors(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    out = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        out[name] = np.frombuffer(data[begin:end], dtype=_DTYPES[info["dtype"]]).reshape(info["shape"])
    return out, meta


def write_safetensors(path, tensors, metadata):
    names = {v: k for k, v in _DTYPES.items()}
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        blob = a.tobytes()
        header[name] = {"dtype": names[a.dtype.type], "shape": list(a.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    os.replace(path + ".tmp", path)


def run_graph(path, inputs):
    """{output name: array} of the graph at `inputs` ({input name: array})."""
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, inputs)))


def reference_graph(model_name, x, opset, directory):
    """ONNX Runtime's output of the PyTorch reference exported by torch.onnx.export, or a reason."""
    try:
        import torch
    except ImportError:
        return None, "torch not installed"
    sys.path.insert(0, HERE)
    import efficientvit_ref as ref

    if model_name.startswith("efficientvit-sam-"):
        model = ref.create_sam_image_encoder(model_name[len("efficientvit-sam-"):])
        ref.golden_fill(model, prefix="image_encoder.")
    else:
        try:
            model = ref.golden_fill(ref.create_model(model_name))
        except ValueError:
            return None, "no PyTorch reference"
    model.eval()
    path = os.path.join(directory, "reference.onnx")
    try:
        torch.onnx.export(model, torch.from_numpy(x), path, opset_version=opset, input_names=["input"],
                          output_names=["output"], dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                          dynamo=False)
    except Exception as e:  # the exporter's own limits are reported, not fatal
        return None, f"torch.onnx.export failed: {type(e).__name__}"
    return run_graph(path, {"input": x})["output"], ""


def main():
    warnings.filterwarnings("ignore")  # the TorchScript exporter's deprecation and tracer notes
    args = sys.argv[1:]
    check_only = "--check" in args
    args = [a for a in args if a != "--check"]
    build = args[0] if args else "build"
    golden = {}
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, EVIT_ONNX_DUMP=tmp)
        subprocess.run([os.path.join(build, "evit_tests"), TEST], env=env, check=True, stdout=subprocess.DEVNULL)
        cases = sorted(f[:-5] for f in os.listdir(tmp) if f.endswith(".onnx"))
        print(f"ONNX Runtime {ort.__version__}: largest difference over the output's largest magnitude")
        print(f"{'case':20s} {'vs evit':>10s} {'vs the reference torch.onnx.export':>36s}")
        for case in cases:
            tensors, meta = read_safetensors(os.path.join(tmp, case + ".safetensors"))
            half = meta.get("half") == "true"
            inputs = {k[3:]: v for k, v in tensors.items() if k.startswith("in:")}
            expected = {k[4:]: v.astype(np.float64) for k, v in tensors.items() if k.startswith("out:")}
            feed = {k: v.astype(np.float16) if half and v.dtype == np.float32 else v for k, v in inputs.items()}
            got = run_graph(os.path.join(tmp, case + ".onnx"), feed)
            err = 0.0
            for name, y_evit in expected.items():
                err = max(err, np.abs(got[name].astype(np.float64) - y_evit).max() / np.abs(y_evit).max())
                golden[f"{case}.{name}"] = got[name].astype(np.float32)
            golden[case + ".digest"] = tensors["digest"]
            why = "(several inputs)"
            if len(inputs) == 1 and not half:
                ((x,),) = [tuple(inputs.values())]
                ((out_name, y),) = got.items()
                opset = 17 if "opset17" in case or "sam" in case else 11
                y_ref, why = reference_graph(meta["model"], x, opset, tmp)
                if y_ref is not None:
                    why = f"{np.abs(y.astype(np.float64) - y_ref).max() / np.abs(expected[out_name]).max():.2e}"
            elif half:
                why = "(f16: compared with evit only)"
            print(f"{case:20s} {err:10.2e} {why:>36s}")
            if err > (5e-3 if half else 1e-4):
                sys.exit(f"{case}: ONNX Runtime differs from evit by {err:.2e} of the output scale")
    if check_only:
        print(f"check_onnx: {len(cases)} graphs agree with evit in ONNX Runtime")
        return
    write_safetensors(GOLDEN, golden, {"generator": "tools/reference/check_onnx.py", "onnxruntime": ort.__version__})
    print(f"wrote {os.path.normpath(GOLDEN)} ({len(cases)} cases)")


if __name__ == "__main__":
    main()

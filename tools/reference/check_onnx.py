"""ONNX Runtime parity of evit's ONNX export, and the goldens that let the C++ tests check it
without Python.

1. Runs the test "ONNX Runtime running the exported graphs reproduces evit's forward" with
   EVIT_ONNX_DUMP set: it writes each case's exported graph (deterministic weights, dynamic batch)
   with evit's input and output.
2. Runs every graph in ONNX Runtime (CPU) on the batch-2 input and compares with evit's forward.
3. For the models the PyTorch reference builds (classification, segmentation, the SAM image
   encoder), exports the
   reference with the same weights through torch.onnx.export at the same opset, runs that in
   ONNX Runtime too, and compares.
4. Writes tests/golden/onnx_runtime.safetensors: per case ONNX Runtime's output and the graph's
   structure digest (the test refuses a golden made from another graph).

Needs onnxruntime, onnx and torch from PyPI. From the repository root, after building:

  python tools/reference/check_onnx.py [build dir]
"""
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import onnxruntime as ort
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "golden"))
sys.path.insert(0, HERE)
from common import read_safetensors, write_safetensors  # noqa: E402
import efficientvit_ref as ref  # noqa: E402

TEST = "ONNX Runtime running the exported graphs reproduces evit's forward"


def run_graph(path, x):
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    (y,) = session.run([session.get_outputs()[0].name], {session.get_inputs()[0].name: x})
    return y


def reference_model(model_name):
    if model_name.startswith("efficientvit-sam-"):
        encoder = ref.create_sam_image_encoder(model_name[len("efficientvit-sam-"):])
        return ref.golden_fill(encoder, prefix="image_encoder.")
    return ref.golden_fill(ref.create_model(model_name))


def reference_graph(model_name, x, opset, half, directory):
    """ONNX Runtime's output of the PyTorch reference exported by torch.onnx.export, or None."""
    try:
        model = reference_model(model_name)
    except (ValueError, KeyError):
        return None, "no PyTorch reference for this model"
    model.eval()
    if half:
        return None, "reference export compared in f32 only"
    path = os.path.join(directory, "reference.onnx")
    try:
        torch.onnx.export(model, torch.from_numpy(x), path, opset_version=opset, input_names=["input"],
                          output_names=["output"], dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                          dynamo=False)
    except Exception as e:  # the exporter's own limits are reported, not fatal
        return None, f"torch.onnx.export failed: {e}"
    return run_graph(path, x), ""


def main():
    warnings.filterwarnings("ignore")  # the TorchScript exporter's deprecation and tracer notes
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    tests = os.path.join(build, "evit_tests")
    golden = {}
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, EVIT_ONNX_DUMP=tmp)
        subprocess.run([tests, TEST], env=env, check=True, stdout=subprocess.DEVNULL)
        cases = sorted(f[:-5] for f in os.listdir(tmp) if f.endswith(".onnx"))
        print(f"{'case':20s} {'vs evit (max |d| / max |y|)':>28s} {'vs torch.onnx.export':>22s}")
        for case in cases:
            tensors, meta = read_safetensors(os.path.join(tmp, case + ".safetensors"))
            x = tensors["input"].numpy()
            y_evit = tensors["output"].numpy().astype(np.float64)
            half = meta.get("half") == "true"
            graph = os.path.join(tmp, case + ".onnx")
            y = run_graph(graph, x.astype(np.float16) if half else x)
            scale = np.abs(y_evit).max()
            err = np.abs(y.astype(np.float64) - y_evit).max() / scale
            opset = 17 if "opset17" in case or half or "sam" in case else 11
            y_ref, why = reference_graph(meta["model"], x, opset, half, tmp)
            ref_text = why if y_ref is None else f"{np.abs(y.astype(np.float64) - y_ref).max() / scale:.2e}"
            print(f"{case:20s} {err:28.2e} {ref_text:>22s}")
            if err > (5e-3 if half else 1e-4):
                sys.exit(f"{case}: ONNX Runtime differs from evit's forward by {err:.2e} of the output scale")
            golden[case + ".output"] = torch.from_numpy(y.astype(np.float32))
            golden[case + ".digest"] = tensors["digest"]
    out = os.path.join(HERE, "..", "..", "tests", "golden", "onnx_runtime.safetensors")
    write_safetensors(out, golden, {"generator": "tools/reference/check_onnx.py", "onnxruntime": ort.__version__})
    print(f"wrote {os.path.normpath(out)} ({len(golden) // 2} cases)")


if __name__ == "__main__":
    main()

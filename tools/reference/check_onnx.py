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
4. Writes tests/golden/onnx_runtime.safetensors: per case ONNX Runtime's outputs and the graph's
   structure digest (the test refuses a golden made from another graph).

The SAM decoder graph runs on the export's own example prompts (two sets: clicks with a padding
point, a click with a box) and is compared with evit's prompt encoder and mask decoder.

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


def run_graph(path, inputs):
    """{output name: array} of the graph at `inputs` ({input name: array})."""
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, inputs)))


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
    return run_graph(path, {"input": x})["output"], ""


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
            half = meta.get("half") == "true"
            inputs = {k[3:]: v.numpy() for k, v in tensors.items() if k.startswith("in:")}
            expected = {k[4:]: v.numpy().astype(np.float64) for k, v in tensors.items() if k.startswith("out:")}
            feed = {k: v.astype(np.float16) if half and v.dtype == np.float32 else v for k, v in inputs.items()}
            got = run_graph(os.path.join(tmp, case + ".onnx"), feed)
            errors, ref_texts = [], []
            for name, y_evit in expected.items():
                scale = np.abs(y_evit).max()
                errors.append(np.abs(got[name].astype(np.float64) - y_evit).max() / scale)
                golden[f"{case}.{name}"] = torch.from_numpy(got[name].astype(np.float32))
            err = max(errors)
            if len(inputs) == 1:
                ((name, x),) = inputs.items()
                ((out_name, y),) = got.items()
                opset = 17 if "opset17" in case or half or "sam" in case else 11
                y_ref, why = reference_graph(meta["model"], x, opset, half, tmp)
                if y_ref is not None:
                    why = f"{np.abs(y.astype(np.float64) - y_ref).max() / np.abs(expected[out_name]).max():.2e}"
            else:
                why = "no reference export here"
            print(f"{case:20s} {err:28.2e} {why:>22s}")
            if err > (5e-3 if half else 1e-4):
                sys.exit(f"{case}: ONNX Runtime differs from evit by {err:.2e} of the output scale")
            golden[case + ".digest"] = tensors["digest"]
    out = os.path.join(HERE, "..", "..", "tests", "golden", "onnx_runtime.safetensors")
    write_safetensors(out, golden, {"generator": "tools/reference/check_onnx.py", "onnxruntime": ort.__version__})
    print(f"wrote {os.path.normpath(out)} ({len(cases)} cases)")


if __name__ == "__main__":
    main()

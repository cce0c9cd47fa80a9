"""Whole-model PyTorch timings with the reference models of tools/reference/efficientvit_ref.py,
the PyTorch side of the evit model benchmarks.

    /usr/bin/python3 bench/models_torch.py THREADS [CASE (an exact name, or a substring of names)] [--device cuda] [--amp f16|bf16]

Prints one JSON line per case: {"case": name, "median_ms": t, "runs": n, "peak_mib": m} (m: the
case's peak resident memory over the resident memory when it began, as bench_models reports it).
Timing rule (same as bench/ops_torch.py): fresh random inputs (and labels) every iteration, made outside the timed
region; WARMUP untimed iterations, then the median of RUNS timed ones. Inference runs in eval()
under torch.no_grad(); a training step is train() forward, cross-entropy against random labels,
backward and an AdamW step (zero_grad included). The SAM cases time the EfficientViT-SAM image
encoder alone: inference, and a distillation step (MSE towards a random 256x64x64 embedding),
with the official model code when EFFICIENTVIT_REPO names a checkout of it. Thread settings: torch.set_num_threads(THREADS)
here; run with OMP_NUM_THREADS=THREADS OPENBLAS_NUM_THREADS=1 for a fair comparison (see
bench/run_op_bench.sh).

On CUDA (the GPU cases, the same as bench_models --device cuda) inputs are copied to the device
before the timed region and each timed iteration ends with torch.cuda.synchronize(). --amp runs
the forward and the loss under torch.autocast with that dtype, and f16 training steps go through
PyTorch's GradScaler, as a PyTorch user would train. f32 stays plain f32 (TF32 off for
convolutions and matmuls, as in evit); cudnn.benchmark picks each convolution's fastest
algorithm. peak_mib on CUDA is torch.cuda.max_memory_allocated over the case (weights,
optimizer state, activations), reset once the model is on the device.
"""
import contextlib
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools",
                                "reference"))
import efficientvit_ref as ev  # noqa: E402

WARMUP = 3
RUNS = 10

# (case name, model, mode, batch, H, W)
CASES = [
    ("b0 infer bs1 224", "efficientvit-b0", "infer", 1, 224, 224),
    ("b1 infer bs1 224", "efficientvit-b1", "infer", 1, 224, 224),
    ("b0 train bs16 224", "efficientvit-b0", "train", 16, 224, 224),
    ("b1 train bs16 224", "efficientvit-b1", "train", 16, 224, 224),
    ("seg-b0 infer bs1 512x1024", "efficientvit-seg-b0-cityscapes", "infer", 1, 512, 1024),
    ("seg-b1 infer bs1 512x1024", "efficientvit-seg-b1-cityscapes", "infer", 1, 512, 1024),
    ("sam-l0 encoder infer bs1 512", "l0", "sam_infer", 1, 512, 512),
    ("sam-xl0 encoder infer bs1 1024", "xl0", "sam_infer", 1, 1024, 1024),
    ("sam-l0 distill step bs2 512", "l0", "sam_distill", 2, 512, 512),
    ("l1 train bs8 224", "efficientvit-l1", "train", 8, 224, 224),
    ("gemm peak 2048", None, "gemm", 2048, 2048, 2048),
]

GPU_CASES = [
    ("b0 train bs64 224", "efficientvit-b0", "train", 64, 224, 224),
    ("b1 train bs64 224", "efficientvit-b1", "train", 64, 224, 224),
    ("seg-b1 infer bs1 512x1024", "efficientvit-seg-b1-cityscapes", "infer", 1, 512, 1024),
    ("seg-b1 infer bs8 512x1024", "efficientvit-seg-b1-cityscapes", "infer", 8, 512, 1024),
    ("l1 train bs64 224", "efficientvit-l1", "train", 64, 224, 224),
    ("sam-l0 encoder infer bs1 512", "l0", "sam_infer", 1, 512, 512),
    ("sam-l0 encoder infer bs8 512", "l0", "sam_infer", 8, 512, 512),
    ("gemm peak 4096", None, "gemm", 4096, 4096, 4096),
]


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast(device, amp):
    if amp is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=amp)


def time_infer(model, n, h, w, device, amp):
    model.eval()
    times = []
    with torch.no_grad():
        for it in range(WARMUP + RUNS):
            x = torch.randn(n, 3, h, w).to(device)
            sync(device)
            t0 = time.perf_counter()
            with autocast(device, amp):
                model(x)
            sync(device)
            t1 = time.perf_counter()
            if it >= WARMUP:
                times.append((t1 - t0) * 1e3)
    return times


def time_train(model, n, h, w, device, amp, n_classes=1000):
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
    scaler = None
    if amp == torch.float16:
        scaler = torch.amp.GradScaler("cuda") if hasattr(torch.amp, "GradScaler") else torch.cuda.amp.GradScaler()
    times = []
    for it in range(WARMUP + RUNS):
        x = torch.randn(n, 3, h, w).to(device)
        y = torch.randint(0, n_classes, (n,)).to(device)
        sync(device)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with autocast(device, amp):
            loss = F.cross_entropy(model(x), y)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
        sync(device)
        t1 = time.perf_counter()
        if it >= WARMUP:
            times.append((t1 - t0) * 1e3)
    return times


def time_gemm(n, device):
    """The f32 GEMM peak: C = A @ B for n x n matrices, fresh random A and B each time."""
    times = []
    for it in range(WARMUP + RUNS):
        a, b = torch.randn(n, n).to(device), torch.randn(n, n).to(device)
        sync(device)
        t0 = time.perf_counter()
        torch.mm(a, b)
        sync(device)
        t1 = time.perf_counter()
        if it >= WARMUP:
            times.append((t1 - t0) * 1e3)
    return times


def sam_image_encoder(name):
    """The EfficientViT-SAM image encoder: the official code's when EFFICIENTVIT_REPO names a
    checkout of it (its PyPI dependencies installed), else the reference port's (same layers)."""
    root = os.environ.get("EFFICIENTVIT_REPO")
    if not root:
        return ev.create_sam_image_encoder(name), "reference port"
    sys.path.insert(0, root)
    from efficientvit.sam_model_zoo import create_efficientvit_sam_model
    return create_efficientvit_sam_model(f"efficientvit-sam-{name}", pretrained=False).image_encoder, "official"


def time_sam_distill(encoder, n, h, w, device):
    """Stage-1 SAM distillation: MSE of the encoder's embedding against a random teacher
    embedding, backward, AdamW (lr 1e-3, weight decay 0.1) over the encoder's parameters."""
    encoder.train()
    opt = torch.optim.AdamW(encoder.parameters(), lr=1e-3, weight_decay=0.1)
    times = []
    for it in range(WARMUP + RUNS):
        x = torch.randn(n, 3, h, w).to(device)
        target = torch.randn(n, 256, 64, 64).to(device)
        sync(device)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        F.mse_loss(encoder(x), target).backward()
        opt.step()
        sync(device)
        t1 = time.perf_counter()
        if it >= WARMUP:
            times.append((t1 - t0) * 1e3)
    return times


def reset_device_peak(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def status_mib(field):
    """A field of /proc/self/status in MiB: VmRSS (resident now), VmHWM (its peak since the last reset)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return -1.0


def reset_peak_rss():
    """Starts a new resident peak at the current resident size (Linux: "5" to clear_refs)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def main():
    args = sys.argv[1:]
    device, amp = torch.device("cpu"), None
    if "--device" in args:
        i = args.index("--device")
        device = torch.device(args[i + 1])
        del args[i:i + 2]
    if "--amp" in args:
        i = args.index("--amp")
        amp = {"f16": torch.float16, "bf16": torch.bfloat16, "off": None}[args[i + 1]]
        del args[i:i + 2]
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    torch.set_num_threads(int(args[0]))
    if device.type == "cuda":
        # Plain f32 arithmetic, as evit's default: PyTorch would otherwise run convolutions (not
        # matmuls) on TF32 tensor cores, which keep 10 mantissa bits.
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.benchmark = True  # the fastest convolution algorithm per shape
    only = args[1] if len(args) > 1 else None
    torch.manual_seed(0)
    cases = GPU_CASES if device.type == "cuda" else CASES
    exact = any(c[0] == only for c in cases)  # an exact name selects that case alone
    for name, model_name, mode, n, h, w in cases:
        if only and (name != only if exact else only not in name):
            continue
        reset_peak_rss()
        baseline_mib = status_mib("VmRSS")
        if device.type == "cuda":
            torch.cuda.empty_cache()
        if mode == "gemm":
            times = time_gemm(n, device)
        elif mode.startswith("sam_"):  # the EfficientViT-SAM image encoder alone
            encoder, source = sam_image_encoder(model_name)
            encoder = encoder.to(device)
            reset_device_peak(device)
            print(f"{name}: {source} EfficientViT-SAM code", file=sys.stderr)
            if mode == "sam_infer":
                times = time_infer(encoder, n, h, w, device, amp)
            else:
                times = time_sam_distill(encoder, n, h, w, device)
        else:
            model = ev.create_model(model_name).to(device)
            reset_device_peak(device)
            if mode == "infer":
                times = time_infer(model, n, h, w, device, amp)
            else:
                times = time_train(model, n, h, w, device, amp)
        # CPU: resident memory over the case's start; CUDA: device memory allocated at the peak
        # (weights, optimizer state, activations), as evit's bench_models reports it.
        peak = (torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda"
                else status_mib("VmHWM") - baseline_mib)
        print(json.dumps({"case": name, "median_ms": round(statistics.median(times), 3), "runs": RUNS,
                          "peak_mib": round(peak, 1)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

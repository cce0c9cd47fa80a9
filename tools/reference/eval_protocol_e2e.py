"""End-to-end check of the ADE20K, Cityscapes and ImageNet evaluation protocols: the official
evaluation loops (eval_seg_model.py's and eval_cls_model.py's pipelines, reproduced here with
OpenCV, Pillow, torchvision and PyTorch from PyPI) on the shared samples, with weights trained
briefly by evit, against `evit eval` on the same images and weights (tests/test_eval_protocol.cpp).

    python tools/reference/eval_protocol_e2e.py [EVIT_BINARY] [--only ade20k|cityscapes|imagenet ...]
    (default build/evit; --only reruns those datasets and keeps the others' recorded results)

1. Trains efficientvit-seg-b0 heads (150 ADE20K classes; 19 Cityscapes classes) with evit for 200
   steps on the shared samples themselves (copied to a temporary folder as a training
   split), so the predictions are far from uniform.
2. Stores the weights in f16 as tests/golden/eval_e2e_<dataset>.safetensors (evit loads them into
   its f32 model; the reference loads the same f16 values).
3. Runs the official loop with the reference model (tools/reference/efficientvit_ref.py): PIL
   decode; ADE20K short side 512 and long side ceil(long/short*512/32)*32, Cityscapes 1024x2048,
   with cv2 INTER_CUBIC on 8 bits; ImageNet normalisation; logits resized to the label size
   (bicubic, align_corners=False); argmax; intersection and union per class summed over the set;
   the mean over the classes whose union is non-empty (the official mean over all classes is NaN
   on a subset).
4. Writes the mIoU to tests/golden/eval_e2e.json, with OpenCV as installed (its bicubic runs
   through Intel IPP) and with IPP off (OpenCV's own arithmetic, which evit reproduces exactly).
5. ImageNet: trains efficientvit-b0 with a 100-class head on the 100 shared samples (one image per
   class; ImageFolder numbers the folders present 0..99 in sorted-WNID order, as evit does) and
   scores top-1 and top-5 with the official loop: PIL decode to RGB, torchvision
   Resize(ceil(224 / 0.95), bicubic, antialiased), CenterCrop(224), ToTensor, Normalize.
"""
import glob
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import efficientvit_ref as ref  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SHARED = os.path.abspath(os.environ.get("EVIT_SHARED_DATA", os.path.join(REPO, "..", "shared", "data")))
ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
ONLY = set(sys.argv[sys.argv.index("--only") + 1:]) if "--only" in sys.argv else {"ade20k", "cityscapes", "imagenet"}
if "--only" in sys.argv:
    ARGS = sys.argv[1:sys.argv.index("--only")]
EVIT = os.path.abspath(ARGS[0] if ARGS else os.path.join(REPO, "build", "evit"))
GOLDEN = os.path.join(REPO, "tests", "golden")
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
CITYSCAPES_TRAIN_IDS = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12,
                        26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}


def train_with_evit(work, dataset, root, classes, steps):
    config = {
        "task": "segmentation",
        "model": {"name": "efficientvit-seg-b0-cityscapes", "num_classes": classes},
        "data": {"root": root, "dataset": dataset, "crop": 256, "batch_size": 4, "workers": 1},
        "optimizer": {"name": "adamw", "lr": 0.004, "weight_decay": 0.01},
        "schedule": {"warmup_steps": 20},
        "ema": {"enabled": False},
        "train": {"steps": steps, "eval_every": steps, "checkpoint_every": steps, "log_every": 50, "seed": 3},
        "output_dir": os.path.join(work, f"run_{dataset}"),
    }
    path = os.path.join(work, f"{dataset}.json")
    with open(path, "w") as f:
        json.dump(config, f)
    subprocess.run([EVIT, "train", path], check=True)
    return os.path.join(work, f"run_{dataset}", "checkpoint", "model.safetensors")


def train_classifier_with_evit(work, root, steps):
    config = {
        "task": "classification",
        "model": {"name": "efficientvit-b0"},
        "data": {"root": root, "dataset": "imagenet", "crop": 160, "eval_size": 224, "batch_size": 16, "workers": 1},
        "optimizer": {"name": "adamw", "lr": 0.002, "weight_decay": 0.01},
        "schedule": {"warmup_steps": 10},
        "ema": {"enabled": False},
        "train": {"steps": steps, "eval_every": steps, "checkpoint_every": steps, "log_every": 50, "seed": 3},
        "output_dir": os.path.join(work, "run_imagenet"),
    }
    path = os.path.join(work, "imagenet.json")
    with open(path, "w") as f:
        json.dump(config, f)
    subprocess.run([EVIT, "train", path], check=True)
    return os.path.join(work, "run_imagenet", "checkpoint", "model.safetensors")


def reference_classifier(classes):
    backbone = ref.create_backbone("b0")
    width, act = ref.CLS_HEADS["b0"]
    head = ref.ClsHead(backbone.width_list[-1], width, classes, 0.0, "bn2d", act, ref._family_eps("b0"))
    return ref.EfficientViTCls(backbone, head)


def official_topk(model, root, size=224, crop_ratio=0.95):
    import torchvision
    from torchvision import transforms
    tf = transforms.Compose([
        transforms.Resize(int(math.ceil(size / crop_ratio)), interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.CenterCrop(size),
        transforms.ToTensor(),
        transforms.Normalize(MEAN.tolist(), STD.tolist()),
    ])
    data = torchvision.datasets.ImageFolder(root, transform=tf)
    top1 = top5 = 0
    with torch.inference_mode():
        for x, y in data:
            top = model(x[None])[0].topk(5).indices.tolist()
            top1 += top[0] == y
            top5 += y in top
    return 100.0 * top1 / len(data), 100.0 * top5 / len(data), len(data)


def reference_model(classes):
    # The b0 segmentation architecture with `classes` outputs (the reference defines b0 for
    # Cityscapes only; the head is the same with another class count).
    ref.SEG_HEADS[("b0", "any")] = ref.SEG_HEADS[("b0", "cityscapes")]
    ref.N_CLASSES["any"] = classes
    return ref.create_model("efficientvit-seg-b0-any")


def to_input(image):
    x = (image.astype(np.float32) / 255.0 - MEAN) / STD
    return torch.from_numpy(x.transpose(2, 0, 1).copy())[None]


def official_miou(model, samples, classes):
    inter = np.zeros(classes, np.int64)
    union = np.zeros(classes, np.int64)
    with torch.inference_mode():
        for image, mask in samples:
            out = model(to_input(image))
            if out.shape[-2:] != mask.shape:
                out = F.interpolate(out, size=mask.shape, mode="bicubic", align_corners=False)
            pred = out.argmax(1)[0].numpy()
            valid = (mask >= 0) & (mask < classes)
            p, t = pred[valid], mask[valid]
            i = np.bincount(t[p == t], minlength=classes)
            inter += i
            union += np.bincount(p, minlength=classes) + np.bincount(t, minlength=classes) - i
    scored = union > 0
    return float((inter[scored] / union[scored]).mean() * 100), int(scored.sum())


def ade20k_samples(root, crop=512):
    for path in sorted(glob.glob(os.path.join(root, "images/validation/*.jpg"))):
        image = np.array(Image.open(path).convert("RGB"))
        mask = np.array(Image.open(path.replace("images", "annotations").replace(".jpg", ".png")), dtype=np.int64) - 1
        h, w = image.shape[:2]
        if h < w:
            th, tw = crop, math.ceil(w / h * crop / 32) * 32
        else:
            tw, th = crop, math.ceil(h / w * crop / 32) * 32
        if th != h or tw != w:
            image = cv2.resize(image, dsize=(tw, th), interpolation=cv2.INTER_CUBIC)
        yield image, mask


def cityscapes_samples(root, crop=1024):
    for path in sorted(glob.glob(os.path.join(root, "leftImg8bit/val/*/*_leftImg8bit.png"))):
        image = np.array(Image.open(path).convert("RGB"))
        ids = np.array(Image.open(path.replace("leftImg8bit", "gtFine", 1).replace("_leftImg8bit.png", "_gtFine_labelIds.png")))
        mask = np.full(ids.shape, -1, np.int64)
        for label_id, train_id in CITYSCAPES_TRAIN_IDS.items():
            mask[ids == label_id] = train_id
        if image.shape[:2] != (crop, 2 * crop):
            image = cv2.resize(image, dsize=(2 * crop, crop), interpolation=cv2.INTER_CUBIC)
        yield image, mask


def main():
    results = {}
    recorded = os.path.join(GOLDEN, "eval_e2e.json")
    if os.path.exists(recorded):
        with open(recorded) as f:
            results = json.load(f)
    results.update({"torch": torch.__version__, "opencv": cv2.__version__})
    with tempfile.TemporaryDirectory() as work:
        # The samples are validation images only: copy them as the training split too.
        ade = os.path.join(work, "ADEChallengeData2016")
        shutil.copytree(os.path.join(SHARED, "ade20k_samples/ADEChallengeData2016"), ade)
        for sub in ("images", "annotations"):
            shutil.copytree(os.path.join(ade, sub, "validation"), os.path.join(ade, sub, "training"))
        city = os.path.join(work, "cityscapes")
        shutil.copytree(os.path.join(SHARED, "cityscapes_samples"), city)
        for sub in ("leftImg8bit", "gtFine"):
            shutil.copytree(os.path.join(city, sub, "val"), os.path.join(city, sub, "train"))
        for dataset, root, classes, samples in [("ade20k", ade, 150, ade20k_samples),
                                                ("cityscapes", city, 19, cityscapes_samples)]:
            if dataset not in ONLY:
                continue
            weights = train_with_evit(work, dataset, root, classes, 200)
            state = {k: v.to(torch.float16) if v.is_floating_point() else v for k, v in load_file(weights).items()}
            golden = os.path.join(GOLDEN, f"eval_e2e_{dataset}.safetensors")
            save_file(state, golden)
            model = reference_model(classes)
            model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()}, strict=True)
            model.eval()
            # The PyPI OpenCV hands INTER_CUBIC to Intel IPP, whose rounding differs from OpenCV's own
            # code by one level on a few percent of the pixels: score both.
            miou, scored = official_miou(model, list(samples(root)), classes)
            cv2.ipp.setUseIPP(False)
            exact, _ = official_miou(model, list(samples(root)), classes)
            cv2.ipp.setUseIPP(True)
            results[dataset] = {"miou": miou, "miou_opencv_without_ipp": exact, "classes_scored": scored,
                                "weights": os.path.basename(golden)}
            print(f"{dataset}: official mIoU {miou:.4f} (OpenCV without IPP: {exact:.4f}) over {scored} classes")
        # ImageNet: the samples are one image per class; they serve as the training split too.
        if "imagenet" in ONLY:
            imagenet = os.path.join(work, "imagenet")
            shutil.copytree(os.path.join(SHARED, "imagenet_samples/val"), os.path.join(imagenet, "val"))
            shutil.copytree(os.path.join(SHARED, "imagenet_samples/val"), os.path.join(imagenet, "train"))
            weights = train_classifier_with_evit(work, imagenet, 300)
            state = {k: v.to(torch.float16) if v.is_floating_point() else v for k, v in load_file(weights).items()}
            golden = os.path.join(GOLDEN, "eval_e2e_imagenet.safetensors")
            save_file(state, golden)
            model = reference_classifier(100)
            model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()}, strict=True)
            model.eval()
            top1, top5, n = official_topk(model, os.path.join(imagenet, "val"))
            results["imagenet"] = {"top1": top1, "top5": top5, "images": n, "weights": os.path.basename(golden)}
            print(f"imagenet: official top-1 {top1:.2f} top-5 {top5:.2f} over {n} images")
    with open(os.path.join(GOLDEN, "eval_e2e.json"), "w") as f:
        json.dump(results, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()

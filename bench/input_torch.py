"""Input-pipeline throughput of torchvision + timm on PIL images: the PyTorch side of
bench/bench_input.cpp (same folder, same recipe read from the same config, one thread).

Usage: input_torch.py [--config FILE] [--passes P] ROOT SPLIT
Each pass opens every image with PIL, converts it to RGB and applies RandomResizedCrop (bicubic),
RandomHorizontalFlip, timm's RandAugment from the config's string (bicubic, mean-colour fill, as
timm's create_transform sets it up), ToTensor and Normalize. Prints one JSON line like evit's."""
import argparse
import json
import os
import time

import torch
from PIL import Image
from torchvision import transforms as T
from torchvision.transforms import InterpolationMode

p = argparse.ArgumentParser()
p.add_argument("--config", default="configs/imagenet_b1.json")
p.add_argument("--passes", type=int, default=3)
p.add_argument("root")
p.add_argument("split")
a = p.parse_args()
torch.set_num_threads(1)

cfg = json.load(open(a.config))
data, train = cfg.get("data", {}), cfg.get("train", {})
crop = data.get("crop", 224)
mean = data.get("mean", [0.485, 0.456, 0.406])
std = data.get("std", [0.229, 0.224, 0.225])
steps = [T.RandomResizedCrop(crop, interpolation=InterpolationMode.BICUBIC), T.RandomHorizontalFlip()]
if train.get("rand_augment"):
    from timm.data.auto_augment import rand_augment_transform

    hparams = {"translate_const": int(crop * 0.45), "img_mean": tuple(round(255 * m) for m in mean),
               "interpolation": Image.BICUBIC}
    steps.append(rand_augment_transform(train["rand_augment"], hparams))
steps += [T.ToTensor(), T.Normalize(mean, std)]
if train.get("random_erasing", 0) > 0:
    steps.append(T.RandomErasing(train["random_erasing"], value="random"))
transform = T.Compose(steps)

folder = os.path.join(a.root, a.split)
files = sorted(os.path.join(folder, c, f) for c in sorted(os.listdir(folder))
               if os.path.isdir(os.path.join(folder, c)) for f in sorted(os.listdir(os.path.join(folder, c))))


def run_pass():
    n = 0
    for f in files:
        with open(f, "rb") as fh:
            img = Image.open(fh).convert("RGB")
        n += transform(img).numel()
    return n


run_pass()  # untimed: page cache and allocator warm-up, as on the evit side
t0 = time.perf_counter()
total = sum(run_pass() for _ in range(a.passes))
s = time.perf_counter() - t0
n = a.passes * len(files)
assert total == n * 3 * crop * crop
print(json.dumps({"side": "PyTorch", "images": n, "seconds": round(s, 4), "images_per_s": round(n / s, 2)}))

"""Reference pixels of the official evaluation protocols (tests/test_eval_protocol.cpp, tag
[evalproto]).

Run in an environment with the PyPI packages (opencv-python-headless, pillow, torch, torchvision):
    python tools/golden/gen_eval_protocol.py
Writes tests/golden/eval_protocol.safetensors.

- resize_<n>.*: random 8-bit images (1 and 3 channels, up- and down-scaling, odd sizes) with
  cv2.resize(INTER_CUBIC) computed by OpenCV's own code (IPP off: "opencv_exact") and by the
  default build (IPP on, as the official scripts run it: "opencv_ipp").
- pil_<n>.*: Pillow's BICUBIC resize of random images to torchvision Resize(int) sizes.
- ade20k_<k>.*: the official eval_seg_model.py input of each shared ADE20K validation image
  (PIL decode, short side 512, long side ceil(long/short*512/32)*32, cv2 INTER_CUBIC), before
  normalisation.
- cityscapes.*: the official Cityscapes input of the shared frame (resized to 1024x2048 when it
  differs).
- imagenet_<k>.*: torchvision Resize(ceil(224/0.95), BICUBIC) + CenterCrop(224) on the PIL image of
  shared ImageNet samples (the official eval_cls_model.py transform).
Real-sample cases store the PIL decode and the result sampled every `stride` pixels in both
directions (".source", ".output"), with their full sizes (".source_size", ".output_size"), to keep
the file small.
"""
import glob
import math
import os
import sys

import cv2
import numpy as np
import torch
import torchvision
from PIL import Image
from torchvision import transforms

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import GOLDEN_DIR, write_safetensors  # noqa: E402

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
SHARED = os.environ.get("EVIT_SHARED_DATA", os.path.join(REPO, "..", "shared", "data"))
STRIDE = 4
tensors = {}


def u8(a):
    return torch.from_numpy(np.array(a, dtype=np.uint8, copy=True))


def i64(values):
    return torch.tensor(values, dtype=torch.int64)


def cv_cubic(img, h, w, ipp):
    cv2.ipp.setUseIPP(ipp)
    out = cv2.resize(img, (w, h), interpolation=cv2.INTER_CUBIC)
    cv2.ipp.setUseIPP(True)
    return out.reshape(h, w, -1)


def pil_cubic(img, h, w):
    im = Image.fromarray(img[:, :, 0] if img.shape[2] == 1 else img)
    return np.array(im.resize((w, h), Image.BICUBIC)).reshape(h, w, -1)


# ---- the resizers on random images -------------------------------------------------------------
rng = np.random.default_rng(2026)
sizes = [((30, 40), (17, 23), 3), ((20, 25), (61, 47), 3), ((64, 48), (64, 96), 1), ((7, 5), (3, 11), 3),
         ((50, 33), (50, 17), 1), ((33, 50), (96, 50), 3), ((1, 9), (4, 9), 3), ((90, 120), (45, 61), 3)]
for n, ((h, w), (oh, ow), c) in enumerate(sizes):
    img = rng.integers(0, 256, (h, w, c), dtype=np.uint8)
    tensors[f"resize_{n}.source"] = u8(img)
    tensors[f"resize_{n}.opencv_exact"] = u8(cv_cubic(img, oh, ow, ipp=False))
    tensors[f"resize_{n}.opencv_ipp"] = u8(cv_cubic(img, oh, ow, ipp=True))

# Pillow on torchvision-style resizes (the short side to `size`, the aspect kept): the ImageNet
# protocol's only use of it.
for n, ((h, w), size, c) in enumerate([((30, 40), 17, 3), ((20, 25), 61, 3), ((64, 48), 32, 1), ((7, 5), 11, 3),
                                       ((50, 33), 17, 1), ((90, 120), 45, 3), ((120, 90), 236, 3), ((75, 100), 47, 3)]):
    img = rng.integers(0, 256, (h, w, c), dtype=np.uint8)
    short, long = min(h, w), max(h, w)
    oh, ow = (int(size * long / short), size) if w <= h else (size, int(size * long / short))
    tensors[f"pil_{n}.source"] = u8(img)
    tensors[f"pil_{n}.output"] = u8(pil_cubic(img, oh, ow))


def sampled(case, source, output):
    tensors[f"{case}.source"] = u8(source[::STRIDE, ::STRIDE])
    tensors[f"{case}.source_size"] = i64(list(source.shape[:2]))
    tensors[f"{case}.output"] = u8(output[::STRIDE, ::STRIDE])
    tensors[f"{case}.output_size"] = i64(list(output.shape[:2]))


# ---- ADE20K: eval_seg_model.py's ADE20KDataset ----------------------------------------------
ade = sorted(glob.glob(os.path.join(SHARED, "ade20k_samples/ADEChallengeData2016/images/validation/*.jpg")))
assert len(ade) == 3, f"expected the 3 shared ADE20K images under {SHARED}"
crop = 512
for k, path in enumerate(ade):
    image = np.array(Image.open(path).convert("RGB"))
    h, w = image.shape[:2]
    if h < w:
        th = crop
        tw = math.ceil(w / h * th / 32) * 32
    else:
        tw = crop
        th = math.ceil(h / w * tw / 32) * 32
    out = cv2.resize(image, dsize=(tw, th), interpolation=cv2.INTER_CUBIC) if (th != h or tw != w) else image
    sampled(f"ade20k_{k}", image, out)
    tensors[f"ade20k_{k}.name"] = u8(np.frombuffer(os.path.basename(path).encode(), dtype=np.uint8))

# ---- Cityscapes: Resize((crop, 2 crop)) with cv2 INTER_CUBIC ----------------------------------
city = sorted(glob.glob(os.path.join(SHARED, "cityscapes_samples/leftImg8bit/val/*/*_leftImg8bit.png")))
assert city, f"no Cityscapes frame under {SHARED}"
image = np.array(Image.open(city[0]).convert("RGB"))
out = cv2.resize(image, dsize=(2048, 1024), interpolation=cv2.INTER_CUBIC)
sampled("cityscapes", image, out)

# ---- ImageNet: eval_cls_model.py's transform ---------------------------------------------------
size, ratio = 224, 0.95
tf = transforms.Compose([transforms.Resize(int(math.ceil(size / ratio)), interpolation=transforms.InterpolationMode.BICUBIC),
                         transforms.CenterCrop(size)])
imagenet = sorted(glob.glob(os.path.join(SHARED, "imagenet_samples/val/*/*")))[:12]
assert imagenet, f"no ImageNet samples under {SHARED}"
for k, path in enumerate(imagenet):
    pil = Image.open(path).convert("RGB")
    out = np.array(tf(pil))
    sampled(f"imagenet_{k}", np.array(pil), out)
    tensors[f"imagenet_{k}.name"] = u8(np.frombuffer(os.path.relpath(path, SHARED).encode(), dtype=np.uint8))

meta = {"opencv": cv2.__version__, "pillow": Image.__version__, "torchvision": torchvision.__version__,
        "stride": STRIDE, "imagenet_count": len(imagenet)}
path = os.path.join(GOLDEN_DIR, "eval_protocol.safetensors")
write_safetensors(path, tensors, meta)
print(f"wrote {path} ({len(tensors)} tensors, {os.path.getsize(path)} bytes)")

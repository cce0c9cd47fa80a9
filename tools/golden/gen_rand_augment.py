"""Reference data for evit's RandAugment ops (tests/test_rand_augment.cpp, tag [randaug]).

Run: /usr/bin/python3 tools/golden/gen_rand_augment.py
Writes tests/golden/rand_augment.safetensors.

timm's RandAugment ("rand-n{n}-m{m}-mstd1.0-inc1") runs PIL operations on the 8-bit RGB image.
timm is not installed here, so each op is written below with the same PIL calls timm makes
(ImageOps / ImageEnhance / Image.transform / Image.rotate) and the same magnitude -> argument
mapping as timm/data/auto_augment.py. Every op is applied at two fixed magnitudes with a fixed
sign to a small synthetic image (37 wide x 29 high: gradients, stripes, a disc and noise, values
kept inside [18, 231] so AutoContrast has work to do).

Keys: "input" u8 [29,37,3]; for each case "<case>.y" u8 [29,37,3] and "<case>.arg" f64 [1] (the
op's argument after the level mapping; 0 for ops without one), "<case>.magnitude" f64 [1],
"<case>.negate" f64 [1] (1 = the random sign came out negative), and "<case>.resample"
(0 bilinear, 1 bicubic) for the geometric ops.
"""
import math
import os
import sys

import numpy as np
import torch
from PIL import Image, ImageEnhance, ImageOps

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Golden  # noqa: E402

FILL = (124, 116, 104)  # ImageNet mean x 255, rounded: timm's img_mean for the recipes
W, H = 37, 29


def test_image():
    rng = np.random.default_rng(2024)
    y, x = np.mgrid[0:H, 0:W].astype(np.float64)
    r = 20 + 200 * x / (W - 1)
    g = 30 + 190 * y / (H - 1)
    b = 120 + 90 * np.sin(x / 3.0) * np.cos(y / 4.0)
    disc = (x - 22) ** 2 + (y - 12) ** 2 < 49
    r[disc], g[disc], b[disc] = 210, 40, 60
    stripes = (x.astype(int) // 3) % 2 == 0
    g[(y > 20) & stripes] = 225
    img = np.stack([r, g, b], -1) + rng.normal(0, 6, (H, W, 3))
    return np.clip(np.rint(img), 18, 231).astype(np.uint8)


# ---- the ops, as timm calls PIL ----------------------------------------------------------------
def affine(img, matrix, resample):
    return img.transform(img.size, Image.AFFINE, matrix, resample=resample, fillcolor=FILL)


def solarize_add(img, add, thresh=128):
    lut = [min(255, i + add) if i < thresh else i for i in range(256)]
    return img.point(lut * 3)


def posterize(img, bits):
    return img if bits >= 8 else ImageOps.posterize(img, bits)


# ---- magnitude -> argument, as timm's *_level_to_arg (inc1 = the "increasing" variants) ---------
def signed(v, negate):
    return -v if negate else v


def enhance_increasing(m, negate):
    return max(0.1, 1.0 + signed((m / 10.0) * 0.9, negate))


OPS = {
    # name: (arg(m, negate), apply(img, arg, resample))
    "AutoContrast": (lambda m, n: 0.0, lambda im, a, r: ImageOps.autocontrast(im)),
    "Equalize": (lambda m, n: 0.0, lambda im, a, r: ImageOps.equalize(im)),
    "Invert": (lambda m, n: 0.0, lambda im, a, r: ImageOps.invert(im)),
    "Rotate": (lambda m, n: signed((m / 10.0) * 30.0, n),
               lambda im, a, r: im.rotate(a, resample=r, fillcolor=FILL)),
    "Posterize": (lambda m, n: int((m / 10.0) * 4), lambda im, a, r: posterize(im, int(a))),
    "PosterizeIncreasing": (lambda m, n: 4 - int((m / 10.0) * 4), lambda im, a, r: posterize(im, int(a))),
    "Solarize": (lambda m, n: int((m / 10.0) * 256), lambda im, a, r: ImageOps.solarize(im, int(a))),
    "SolarizeIncreasing": (lambda m, n: 256 - int((m / 10.0) * 256),
                           lambda im, a, r: ImageOps.solarize(im, int(a))),
    "SolarizeAdd": (lambda m, n: int((m / 10.0) * 110), lambda im, a, r: solarize_add(im, int(a))),
    "Color": (lambda m, n: (m / 10.0) * 1.8 + 0.1, lambda im, a, r: ImageEnhance.Color(im).enhance(a)),
    "ColorIncreasing": (enhance_increasing, lambda im, a, r: ImageEnhance.Color(im).enhance(a)),
    "Contrast": (lambda m, n: (m / 10.0) * 1.8 + 0.1, lambda im, a, r: ImageEnhance.Contrast(im).enhance(a)),
    "ContrastIncreasing": (enhance_increasing, lambda im, a, r: ImageEnhance.Contrast(im).enhance(a)),
    "Brightness": (lambda m, n: (m / 10.0) * 1.8 + 0.1, lambda im, a, r: ImageEnhance.Brightness(im).enhance(a)),
    "BrightnessIncreasing": (enhance_increasing, lambda im, a, r: ImageEnhance.Brightness(im).enhance(a)),
    "Sharpness": (lambda m, n: (m / 10.0) * 1.8 + 0.1, lambda im, a, r: ImageEnhance.Sharpness(im).enhance(a)),
    "SharpnessIncreasing": (enhance_increasing, lambda im, a, r: ImageEnhance.Sharpness(im).enhance(a)),
    "ShearX": (lambda m, n: signed((m / 10.0) * 0.3, n), lambda im, a, r: affine(im, (1, a, 0, 0, 1, 0), r)),
    "ShearY": (lambda m, n: signed((m / 10.0) * 0.3, n), lambda im, a, r: affine(im, (1, 0, 0, a, 1, 0), r)),
    "TranslateXRel": (lambda m, n: signed((m / 10.0) * 0.45, n),
                      lambda im, a, r: affine(im, (1, 0, a * im.size[0], 0, 1, 0), r)),
    "TranslateYRel": (lambda m, n: signed((m / 10.0) * 0.45, n),
                      lambda im, a, r: affine(im, (1, 0, 0, 0, 1, a * im.size[1]), r)),
}
GEOMETRIC = {"Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel"}

# (magnitude, negate): a mild one with a positive sign and a strong one with a negative sign, as
# the noisy magnitude (mstd 1.0) produces them: not integers.
SETTINGS = [(3.3, False), (8.7, True)]


def main():
    g = Golden("rand_augment")
    x = test_image()
    g.add("all", "input", torch.from_numpy(x.copy()))
    pil = Image.fromarray(x, "RGB")
    for name, (arg_fn, apply) in OPS.items():
        for k, (m, neg) in enumerate(SETTINGS):
            resamples = [Image.BICUBIC, Image.BILINEAR] if name in GEOMETRIC else [None]
            for r in resamples:
                case = f"{name}_{k}" + ("_bilinear" if r == Image.BILINEAR else "")
                a = arg_fn(m, neg)
                y = np.asarray(apply(pil, a, r), dtype=np.uint8)
                assert y.shape == x.shape, (case, y.shape)
                g.add(case, "y", torch.from_numpy(y.copy()))
                g.add(case, "arg", torch.tensor([float(a)], dtype=torch.float64))
                g.add(case, "magnitude", torch.tensor([m], dtype=torch.float64))
                g.add(case, "negate", torch.tensor([1.0 if neg else 0.0], dtype=torch.float64))
                if r is not None:
                    g.add(case, "resample", torch.tensor([1.0 if r == Image.BICUBIC else 0.0], dtype=torch.float64))
    g.write()


if __name__ == "__main__":
    main()

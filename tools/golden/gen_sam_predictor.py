"""Reference values of SAM's predictor frames (tests/test_sam_predictor.cpp, tag [sam]).

Run in an environment with the PyPI packages (torch, torchvision, pillow, segment-anything):
    python tools/golden/gen_sam_predictor.py
Writes tests/golden/sam_predictor.safetensors:

- pre_<n>.*: the encoder input of EfficientViT-SAM's transform (longest side to 512 or 1024 with
  torchvision's resize of the PIL image, i.e. Pillow BILINEAR; ToTensor; Normalize with the SAM
  mean/std over 255; zero padding right/bottom) for shared COCO images and generated ones
  (gray, already at size, tall; stored, while the COCO ones are named). Stored every size/64
  pixels (".sampled") with the full sum.
- pred_<n>.*: segment-anything's PromptEncoder + MaskDecoder with the parity fill
  (tools/reference/efficientvit_ref.py golden_fill, keys prefixed prompt_encoder. / mask_decoder.),
  a fixed embedding, and EfficientViT-SAM predictor's steps: prompts scaled from the original image
  to its size in the 1024 frame, decode, masks bilinearly to 1024², cropped, to the original size.
  Stores the low-res logits every STRIDE/2 pixels, the IoU predictions, and the final logits every
  STRIDE pixels, each with its per-mask sum, and the count of final pixels > 0.
"""
import glob
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from segment_anything.modeling import MaskDecoder, PromptEncoder, TwoWayTransformer
from torchvision.transforms import functional as TF

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
from common import GOLDEN_DIR, write_safetensors  # noqa: E402
from efficientvit_ref import golden_fill, golden_input  # noqa: E402

REPO = os.path.join(HERE, "..", "..")
SHARED = os.environ.get("EVIT_SHARED_DATA", os.path.join(REPO, "..", "shared", "data"))
STRIDE = 8
MEAN = [123.675 / 255, 116.28 / 255, 103.53 / 255]
STD = [58.395 / 255, 57.12 / 255, 57.375 / 255]


def preprocess_shape(h, w, long_side):
    scale = long_side * 1.0 / max(h, w)
    return int(h * scale + 0.5), int(w * scale + 0.5)


def sam_transform(rgb, size):
    """EfficientViT-SAM's image transform on an HxWx3 uint8 array."""
    h, w, _ = rgb.shape
    if max(h, w) != size:
        rgb = np.array(TF.resize(TF.to_pil_image(rgb), list(preprocess_shape(h, w, size))))
    t = TF.normalize(TF.to_tensor(rgb), MEAN, STD)
    return F.pad(t, (0, size - t.shape[2], 0, size - t.shape[1]), value=0)


def preprocess_cases(tensors):
    rng = np.random.default_rng(11)
    images = []  # (image, the shared file it came from or "" when generated and stored)
    for path in sorted(glob.glob(os.path.join(SHARED, "coco_val2017_samples", "val2017", "*.jpg")))[:2]:
        images.append((np.array(Image.open(path).convert("RGB")), os.path.basename(path)))
    gray = rng.integers(0, 256, (150, 100), dtype=np.uint8)
    images.append((np.stack([gray] * 3, axis=2), ""))                     # gray image repeated, tall
    images.append((rng.integers(0, 256, (512, 40, 3), dtype=np.uint8), ""))   # longest side already 512
    images.append((rng.integers(0, 256, (37, 1030, 3), dtype=np.uint8), ""))  # wide, slightly above 1024
    n = 0
    for img, name in images:
        for size in (512, 1024):
            t = sam_transform(img, size)
            if name:
                tensors[f"pre_{n}.coco_file"] = torch.tensor(list(name.encode()), dtype=torch.uint8)
            else:
                tensors[f"pre_{n}.image"] = torch.from_numpy(np.ascontiguousarray(img))
            tensors[f"pre_{n}.size"] = torch.tensor([size], dtype=torch.int64)
            step = size // 64
            tensors[f"pre_{n}.sampled"] = t[:, ::step, ::step].contiguous()
            tensors[f"pre_{n}.sum"] = t.double().sum().reshape(1)
            n += 1
    return n


def build_prompt_modules():
    pe = PromptEncoder(embed_dim=256, image_embedding_size=(64, 64), input_image_size=(1024, 1024), mask_in_chans=16)
    dec = MaskDecoder(num_multimask_outputs=3,
                      transformer=TwoWayTransformer(depth=2, embedding_dim=256, mlp_dim=2048, num_heads=8),
                      transformer_dim=256, iou_head_depth=3, iou_head_hidden_dim=256)
    golden_fill(pe, "prompt_encoder.")
    golden_fill(dec, "mask_decoder.")
    return pe.eval(), dec.eval()


def predict(pe, dec, embedding, original, points, labels, box, multimask):
    """EfficientViT-SAM predictor.predict + predict_torch + postprocess_masks (image_size[0] = 1024)."""
    old_h, old_w = original
    new_h, new_w = preprocess_shape(old_h, old_w, 1024)
    pts = None
    if points is not None:
        c = np.array(points, dtype=float)
        c[..., 0] = c[..., 0] * (new_w / old_w)
        c[..., 1] = c[..., 1] * (new_h / old_h)
        pts = (torch.as_tensor(c, dtype=torch.float)[None], torch.as_tensor(labels, dtype=torch.int)[None])
    boxes = None
    if box is not None:
        b = np.array(box, dtype=float).reshape(-1, 2, 2)
        b[..., 0] = b[..., 0] * (new_w / old_w)
        b[..., 1] = b[..., 1] * (new_h / old_h)
        boxes = torch.as_tensor(b.reshape(-1, 4), dtype=torch.float)[None]
    sparse, dense = pe(points=pts, boxes=boxes, masks=None)
    low, iou = dec(image_embeddings=embedding, image_pe=pe.get_dense_pe(), sparse_prompt_embeddings=sparse,
                   dense_prompt_embeddings=dense, multimask_output=multimask)
    masks = F.interpolate(low, (1024, 1024), mode="bilinear", align_corners=False)
    masks = masks[..., :new_h, :new_w]
    masks = F.interpolate(masks, original, mode="bilinear", align_corners=False)
    return low, iou, masks


def prediction_cases(tensors):
    pe, dec = build_prompt_modules()
    embedding = golden_input([1, 256, 64, 64])
    cases = [
        ((427, 640), None, None, [60.7, 30.3, 269.8, 238.4], True),
        ((427, 640), [[300.0, 200.0], [100.0, 50.0]], [1, 0], None, False),
        ((427, 640), [[150.5, 120.25]], [1], None, True),
        ((500, 333), [[200.0, 300.0]], [1], [20.0, 40.0, 310.0, 480.0], True),
        ((64, 1500), None, None, [10.0, 5.0, 900.0, 60.0], False),
    ]
    with torch.no_grad():
        for n, (original, points, labels, box, multimask) in enumerate(cases):
            low, iou, masks = predict(pe, dec, embedding, original, points, labels, box, multimask)
            k = f"pred_{n}"
            tensors[f"{k}.original"] = torch.tensor(original, dtype=torch.int64)
            tensors[f"{k}.points"] = torch.tensor(points if points else [], dtype=torch.float64).reshape(-1, 2)
            tensors[f"{k}.labels"] = torch.tensor(labels if labels else [], dtype=torch.int64)
            tensors[f"{k}.box"] = torch.tensor(box if box else [], dtype=torch.float64)
            tensors[f"{k}.multimask"] = torch.tensor([int(multimask)], dtype=torch.int64)
            tensors[f"{k}.low_res_sampled"] = low[0, :, ::STRIDE // 2, ::STRIDE // 2].contiguous()
            tensors[f"{k}.low_res_sum"] = low[0].double().sum(dim=(1, 2))
            tensors[f"{k}.iou"] = iou[0].contiguous()
            tensors[f"{k}.sampled"] = masks[0, :, ::STRIDE, ::STRIDE].contiguous()
            tensors[f"{k}.sum"] = masks[0].double().sum(dim=(1, 2))
            tensors[f"{k}.positive"] = (masks[0] > 0).sum(dim=(1, 2)).to(torch.int64)
    return len(cases)


def main():
    tensors = {}
    n_pre = preprocess_cases(tensors)
    n_pred = prediction_cases(tensors)
    path = os.path.join(GOLDEN_DIR, "sam_predictor.safetensors")
    write_safetensors(path, tensors, {"generator": "tools/golden/gen_sam_predictor.py", "torch": torch.__version__,
                                      "stride": STRIDE})
    print(f"wrote {path}: {n_pre} preprocessing cases, {n_pred} prediction cases")


if __name__ == "__main__":
    main()

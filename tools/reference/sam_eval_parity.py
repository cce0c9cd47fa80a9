"""The official EfficientViT-SAM evaluation on the shared COCO sample with fixed weights, for
evit's metric-parity test (tests/test_sam_eval.cpp, tag [sam]).

Needs a checkout of the official EfficientViT code (its source is only imported, never copied) and
the PyPI packages it imports (torch, torchvision, timm, onnx, onnxsim, omegaconf, opencv-python-headless,
pycocotools, segment-anything):

    EFFICIENTVIT_REPO=/path/to/efficientvit python tools/reference/sam_eval_parity.py

The model is the official efficientvit-sam-l0 with every state-dict tensor set by the parity fill
(tools/reference/efficientvit_ref.py golden_fill, the same as tests/support fill_deterministic).
That fill makes every mask logit negative (empty masks, IoU 0 everywhere), so the biases of the
hypernetworks' last layers are then shifted to centre the logits of the first image's first box
prompt on 0 (bias += -(h·mu) mu/|mu|², with h a token's hypernetwork output and mu the mean upscaled
feature), and the hypernetwork layers scaled by SCALE; the resulting weights and biases' changes
are stored in the golden file, and the C++ test applies them the same way.
For the first IMAGES images of the sample's annotation file it runs the official script's box and
point loops (eval_efficientvit_sam_model.py: ann_to_mask, predict_mask_from_box,
predict_mask_from_point, run once per click count as the script is run) with its Clicker, iou and
get_iou_metric (sam_eval_utils.py), and writes tests/golden/sam_eval.json: per annotation the box
IoU, the IoU after 1, 3 and 5 clicks and the clicks placed, and the metrics per bucket.
"""
import json
import os
import sys
import types

import numpy as np
import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.join(HERE, "..", "..")
SHARED = os.environ.get("EVIT_SHARED_DATA", os.path.join(REPO, "..", "shared", "data"))
OUT = os.path.join(REPO, "tests", "golden", "sam_eval.json")
IMAGES = 2
SCALE = 50.0
CLICKS = (1, 3, 5)


def import_official():
    root = os.environ.get("EFFICIENTVIT_REPO")
    if not root or not os.path.isdir(os.path.join(root, "efficientvit")):
        sys.exit("set EFFICIENTVIT_REPO to a checkout of the official EfficientViT code")
    # The evaluation module imports the LVIS toolkit for its LVIS path only; the COCO loops do not use it.
    lvis = types.ModuleType("lvis")
    lvis.LVIS = lvis.LVISEval = lvis.LVISResults = None
    sys.modules.setdefault("lvis", lvis)
    sys.path.insert(0, os.path.join(root, "applications", "efficientvit_sam"))
    sys.path.insert(0, root)
    import eval_efficientvit_sam_model as official_eval
    import sam_eval_utils
    from efficientvit.models.efficientvit.sam import EfficientViTSamPredictor
    from efficientvit.sam_model_zoo import create_efficientvit_sam_model
    return official_eval, sam_eval_utils, EfficientViTSamPredictor, create_efficientvit_sam_model


def centre_mask_logits(model, predictor, official_eval, root, dataset, first_image):
    """Shifts and scales the hypernetworks' last layers (see the module comment); returns the new
    tensors by state-dict key."""
    dec = model.mask_decoder
    captured = {}
    hooks = [dec.output_upscaling.register_forward_hook(lambda m, i, o: captured.__setitem__("up", o))]
    for i, mlp in enumerate(dec.output_hypernetworks_mlps):
        hooks.append(mlp.register_forward_hook(lambda m, inp, o, i=i: captured.__setitem__(i, o)))
    image = np.array(Image.open(os.path.join(root, "val2017", first_image["file_name"])).convert("RGB"))
    ann = next(a for a in dataset["annotations"] if a["image_id"] == first_image["id"])
    with torch.no_grad():
        predictor.set_image(image)
        official_eval.predict_mask_from_box(predictor, np.array(official_eval.bbox_xywh_to_xyxy(ann["bbox"])))
    for h in hooks:
        h.remove()
    mu = captured["up"].mean(dim=(0, 2, 3)).double()
    changes = {}
    with torch.no_grad():
        for i, mlp in enumerate(dec.output_hypernetworks_mlps):
            last = mlp.layers[-1]
            h = captured[i][0].double()
            shift = -(h @ mu) * mu / (mu @ mu)
            last.bias.copy_(((last.bias.double() + shift) * SCALE).float())
            last.weight.mul_(SCALE)
            prefix = f"mask_decoder.output_hypernetworks_mlps.{i}.layers.{len(mlp.layers) - 1}"
            changes[prefix + ".bias"] = [float(v) for v in last.bias]
    return changes


def main():
    official_eval, utils, Predictor, create = import_official()
    sys.path.insert(0, HERE)
    from efficientvit_ref import golden_fill

    model = create("efficientvit-sam-l0", pretrained=False)
    golden_fill(model)
    model.eval()
    predictor = Predictor(model)

    root = os.path.join(SHARED, "coco_val2017_samples")
    dataset = json.load(open(os.path.join(root, "annotations", "instances_val2017.json")))
    images = dataset["images"][:IMAGES]
    changes = centre_mask_logits(model, predictor, official_eval, root, dataset, images[0])
    box_results, point_results = [], {k: [] for k in CLICKS}
    per_ann = {}
    with torch.no_grad():
        for im in images:
            image = np.array(Image.open(os.path.join(root, "val2017", im["file_name"])).convert("RGB"))
            predictor.set_image(image)
            for ann in [a for a in dataset["annotations"] if a["image_id"] == im["id"]]:
                if ann["area"] < 1:
                    continue
                gt = official_eval.ann_to_mask(ann, image.shape[0], image.shape[1])
                box = np.array(official_eval.bbox_xywh_to_xyxy(ann["bbox"]))
                box_iou = utils.iou(official_eval.predict_mask_from_box(predictor, box), gt)
                box_results.append({"area": ann["area"], "iou": box_iou})
                entry = {"image_id": im["id"], "area": ann["area"], "box": box_iou, "clicks": {}}
                for k in CLICKS:  # the script is run once per click count
                    clicker = utils.Clicker(gt_mask=gt)
                    pred = np.zeros_like(gt)
                    coords, labels = [], []
                    for _ in range(k):
                        clicker.make_next_click(pred)
                        coords.append(clicker.clicks_list[-1].coords[::-1])
                        labels.append(int(clicker.clicks_list[-1].is_positive))
                        pred = official_eval.predict_mask_from_point(predictor, np.stack(coords, axis=0), np.array(labels))
                    v = utils.iou(pred, gt)
                    point_results[k].append({"area": ann["area"], "iou": v})
                    entry["clicks"][str(k)] = v
                    if k == max(CLICKS):
                        entry["placed"] = [[int(c[0]), int(c[1]), l] for c, l in zip(coords, labels)]
                per_ann[str(ann["id"])] = entry
    golden = {
        "generator": "tools/reference/sam_eval_parity.py",
        "model": "efficientvit-sam-l0 (parity fill)",
        "images": [im["file_name"] for im in images],
        "scale_hypernetwork_weights": SCALE,
        "hypernetwork_biases": changes,
        "annotations": per_ann,
        "box": utils.get_iou_metric(box_results),
        "points": {str(k): utils.get_iou_metric(point_results[k]) for k in CLICKS},
    }
    with open(OUT + ".tmp", "w") as f:
        json.dump(golden, f, indent=1)
    os.replace(OUT + ".tmp", OUT)
    print(f"wrote {OUT}: {len(per_ann)} annotations of {len(images)} images")
    print("box   ", ", ".join(f"{k}={v:.3f}" for k, v in golden["box"].items()))
    for k in CLICKS:
        print(f"{k} clicks", ", ".join(f"{b}={v:.3f}" for b, v in golden["points"][str(k)].items()))


if __name__ == "__main__":
    main()

"""Reference COCO masks from pycocotools (tests/test_coco_masks.cpp, tag [coco]).

Run in an environment with the PyPI packages (pycocotools, numpy):
    python tools/golden/gen_coco_masks.py
Writes tests/golden/coco_masks.json:

- "polygons": generated polygon annotations of many shapes (convex, star-shaped, self-crossing
  ones whose crossing leaves a hole, slivers, sub-pixel ones, duplicate and collinear vertices,
  vertices on and beyond every image edge, fractional and integer coordinates), each a list of
  parts; with pycocotools' per-part strings, the merged string (annToRLE's merge of frPyObjects),
  area and toBbox. (pycocotools refuses a list whose first part has 4 numbers: it takes them for boxes
  and fails; later short parts are rasterised as polygons.)
- "boxes": frBbox masks of boxes [x, y, w, h] (fractional, beyond the edges).
- "masks": random row-major masks (given as their uncompressed counts) with the compressed string
  of encode(), the union and intersection strings of consecutive pairs, area and toBbox.
- "coco_samples": annToRLE, area and toBbox of every annotation of the shared COCO val2017 sample
  (keyed by annotation id), when ../shared/data is present.
"""
import json
import math
import os
import random

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
SHARED = os.environ.get("EVIT_SHARED_DATA", os.path.join(REPO, "..", "shared", "data"))
OUT = os.path.join(REPO, "tests", "golden", "coco_masks.json")


def bbox_list(b):
    return [float(v) for v in b]


def polygon_case(name, parts, h, w):
    rles = mask_utils.frPyObjects(parts, h, w)
    merged = mask_utils.merge(rles)
    return {
        "name": name, "h": h, "w": w, "parts": parts,
        "part_strings": [r["counts"].decode() for r in rles],
        "string": merged["counts"].decode(),
        "area": int(mask_utils.area(merged)),
        "bbox": bbox_list(mask_utils.toBbox(merged)),
    }


def regular(cx, cy, r, n, phase=0.0, star=1.0):
    pts = []
    for i in range(n):
        rr = r if i % 2 == 0 else r * star
        a = phase + 2 * math.pi * i / n
        pts += [cx + rr * math.cos(a), cy + rr * math.sin(a)]
    return pts


def generated_polygons(rng):
    cases = []
    h, w = 37, 53
    cases.append(polygon_case("triangle", [[3.2, 4.7, 40.1, 10.3, 20.6, 30.9]], h, w))
    cases.append(polygon_case("integer_square", [[10, 10, 20, 10, 20, 20, 10, 20]], h, w))
    cases.append(polygon_case("half_pixel_square", [[9.5, 9.5, 20.5, 9.5, 20.5, 20.5, 9.5, 20.5]], h, w))
    cases.append(polygon_case("whole_image", [[0, 0, w, 0, w, h, 0, h]], h, w))
    cases.append(polygon_case("beyond_every_edge", [[-7.3, -4.1, w + 6.2, -2.0, w + 3.3, h + 8.8, -5.5, h + 1.2]], h, w))
    cases.append(polygon_case("touching_left_top", [[0, 0, 12.4, 0, 0, 9.9]], h, w))
    cases.append(polygon_case("touching_right_bottom", [[w, h, w - 14.2, h, w, h - 11.7]], h, w))
    cases.append(polygon_case("sliver", [[2.0, 5.0, 50.0, 5.3, 50.0, 5.6]], h, w))
    cases.append(polygon_case("sub_pixel", [[10.2, 10.2, 10.6, 10.3, 10.4, 10.7]], h, w))
    cases.append(polygon_case("duplicate_and_collinear", [[5, 5, 5, 5, 15, 5, 25, 5, 25, 25, 25, 25, 5, 25]], h, w))
    cases.append(polygon_case("star", [regular(26, 18, 16, 10, 0.3, 0.4)], h, w))
    cases.append(polygon_case("bow_tie", [[5, 5, 45, 30, 45, 5, 5, 30]], h, w))
    # A pentagram drawn in one stroke: its crossings leave the centre pentagon out (even-odd fill).
    cases.append(polygon_case("pentagram_hole", [sum(([26 + 16 * math.cos(math.pi / 2 + 4 * math.pi * i / 5),
                                                       18 - 16 * math.sin(math.pi / 2 + 4 * math.pi * i / 5)]
                                                      for i in range(5)), [])], h, w))
    cases.append(polygon_case("two_parts_overlapping", [[2, 2, 30, 2, 30, 30, 2, 30], [20, 10, 50, 10, 50, 35, 20, 35]], h, w))
    cases.append(polygon_case("two_parts_disjoint", [[1, 1, 8, 1, 8, 8], [30.5, 20.5, 45.5, 22.5, 40.5, 33.5]], h, w))
    cases.append(polygon_case("short_second_part", [[3, 3, 30, 3, 30, 30], [40.2, 5.5, 44.7, 20.1]], h, w))
    cases.append(polygon_case("tall_image", [regular(3, 40, 5, 7, 0.1)], 90, 7))
    cases.append(polygon_case("wide_image", [regular(50, 2.5, 6, 9, 0.7)], 5, 110))
    cases.append(polygon_case("one_pixel_image", [[0, 0, 1, 0, 1, 1, 0, 1]], 1, 1))
    for i in range(40):
        hh, ww = rng.randint(8, 70), rng.randint(8, 70)
        parts = []
        for _ in range(rng.randint(1, 3)):
            n = rng.randint(3, 14)
            if rng.random() < 0.5:
                pts = regular(rng.uniform(-5, ww + 5), rng.uniform(-5, hh + 5), rng.uniform(1, 40), n,
                              rng.uniform(0, 6.3), rng.uniform(0.2, 1.0))
            else:
                pts = []
                for _ in range(n):
                    pts += [rng.uniform(-10, ww + 10), rng.uniform(-10, hh + 10)]
            if rng.random() < 0.3:
                pts = [float(round(v)) for v in pts]
            elif rng.random() < 0.3:
                pts = [round(v * 2) / 2 for v in pts]
            else:
                pts = [round(v, 2) for v in pts]
            parts.append(pts)
        cases.append(polygon_case(f"random_{i}", parts, hh, ww))
    return cases


def uncompressed_counts(m):
    flat = m.flatten(order="F")
    counts, cur, run = [], 0, 0
    for v in flat:
        if v != cur:
            counts.append(run)
            run, cur = 0, v
        run += 1
    counts.append(run)
    return counts


def generated_masks(rng):
    cases = []
    np_rng = np.random.default_rng(7)
    masks = []
    for i in range(24):
        h, w = (1, 1) if i == 0 else (rng.randint(1, 40), rng.randint(1, 40))
        if i % 6 == 1:
            h, w = 20, 30  # several of one size, for merges
        kind = i % 4
        if kind == 0:
            m = (np_rng.random((h, w)) < 0.5).astype(np.uint8)
        elif kind == 1:
            m = np.zeros((h, w), np.uint8)
            m[h // 4:h // 2 + 1, w // 3:] = 1
        elif kind == 2:
            m = np.ones((h, w), np.uint8) if i % 8 == 2 else np.zeros((h, w), np.uint8)
        else:
            m = (np_rng.random((h, w)) < 0.9).astype(np.uint8)
        masks.append(m)
    # A large mask with long runs, so the compressed string needs multi-character runs and
    # negative differences.
    big = np.zeros((300, 500), np.uint8)
    big[17:290, 3:480] = 1
    big[100:200, 100:400] = 0
    big[0, :] = 1
    masks.append(big)
    for i, m in enumerate(masks):
        rle = mask_utils.encode(np.asfortranarray(m))
        cases.append({
            "name": f"mask_{i}", "h": int(m.shape[0]), "w": int(m.shape[1]),
            "counts": uncompressed_counts(m), "string": rle["counts"].decode(),
            "area": int(mask_utils.area(rle)), "bbox": bbox_list(mask_utils.toBbox(rle)),
        })
    merges = []
    for i in range(len(masks)):
        for j in range(i + 1, len(masks)):
            if masks[i].shape != masks[j].shape:
                continue
            a = mask_utils.encode(np.asfortranarray(masks[i]))
            b = mask_utils.encode(np.asfortranarray(masks[j]))
            merges.append({"a": i, "b": j,
                           "union": mask_utils.merge([a, b], intersect=False)["counts"].decode(),
                           "intersection": mask_utils.merge([a, b], intersect=True)["counts"].decode()})
    return cases, merges


def coco_samples():
    path = os.path.join(SHARED, "coco_val2017_samples", "annotations", "instances_val2017.json")
    if not os.path.exists(path):
        print(f"no shared COCO sample at {path}: coco_samples left empty")
        return {}
    coco = COCO(path)
    out = {}
    for ann in coco.dataset["annotations"]:
        rle = coco.annToRLE(ann)
        out[str(ann["id"])] = {"string": rle["counts"].decode() if isinstance(rle["counts"], bytes) else rle["counts"],
                               "area": int(mask_utils.area(rle)), "bbox": bbox_list(mask_utils.toBbox(rle))}
    return out


def generated_boxes(rng):
    cases = []
    boxes = [[4.5, 6.25, 20.0, 12.75], [0, 0, 53, 37], [-3.2, 30.1, 20.4, 15.0], [10, 10, 0.3, 0.3]]
    boxes += [[round(rng.uniform(-10, 50), 2), round(rng.uniform(-10, 35), 2), round(rng.uniform(0, 40), 2),
               round(rng.uniform(0, 30), 2)] for _ in range(12)]
    for i, b in enumerate(boxes):
        rle = mask_utils.frPyObjects(np.array([b], dtype=np.float64), 37, 53)[0]
        cases.append({"name": f"box_{i}", "h": 37, "w": 53, "box": b, "string": rle["counts"].decode()})
    return cases


def main():
    rng = random.Random(2024)
    masks, merges = generated_masks(rng)
    golden = {
        "generator": "tools/golden/gen_coco_masks.py",
        "polygons": generated_polygons(rng),
        "boxes": generated_boxes(rng),
        "masks": masks,
        "merges": merges,
        "coco_samples": coco_samples(),
    }
    with open(OUT + ".tmp", "w") as f:
        json.dump(golden, f, separators=(",", ":"))
    os.replace(OUT + ".tmp", OUT)
    print(f"wrote {OUT}: {len(golden['polygons'])} polygon cases, {len(masks)} masks, {len(merges)} merges, "
          f"{len(golden['coco_samples'])} COCO sample annotations")


if __name__ == "__main__":
    main()

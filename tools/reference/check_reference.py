"""Checks tools/reference/efficientvit_ref.py against recorded numbers of the released models:
parameter / state-dict counts (docs/models.md) and golden forward values on the deterministic
fill (sine weights and input, eval mode). Prints one PASS/FAIL line per row and exits
non-zero if any row fails.

    /usr/bin/python3 tools/reference/check_reference.py [--skip-forward]
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import efficientvit_ref as ev  # noqa: E402

# ---------------------------------------------------------------------------------------------
# parameter counts and key counts of the released models (docs/models.md)

# name: (params, backbone, head, keys, state numel)
CLS = {
    "b0": (3410008, 682608, 2727400, 197, 3415394),
    "b1": (9102024, 4643936, 4458088, 272, 9115467),
    "b2": (24330712, 14977008, 9353704, 365, 24357303),
    "b3": (48646056, 38997440, 9648616, 514, 48693930),
    "l1": (52654088, 38037280, 14616808, 271, 52682728),
    "l2": (63707016, 49090208, 14616808, 353, 63742706),
    "l3": (246037288, 193998144, 52039144, 353, 246108626),
}
# per-stage split: stem/stage0, stage1..stage4, head
CLS_STAGES = {
    "b0": (400, 4128, 13888, 142208, 521984, 2727400),
    "b1": (928, 13888, 86528, 756864, 3785728, 4458088),
    "b2": (1584, 50304, 267072, 2200320, 12457728, 9353704),
    "b3": (2368, 122752, 742656, 5650944, 32478720, 9648616),
    "l1": (19488, 345856, 1379840, 4025856, 32266240, 14616808),
    "l2": (19488, 510336, 2036480, 5097984, 41425920, 14616808),
    "l3": (75840, 2036480, 8136192, 20157440, 163592192, 52039144),
}
# (arch, dataset): (params, head params, keys, state numel)
SEG = {
    ("b0", "cityscapes"): (706691, 24083, 230, 711059),
    ("b1", "cityscapes"): (4803443, 159507, 341, 4818178),
    ("b2", "cityscapes"): (15323779, 346771, 434, 15352302),
    ("b3", "cityscapes"): (39603155, 605715, 583, 39655137),
    ("l1", "cityscapes"): (40242227, 2204947, 316, 40269339),
    ("l2", "cityscapes"): (52607923, 3517715, 422, 52644137),
    ("b1", "ade20k"): (4791414, 147478, 335, 4805636),
    ("b2", "ade20k"): (15293382, 316374, 428, 15321136),
    ("b3", "ade20k"): (39546198, 548758, 577, 39597155),
    ("l1", "ade20k"): (40409526, 2372246, 322, 40438687),
    ("l2", "ade20k"): (51462454, 2372246, 404, 51498665),
}
# SAM image encoder: (image encoder, backbone, neck, ln2d)
SAM = {
    "l0": (30728224, 27805472, 2922240, 512),
    "l1": (43585568, 38037280, 5547776, 512),
    "l2": (57264032, 49090208, 8173312, 512),
    "xl0": (112893344, 96622752, 16270080, 512),
    "xl1": (199281568, 167266976, 32014080, 512),
}

# outputs on the deterministic fill: name -> (sum, sum abs, first values, output shape)
GOLDEN = {
    "LiteMLA(16,16,d8,k5) linear": (48.5932, 588.073,
                                    [-0.0813109, -0.0812599, -0.0811851, 0.0287315], (2, 16, 6, 6)),
    "LiteMLA(16,16,d8,k5) quadratic": (-3.65857, 27.6715,
                                       [0.573206, 0.573039, 0.571961, 0.572310], (1, 16, 2, 2)),
    "EViTBlock(32,d16,e4,k5,hswish)": (63.1107, 1289.83,
                                       [-0.0746105, -0.0629920, -0.0500051, -0.0370247],
                                       (1, 32, 8, 8)),
    "EViTBlock(64,d32,e6,k3,gelu)": (146.281, 2625.40,
                                     [0.0303588, 0.0443428, 0.0574425, 0.0705393], (1, 64, 8, 8)),
    "cls B0 224": (-0.111149, 277.452, [-0.416516, 0.337954, -0.0171015, -0.286881], (1, 1000)),
    "cls B0 64 (quadratic)": (-0.110772, 280.575,
                              [-0.421320, 0.342810, -0.0191992, -0.288756], (1, 1000)),
    "cls B1 224": (-0.0117526, 321.557, [-0.486067, -0.0702608, 0.480608, 0.264109], (1, 1000)),
    "cls L1 224": (-1.19289, 745.905, [-1.13773, 1.15692, -0.957834, 0.652104], (1, 1000)),
    "seg B0 Cityscapes 256x512": (-190.624, 5737.91,
                                  [0.0903442, 0.0903966, 0.0904208, 0.0904090], (1, 19, 32, 64)),
    "seg B1 ADE20K 256x256": (1418.84, 149480.0,
                              [-0.826351, -0.793103, -0.790166, -0.788282], (1, 150, 32, 32)),
    "seg L1 Cityscapes 256x512": (-21606.0, 65961.8,
                                  [-0.976225, -0.977623, -0.978987, -0.980839], (1, 19, 32, 64)),
}
# per-stage backbone (sum, sum abs) at 224 with the classification-model keys
STAGE_SUMS = {
    "b1": [(36.3465, 9958.16), (-540.697, 6098.91), (-309.820, 6735.25), (3544.67, 90947.2),
           (-39.8086, 10370.8)],
    "l1": [(1724.56, 15395.7), (-990.369, 27069.9), (-746.820, 18924.5), (-494.533, 17450.7),
           (-594.908, 85775.9)],
}

# The reference values have 6 significant digits; fp32 results of a different summation order agree to
# ~1e-5 relative. Sums with heavy cancellation (|sum| << sum|y|) are compared with an absolute
# tolerance scaled by sum|y| instead, since their relative error is amplified.
RTOL = 1e-4


def close(got, want, scale=None):
    tol = RTOL * max(abs(want), 1e-6 if scale is None else 1e-3 * scale)
    return abs(got - want) <= tol


failures = []


def report(ok, name, detail):
    print(f"{'PASS' if ok else 'FAIL'}  {name:48s} {detail}")
    if not ok:
        failures.append(name)


def count(module):
    return ev.num_params(module)


def state_numel(module):
    return sum(t.numel() for t in module.state_dict().values())


# released-checkpoint key examples: model -> {key: shape}
KEY_EXAMPLES = {
    "efficientvit-b1": {
        "backbone.input_stem.op_list.0.conv.weight": (16, 3, 3, 3),
        "backbone.input_stem.op_list.1.main.depth_conv.norm.num_batches_tracked": (),
        "backbone.stages.2.op_list.0.main.inverted_conv.conv.bias": (256,),
        "backbone.stages.2.op_list.1.context_module.main.qkv.conv.weight": (384, 128, 1, 1),
        "backbone.stages.2.op_list.1.context_module.main.aggreg.0.0.weight": (384, 1, 5, 5),
        "backbone.stages.2.op_list.1.context_module.main.aggreg.0.1.weight": (384, 16, 1, 1),
        "backbone.stages.2.op_list.1.context_module.main.proj.conv.weight": (128, 256, 1, 1),
        "backbone.stages.2.op_list.1.local_module.main.depth_conv.conv.bias": (512,),
        "head.op_list.2.norm.weight": (1600,),
        "head.op_list.3.linear.weight": (1000, 1600),
    },
    "efficientvit-l1": {
        "backbone.stages.0.op_list.0.conv.weight": (32, 3, 3, 3),
        "backbone.stages.0.op_list.1.main.conv2.norm.running_var": (32,),
        "backbone.stages.1.op_list.0.main.spatial_conv.conv.weight": (512, 32, 3, 3),
        "backbone.stages.4.op_list.0.main.inverted_conv.conv.bias": (6144,),
        "backbone.stages.4.op_list.6.context_module.main.aggreg.0.1.weight": (1536, 32, 1, 1),
    },
    "efficientvit-seg-b1-cityscapes": {
        "head.input_ops.0.op_list.0.conv.weight": (64, 256, 1, 1),
        "head.input_ops.2.conv.weight": (64, 64, 1, 1),
        "head.middle.op_list.2.main.point_conv.norm.weight": (64,),
        "head.output_ops.0.op_list.0.conv.weight": (256, 64, 1, 1),
        "head.output_ops.0.op_list.1.conv.bias": (19,),
    },
    "efficientvit-seg-l2-ade20k": {
        "head.middle.op_list.2.main.spatial_conv.conv.weight": (512, 128, 3, 3),
        "head.output_ops.0.op_list.1.conv.weight": (150, 1024, 1, 1),
    },
    "efficientvit-seg-b1-ade20k": {
        "head.output_ops.0.op_list.0.conv.bias": (150,),
    },
}


def check_counts():
    for model, want in KEY_EXAMPLES.items():
        sd = ev.create_model(model).state_dict()
        bad = [k for k, shp in want.items() if k not in sd or tuple(sd[k].shape) != shp]
        report(not bad, f"keys {model}", f"{len(want)} spec-9 keys" + (f", wrong: {bad}" if bad else ""))
    for arch, (p, pb, ph, keys, sn) in CLS.items():
        m = ev.create_model(f"efficientvit-{arch}")
        got = (count(m), count(m.backbone), count(m.head), len(m.state_dict()), state_numel(m))
        report(got == (p, pb, ph, keys, sn), f"counts cls {arch}",
               f"params/backbone/head/keys/numel got {got} want {(p, pb, ph, keys, sn)}")
        bb = m.backbone
        if arch.startswith("b"):
            parts = [bb.input_stem] + list(bb.stages)
        else:
            parts = list(bb.stages)
        got_st = tuple(count(x) for x in parts) + (count(m.head),)
        report(got_st == CLS_STAGES[arch], f"stage split cls {arch}",
               f"got {got_st} want {CLS_STAGES[arch]}")
        del m
    for (arch, ds), (p, ph, keys, sn) in SEG.items():
        m = ev.create_model(f"efficientvit-seg-{arch}-{ds}")
        got = (count(m), count(m.head), len(m.state_dict()), state_numel(m))
        report(got == (p, ph, keys, sn), f"counts seg {arch} {ds}",
               f"params/head/keys/numel got {got} want {(p, ph, keys, sn)}")
        del m
    for arch, (enc, bb, neck, ln) in SAM.items():
        e = ev.create_sam_image_encoder(arch)
        got = (count(e), count(e.backbone), count(e.neck), count(e.norm))
        report(got == (enc, bb, neck, ln), f"counts SAM-{arch} image encoder",
               f"encoder/backbone/neck/ln2d got {got} want {(enc, bb, neck, ln)}")
        del e


def check_values(name, y, want):
    s, sa, first, shape = want
    y = y.detach().double()
    ys, ya = y.sum().item(), y.abs().sum().item()
    f = y.flatten()[:len(first)].tolist()
    ok = tuple(y.shape) == tuple(shape) and close(ys, s, sa) and close(ya, sa)
    ok = ok and all(abs(a - b) <= RTOL * abs(b) + 1e-6 for a, b in zip(f, first))
    worst = max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(f, first))
    report(ok, f"forward {name}",
           f"shape {tuple(y.shape)} sum {ys:.6g} (want {s:.6g}) abs {ya:.6g} (want {sa:.6g}) "
           f"y[0..] max rel err {worst:.1e}")


@torch.no_grad()
def check_forward():
    torch.manual_seed(0)
    # standalone LiteMLA, proj BN eps 1e-5; keys as a standalone module (qkv.conv.weight ...)
    mla = ev.golden_fill(ev.LiteMLA(16, 16, dim=8, scales=(5,), norm_eps=1e-5)).eval()
    for name, shape in (("LiteMLA(16,16,d8,k5) linear", (2, 16, 6, 6)),
                        ("LiteMLA(16,16,d8,k5) quadratic", (1, 16, 2, 2))):
        check_values(name, mla(ev.golden_input(shape)), GOLDEN[name])

    blk = ev.golden_fill(ev.EfficientViTBlock(32, 16, 4, (5,), "bn2d", "hswish", 1e-5)).eval()
    name = "EViTBlock(32,d16,e4,k5,hswish)"
    check_values(name, blk(ev.golden_input((1, 32, 8, 8))), GOLDEN[name])
    blk = ev.golden_fill(ev.EfficientViTBlock(64, 32, 6, (3,), "bn2d", "gelu", 1e-7)).eval()
    name = "EViTBlock(64,d32,e6,k3,gelu)"
    check_values(name, blk(ev.golden_input((1, 64, 8, 8))), GOLDEN[name])

    for arch, runs in (("b0", [("cls B0 224", 224), ("cls B0 64 (quadratic)", 64)]),
                       ("b1", [("cls B1 224", 224)]), ("l1", [("cls L1 224", 224)])):
        m = ev.golden_fill(ev.create_model(f"efficientvit-{arch}")).eval()
        for name, r in runs:
            x = ev.golden_input((1, 3, r, r))
            feats = m.backbone(x)
            check_values(name, m.head(feats), GOLDEN[name])
            if arch in STAGE_SUMS and r == 224:
                for i, (s, sa) in enumerate(STAGE_SUMS[arch]):
                    f = feats[f"stage{i}"].double()
                    gs, ga = f.sum().item(), f.abs().sum().item()
                    report(close(gs, s, sa) and close(ga, sa), f"stage sums {arch} stage{i}",
                           f"sum {gs:.6g} (want {s:.6g}) abs {ga:.6g} (want {sa:.6g})")
        del m

    for name, model, shape in (
            ("seg B0 Cityscapes 256x512", "efficientvit-seg-b0-cityscapes", (1, 3, 256, 512)),
            ("seg B1 ADE20K 256x256", "efficientvit-seg-b1-ade20k", (1, 3, 256, 256)),
            ("seg L1 Cityscapes 256x512", "efficientvit-seg-l1-cityscapes", (1, 3, 256, 512))):
        m = ev.golden_fill(ev.create_model(model)).eval()
        check_values(name, m(ev.golden_input(shape)), GOLDEN[name])
        del m


def main():
    check_counts()
    if "--skip-forward" not in sys.argv:
        check_forward()
    n = len(failures)
    print(f"{'ALL PASS' if n == 0 else f'{n} FAILED: ' + ', '.join(failures)}")
    return 1 if n else 0


if __name__ == "__main__":
    sys.exit(main())

"""Reference outputs of the Segment Anything ViT image encoder (tests/test_sam_vit.cpp, tag [sam]).

Run in an environment with the PyPI packages (torch, segment-anything):
    python tools/golden/gen_sam_vit.py
Writes tests/golden/sam_vit.safetensors, every module filled with the parity fill
(tools/reference/efficientvit_ref.py golden_fill; the C++ side's fill_deterministic) and fed
golden_input / sine inputs:

- block_window.*: a windowed Block (dim 64, 4 heads, window 5) on a 12x12 grid (padded to 15x15);
- block_global.*: a global-attention Block (dim 64, 4 heads) on an 8x8 grid;
- block_vit_b.*: a ViT-B-shaped windowed Block (dim 768, 12 heads, window 14) on a 16x16 grid,
  as golden rows (sum, sum of |y|, first values);
- encoder_small.*: ImageEncoderViT(img 128, dim 64, depth 4, 4 heads, window 3, global blocks 1
  and 3, 32 output channels) on a [1, 3, 128, 128] input;
- encoder_vit_b2.*: a reduced-depth ViT-B encoder (img 256, dim 768, depth 2, 12 heads, window 14,
  global block 1), golden rows;
- rel_pos_resized.*: get_rel_pos with a table of another length (linear resampling);
- counts: parameter counts of the full ViT-H, ViT-L and ViT-B encoders.
"""
import os
import sys
from functools import partial

import torch
from segment_anything.modeling.image_encoder import Block, ImageEncoderViT, get_rel_pos

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
from common import GOLDEN_DIR, write_safetensors  # noqa: E402
from efficientvit_ref import golden_fill, golden_input  # noqa: E402

LN = partial(torch.nn.LayerNorm, eps=1e-6)


def rows(t):
    t = t.double().flatten()
    return torch.cat([t.sum().reshape(1), t.abs().sum().reshape(1), t[:8]])


def encoder(img, dim, depth, heads, window, global_idx, out):
    return ImageEncoderViT(img_size=img, patch_size=16, in_chans=3, embed_dim=dim, depth=depth, num_heads=heads,
                           mlp_ratio=4.0, out_chans=out, qkv_bias=True, norm_layer=LN, act_layer=torch.nn.GELU,
                           use_abs_pos=True, use_rel_pos=True, rel_pos_zero_init=True, window_size=window,
                           global_attn_indexes=global_idx)


def main():
    t = {}
    with torch.no_grad():
        for name, dim, heads, window, grid, full in [("block_window", 64, 4, 5, 12, True),
                                                     ("block_global", 64, 4, 0, 8, True),
                                                     ("block_vit_b", 768, 12, 14, 16, False)]:
            blk = Block(dim=dim, num_heads=heads, mlp_ratio=4.0, qkv_bias=True, norm_layer=LN, act_layer=torch.nn.GELU,
                        use_rel_pos=True, rel_pos_zero_init=True, window_size=window, input_size=(grid, grid)).eval()
            golden_fill(blk)
            x = golden_input([1, grid, grid, dim])
            y = blk(x)
            t[f"{name}.y" if full else f"{name}.rows"] = y if full else rows(y)
        enc = encoder(128, 64, 4, 4, 3, (1, 3), 32).eval()
        golden_fill(enc, "image_encoder.")
        t["encoder_small.y"] = enc(golden_input([1, 3, 128, 128]))
        enc = encoder(256, 768, 2, 12, 14, (1,), 256).eval()
        golden_fill(enc, "image_encoder.")
        t["encoder_vit_b2.rows"] = rows(enc(golden_input([1, 3, 256, 256])))
        table = golden_input([9, 6]).double()
        t["rel_pos_resized.table"] = table
        t["rel_pos_resized.y"] = get_rel_pos(7, 7, table)  # 13 rows needed from a 9-row table
        counts = []
        for dim, depth, heads, glob in [(1280, 32, 16, (7, 15, 23, 31)), (1024, 24, 16, (5, 11, 17, 23)),
                                        (768, 12, 12, (2, 5, 8, 11))]:
            e = encoder(1024, dim, depth, heads, 14, glob, 256)
            counts.append(sum(p.numel() for p in e.parameters()))
            del e
        t["counts"] = torch.tensor(counts, dtype=torch.int64)
    path = os.path.join(GOLDEN_DIR, "sam_vit.safetensors")
    write_safetensors(path, t, {"generator": "tools/golden/gen_sam_vit.py", "torch": torch.__version__})
    print(f"wrote {path}; parameter counts h/l/b: {counts}")


if __name__ == "__main__":
    main()

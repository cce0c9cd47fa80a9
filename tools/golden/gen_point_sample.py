"""Goldens for point_sample (ops/resize.h) and the SAM mask loss (train/sam_mask_loss.h).

point_sample is grid_sample(x, 2*coords - 1, bilinear, zeros, align_corners=False) on an
[N, P, 1, 2] grid: points inside, on the edges and outside the map (their outside neighbours
count as zero). The mask loss is EfficientViT-SAM's stage-2 loss on fixed points: per mask
20 * mean BCE-with-logits + dice (1 - (2*sum(p*t) + 1) / (sum(p) + sum(t) + 1)), p = sigmoid.

Run: /usr/bin/python3 tools/golden/gen_point_sample.py (any PyTorch >= 1.13)
"""
import torch
import torch.nn.functional as F

from common import Golden, leaf


def point_sample(x, coords):
    return F.grid_sample(x, 2.0 * coords.unsqueeze(2) - 1.0, mode="bilinear", padding_mode="zeros",
                         align_corners=False).squeeze(3)


def main():
    g = Golden("point_sample")
    gen = torch.Generator().manual_seed(5)
    # Points spread over [-0.1, 1.1]^2: some outside, some on the edges and on pixel centres.
    coords = torch.rand((2, 40, 2), generator=gen, dtype=torch.float64) * 1.2 - 0.1
    coords[0, 0] = torch.tensor([0.0, 0.0])
    coords[0, 1] = torch.tensor([1.0, 1.0])
    coords[0, 2] = torch.tensor([0.5 / 7, 0.5 / 5])  # the centre of pixel (0, 0)
    coords[1, 0] = torch.tensor([1.0, 0.3])
    g.case_grad("sample", point_sample, [leaf((2, 3, 5, 7), 1), coords])
    g.case_grad("sample_one_pixel", point_sample, [leaf((1, 2, 1, 1), 2), coords[:1, :9].contiguous()])

    # The mask loss on fixed points: logits [M, 1, H, W], soft targets [M, 1, H, W].
    M, H, W, P = 3, 6, 8, 30
    logits = leaf((M, 1, H, W), 3, -4.0, 4.0)
    targets = (torch.rand((M, 1, H, W), generator=gen, dtype=torch.float64) > 0.5).double()
    targets[2] = 0.0  # an empty mask
    targets[0, 0, 2, 3] = 0.4  # soft values, as an antialiased resize of a mask gives
    pts = torch.rand((M, P, 2), generator=gen, dtype=torch.float64)

    def mask_loss(lg, tg, pc):
        pl = point_sample(lg, pc).squeeze(1)
        pt = point_sample(tg, pc).squeeze(1)
        bce = F.binary_cross_entropy_with_logits(pl, pt, reduction="none").mean(1)
        p = pl.sigmoid()
        dice = 1 - (2 * (p * pt).sum(-1) + 1) / (p.sum(-1) + pt.sum(-1) + 1)
        return 20 * bce + dice

    g.case_grad("mask_loss", mask_loss, [logits, targets, pts])
    g.write()


if __name__ == "__main__":
    main()

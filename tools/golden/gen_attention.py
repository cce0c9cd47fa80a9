"""Goldens for linear_attention (ops/attention.h): a straight port of EfficientViT's LiteMLA
relu_linear_att / relu_quadratic_att, in the [B, H, d, N] layout evit uses (the reference's own
layout after reshaping qkv to (B, heads, 3d, H*W)).

Run: /usr/bin/python3 tools/golden/gen_attention.py
"""
import torch

from common import Golden, leaf

EPS = 1e-15


def relu_linear_att(q, k, v, eps=EPS):
    q = torch.relu(q)
    k = torch.relu(k)
    trans_k = k.transpose(-1, -2)
    v = torch.nn.functional.pad(v, (0, 0, 0, 1), mode="constant", value=1)
    vk = torch.matmul(v, trans_k)
    out = torch.matmul(vk, q)
    return out[:, :, :-1] / (out[:, :, -1:] + eps)


def relu_quadratic_att(q, k, v, eps=EPS):
    q = torch.relu(q)
    k = torch.relu(k)
    att_map = torch.matmul(k.transpose(-1, -2), q)  # b h n n
    att_map = att_map / (torch.sum(att_map, dim=2, keepdim=True) + eps)
    return torch.matmul(v, att_map)


def reference(q, k, v):
    # the reference switches on H*W <= dim
    return relu_quadratic_att(q, k, v) if q.shape[-1] <= q.shape[-2] else relu_linear_att(q, k, v)


def qkv_split(qkv, d):
    return qkv[:, :, :d], qkv[:, :, d:2 * d], qkv[:, :, 2 * d:]


def main():
    g = Golden("attention")
    # linear path, f64
    g.case_grad("lin_f64", reference,
                [leaf((2, 3, 4, 20), 1), leaf((2, 3, 4, 20), 2), leaf((2, 3, 4, 20), 3)])
    # linear path, dv != d
    g.case_grad("lin_dv_f64", reference,
                [leaf((1, 2, 3, 10), 4), leaf((1, 2, 3, 10), 5), leaf((1, 2, 5, 10), 6)])
    # quadratic path (N <= d), including N == d
    g.case_grad("quad_f64", reference,
                [leaf((2, 2, 8, 6), 7), leaf((2, 2, 8, 6), 8), leaf((2, 2, 8, 6), 9)])
    g.case_grad("quad_eq_f64", reference,
                [leaf((1, 2, 5, 5), 10), leaf((1, 2, 5, 5), 11), leaf((1, 2, 5, 5), 12)])
    # the model's view: one qkv tensor [B, heads, 3d, N] sliced into q, k, v
    d = 8
    g.case_grad("qkv_f64", lambda t: reference(*qkv_split(t, d)), [leaf((2, 2, 3 * d, 36), 13)])
    # f32, EfficientViT-like size (d = 16, N = 8x8)
    g.case_grad("lin_f32", reference,
                [leaf((1, 4, 16, 64), 14, dtype=torch.float32),
                 leaf((1, 4, 16, 64), 15, dtype=torch.float32),
                 leaf((1, 4, 16, 64), 16, dtype=torch.float32)])
    g.write()


if __name__ == "__main__":
    main()

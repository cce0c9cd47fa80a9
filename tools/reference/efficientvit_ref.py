"""Pure-PyTorch reference of the EfficientViT model family, written for evit from the papers
(arXiv 2205.14756, 2402.05008) and the released checkpoints (docs/models.md). It is the Python
side of the parity tests: module attribute names are chosen so that state_dict() keys equal the
released checkpoints' keys, so a released checkpoint loads with load_state_dict(strict=True).

Run with Debian's torch (/usr/bin/python3). Nothing here is used at C++ build/test time.

Entry points:
  create_model(name)        classification / segmentation models (names in MODEL_NAMES)
  create_backbone(name)     bare backbones b0..b3, l0..l3, xl0, xl1
  create_sam_neck(name)     SAM image-encoder neck (+ ln2d) for the SAM parameter checks
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

# ---------------------------------------------------------------------------------------------
# registries: normalisations and activations by name


class LayerNorm2d(nn.LayerNorm):
    """Per-pixel LayerNorm over channels of an NCHW tensor (biased variance)."""

    def forward(self, x):
        mean = x.mean(dim=1, keepdim=True)
        var = ((x - mean) ** 2).mean(dim=1, keepdim=True)
        y = (x - mean) / torch.sqrt(var + self.eps)
        return y * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


def build_act(name):
    if name is None:
        return None
    if name == "relu":
        return nn.ReLU()
    if name == "relu6":
        return nn.ReLU6()
    if name == "hswish":
        return nn.Hardswish()
    if name == "gelu":
        # EfficientViT backbones/heads use the tanh approximation (as the released models were trained).
        return nn.GELU(approximate="tanh")
    if name == "silu":
        return nn.SiLU()
    raise ValueError(f"unknown activation {name!r}")


def build_norm(name, channels, eps):
    if name is None:
        return None
    if name == "bn2d":
        return nn.BatchNorm2d(channels, eps=eps, momentum=0.1)
    if name == "ln":
        return nn.LayerNorm(channels, eps=eps)
    if name == "ln2d":
        return LayerNorm2d(channels, eps=eps)
    raise ValueError(f"unknown norm {name!r}")


def _pair(v):
    return v if isinstance(v, (tuple, list)) else (v, v)


def _triple(v):
    return v if isinstance(v, (tuple, list)) else (v, v, v)


# ---------------------------------------------------------------------------------------------
# basic layers


class ConvLayer(nn.Module):
    """[Dropout2d] -> Conv2d(pad = k//2 * dilation) -> [norm] -> [act]."""

    def __init__(self, cin, cout, k=3, stride=1, dilation=1, groups=1, use_bias=False,
                 dropout=0.0, norm="bn2d", act="relu", eps=1e-5):
        super().__init__()
        pad = (k // 2) * dilation
        self.dropout = nn.Dropout2d(dropout, inplace=False) if dropout > 0 else None
        self.conv = nn.Conv2d(cin, cout, k, stride, pad, dilation, groups, bias=use_bias)
        self.norm = build_norm(norm, cout, eps)
        self.act = build_act(act)

    def forward(self, x):
        if self.dropout is not None:
            x = self.dropout(x)
        x = self.conv(x)
        if self.norm is not None:
            x = self.norm(x)
        if self.act is not None:
            x = self.act(x)
        return x


class LinearLayer(nn.Module):
    """flatten -> [Dropout] -> Linear -> [norm] -> [act]."""

    def __init__(self, fin, fout, use_bias=True, dropout=0.0, norm=None, act=None, eps=1e-5):
        super().__init__()
        self.dropout = nn.Dropout(dropout, inplace=False) if dropout > 0 else None
        self.linear = nn.Linear(fin, fout, bias=use_bias)
        self.norm = build_norm(norm, fout, eps)
        self.act = build_act(act)

    def forward(self, x):
        if x.dim() > 2:
            x = torch.flatten(x, start_dim=1)
        if self.dropout is not None:
            x = self.dropout(x)
        x = self.linear(x)
        if self.norm is not None:
            x = self.norm(x)
        if self.act is not None:
            x = self.act(x)
        return x


class UpSampleLayer(nn.Module):
    """Bicubic (align_corners=False) resize by an integer factor or to a fixed size, in fp32."""

    def __init__(self, mode="bicubic", size=None, factor=2, align_corners=False):
        super().__init__()
        self.mode = mode
        self.size = None if size is None else tuple(_pair(size))
        self.factor = None if size is not None else factor
        self.align_corners = align_corners

    def forward(self, x):
        if (self.size is not None and tuple(x.shape[-2:]) == self.size) or self.factor == 1:
            return x
        dtype = x.dtype
        x = x.float()
        if self.size is not None:
            y = F.interpolate(x, size=self.size, mode=self.mode, align_corners=self.align_corners)
        else:
            y = F.interpolate(x, scale_factor=self.factor, mode=self.mode,
                              align_corners=self.align_corners)
        return y.to(dtype)


class IdentityLayer(nn.Module):
    def forward(self, x):
        return x


class OpSequential(nn.Module):
    """Sequence whose None entries are dropped (so indices in keys count real ops only)."""

    def __init__(self, ops):
        super().__init__()
        self.op_list = nn.ModuleList([op for op in ops if op is not None])

    def forward(self, x):
        for op in self.op_list:
            x = op(x)
        return x


class ResidualBlock(nn.Module):
    def __init__(self, main, shortcut):
        super().__init__()
        self.main = main
        self.shortcut = shortcut

    def forward(self, x):
        if self.main is None:
            return x
        if self.shortcut is None:
            return self.main(x)
        return self.main(x) + self.shortcut(x)


# ---------------------------------------------------------------------------------------------
# local blocks


class DSConv(nn.Module):
    def __init__(self, cin, cout, k=3, stride=1, use_bias=False, norm=("bn2d", "bn2d"),
                 act=("relu6", None), eps=1e-5):
        super().__init__()
        b, n, a = _pair(use_bias), _pair(norm), _pair(act)
        self.depth_conv = ConvLayer(cin, cin, k, stride, groups=cin, use_bias=b[0], norm=n[0],
                                    act=a[0], eps=eps)
        self.point_conv = ConvLayer(cin, cout, 1, use_bias=b[1], norm=n[1], act=a[1], eps=eps)

    def forward(self, x):
        return self.point_conv(self.depth_conv(x))


class MBConv(nn.Module):
    def __init__(self, cin, cout, k=3, stride=1, expand=6, use_bias=False,
                 norm=("bn2d", "bn2d", "bn2d"), act=("relu6", "relu6", None), eps=1e-5):
        super().__init__()
        b, n, a = _triple(use_bias), _triple(norm), _triple(act)
        mid = round(cin * expand)
        self.inverted_conv = ConvLayer(cin, mid, 1, 1, use_bias=b[0], norm=n[0], act=a[0], eps=eps)
        self.depth_conv = ConvLayer(mid, mid, k, stride, groups=mid, use_bias=b[1], norm=n[1],
                                    act=a[1], eps=eps)
        self.point_conv = ConvLayer(mid, cout, 1, use_bias=b[2], norm=n[2], act=a[2], eps=eps)

    def forward(self, x):
        return self.point_conv(self.depth_conv(self.inverted_conv(x)))


class FusedMBConv(nn.Module):
    def __init__(self, cin, cout, k=3, stride=1, expand=6, groups=1, use_bias=False,
                 norm=("bn2d", "bn2d"), act=("relu6", None), eps=1e-5):
        super().__init__()
        b, n, a = _pair(use_bias), _pair(norm), _pair(act)
        mid = round(cin * expand)
        self.spatial_conv = ConvLayer(cin, mid, k, stride, groups=groups, use_bias=b[0],
                                      norm=n[0], act=a[0], eps=eps)
        self.point_conv = ConvLayer(mid, cout, 1, use_bias=b[1], norm=n[1], act=a[1], eps=eps)

    def forward(self, x):
        return self.point_conv(self.spatial_conv(x))


class ResBlock(nn.Module):
    def __init__(self, cin, cout, k=3, stride=1, expand=1, use_bias=False,
                 norm=("bn2d", "bn2d"), act=("relu6", None), eps=1e-5):
        super().__init__()
        b, n, a = _pair(use_bias), _pair(norm), _pair(act)
        mid = round(cin * expand)
        self.conv1 = ConvLayer(cin, mid, k, stride, use_bias=b[0], norm=n[0], act=a[0], eps=eps)
        self.conv2 = ConvLayer(mid, cout, k, 1, use_bias=b[1], norm=n[1], act=a[1], eps=eps)

    def forward(self, x):
        return self.conv2(self.conv1(x))


def local_block(kind, cin, cout, stride, expand, norm, act, fewer_norm, eps):
    """Builds a DSConv/MBConv/FusedMBConv/ResBlock with the normal or fewer_norm pattern
    (in fewer_norm every conv but the last has a bias and no norm; the last conv has
    the norm and no bias; the last conv never has an activation)."""
    if kind == "ds":
        if fewer_norm:
            return DSConv(cin, cout, 3, stride, (True, False), (None, norm), (act, None), eps)
        return DSConv(cin, cout, 3, stride, False, (norm, norm), (act, None), eps)
    if kind == "mb":
        if fewer_norm:
            return MBConv(cin, cout, 3, stride, expand, (True, True, False), (None, None, norm),
                          (act, act, None), eps)
        return MBConv(cin, cout, 3, stride, expand, False, (norm, norm, norm), (act, act, None),
                      eps)
    if kind == "fmb":
        if fewer_norm:
            return FusedMBConv(cin, cout, 3, stride, expand, 1, (True, False), (None, norm),
                               (act, None), eps)
        return FusedMBConv(cin, cout, 3, stride, expand, 1, False, (norm, norm), (act, None), eps)
    if kind == "res":
        if fewer_norm:
            return ResBlock(cin, cout, 3, stride, expand, (True, False), (None, norm),
                            (act, None), eps)
        return ResBlock(cin, cout, 3, stride, expand, False, (norm, norm), (act, None), eps)
    raise ValueError(f"unknown local block {kind!r}")


# ---------------------------------------------------------------------------------------------
# LiteMLA and EfficientViTBlock


class LiteMLA(nn.Module):
    def __init__(self, cin, cout, heads=None, heads_ratio=1.0, dim=8, use_bias=False,
                 norm=(None, "bn2d"), act=(None, None), kernel_func="relu", scales=(5,),
                 eps=1e-15, norm_eps=1e-5):
        super().__init__()
        self.eps = eps
        heads = int(cin // dim * heads_ratio) if heads is None else heads
        total = heads * dim
        b, n, a = _pair(use_bias), _pair(norm), _pair(act)
        self.dim = dim
        self.qkv = ConvLayer(cin, 3 * total, 1, use_bias=b[0], norm=n[0], act=a[0], eps=norm_eps)
        # One branch per extra scale: depthwise k x k, then a grouped 1x1 whose groups are the
        # (head, q|k|v) blocks of d channels.
        self.aggreg = nn.ModuleList([
            nn.Sequential(
                nn.Conv2d(3 * total, 3 * total, s, padding=s // 2, groups=3 * total,
                          bias=b[0]),
                nn.Conv2d(3 * total, 3 * total, 1, groups=3 * heads,
                          bias=b[0]),
            ) for s in scales
        ])
        self.kernel_func = build_act(kernel_func)
        self.proj = ConvLayer(total * (1 + len(scales)), cout, 1, use_bias=b[1], norm=n[1],
                              act=a[1], eps=norm_eps)

    def _linear_att(self, q, k, v):
        # q, k, v: [B, G, d, N]; ones-row trick yields the normaliser as the last row.
        v = F.pad(v, (0, 0, 0, 1), mode="constant", value=1.0)  # [B, G, d+1, N]
        vk = torch.matmul(v, k.transpose(-1, -2))  # [B, G, d+1, d]
        out = torch.matmul(vk, q)  # [B, G, d+1, N]
        return out[:, :, :-1] / (out[:, :, -1:] + self.eps)

    def _quadratic_att(self, q, k, v):
        m = torch.matmul(k.transpose(-1, -2), q)  # [B, G, N, N], m[j, i] = k_j . q_i
        m = m / (m.sum(dim=2, keepdim=True) + self.eps)  # normalise over j
        return torch.matmul(v, m)  # [B, G, d, N]

    def forward(self, x):
        qkv = self.qkv(x)
        z = torch.cat([qkv] + [op(qkv) for op in self.aggreg], dim=1)
        bsz, _, h, w = z.shape
        dtype = z.dtype
        z = z.float().reshape(bsz, -1, 3 * self.dim, h * w)  # head-major: [q | k | v] per head
        d = self.dim
        q, k, v = z[:, :, :d], z[:, :, d:2 * d], z[:, :, 2 * d:]
        q = self.kernel_func(q)
        k = self.kernel_func(k)
        if h * w > d:
            out = self._linear_att(q, k, v)
        else:
            out = self._quadratic_att(q, k, v)
        out = out.to(dtype).reshape(bsz, -1, h, w)
        return self.proj(out)


class EfficientViTBlock(nn.Module):
    def __init__(self, c, dim=32, expand=4, scales=(5,), norm="bn2d", act="hswish", eps=1e-5):
        super().__init__()
        self.context_module = ResidualBlock(
            LiteMLA(c, c, dim=dim, norm=(None, norm), scales=scales, norm_eps=eps),
            IdentityLayer())
        self.local_module = ResidualBlock(
            local_block("mb", c, c, 1, expand, norm, act, True, eps), IdentityLayer())

    def forward(self, x):
        return self.local_module(self.context_module(x))


# ---------------------------------------------------------------------------------------------
# backbones

B_CONFIGS = {
    "b0": dict(width=[8, 16, 32, 64, 128], depth=[1, 2, 2, 2, 2], dim=16),
    "b1": dict(width=[16, 32, 64, 128, 256], depth=[1, 2, 3, 3, 4], dim=16),
    "b2": dict(width=[24, 48, 96, 192, 384], depth=[1, 3, 4, 4, 6], dim=32),
    "b3": dict(width=[32, 64, 128, 256, 512], depth=[1, 4, 6, 6, 9], dim=32),
}

_L_BLOCKS = ["res", "fmb", "fmb", "mb", "att"]
_XL_BLOCKS = ["res", "fmb", "fmb", "fmb", "att@3", "att@3"]
L_CONFIGS = {
    "l0": dict(width=[32, 64, 128, 256, 512], depth=[1, 1, 1, 4, 4], blocks=_L_BLOCKS,
               expand=[1, 4, 4, 4, 6], fewer=[False, False, False, True, True]),
    "l1": dict(width=[32, 64, 128, 256, 512], depth=[1, 1, 1, 6, 6], blocks=_L_BLOCKS,
               expand=[1, 4, 4, 4, 6], fewer=[False, False, False, True, True]),
    "l2": dict(width=[32, 64, 128, 256, 512], depth=[1, 2, 2, 8, 8], blocks=_L_BLOCKS,
               expand=[1, 4, 4, 4, 6], fewer=[False, False, False, True, True]),
    "l3": dict(width=[64, 128, 256, 512, 1024], depth=[1, 2, 2, 8, 8], blocks=_L_BLOCKS,
               expand=[1, 4, 4, 4, 6], fewer=[False, False, False, True, True]),
    "xl0": dict(width=[32, 64, 128, 256, 512, 1024], depth=[0, 1, 1, 2, 3, 3], blocks=_XL_BLOCKS,
                expand=[1, 4, 4, 4, 4, 6], fewer=[False, False, False, False, True, True]),
    "xl1": dict(width=[32, 64, 128, 256, 512, 1024], depth=[1, 2, 2, 4, 6, 6], blocks=_XL_BLOCKS,
                expand=[1, 4, 4, 4, 4, 6], fewer=[False, False, False, False, True, True]),
}


class EfficientViTBackbone(nn.Module):
    """B-series: input_stem (stage0) + 4 stages (stage1..stage4)."""

    def __init__(self, width, depth, dim, expand=4, norm="bn2d", act="hswish", eps=1e-5):
        super().__init__()
        self.width_list = list(width)
        stem = [ConvLayer(3, width[0], 3, 2, norm=norm, act=act, eps=eps)]
        for _ in range(depth[0]):
            stem.append(ResidualBlock(
                local_block("ds", width[0], width[0], 1, 1, norm, act, False, eps),
                IdentityLayer()))
        self.input_stem = OpSequential(stem)
        stages = []
        cin = width[0]
        for w, n in zip(width[1:3], depth[1:3]):  # MBConv stages (normal pattern)
            blocks = []
            for i in range(n):
                stride = 2 if i == 0 else 1
                blk = local_block("mb", cin, w, stride, expand, norm, act, False, eps)
                blocks.append(ResidualBlock(blk, IdentityLayer() if stride == 1 else None))
                cin = w
            stages.append(OpSequential(blocks))
        for w, n in zip(width[3:], depth[3:]):  # attention stages
            blocks = [ResidualBlock(local_block("mb", cin, w, 2, expand, norm, act, True, eps),
                                    None)]
            cin = w
            for _ in range(n):
                blocks.append(EfficientViTBlock(w, dim, expand, (5,), norm, act, eps))
            stages.append(OpSequential(blocks))
        self.stages = nn.ModuleList(stages)

    def forward(self, x):
        out = {"input": x}
        x = self.input_stem(x)
        out["stage0"] = x
        for i, st in enumerate(self.stages, 1):
            x = st(x)
            out[f"stage{i}"] = x
        out["stage_final"] = x
        return out


class EfficientViTLargeBackbone(nn.Module):
    """L/XL-series: stages[0] = stem conv + ResBlocks, stages[i>=1] = downsample + blocks."""

    def __init__(self, width, depth, blocks, expand, fewer, qkv_dim=32, norm="bn2d", act="gelu",
                 eps=1e-7):
        super().__init__()
        self.width_list = list(width)
        stages = []
        stage0 = [ConvLayer(3, width[0], 3, 2, norm=norm, act=act, eps=eps)]
        for _ in range(depth[0]):
            stage0.append(ResidualBlock(
                local_block(blocks[0], width[0], width[0], 1, expand[0], norm, act, fewer[0], eps),
                IdentityLayer()))
        stages.append(OpSequential(stage0))
        cin = width[0]
        for i in range(1, len(width)):
            w, kind = width[i], blocks[i]
            # Downsample: FusedMBConv for fmb stages, MBConv otherwise, with 4x the stage expand.
            ds_kind = "fmb" if kind == "fmb" else "mb"
            ops = [ResidualBlock(
                local_block(ds_kind, cin, w, 2, 4 * expand[i], norm, act, fewer[i], eps), None)]
            cin = w
            for _ in range(depth[i]):
                if kind.startswith("att"):
                    ks = int(kind.split("@")[1]) if "@" in kind else 5
                    ops.append(EfficientViTBlock(w, qkv_dim, expand[i], (ks,), norm, act, eps))
                else:
                    ops.append(ResidualBlock(
                        local_block(kind, w, w, 1, expand[i], norm, act, fewer[i], eps),
                        IdentityLayer()))
            stages.append(OpSequential(ops))
        self.stages = nn.ModuleList(stages)

    def forward(self, x):
        out = {"input": x}
        for i, st in enumerate(self.stages):
            x = st(x)
            out[f"stage{i}"] = x
        out["stage_final"] = x
        return out


NORM_EPS = {"b": 1e-5, "l": 1e-7, "sam": 1e-6}


def create_backbone(name, eps=None):
    name = name.lower()
    if name in B_CONFIGS:
        c = B_CONFIGS[name]
        return EfficientViTBackbone(c["width"], c["depth"], c["dim"],
                                    eps=NORM_EPS["b"] if eps is None else eps)
    if name in L_CONFIGS:
        c = L_CONFIGS[name]
        return EfficientViTLargeBackbone(c["width"], c["depth"], c["blocks"], c["expand"],
                                         c["fewer"], eps=NORM_EPS["l"] if eps is None else eps)
    raise ValueError(f"unknown backbone {name!r}")


# ---------------------------------------------------------------------------------------------
# heads


class ClsHead(OpSequential):
    def __init__(self, cin, width, n_classes=1000, dropout=0.0, norm="bn2d", act="hswish",
                 eps=1e-5, fid="stage_final"):
        super().__init__([
            ConvLayer(cin, width[0], 1, norm=norm, act=act, eps=eps),
            nn.AdaptiveAvgPool2d(output_size=1),
            LinearLayer(width[0], width[1], False, norm="ln", act=act, eps=eps),
            LinearLayer(width[1], n_classes, True, dropout, None, None, eps=eps),
        ])
        self.fid = fid

    def forward(self, feed):
        return OpSequential.forward(self, feed[self.fid])


class DAGHead(nn.Module):
    """inputs (one op per feature id, outputs summed) -> middle -> output op."""

    def __init__(self, fids, input_ops, middle, output_ops):
        super().__init__()
        self.fids = list(fids)
        self.input_ops = nn.ModuleList(input_ops)
        self.middle = middle
        self.output_ops = nn.ModuleList(output_ops)

    def forward(self, feed):
        x = None
        for fid, op in zip(self.fids, self.input_ops):
            y = op(feed[fid])
            x = y if x is None else x + y
        x = self.middle(x)
        return self.output_ops[0](x)


class SegHead(DAGHead):
    def __init__(self, fids, in_channels, strides, head_stride, width, depth, expand, middle_op,
                 final_expand, n_classes, dropout=0.0, norm="bn2d", act="hswish", eps=1e-5):
        inputs = []
        for cin, s in zip(in_channels, strides):
            factor = s // head_stride
            conv = ConvLayer(cin, width, 1, norm=norm, act=None, eps=eps)
            if factor == 1:
                inputs.append(conv)
            else:
                inputs.append(OpSequential([conv, UpSampleLayer(factor=factor)]))
        kind = {"mbconv": "mb", "fmbconv": "fmb"}[middle_op]
        middle = OpSequential([
            ResidualBlock(local_block(kind, width, width, 1, expand, norm, act, False, eps),
                          IdentityLayer()) for _ in range(depth)])
        out = OpSequential([
            None if final_expand is None else
            ConvLayer(width, width * final_expand, 1, norm=norm, act=act, eps=eps),
            ConvLayer(width * (final_expand or 1), n_classes, 1, use_bias=True, dropout=dropout,
                      norm=None, act=None, eps=eps),
        ])
        super().__init__(fids, inputs, middle, [out])


class SamNeck(DAGHead):
    def __init__(self, fids, in_channels, depth, expand, width=256, out_dim=256, norm="bn2d",
                 act="gelu", eps=1e-6):
        inputs = [OpSequential([ConvLayer(c, width, 1, norm=norm, act=None, eps=eps),
                                UpSampleLayer(size=(64, 64))]) for c in in_channels]
        middle = OpSequential([
            ResidualBlock(local_block("fmb", width, width, 1, expand, norm, act, False, eps),
                          IdentityLayer()) for _ in range(depth)])
        out = OpSequential([ConvLayer(width, out_dim, 1, use_bias=True, norm=None, act=None,
                                      eps=eps)])
        super().__init__(fids, inputs, middle, [out])


class SamImageEncoder(nn.Module):
    def __init__(self, backbone, neck, eps=1e-6):
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.norm = LayerNorm2d(256, eps=eps)

    def forward(self, x):
        return self.norm(self.neck(self.backbone(x)))


SAM_NECKS = {
    "l0": (["stage4", "stage3", "stage2"], [512, 256, 128], 4, 1),
    "l1": (["stage4", "stage3", "stage2"], [512, 256, 128], 8, 1),
    "l2": (["stage4", "stage3", "stage2"], [512, 256, 128], 12, 1),
    "xl0": (["stage5", "stage4", "stage3"], [1024, 512, 256], 6, 4),
    "xl1": (["stage5", "stage4", "stage3"], [1024, 512, 256], 12, 4),
}


def create_sam_image_encoder(name):
    """EfficientViT-SAM image encoder (backbone + neck + ln2d), norm eps 1e-6 everywhere."""
    fids, chans, depth, expand = SAM_NECKS[name]
    eps = NORM_EPS["sam"]
    return SamImageEncoder(create_backbone(name, eps=eps),
                           SamNeck(fids, chans, depth, expand, eps=eps), eps=eps)


# ---------------------------------------------------------------------------------------------
# full models


class EfficientViTCls(nn.Module):
    def __init__(self, backbone, head):
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, x):
        return self.head(self.backbone(x))


class EfficientViTSeg(EfficientViTCls):
    pass


CLS_HEADS = {
    "b0": ([1024, 1280], "hswish"), "b1": ([1536, 1600], "hswish"),
    "b2": ([2304, 2560], "hswish"), "b3": ([2304, 2560], "hswish"),
    "l1": ([3072, 3200], "gelu"), "l2": ([3072, 3200], "gelu"), "l3": ([6144, 6400], "gelu"),
}

# (W, D, e, middle, final_expand, act) per released segmentation model (docs/models.md).
SEG_HEADS = {
    ("b0", "cityscapes"): (32, 1, 4, "mbconv", 4, "hswish"),
    ("b1", "cityscapes"): (64, 3, 4, "mbconv", 4, "hswish"),
    ("b1", "ade20k"): (64, 3, 4, "mbconv", None, "hswish"),
    ("b2", "cityscapes"): (96, 3, 4, "mbconv", 4, "hswish"),
    ("b2", "ade20k"): (96, 3, 4, "mbconv", None, "hswish"),
    ("b3", "cityscapes"): (128, 3, 4, "mbconv", 4, "hswish"),
    ("b3", "ade20k"): (128, 3, 4, "mbconv", None, "hswish"),
    ("l1", "cityscapes"): (256, 3, 1, "fmbconv", None, "gelu"),
    ("l1", "ade20k"): (128, 3, 4, "fmbconv", 8, "gelu"),
    ("l2", "cityscapes"): (256, 5, 1, "fmbconv", None, "gelu"),
    ("l2", "ade20k"): (128, 3, 4, "fmbconv", 8, "gelu"),
}
N_CLASSES = {"cityscapes": 19, "ade20k": 150}

MODEL_NAMES = ([f"efficientvit-{m}" for m in CLS_HEADS]
               + [f"efficientvit-seg-{m}-{ds}" for (m, ds) in SEG_HEADS])


def _family_eps(arch):
    return NORM_EPS["b"] if arch.startswith("b") else NORM_EPS["l"]


def create_model(name):
    """efficientvit-{b0..b3,l1..l3} (ImageNet, 1000 classes) or
    efficientvit-seg-{arch}-{cityscapes|ade20k}. Weights are PyTorch's default init."""
    name = name.lower()
    parts = name.split("-")
    if len(parts) == 2 and parts[0] == "efficientvit" and parts[1] in CLS_HEADS:
        arch = parts[1]
        eps = _family_eps(arch)
        backbone = create_backbone(arch)
        width, act = CLS_HEADS[arch]
        head = ClsHead(backbone.width_list[-1], width, 1000, 0.0, "bn2d", act, eps)
        return EfficientViTCls(backbone, head)
    if len(parts) == 4 and parts[:2] == ["efficientvit", "seg"] and (parts[2], parts[3]) in SEG_HEADS:
        arch, ds = parts[2], parts[3]
        eps = _family_eps(arch)
        backbone = create_backbone(arch)
        w = backbone.width_list
        W, D, e, mid, f, act = SEG_HEADS[(arch, ds)]
        head = SegHead(["stage4", "stage3", "stage2"], [w[4], w[3], w[2]], [32, 16, 8], 8,
                       W, D, e, mid, f, N_CLASSES[ds], 0.0, "bn2d", act, eps)
        return EfficientViTSeg(backbone, head)
    raise ValueError(f"unknown model {name!r}; known: {', '.join(MODEL_NAMES)}")


# ---------------------------------------------------------------------------------------------
# deterministic synthetic weights and input (the parity fill of tests/support/test_util.h)


def key_phase(key):
    acc = sum((i + 1) * b for i, b in enumerate(key.encode("ascii")))
    return 2.0 * math.pi * (acc % 9973) / 9973.0


def golden_fill(module, prefix=""):
    """Fills every state-dict tensor of `module` in place with the deterministic parity pattern (tests/support/test_util.h); `prefix`
    is prepended to the keys before hashing (for sub-modules tested as part of a bigger model)."""
    sd = module.state_dict()
    with torch.no_grad():
        for k, t in sd.items():
            if k.endswith("num_batches_tracked"):
                continue
            full = prefix + k
            j = torch.arange(t.numel(), dtype=torch.float64)
            s = torch.sin(0.37 * j + key_phase(full))
            if k.endswith("running_mean"):
                v = 0.05 * s
            elif k.endswith("running_var"):
                v = 1.0 + 0.25 * (s + 1.0)
            elif t.dim() >= 2:
                v = s / math.sqrt(t.numel() / t.shape[0])
            elif k.endswith("weight"):
                v = 1.0 + 0.1 * s
            elif k.endswith("bias"):
                v = 0.02 * s
            else:
                raise ValueError(f"golden_fill: no rule for 1-D tensor {full}")
            t.copy_(v.reshape(t.shape).to(t.dtype))
    return module


def golden_input(shape):
    n = 1
    for s in shape:
        n *= s
    j = torch.arange(n, dtype=torch.float64)
    return torch.sin(0.013 * j).reshape(shape).to(torch.float32)


def num_params(module):
    return sum(p.numel() for p in module.parameters())


if __name__ == "__main__":
    for n in MODEL_NAMES:
        m = create_model(n)
        print(f"{n:40s} params {num_params(m):>12,d} keys {len(m.state_dict())}")

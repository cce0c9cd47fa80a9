"""Golden values for conv2d and conv_transpose2d, one case per kernel path (f64).
Run: /usr/bin/python3 tools/golden/gen_conv.py"""
import torch
import torch.nn.functional as F

from common import Golden, leaf

g = Golden("conv")


def conv(stride=1, padding=0, dilation=1, groups=1):
    return lambda x, w, b=None: F.conv2d(x, w, b, stride, padding, dilation, groups)


# 1x1 (GEMM per image), with bias
g.case_grad("pointwise", conv(), [leaf((2, 4, 5, 6), 1), leaf((3, 4, 1, 1), 2), leaf((3,), 3)])
# grouped 1x1 (GEMM per group)
g.case_grad("pointwise_grouped", conv(groups=2), [leaf((2, 4, 5, 5), 4), leaf((6, 2, 1, 1), 5)])
# depthwise 3x3 s1 and 5x5 s2, with / without bias
g.case_grad("dw3_s1", conv(padding=1, groups=4), [leaf((2, 4, 6, 7), 6), leaf((4, 1, 3, 3), 7), leaf((4,), 8)])
g.case_grad("dw5_s2", conv(stride=2, padding=2, groups=4), [leaf((2, 4, 9, 8), 9), leaf((4, 1, 5, 5), 10)])
# depthwise with a generic kernel size, dilation 2
g.case_grad("dw_k2x3_d2", conv(padding=(1, 2), dilation=2, groups=3), [leaf((1, 3, 7, 8), 11), leaf((3, 1, 2, 3), 12)])
# dense 3x3 stride 2 padding 1 with bias (im2col)
g.case_grad("dense3_s2", conv(stride=2, padding=1), [leaf((2, 3, 7, 6), 13), leaf((4, 3, 3, 3), 14), leaf((4,), 15)])
# grouped 3x3 with dilation 2
g.case_grad("grouped3_d2", conv(padding=2, dilation=2, groups=2), [leaf((1, 4, 6, 6), 16), leaf((6, 2, 3, 3), 17)])
# strided 1x1 (im2col path)
g.case_grad("pointwise_s2", conv(stride=2), [leaf((1, 3, 5, 5), 18), leaf((2, 3, 1, 1), 19)])
# transposed convs: SAM's k=2 s=2, and a general one with padding / output_padding / groups
g.case_grad("convT_k2s2", lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2),
            [leaf((2, 4, 3, 4), 20), leaf((4, 3, 2, 2), 21), leaf((3,), 22)])
g.case_grad("convT_general", lambda x, w: F.conv_transpose2d(x, w, None, stride=2, padding=1,
                                                              output_padding=1, groups=2, dilation=1),
            [leaf((1, 4, 3, 3), 23), leaf((4, 3, 3, 3), 24)])
g.case_grad("convT_dil", lambda x, w: F.conv_transpose2d(x, w, None, stride=1, padding=1, dilation=2),
            [leaf((1, 2, 4, 3), 25), leaf((2, 3, 3, 2), 26)])
g.write()

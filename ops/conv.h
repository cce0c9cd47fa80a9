// Convolutions (CPU, f32 and f64, NCHW), differentiable in input, weight and bias.
//
// conv2d(x [N, C, H, W], w [O, C/groups, kH, kW], bias [O] or undefined, stride, padding,
//        dilation, groups) -> [N, O, OH, OW], OH = (H + 2·pad - dil·(kH - 1) - 1) / stride + 1.
//   Paths (chosen from the shapes only, never from the thread count):
//   - 1×1, stride 1, padding 0 (any groups): one GEMM per image and group, no im2col;
//   - depthwise (groups == C == O): a direct vectorized kernel, forward and backward;
//   - dense with at most 4 input channels and a kernel larger than 1×1 (the RGB stem): direct
//     kernels for the forward and the weight gradient; the input gradient takes the GEMM path;
//   - everything else: im2col + GEMM per group, over bounded column chunks; backward through
//     GEMM + col2im.
// conv_transpose2d(x [N, C_in, H, W], w [C_in, C_out/groups, kH, kW], bias [C_out] or
//        undefined, stride, padding, output_padding, groups, dilation) -> [N, C_out, OH, OW],
//   OH = (H - 1)·stride - 2·pad + dil·(kH - 1) + output_padding + 1: the adjoint of conv2d
//   with the same weight (GEMM + col2im), as torch.nn.functional.conv_transpose2d.
// Non-contiguous inputs are made contiguous. Results are bitwise identical for any thread count.
#pragma once
#include <cstdint>

#include "core/tensor.h"
#include "ops/activation.h"

namespace evit {

// (height, width) pair; an integer means the same value for both.
struct Pair2 {
  int64_t h = 0, w = 0;
  Pair2(int64_t v) : h(v), w(v) {}  // NOLINT: implicit so that conv2d(x, w, b, 2, 1) reads well
  Pair2(int64_t h_, int64_t w_) : h(h_), w(w_) {}
};

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias = Tensor(), Pair2 stride = 1,
              Pair2 padding = 0, Pair2 dilation = 1, int64_t groups = 1);

// act(conv2d(x, w, bias, ...)) + residual (an undefined residual adds nothing; a defined one has
// the output's shape), the same values bit for bit as the ops in sequence. For inference: on
// the CPU, when no gradient is recorded (grad mode off, or no operand requiring one), the
// activation and the residual (a residual block's shortcut) are applied to each block of the
// output as soon as the block is final, while it is in cache, instead of as passes of their own
// over new tensors; otherwise it is the ops in sequence.
Tensor conv2d_act(const Tensor& x, const Tensor& w, const Tensor& bias, Pair2 stride, Pair2 padding, Pair2 dilation,
                  int64_t groups, ActivationKind act, const Tensor& residual = Tensor());

// One convolution of a fused inference chain: weight, bias (or undefined) and the activation
// that follows it.
struct ConvStage {
  Tensor w, b;
  ActivationKind act = ActivationKind::none;
};

// An inverted bottleneck (MobileNetV2's block, EfficientViT's MBConv) in inference:
//   y = conv1x1(dw(conv1x1(x, expand), depthwise, stride), project)
// with each stage's bias and activation: expand.w [M, C, 1, 1], depthwise.w [M, 1, k, k] (odd k,
// padding k / 2), project.w [O, M, 1, 1]. An undefined expand.w means no expansion (M = C: a
// depthwise-separable block). The CPU computes it over strips of output rows, so the
// two M-channel middle tensors only ever exist a few rows at a time, in cache (the expanded
// tensor of a high-resolution stage is 4x its input). The same values as the three convolutions
// up to rounding; bitwise the same for any thread count. A defined residual (the output's shape)
// is added to the output inside the projection's epilogue, bit for bit as add(y, residual): a
// residual block's shortcut without a pass of its own. No gradient: the operands must not
// require one while grad mode is on. CPU, f32 and f64.
Tensor inverted_bottleneck(const Tensor& x, const ConvStage& expand, const ConvStage& depthwise, int64_t stride,
                           const ConvStage& project, const Tensor& residual = Tensor());

Tensor conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& bias = Tensor(),
                        Pair2 stride = 1, Pair2 padding = 0, Pair2 output_padding = 0,
                        int64_t groups = 1, Pair2 dilation = 1);

}  // namespace evit

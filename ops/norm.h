// Normalization layers: batch norm, layer norm over trailing dims, and per-pixel layer norm over
// channels (EfficientViT's "ln2d"). CPU kernels for f32 and f64; every op is differentiable in
// its input, weight and bias, with explicit fused backward kernels.
//
// Optional tensors are passed as an undefined Tensor(). All tensors must share x's dtype and
// device. Statistics accumulate in f64 and every per-channel / per-row reduction runs in a fixed
// order, so results are bitwise identical for any thread count.
#pragma once
#include "core/tensor.h"
#include "ops/activation.h"

namespace evit {

// x: [N, C, ...] (at least 2-D); weight, bias, running_mean, running_var: [C] or undefined.
// training: normalizes with the batch mean and biased batch variance over every dim but C;
//   when running stats are given they are updated in place (outside autograd, versions bumped):
//   running = (1 - momentum) * running + momentum * stat, using the UNBIASED batch variance for
//   running_var (PyTorch's rule). Needs more than one value per channel.
// eval: normalizes with running_mean / running_var (both required).
// y = (x - mean) / sqrt(var + eps) * weight + bias.
Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias,
                  const Tensor& running_mean, const Tensor& running_var, bool training,
                  double momentum = 0.1, double eps = 1e-5);

// act(batch_norm(x, ...)), the same values and gradients as the two ops in sequence. On the CPU
// the activation runs inside batch_norm's output pass and its gradient inside batch_norm's two
// backward passes: one pass less each way, and the normalised tensor is neither written nor kept
// for backward. On CUDA it is the two ops in sequence.
Tensor batch_norm_act(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                      const Tensor& running_var, bool training, double momentum, double eps, ActivationKind act);

// Normalizes over the last normalized_shape.size() dims of x, which must equal normalized_shape
// (biased variance). weight, bias: normalized_shape or undefined.
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight,
                  const Tensor& bias, double eps = 1e-5);

// x: [N, C, H, W]; normalizes over C at every (n, h, w) with the biased variance:
// y = (x - mean_C) / sqrt(var_C + eps) * weight[c] + bias[c]. weight, bias: [C] or undefined.
Tensor layer_norm2d(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps = 1e-5);

}  // namespace evit

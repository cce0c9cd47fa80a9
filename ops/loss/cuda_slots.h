// CUDA slots of the loss family (filled by cross_entropy.cu and elementwise.cu). The .cpp keeps
// every argument check, makes operands contiguous and allocates outputs on the logits' device.
#pragma once
#include "core/cuda_kernel.h"
#include "core/tensor.h"
#include "ops/loss.h"

namespace evit {

// Class-index cross entropy. logits: contiguous [N, C, inner]; target: contiguous i64 [N*inner];
// weight: contiguous [C] or undefined. Writes probs (softmax, logits' shape), out ([N, inner]
// shape for Reduction::none, else 0-D), aux (f64 [2] on the device: {sum of the weights of the
// non-ignored targets, sum of all class weights}, read by the backward) and bad (i64 [1],
// pre-filled with N*inner by the caller: lowered to the first position whose target is neither
// ignore_index nor in [0, C); such positions are skipped).
EVIT_CUDA_KERNEL(cross_entropy_indices_forward_cuda,
                 void(const Tensor& logits, const Tensor& target, const Tensor& weight, int64_t N,
                      int64_t C, int64_t inner, int64_t ignore_index, Reduction reduction,
                      double label_smoothing, const Tensor& probs, const Tensor& out,
                      const Tensor& aux, const Tensor& bad));
// g: contiguous incoming gradient (out's shape); gx: allocated, logits' shape.
EVIT_CUDA_KERNEL(cross_entropy_indices_backward_cuda,
                 void(const Tensor& probs, const Tensor& target, const Tensor& weight,
                      const Tensor& aux, const Tensor& g, int64_t N, int64_t C, int64_t inner,
                      int64_t ignore_index, Reduction reduction, double label_smoothing,
                      const Tensor& gx));
// Probability targets (target contiguous, logits' shape). Writes lp (log_softmax) and out.
EVIT_CUDA_KERNEL(cross_entropy_probs_forward_cuda,
                 void(const Tensor& logits, const Tensor& target, const Tensor& weight, int64_t N,
                      int64_t C, int64_t inner, Reduction reduction, double label_smoothing,
                      const Tensor& lp, const Tensor& out));
// gt: allocated when the target needs a gradient, else undefined.
EVIT_CUDA_KERNEL(cross_entropy_probs_backward_cuda,
                 void(const Tensor& lp, const Tensor& target, const Tensor& weight,
                      const Tensor& g, int64_t N, int64_t C, int64_t inner, Reduction reduction,
                      double label_smoothing, const Tensor& gx, const Tensor& gt));

// Elementwise losses; kind is the functor's `kind` (ops/loss/functors.h): 0 BCE with logits,
// 1 MSE, 2 L1, 3 smooth L1 (beta). x, t: contiguous, one shape; pw: contiguous x-shaped
// pos_weight or undefined.
EVIT_CUDA_KERNEL(elementwise_loss_forward_cuda,
                 void(int kind, double beta, const Tensor& x, const Tensor& t, const Tensor& pw,
                      Reduction reduction, const Tensor& out));
// gx, gt, gpw: allocated where needed, else undefined.
EVIT_CUDA_KERNEL(elementwise_loss_backward_cuda,
                 void(int kind, double beta, const Tensor& x, const Tensor& t, const Tensor& pw,
                      const Tensor& g, Reduction reduction, const Tensor& gx, const Tensor& gt,
                      const Tensor& gpw));

}  // namespace evit

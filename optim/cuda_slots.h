// CUDA slots of the optimizers, EMA, gradient clipping and the loss scaler (optim/*.cu).
// Every tensor passed to one call is a contiguous f32/f64 tensor on one CUDA device; each call
// is one multi-tensor launch per element type (see optim/multi_tensor.cuh).
#pragma once
#include <vector>

#include "core/cuda_kernel.h"
#include "core/tensor.h"

namespace evit::optim {

// One AdamW parameter update (optim/adamw.cpp has the formula): step_size = lr / bc1,
// bc2_sqrt = sqrt(bc2), decay = 1 - lr * weight_decay, all per tensor.
struct AdamWCudaItem {
  Tensor param, grad, exp_avg, exp_avg_sq;
  double step_size, bc2_sqrt, decay;
};
EVIT_CUDA_KERNEL(adamw_step_cuda, void(const std::vector<AdamWCudaItem>& items, double beta1,
                                       double beta2, double eps));

// One SGD parameter update (optim/sgd.cpp has the formula). momentum_buffer is undefined
// without momentum; `first` marks a buffer that is set to the gradient (its first step).
struct SGDCudaItem {
  Tensor param, grad, momentum_buffer;
  bool first;
  double lr, weight_decay;
};
EVIT_CUDA_KERNEL(sgd_step_cuda, void(const std::vector<SGDCudaItem>& items, double momentum,
                                     double dampening, bool nesterov, bool maximize));

// shadow[i] -= one_minus_decay * (shadow[i] - model[i]) for every pair.
EVIT_CUDA_KERNEL(ema_update_cuda, void(const std::vector<Tensor>& shadow,
                                       const std::vector<Tensor>& model, double one_minus_decay));

// Sum of the squares of every element of every gradient, accumulated in f64 (two passes:
// per-block partials, then one block adding them in order). Waits for the result.
EVIT_CUDA_KERNEL(grad_sum_of_squares_cuda, double(const std::vector<Tensor>& grads));
// clip_grad_norm on one device: the norm, the clip factor and the scaling all stay on the
// device; only the norm is read back (returned).
EVIT_CUDA_KERNEL(clip_grad_norm_cuda, double(const std::vector<Tensor>& grads, double max_norm));
// grads *= coef (the coefficient rounded to each gradient's type).
EVIT_CUDA_KERNEL(scale_grads_cuda, void(const std::vector<Tensor>& grads, double coef));
// grads = clamp(grads, -clip_value, clip_value), NaN kept.
EVIT_CUDA_KERNEL(clip_grad_value_cuda, void(const std::vector<Tensor>& grads, double clip_value));

// The loss scaler's fused unscale: grads *= inv_scale (an f32 value), returns whether every
// element was finite before scaling. Waits for the flag.
EVIT_CUDA_KERNEL(unscale_grads_cuda, bool(const std::vector<Tensor>& grads, float inv_scale));

}  // namespace evit::optim

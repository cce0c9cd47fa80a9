// CUDA slots of the normalisation family (filled by batch_norm.cu and layer_norm.cu). The .cpp
// keeps every argument check, makes x (and the incoming gradient) contiguous and allocates the
// outputs on x's device; undefined optional tensors stay undefined.
#pragma once
#include "core/cuda_kernel.h"
#include "core/tensor.h"

namespace evit {

// x: contiguous [N, C, S]; weight, bias, running_mean, running_var: [C] (any stride) or
// undefined. Writes y (x's shape, contiguous) and save_mean / save_invstd ([C]); in training
// mode updates the running statistics in place on the device (the .cpp bumps their versions).
EVIT_CUDA_KERNEL(batch_norm_forward_cuda,
                 void(const Tensor& x, const Tensor& weight, const Tensor& bias,
                      const Tensor& running_mean, const Tensor& running_var, bool training,
                      double momentum, double eps, const Tensor& y, const Tensor& save_mean,
                      const Tensor& save_invstd));
// g: contiguous, x's shape. dx, dw, db: allocated where needed, else undefined.
EVIT_CUDA_KERNEL(batch_norm_backward_cuda,
                 void(const Tensor& x, const Tensor& g, const Tensor& weight,
                      const Tensor& save_mean, const Tensor& save_invstd, bool training,
                      const Tensor& dx, const Tensor& dw, const Tensor& db));

// x: contiguous [R, D] rows; weight, bias: contiguous D elements or undefined.
EVIT_CUDA_KERNEL(layer_norm_forward_cuda,
                 void(const Tensor& x, int64_t R, int64_t D, const Tensor& weight,
                      const Tensor& bias, double eps, const Tensor& y, const Tensor& save_mean,
                      const Tensor& save_rstd));
// dw, db: contiguous D elements (any shape) or undefined.
EVIT_CUDA_KERNEL(layer_norm_backward_cuda,
                 void(const Tensor& x, const Tensor& g, int64_t R, int64_t D, const Tensor& weight,
                      const Tensor& save_mean, const Tensor& save_rstd, const Tensor& dx,
                      const Tensor& dw, const Tensor& db));

// x: contiguous [N, C, S]; normalises over C at every (n, s). weight, bias: contiguous [C] or
// undefined. save_mean / save_rstd: [N, S].
EVIT_CUDA_KERNEL(layer_norm2d_forward_cuda,
                 void(const Tensor& x, int64_t N, int64_t C, int64_t S, const Tensor& weight,
                      const Tensor& bias, double eps, const Tensor& y, const Tensor& save_mean,
                      const Tensor& save_rstd));
EVIT_CUDA_KERNEL(layer_norm2d_backward_cuda,
                 void(const Tensor& x, const Tensor& g, int64_t N, int64_t C, int64_t S,
                      const Tensor& weight, const Tensor& save_mean, const Tensor& save_rstd,
                      const Tensor& dx, const Tensor& dw, const Tensor& db));

}  // namespace evit

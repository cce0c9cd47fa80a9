// CUDA slots of the fused ReLU linear attention (ops/attention/linear_attention.cpp).
#pragma once
#include "core/cuda_kernel.h"
#include "core/tensor.h"

namespace evit {

// out [B, H, dv, N] (contiguous, allocated by the caller) = linear_attention(q, k, v, eps).
// q, k [B, H, d, N] and v [B, H, dv, N] have unit stride along N; any row / batch / head strides.
EVIT_CUDA_KERNEL(linear_attention_forward_cuda,
                 void(const Tensor& q, const Tensor& k, const Tensor& v, double eps, const Tensor& out));

// Gradients of linear_attention: g = dL/dout and out are contiguous [B, H, dv, N]; dq, dk
// (contiguous [B, H, d, N]) and dv (contiguous [B, H, dv, N]) are filled when defined.
EVIT_CUDA_KERNEL(linear_attention_backward_cuda,
                 void(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                      const Tensor& g, double eps, const Tensor& dq, const Tensor& dk,
                      const Tensor& dv));

}  // namespace evit

// CUDA slots of the conv family (filled by ops/conv/gemm_path.cu and ops/conv/depthwise.cu).
// Tensors are contiguous NCHW / [O, C/groups, kH, kW] on one CUDA device; outputs are allocated
// by the caller and fully written. The GEMM path reads its operands in their dtype (f32, f64,
// or f16/bf16 under autocast, converted by conv2d.cpp) and writes outputs in theirs (f32 for
// 16-bit operands); the depthwise path and the bias kernels take f32/f64 only.
#pragma once
#include "core/cuda_kernel.h"
#include "core/tensor.h"
#include "ops/conv/kernels.h"

namespace evit {

// y = conv(x, w) (+ bias [O] in y's dtype, when defined).
EVIT_CUDA_KERNEL(conv_gemm_forward_cuda, void(const conv::Geom& g, const Tensor& x, const Tensor& w,
                                              const Tensor& bias, const Tensor& y));
// dx = the adjoint of the convolution applied to dy (im2col's adjoint as a gather).
EVIT_CUDA_KERNEL(conv_gemm_backward_input_cuda,
                 void(const conv::Geom& g, const Tensor& dy, const Tensor& w, const Tensor& dx));
// dw = Σ over images of dy · im2col(x)ᵀ, images accumulated in order.
EVIT_CUDA_KERNEL(conv_gemm_backward_weight_cuda,
                 void(const conv::Geom& g, const Tensor& x, const Tensor& dy, const Tensor& dw));

// Depthwise (g.depthwise()): direct kernels. dx / dw may be undefined (not needed).
EVIT_CUDA_KERNEL(conv_depthwise_forward_cuda, void(const conv::Geom& g, const Tensor& x,
                                                   const Tensor& w, const Tensor& bias,
                                                   const Tensor& y));
EVIT_CUDA_KERNEL(conv_depthwise_backward_cuda,
                 void(const conv::Geom& g, const Tensor& x, const Tensor& w, const Tensor& dy,
                      const Tensor& dx, const Tensor& dw));

// db[c] = Σ over n and the plane of dy [N, C, HW] (one block per channel, fixed order).
EVIT_CUDA_KERNEL(conv_bias_backward_cuda,
                 void(int64_t N, int64_t C, int64_t HW, const Tensor& dy, const Tensor& db));
// y[n, c, :] += bias[c].
EVIT_CUDA_KERNEL(conv_add_bias_cuda,
                 void(int64_t N, int64_t C, int64_t HW, const Tensor& bias, const Tensor& y));

}  // namespace evit

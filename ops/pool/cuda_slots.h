// CUDA slots of the pooling family (filled by ops/pool/pool.cu). Inputs and output gradients are
// contiguous [N, C, H, W] / [N, C, OH, OW]; outputs are allocated by pool.cpp and every element
// is written by the kernels (gradients are gathers, so no zero fill is needed).
#pragma once
#include <cstdint>

#include "core/cuda_kernel.h"
#include "core/tensor.h"

namespace evit {

// Geometry of a 2-D pooling window (dilation 1); shared by the CPU kernels of pool.cpp.
struct Pool2dGeom {
  int64_t N = 0, C = 0, H = 0, W = 0, OH = 0, OW = 0;
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0;
  int64_t planes() const { return N * C; }
};

EVIT_CUDA_KERNEL(avg_pool2d_cuda, void(const Tensor& x, const Tensor& y, Pool2dGeom g,
                                       bool count_include_pad));
EVIT_CUDA_KERNEL(avg_pool2d_backward_cuda, void(const Tensor& gy, const Tensor& gx, Pool2dGeom g,
                                                bool count_include_pad));
// idx: i64 [N, C, OH, OW], the argmax h * W + w within its plane.
EVIT_CUDA_KERNEL(max_pool2d_cuda, void(const Tensor& x, const Tensor& y, const Tensor& idx,
                                       Pool2dGeom g));
EVIT_CUDA_KERNEL(max_pool2d_backward_cuda, void(const Tensor& gy, const Tensor& idx,
                                                const Tensor& gx, Pool2dGeom g));
// Adaptive bins over `planes` planes of H x W -> OH x OW.
EVIT_CUDA_KERNEL(adaptive_avg_pool2d_cuda, void(const Tensor& x, const Tensor& y, int64_t planes,
                                                int64_t H, int64_t W, int64_t OH, int64_t OW));
EVIT_CUDA_KERNEL(adaptive_avg_pool2d_backward_cuda,
                 void(const Tensor& gy, const Tensor& gx, int64_t planes, int64_t H, int64_t W,
                      int64_t OH, int64_t OW));

}  // namespace evit

// CUDA slots of the shape family (filled by ops/shape/pixel_shuffle.cu). cat and pad need no
// kernels of their own on CUDA: they are fills and strided copies into views of the output
// (copy_elements), see cat.cpp and pad.cpp.
#pragma once
#include "core/cuda_kernel.h"
#include "core/tensor.h"

namespace evit {

// forward: x [batch, c*r*r, h, w] -> y [batch, c, h*r, w*r]; otherwise the inverse (unshuffle:
// x [batch, c, h*r, w*r] -> y [batch, c*r*r, h, w]). x contiguous; any element size.
EVIT_CUDA_KERNEL(pixel_shuffle_cuda, void(const Tensor& x, const Tensor& y, int64_t batch,
                                          int64_t c, int64_t h, int64_t w, int64_t r,
                                          bool forward));

}  // namespace evit

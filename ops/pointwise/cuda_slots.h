// CUDA slots of the pointwise family that do not follow the generic unary/binary shape.
#pragma once
#include "core/cuda_kernel.h"
#include "core/tensor.h"

namespace evit {

// y = cond ? a : b with broadcasting (cond bool; a, b and y of one dtype).
EVIT_CUDA_KERNEL(where_cuda, void(const Tensor& y, const Tensor& cond, const Tensor& a, const Tensor& b));

}  // namespace evit

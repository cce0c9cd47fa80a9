// Raw element copy between tensors of any strides and dtypes (no autograd): the kernel behind
// contiguous(), clone(), to(dtype) and copy_(). `src` is broadcast to `dst`'s shape.
#pragma once
#include "core/tensor.h"

namespace evit {

void copy_elements(const Tensor& dst, const Tensor& src);

}  // namespace evit

// The arithmetic the autograd engine does on gradients (summing two gradients, accumulating into
// a leaf, reducing a broadcast gradient to its input's shape, checking for NaN/Inf in anomaly
// mode). Those are ops, one layer up, with CPU and CUDA kernels: the ops layer installs them here
// when it is linked in (ops/autograd_support.cpp), so autograd builds and links without ops.
#pragma once
#include "core/tensor.h"

namespace evit {

struct GradientOps {
  Tensor (*add)(const Tensor& a, const Tensor& b) = nullptr;
  void (*add_)(Tensor& acc, const Tensor& g) = nullptr;  // acc += g, in place
  Tensor (*sum_to)(const Tensor& g, const Shape& shape) = nullptr;
  bool (*all_finite)(const Tensor& t) = nullptr;
};

void set_gradient_ops(const GradientOps& ops);
// The installed functions; throws when the ops layer is not linked in.
const GradientOps& gradient_ops();

}  // namespace evit

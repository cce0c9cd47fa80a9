// Gives the autograd engine its gradient arithmetic (autograd/gradient_ops.h) from the ops, so
// gradients are summed, accumulated and reduced by the same CPU and CUDA kernels as everything
// else. Runs at start-up.
#include "autograd/gradient_ops.h"
#include "ops/pointwise.h"
#include "ops/reduce.h"

namespace evit {
namespace {

const bool installed = [] {
  GradientOps ops;
  ops.add = [](const Tensor& a, const Tensor& b) { return add(a, b); };
  ops.add_ = [](Tensor& acc, const Tensor& g) { add_(acc, g); };
  ops.sum_to = [](const Tensor& g, const Shape& shape) { return sum_to(g, shape); };
  ops.all_finite = [](const Tensor& t) { return all_finite(t); };
  set_gradient_ops(ops);
  return true;
}();

}  // namespace
}  // namespace evit

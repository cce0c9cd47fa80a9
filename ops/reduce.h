// Reductions over dimensions. `dims` empty means all dimensions. With keepdim the reduced
// dimensions stay as size 1. Results are deterministic: every output is accumulated in a fixed
// order (f32 inputs accumulate in f64), independent of the thread count.
#pragma once
#include <utility>

#include "core/tensor.h"

namespace evit {

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
// Variance; unbiased divides by (n - 1), biased by n.
Tensor var(const Tensor& x, const std::vector<int64_t>& dims = {}, bool unbiased = true,
           bool keepdim = false);
// Max/min along one dim: (values, i64 indices of the first occurrence). The gradient flows to
// the selected element.
std::pair<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim = false);
std::pair<Tensor, Tensor> min(const Tensor& x, int64_t dim, bool keepdim = false);
// Max/min over all elements (0-D), differentiable (gradient to the first occurrence).
Tensor max(const Tensor& x);
Tensor min(const Tensor& x);
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);

// Sums `x` down to `shape` (the reverse of broadcasting): used for gradients of broadcast ops.
Tensor sum_to(const Tensor& x, const Shape& shape);

// Shared by the reduction kernels: normalises `dims` (empty = all) into a sorted mask.
std::vector<bool> reduction_mask(const Tensor& x, const std::vector<int64_t>& dims, const char* op);
// Output shape for a reduction with that mask.
Shape reduced_shape(const Shape& in, const std::vector<bool>& mask, bool keepdim);
// Moves the reduced dims last and makes the result contiguous: rows of `inner` elements, one per
// output element. Returns (tensor, outer, inner).
struct ReductionRows {
  Tensor data;
  int64_t outer = 1, inner = 1;
};
ReductionRows reduction_rows(const Tensor& x, const std::vector<bool>& mask);

}  // namespace evit

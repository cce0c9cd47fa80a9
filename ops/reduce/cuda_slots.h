// CUDA slots of the reduction family (filled by ops/reduce/reduce.cu). The .cpp files lay the
// input out as contiguous [outer, inner] rows (sum/mean/var, reduction_rows()) or [pre, n, post]
// (max/min along a dim) and allocate the outputs; the kernels only fill them.
#pragma once
#include "core/cuda_kernel.h"
#include "core/tensor.h"

namespace evit {

// y[o] = sum_j rows[o, j] (times 1/inner when average; integer mean divides as the CPU does).
// rows is contiguous [outer, inner], y contiguous with outer elements. Numeric dtypes.
EVIT_CUDA_KERNEL(sum_rows_cuda, void(const Tensor& rows, const Tensor& y, int64_t outer,
                                     int64_t inner, bool average));
// y[o] = sum_j (rows[o, j] - mean_o)^2 / divisor (two passes in f64). f32/f64.
EVIT_CUDA_KERNEL(var_rows_cuda, void(const Tensor& rows, const Tensor& y, int64_t outer,
                                     int64_t inner, double divisor));
// Over contiguous x viewed as [pre, n, post]: vals/idx [pre, post] = first best along n
// (strictly-better replaces; NaN beats everything, as the CPU kernel). n >= 1.
EVIT_CUDA_KERNEL(minmax_dim_cuda, void(const Tensor& x, const Tensor& vals, const Tensor& idx,
                                       int64_t pre, int64_t n, int64_t post, bool is_max));
// gx (zeroed, contiguous [pre, n, post]) at (p, idx[p, j], j) = g[p, j]; g contiguous.
EVIT_CUDA_KERNEL(minmax_backward_cuda, void(const Tensor& g, const Tensor& idx, const Tensor& gx,
                                            int64_t pre, int64_t n, int64_t post));

}  // namespace evit

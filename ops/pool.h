// 2-D pooling over [N, C, H, W] inputs, CPU and CUDA, f32 and f64, differentiable in x.
//
// kernel / stride / padding take one value (used for both dims) or two ({h, w}); an empty
// stride means stride = kernel. Padding must be at most half the kernel. Output size per dim:
// floor((in + 2*pad - k) / stride) + 1, or ceil(...) + 1 with ceil_mode, where a last window
// that would start inside the right padding is dropped (PyTorch's rule).
// Work is split over (n, c) planes, so forward and backward are deterministic.
#pragma once
#include "core/tensor.h"

namespace evit {

// Average of each window. count_include_pad: divide by the window size clipped to the padded
// input; otherwise by the number of real input elements in the window.
Tensor avg_pool2d(const Tensor& x, const std::vector<int64_t>& kernel,
                  const std::vector<int64_t>& stride = {}, const std::vector<int64_t>& padding = {0},
                  bool ceil_mode = false, bool count_include_pad = true);

// Maximum of each window (padding counts as -inf; NaN wins; ties go to the first element in
// row-major window order). The gradient flows to that argmax element.
Tensor max_pool2d(const Tensor& x, const std::vector<int64_t>& kernel,
                  const std::vector<int64_t>& stride = {}, const std::vector<int64_t>& padding = {0},
                  bool ceil_mode = false);
// Same, also returning the i64 argmax index within each input plane (h * W + w), like PyTorch's
// return_indices=True.
std::pair<Tensor, Tensor> max_pool2d_with_indices(const Tensor& x,
                                                  const std::vector<int64_t>& kernel,
                                                  const std::vector<int64_t>& stride = {},
                                                  const std::vector<int64_t>& padding = {0},
                                                  bool ceil_mode = false);

// Average over PyTorch's adaptive bins: output cell i covers input [floor(i*in/out),
// ceil((i+1)*in/out)). output_size: one value or {oh, ow}, each >= 1.
Tensor adaptive_avg_pool2d(const Tensor& x, const std::vector<int64_t>& output_size);

}  // namespace evit

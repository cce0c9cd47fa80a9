// Resizing of [N, C, H, W] images: torch.nn.functional.interpolate for 'nearest', 'bilinear'
// and 'bicubic', CPU and CUDA, f32 and f64, differentiable in x. Results match PyTorch's CPU
// kernels:
//  - nearest: src = min(floor(dst * scale), in - 1) in f32 arithmetic (PyTorch's legacy
//    'nearest', not 'nearest-exact'; out == in and out == 2*in are exact copies / halvings);
//  - bilinear / bicubic, align_corners=false: src = (dst + 0.5) * scale - 0.5 (bilinear clamps
//    a negative src to 0; bicubic does not, but clamps its 4 taps to [0, in - 1]);
//    align_corners=true: src = dst * (in - 1) / (out - 1);
//  - bilinear leaves an axis whose size is unchanged as it is (PyTorch's separable kernel skips
//    it), even when a scale factor != 1 was given; bicubic does not;
//  - bicubic: cubic convolution with A = -0.75.
// scale is in / out when a size is given, and 1 / scale_factor when a scale factor is given
// (PyTorch's recompute_scale_factor=None); the output size is then floor(in * scale_factor).
// Coordinates and weights are computed in the tensor's own dtype, as PyTorch does.
#pragma once
#include <string>

#include "core/tensor.h"

namespace evit {

enum class InterpolateMode { nearest, bilinear, bicubic };

// "nearest" | "bilinear" | "bicubic".
InterpolateMode interpolate_mode(const std::string& name);
const char* interpolate_mode_name(InterpolateMode mode);

// Exactly one of `size` ({oh, ow} or one value for both) and `scale_factor` ({sh, sw} or one
// value) must be non-empty. align_corners must be false for nearest.
Tensor interpolate(const Tensor& x, const std::vector<int64_t>& size,
                   const std::vector<double>& scale_factor, InterpolateMode mode,
                   bool align_corners = false);

}  // namespace evit

namespace evit {

// Bilinear samples of x [N, C, H, W] at points coords [N, P, 2] ((x, y) in [0, 1]², the image's
// edges at 0 and 1) -> [N, C, P]: torch grid_sample(x, 2·coords − 1, "bilinear", "zeros",
// align_corners=False) on an [N, P, 1, 2] grid (neighbours outside the map count as zero).
// Differentiable in x; coords must not require grad. CPU and CUDA, f32 and f64.
Tensor point_sample(const Tensor& x, const Tensor& coords);

}  // namespace evit

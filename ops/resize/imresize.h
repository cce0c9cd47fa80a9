// MATLAB-compatible bicubic image resizing and the BT.601 luma used by super-resolution metrics.
//
// imresize reproduces MATLAB's imresize(A, scale, 'bicubic') (antialiasing on, the default):
// - cubic convolution kernel with a = -0.5 (Keys);
// - when shrinking (scale < 1) the kernel is stretched by 1/scale and scaled by `scale`
//   (antialiasing), so every input pixel contributes;
// - output pixel i (1-based) maps to input coordinate u = i / scale + 0.5 (1 - 1 / scale);
//   taps floor(u - width/2) + 0 .. ceil(width) + 1, weights normalised to sum 1 per output pixel;
// - out-of-range taps are mirrored symmetrically (index -1 -> 0, -2 -> 1, n -> n-1, ...);
// - separable: one 1-D pass per dimension, the dimension with the smaller scale first (rows first
//   on ties), computed in double precision with no rounding between the passes.
// It differs from torch's bicubic interpolate (a = -0.75, no antialiasing, clamped borders).
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace evit {

// img: [H,W], [C,H,W] or [N,C,H,W], f32 or f64 (any values; no clamping or rounding).
// Output spatial size ceil(H * scale) x ceil(W * scale), same dtype, contiguous.
Tensor imresize(const Tensor& img, double scale);
// Explicit output size: per-dimension scales out/in, as MATLAB's imresize(A, [out_h out_w]).
Tensor imresize(const Tensor& img, int64_t out_h, int64_t out_w);

// The 1-D resampling matrix MATLAB builds for one dimension: for each of out_len outputs, `taps`
// (input index, 0-based, already mirrored) and weights. Exposed for tests and for other resizers.
struct ResizeWeights {
  int64_t out_len = 0;
  int64_t taps = 0;              // entries per output
  std::vector<int64_t> index;    // out_len * taps
  std::vector<double> weight;    // out_len * taps
};
ResizeWeights imresize_weights(int64_t in_len, int64_t out_len, double scale);

// BT.601 luma of RGB in [0, 1]: Y = 16 + 65.481 R + 128.553 G + 24.966 B, on the 0..255 scale
// (so Y is in [16, 235]). rgb: [3,H,W] -> [H,W], or [N,3,H,W] -> [N,H,W]; f32 or f64.
Tensor rgb_to_y(const Tensor& rgb);

}  // namespace evit

// Dropout family. Masks come from core/generator.h (Philox, counter based): each call reserves
// counters from the generator (default_generator() when gen is null), so a mask depends only on
// (seed, offset) and never on the thread count; the same seed reproduces the same masks.
// Backward multiplies by the same mask and scale. In eval mode (training = false) or with p = 0
// every op returns x itself (identity, no copy).
#pragma once
#include "core/tensor.h"

namespace evit {

class Generator;

// Zeroes each element with probability p and scales survivors by 1 / (1 - p). p in [0, 1]
// (p = 1 gives zeros). Any shape, f32/f64.
Tensor dropout(const Tensor& x, double p, bool training, Generator* gen = nullptr);
// Zeroes whole channels: x is [N, C, H, W] (or [N, C, ...]); one keep/drop decision per (n, c).
Tensor dropout2d(const Tensor& x, double p, bool training, Generator* gen = nullptr);
// Stochastic depth (timm / EfficientViT drop_path): one decision per sample (dim 0); surviving
// samples are scaled by 1 / (1 - p). Applied to a residual branch before the shortcut add.
Tensor drop_path(const Tensor& x, double p, bool training, Generator* gen = nullptr);

}  // namespace evit

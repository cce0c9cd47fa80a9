// Shape ops. View ops (reshape when strides allow, view, permute, transpose, slice, select,
// expand, squeeze, unsqueeze, flatten) share storage with their input; the others copy.
#pragma once
#include "core/tensor.h"

namespace evit {

// -1 in `shape` is inferred. A view when the strides allow it, otherwise a copy.
Tensor reshape(const Tensor& x, const Shape& shape);
// Like reshape but never copies: throws when the strides do not allow a view.
Tensor view(const Tensor& x, const Shape& shape);
Tensor permute(const Tensor& x, const std::vector<int64_t>& order);
Tensor transpose(const Tensor& x, int64_t d0, int64_t d1);
// Elements start, start+step, ... < end along dim (negative start/end count from the end;
// they are clamped to the size like Python slices). step >= 1.
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step = 1);
// Removes dim, taking index (negative counts from the end).
Tensor select(const Tensor& x, int64_t dim, int64_t index);
// Broadcasts size-1 dims (and new leading dims) to `shape`; -1 keeps a size. Stride-0 view.
Tensor expand(const Tensor& x, const Shape& shape);
Tensor squeeze(const Tensor& x, int64_t dim);
Tensor squeeze(const Tensor& x);
Tensor unsqueeze(const Tensor& x, int64_t dim);
Tensor flatten(const Tensor& x, int64_t start_dim = 0, int64_t end_dim = -1);

Tensor cat(const std::vector<Tensor>& xs, int64_t dim);
// Pieces of `size` along dim (the last may be shorter).
std::vector<Tensor> split(const Tensor& x, int64_t size, int64_t dim);
// Pieces of the given sizes (must add up to the dim's size).
std::vector<Tensor> split_with_sizes(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim);
// `chunks` pieces of ceil(size / chunks) (the last may be shorter).
std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim);
// Constant padding. `pad` lists (before, after) pairs starting from the LAST dim, as
// torch.nn.functional.pad: {left, right, top, bottom} pads W then H. Negative values crop.
Tensor pad(const Tensor& x, const std::vector<int64_t>& pad, double value = 0.0);
// [N, C*r*r, H, W] -> [N, C, H*r, W*r] and back.
Tensor pixel_shuffle(const Tensor& x, int64_t r);
Tensor pixel_unshuffle(const Tensor& x, int64_t r);

}  // namespace evit

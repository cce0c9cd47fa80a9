// Attention kernels of EfficientViT: the fused ReLU linear attention of LiteMLA.
// (Softmax attention for the SAM decoder lives in ops/softmax.h: scaled_dot_product_attention.)
#pragma once
#include <vector>

#include "core/tensor.h"

namespace evit {

// ReLU linear attention (LiteMLA of the EfficientViT paper, arXiv 2205.14756), per batch b and head h:
//   q' = relu(q), k' = relu(k)
//   out[:, i] = sum_j v[:, j] (k'[:, j] . q'[:, i]) / (sum_j k'[:, j] . q'[:, i] + eps)
//
// Layout: q, k, v are [B, H, d, N] (channels-first: d features by N = H*W positions), the layout
// the model's qkv tensor [B, heads*3d, H*W] already has, so q/k/v are plain slices of it
// (view as [B, heads, 3d, N] and slice dim 2) and out [B, H, d, N] reshapes straight back to
// [B, H*d, H, W]. v may have its own feature count dv: v is [B, H, dv, N], out is [B, H, dv, N].
// Inputs need not be contiguous: each [d, N] block must have unit stride along N and stride N
// along d (true for slices of qkv); any B/H strides are accepted, otherwise a copy is made.
//
// N > d uses the linear form (a (dv+1) x d state per head, never an N x N matrix, forward and
// backward); N <= d uses the quadratic form (the N x N normalised matrix), as the reference
// does (on the CPU; the CUDA kernels always take the linear form, which computes the same
// function). f32 accumulates in f32, f64 in f64. Parallel over (batch, head); deterministic.
// CPU or CUDA: q, k and v on one device.
// Differentiable in q, k and v.
Tensor linear_attention(const Tensor& q, const Tensor& k, const Tensor& v, double eps = 1e-15);

// The same attention with q, k and v packed in one tensor, LiteMLA's layout: qkv [B, G, 3d, N],
// each group's q, k and v consecutive blocks of d rows; returns [B, G, d, N]. Differentiable in
// qkv, whose gradient is made as ONE tensor, block by block (three slices of qkv given to
// linear_attention would each make a zero-filled gradient of qkv's full size, which backward
// then adds together). On CUDA it is linear_attention on the three slices.
Tensor linear_attention_qkv(const Tensor& qkv, int64_t d, double eps = 1e-15);
// The same over several packed tensors whose groups follow one another: parts [B, G_i, 3d, N]
// (one B, d, N, dtype and device) give [B, ΣG_i, d, N], linear_attention_qkv(cat(parts, 1)) bit
// for bit without the concatenation (LiteMLA's qkv and its multi-scale aggregates).
// Differentiable in every part, each gradient made as one tensor.
Tensor linear_attention_qkv(const std::vector<Tensor>& parts, int64_t d, double eps = 1e-15);

}  // namespace evit

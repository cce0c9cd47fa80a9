// Linear algebra: matmul and linear (CPU, f32 and f64, on OpenBLAS GEMM).
//
// matmul(a, b) follows torch.matmul:
//   1-D · 1-D  -> 0-D dot product;  2-D · 2-D -> [M, N];
//   1-D [K] · [..., K, N] -> [..., N] (a promoted to [1, K], the 1 removed afterwards);
//   [..., M, K] · 1-D [K] -> [..., M] (b promoted to [K, 1]);
//   batched: the batch dims (all but the last two) broadcast (numpy rules), result
//   [broadcast batch..., M, N]. A batched [..., M, K] times a 2-D [K, N] folds the batch into M
//   (one GEMM).
// Operands whose last two dims are a row-major or column-major matrix (e.g. transpose(t, -1, -2)
// of a contiguous tensor) go to BLAS with a transpose flag, without a copy; anything else is made
// contiguous first. Both operands must have the same floating dtype. Differentiable in a and b.
//
// linear(x, w, b) = x · wᵀ + b for x [..., in], w [out, in], b [out] or undefined (no bias);
// result [..., out]. Differentiable in x, w and b.
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace evit {

Tensor matmul(const Tensor& a, const Tensor& b);
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b = Tensor());

namespace linalg_stats {
// Number of operand copies matmul made because a matrix view was not BLAS-compatible
// (diagnostic: tests use it to check that transposed views are passed as flags, not copied).
int64_t operand_copies();
}  // namespace linalg_stats

}  // namespace evit

// Internal helpers of the linalg family (shared by matmul.cpp and linear.cpp).
#pragma once
#include <cstdint>
#include <optional>

#include "core/tensor.h"

namespace evit::detail {

// How a strided [rows, cols] matrix is handed to row-major BLAS: as is (trans = false, row
// stride ld) or as the transpose of a row-major [cols, rows] matrix (trans = true, ld = column
// stride). ok = false when neither fits (the operand must be copied).
struct BlasMatrix {
  bool ok = false;
  bool trans = false;
  int64_t ld = 1;
};
BlasMatrix blas_matrix(int64_t rows, int64_t cols, int64_t row_stride, int64_t col_stride);

// Counts an operand copy (see linalg_stats::operand_copies).
void count_operand_copy();

// Batched product without autograd: a [..., M, K] and b [..., K, N] (dim >= 2, batch dims
// broadcast) -> a new contiguous [batch..., M, N]. Views with BLAS-compatible last two dims are
// used in place; others are made contiguous. On CUDA, `compute` (autocast: f16/bf16) makes the
// GEMMs read 16-bit copies of the operands; the result keeps a's dtype.
Tensor matmul_kernel(Tensor a, Tensor b, const char* op,
                     std::optional<DType> compute = std::nullopt);

// The autocast compute dtype for a GEMM-shaped op whose operands are like x: autocast_dtype()
// for f32 CUDA operands, nullopt otherwise (CPU, f64: those always compute in their own dtype).
std::optional<DType> gemm_autocast(const Tensor& x);

// t converted to `compute` (a new contiguous tensor, not recorded by autograd: the op's own
// backward handles the gradient), or t itself without a compute dtype.
Tensor gemm_operand(const Tensor& t, std::optional<DType> compute);

// The view of t with its last two dims swapped (no autograd: for backward closures).
Tensor transpose_last2(const Tensor& t);

}  // namespace evit::detail

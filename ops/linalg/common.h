// Internal helpers of the linalg family (shared by matmul.cpp and linear.cpp).
#pragma once
#include <cstdint>

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
// used in place; others are made contiguous.
Tensor matmul_kernel(Tensor a, Tensor b, const char* op);

// The view of t with its last two dims swapped (no autograd: for backward closures).
Tensor transpose_last2(const Tensor& t);

}  // namespace evit::detail

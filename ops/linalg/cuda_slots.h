// CUDA slots of the linalg family (filled by ops/linalg/linalg.cu).
#pragma once
#include <cstdint>

#include "core/cuda_kernel.h"
#include "core/tensor.h"

namespace evit {

// One row-major (strided-batched) GEMM on device tensors, in the terms of cuda::gemm
// (core/cuda/cublas.cuh): for i < batch,
//   C_i[m, n] = alpha · op(A_i)[m, k] · op(B_i)[k, n] + beta · C_i
// where X_i starts at element offset_x + i · stride_x of tensor x's data (raw_data()).
// The operands' dtype (f32, f64, or f16/bf16 under autocast) is a's; the result's is c's.
struct DeviceGemm {
  bool trans_a = false, trans_b = false;
  int64_t m = 0, n = 0, k = 0;
  int64_t lda = 1, ldb = 1, ldc = 1;
  int64_t offset_a = 0, offset_b = 0, offset_c = 0;
  int64_t stride_a = 0, stride_b = 0, stride_c = 0;
  int64_t batch = 1;
  double alpha = 1.0, beta = 0.0;

  // One row-major product C[m,n] = op(A)[m,k] · op(B)[k,n] + beta · C (no batch, no offsets).
  static DeviceGemm single(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, int64_t lda,
                           int64_t ldb, int64_t ldc, double beta = 0.0) {
    DeviceGemm p;
    p.trans_a = trans_a, p.trans_b = trans_b;
    p.m = m, p.n = n, p.k = k;
    p.lda = lda, p.ldb = ldb, p.ldc = ldc;
    p.beta = beta;
    return p;
  }
};
EVIT_CUDA_KERNEL(linalg_gemm_cuda,
                 void(const DeviceGemm& p, const Tensor& a, const Tensor& b, const Tensor& c));

// db[o] = Σ_r g[r, o] for a contiguous g [R, out] (the bias gradient of linear), rows summed
// in a fixed order (deterministic, no atomics).
EVIT_CUDA_KERNEL(linalg_column_sums_cuda, void(const Tensor& g, const Tensor& db));

}  // namespace evit

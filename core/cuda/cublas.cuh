// cuBLAS for evit's CUDA sources (.cu files only): one handle per device, bound to the device's
// compute stream, with its workspace taken from the caching allocator, and row-major GEMM
// helpers for the linalg and conv families.
//
// Precision: f32 products compute in f32 (CUBLAS_COMPUTE_32F, default math: no TF32, so they
// match the CPU to f32 rounding) unless cuda::allow_tf32() is on (CUBLAS_COMPUTE_32F_FAST_TF32);
// f64 in f64; f16/bf16 operands (autocast) write f32 results with f32 accumulation.
#pragma once
#include <cublas_v2.h>

#include <cstdint>

#include "core/cuda/runtime.cuh"

namespace evit::cuda {

// Throws evit::Error naming the cuBLAS call, its file:line and the status.
[[noreturn]] void throw_cublas_error(cublasStatus_t status, const char* call, const char* file, int line);
const char* cublas_status_name(cublasStatus_t status);

#define EVIT_CUBLAS_CHECK(call)                                                     \
  do {                                                                              \
    cublasStatus_t evit_cublas_status_ = (call);                                    \
    if (evit_cublas_status_ != CUBLAS_STATUS_SUCCESS)                               \
      ::evit::cuda::throw_cublas_error(evit_cublas_status_, #call, __FILE__, __LINE__); \
  } while (0)

// The device's handle (created on first use; lives until the process ends). Its stream is
// cuda::stream(device), so cuBLAS work is ordered with every other kernel of evit.
cublasHandle_t cublas_handle(int device);

// Row-major GEMM on device pointers:
//   C[m, n] = alpha · op(A)[m, k] · op(B)[k, n] + beta · C
// op(A) = A (row-major [m, k], leading dimension lda) or, with trans_a, Aᵀ for A row-major
// [k, m]; likewise B. A and B hold in_dtype (f32, f64, f16 or bf16), C holds out_dtype (equal to
// in_dtype, or f32 for f16/bf16 inputs). k == 0 scales C by beta. Runs on stream(device).
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const void* A,
          int64_t lda, const void* B, int64_t ldb, double beta, void* C, int64_t ldc,
          DType in_dtype, DType out_dtype, int device);

// `batch` independent GEMMs; matrix i of A starts stride_a elements after matrix i - 1 (0:
// the same matrix for every i), likewise B and C.
void gemm_strided_batched(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                          const void* A, int64_t lda, int64_t stride_a, const void* B, int64_t ldb,
                          int64_t stride_b, double beta, void* C, int64_t ldc, int64_t stride_c,
                          int64_t batch, DType in_dtype, DType out_dtype, int device);

}  // namespace evit::cuda

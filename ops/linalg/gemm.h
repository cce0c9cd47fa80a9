// Internal: typed row-major GEMM on OpenBLAS, shared by linalg and conv.
// C[M,N] = alpha · op(A)[M,K] · op(B)[K,N] + beta · C, row-major with leading dimensions.
// Must be called outside parallel_for bodies (OpenBLAS runs its own threads).
//
// Determinism across thread counts (measured on OpenBLAS 0.3.21, SkylakeX kernels):
// - sgemm gives bitwise identical results on 1 and 2 threads as long as K <= 256, but not for
//   longer K (the threaded driver blocks K differently). So f32 products are cut into K blocks
//   of 256 accumulated in order (beta = 1 after the first), at the cost of re-reading C once per
//   block (small next to the 2·M·N·256 flops of each block).
// - dgemm differs between 1 and 2 threads even for short K (edge-tile kernels sum differently),
//   so f64 products run OpenBLAS single-threaded (f64 is the testing dtype; speed matters less).
#pragma once
#include <cblas.h>

#include <algorithm>
#include <cstdint>

namespace evit::detail {

inline constexpr int64_t kGemmKBlock = 256;

template <class T>
inline void scale_c(int64_t M, int64_t N, T beta, T* C, int64_t ldc) {
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) C[m * ldc + n] = beta == T(0) ? T(0) : C[m * ldc + n] * beta;
}

inline void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                 int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) return scale_c(M, N, beta, C, ldc);
  for (int64_t k0 = 0; k0 < K; k0 += kGemmKBlock) {
    const int64_t kb = std::min(kGemmKBlock, K - k0);
    const float* a = ta ? A + k0 * lda : A + k0;
    const float* b = tb ? B + k0 : B + k0 * ldb;
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (blasint)M, (blasint)N, (blasint)kb, alpha, a, (blasint)std::max<int64_t>(lda, 1),
                b, (blasint)std::max<int64_t>(ldb, 1), k0 == 0 ? beta : 1.0f, C,
                (blasint)std::max<int64_t>(ldc, 1));
  }
}

inline void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
                 int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) return scale_c(M, N, beta, C, ldc);
  const int threads = openblas_get_num_threads();
  if (threads != 1) openblas_set_num_threads(1);
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              (blasint)M, (blasint)N, (blasint)K, alpha, A, (blasint)std::max<int64_t>(lda, 1), B,
              (blasint)std::max<int64_t>(ldb, 1), beta, C, (blasint)std::max<int64_t>(ldc, 1));
  if (threads != 1) openblas_set_num_threads(threads);
}

}  // namespace evit::detail

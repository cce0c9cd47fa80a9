// Internal: typed row-major GEMM on oneDNN (f32, when built with it) or OpenBLAS, shared by linalg
// and conv.
// C[M,N] = alpha · op(A)[M,K] · op(B)[K,N] + beta · C, row-major with leading dimensions.
//
// Determinism is ours, not the BLAS's. The BLAS only ever runs single-threaded; evit cuts C into
// tiles (and, for long K with few tiles, K into chunks) whose boundaries are a function of
// (M, N, K) alone, runs one single-threaded BLAS call per piece on its own thread pool, and adds
// the K chunks in a fixed order. The set of BLAS calls, and therefore every bit of the result, is
// the same for 1 or 64 threads, on any CPU and with any kernel choice (threaded OpenBLAS results
// depend on its thread count and kernel: with the Haswell kernels they differ between 1 and 2
// threads even for short K). The bits do depend on the library and the kernels it picks (oneDNN
// with AVX-512 and with AVX2 round differently), as they do in every framework.
//
// Safe to call inside a parallel_for body (the pieces then run inline, in the same order).
#pragma once
#include <cstdint>
#include <functional>
#include <string>

namespace evit::detail {

// Called on each finished block of C — (first row, rows, first column, columns) — right after its
// last piece is computed, while the block is still in cache: for work fused into a product (a
// bias, an activation). Blocks never overlap and together cover C once.
using GemmEpilogue = std::function<void(int64_t m0, int64_t rows, int64_t n0, int64_t cols)>;

void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc, const GemmEpilogue* epilogue = nullptr);
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
          int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc,
          const GemmEpilogue* epilogue = nullptr);

// How gemm() splits a product: tiles_m x tiles_n tiles of C, each over k_chunks chunks of K.
// A function of the shape only (exposed so tests and callers can reason about the split).
struct GemmSplit {
  int64_t tile_m = 0, tile_n = 0, tiles_m = 0, tiles_n = 0;
  int64_t k_chunk = 0, k_chunks = 0;
  int64_t tasks() const { return tiles_m * tiles_n * k_chunks; }
};
GemmSplit gemm_split(int64_t M, int64_t N, int64_t K);

// Which library and kernels run the single-threaded pieces, e.g. "oneDNN 2.6.3 (AVX-512); f64:
// OpenBLAS Haswell" (printed by the benchmarks). EVIT_GEMM=onednn|openblas in the environment
// forces one library for the f32 pieces.
std::string gemm_backend();

}  // namespace evit::detail

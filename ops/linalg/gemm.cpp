// The tiled GEMM driver behind every CPU product (see gemm.h for the determinism contract).
//
// Split rules (all functions of M, N, K):
// - Small products (fewer than kSerialMacs multiply-adds) are one OpenBLAS call: the pool's
//   wake-up would cost more than it saves.
// - Otherwise the product becomes `tasks` pieces: one per kTaskMacs of work for large products,
//   and up to kMediumTasks pieces of at least kMinTaskMacs for medium ones (so two or more threads
//   share them). Fewer, larger pieces measured faster than many small ones: every piece repacks
//   its rows of A and columns of B, and OpenBLAS's own blocking works best on large panels.
// - C is cut into tiles_m x tiles_n ≈ tasks tiles in proportion to its sides (multiples of 16, so
//   OpenBLAS's micro-kernels see full panels). A small odd number of tiles is raised by one
//   (see even_tiles).
// - When C is too small for that many tiles but K is long (weight gradients: a small C summed
//   over many pixels), K is cut into chunks of at least kMinKChunk. Chunk j > 0 writes its
//   partial product to its own buffer, and the buffers are added to C in order 1, 2, ...
//
// The single-threaded f32 calls go to oneDNN's sgemm when the build found it (EVIT_ONEDNN), else
// to OpenBLAS (see f32_library); f64 always to OpenBLAS.
#include "ops/linalg/gemm.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#if EVIT_WITH_ONEDNN
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#endif

#include "core/error.h"
#include "core/parallel.h"
#include "core/scratch.h"

namespace evit::detail {
namespace {

constexpr int64_t kSerialMacs = int64_t{1} << 20;    // below: one call, no pool wake-up
constexpr int64_t kTaskMacs = int64_t{1} << 25;      // a large product gets one task per this much work
constexpr int64_t kMinTaskMacs = int64_t{1} << 21;   // a medium one is split down to tasks of this size,
constexpr int64_t kMediumTasks = 4;                  // into at most this many
constexpr int64_t kMinKChunk = 512;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t m) { return ceil_div(a, m) * m; }

// Near-equal pieces of at most `most` (a multiple of 16 unless one piece covers everything).
void split_dim(int64_t n, int64_t most, int64_t& piece, int64_t& pieces) {
  pieces = ceil_div(n, most);
  piece = pieces == 1 ? n : round_up(ceil_div(n, pieces), 16);
  pieces = ceil_div(n, piece);
}

// A few tiles in an odd number leave a thread idle for the last one (3 tiles on 2 threads take as
// long as 4), so a small odd count is raised by one where a side has room for another piece. The
// tiles stay a function of the product's sides alone.
constexpr int64_t kMaxEvenedTiles = 16;

void even_tiles(int64_t M, int64_t N, GemmSplit& s) {
  const int64_t tiles = s.tiles_m * s.tiles_n;
  if (tiles == 1 || tiles % 2 == 0 || tiles > kMaxEvenedTiles) return;
  GemmSplit t = s;
  if (N / 16 > s.tiles_n) split_dim(N, ceil_div(N, s.tiles_n + 1), t.tile_n, t.tiles_n);
  if ((t.tiles_m * t.tiles_n) % 2 == 1 && M / 16 > s.tiles_m) {
    t = s;
    split_dim(M, ceil_div(M, s.tiles_m + 1), t.tile_m, t.tiles_m);
  }
  if ((t.tiles_m * t.tiles_n) % 2 == 0) s = t;
}

// Which library runs the f32 pieces, decided once per process: oneDNN when the build has it
// (its JIT kernels were the fastest on every shape measured, docs/performance.md), else OpenBLAS.
// EVIT_GEMM=onednn|openblas forces one (to compare them on one binary).
enum class F32Library { onednn, openblas };

F32Library f32_library() {
  static const F32Library library = [] {
    const char* env = std::getenv("EVIT_GEMM");
    const std::string want = env ? env : "";
    EVIT_CHECK(want.empty() || want == "onednn" || want == "openblas",
               "EVIT_GEMM: expected 'onednn' or 'openblas', got '", want, "'");
#if EVIT_WITH_ONEDNN
    if (want != "openblas") return F32Library::onednn;
#else
    EVIT_CHECK(want != "onednn", "EVIT_GEMM=onednn: this build has no oneDNN (configure with EVIT_ONEDNN=ON)");
#endif
    return F32Library::openblas;
  }();
  return library;
}

#if EVIT_WITH_ONEDNN
// Without AVX-512, oneDNN 2.6's sgemm runs at half speed (45 instead of 90 GFLOP/s on Zen 3) when
// it reads a non-transposed B whose rows are a multiple of 4 KiB apart, as every 1×1 convolution
// of a 512×1024 input does (4096 to 32768 positions per row). Such a piece gets its K×N panel of
// B copied first to rows that are not a multiple of 4 KiB apart: K·N copies for the piece's
// M·N·K multiply-adds, which then run at full speed (K = 32: 42 -> 75 GFLOP/s; OpenBLAS: 57).
// Which pieces are copied depends on the layout only, so the calls stay thread-count independent.
bool restride_b(bool tb, int64_t K, int64_t ldb) {
  static const bool avx2_kernels = [] {
    const unsigned isa = static_cast<unsigned>(dnnl_get_effective_cpu_isa());
    return (isa & dnnl_cpu_isa_avx512_core) != dnnl_cpu_isa_avx512_core;  // ISA values are bit sets
  }();
  return avx2_kernels && !tb && K > 1 && (ldb * static_cast<int64_t>(sizeof(float))) % 4096 == 0;
}

void onednn_sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                  const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  // oneDNN threads its GEMM through OpenMP with the calling thread's team size; every thread
  // that calls it is set to one OpenMP thread (once), so each piece stays single-threaded.
  thread_local const bool single_threaded = (omp_set_num_threads(1), true);
  (void)single_threaded;
  Scratch<float> panel(0);
  if (restride_b(tb, K, ldb)) {
    int64_t ld = round_up(N, 16);
    if (ld % 1024 == 0) ld += 16;
    panel = Scratch<float>(static_cast<size_t>(K * ld));
    for (int64_t k = 0; k < K; ++k) std::copy_n(B + k * ldb, N, panel.data() + k * ld);
    B = panel.data(), ldb = ld;
  }
  const dnnl_status_t status =
      dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, alpha, A, std::max<int64_t>(lda, 1), B,
                 std::max<int64_t>(ldb, 1), beta, C, std::max<int64_t>(ldc, 1));
  EVIT_CHECK(status == dnnl_success, "dnnl_sgemm failed (status ", static_cast<int>(status), ") for M=", M,
             " N=", N, " K=", K, " lda=", lda, " ldb=", ldb, " ldc=", ldc);
}
#endif

void blas(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
#if EVIT_WITH_ONEDNN
  if (f32_library() == F32Library::onednn) return onednn_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (blasint)M,
              (blasint)N, (blasint)K, alpha, A, (blasint)std::max<int64_t>(lda, 1), B,
              (blasint)std::max<int64_t>(ldb, 1), beta, C, (blasint)std::max<int64_t>(ldc, 1));
}

void blas(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t lda,
          const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (blasint)M,
              (blasint)N, (blasint)K, alpha, A, (blasint)std::max<int64_t>(lda, 1), B,
              (blasint)std::max<int64_t>(ldb, 1), beta, C, (blasint)std::max<int64_t>(ldc, 1));
}

template <class T>
void scale_c(int64_t M, int64_t N, T beta, T* C, int64_t ldc) {
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) C[m * ldc + n] = beta == T(0) ? T(0) : C[m * ldc + n] * beta;
}

template <class T>
void tiled_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                const T* B, int64_t ldb, T beta, T* C, int64_t ldc, const GemmEpilogue* epilogue) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    scale_c(M, N, beta, C, ldc);
    if (epilogue) (*epilogue)(0, M, 0, N);
    return;
  }
  (void)get_num_threads();  // starts the pool, which pins OpenBLAS to one thread, before any call
  const GemmSplit s = gemm_split(M, N, K);
  if (s.tasks() == 1) {
    blas(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    if (epilogue) (*epilogue)(0, M, 0, N);
    return;
  }
  // Partial products of K chunks 1.. (chunk 0 goes straight into C with the caller's beta).
  Scratch<T> partial(static_cast<size_t>((s.k_chunks - 1) * M * N));
  const int64_t tiles = s.tiles_m * s.tiles_n;
  parallel_for(0, s.tasks(), 1, [&](int64_t b, int64_t e) {
    for (int64_t task = b; task < e; ++task) {
      const int64_t chunk = task / tiles, tile = task % tiles;
      const int64_t m0 = (tile / s.tiles_n) * s.tile_m, n0 = (tile % s.tiles_n) * s.tile_n;
      const int64_t k0 = chunk * s.k_chunk;
      const int64_t mt = std::min(s.tile_m, M - m0), nt = std::min(s.tile_n, N - n0);
      const int64_t kt = std::min(s.k_chunk, K - k0);
      const T* a = A + (ta ? k0 * lda + m0 : m0 * lda + k0);
      const T* bp = B + (tb ? n0 * ldb + k0 : k0 * ldb + n0);
      if (chunk == 0) {
        blas(ta, tb, mt, nt, kt, alpha, a, lda, bp, ldb, beta, C + m0 * ldc + n0, ldc);
        if (epilogue && s.k_chunks == 1) (*epilogue)(m0, mt, n0, nt);
      } else
        blas(ta, tb, mt, nt, kt, alpha, a, lda, bp, ldb, T(0), partial.data() + (chunk - 1) * M * N + m0 * N + n0,
             N);
    }
  });
  if (s.k_chunks == 1) return;
  // Chunks are added in index order for every element: the sum does not depend on the threads.
  parallel_for(0, M, std::max<int64_t>(1, kPointwiseGrain / N), [&](int64_t b, int64_t e) {
    for (int64_t m = b; m < e; ++m)
      for (int64_t c = 1; c < s.k_chunks; ++c) {
        const T* p = partial.data() + (c - 1) * M * N + m * N;
        T* row = C + m * ldc;
        for (int64_t n = 0; n < N; ++n) row[n] += p[n];
      }
    if (epilogue) (*epilogue)(b, e - b, 0, N);
  });
}

}  // namespace

std::string gemm_backend() {
#if EVIT_WITH_ONEDNN
  const dnnl_version_t* v = dnnl_version();
  std::string isa;
  switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_avx2: isa = "AVX2"; break;
    case dnnl_cpu_isa_avx512_core: isa = "AVX-512"; break;
    case dnnl_cpu_isa_avx512_core_vnni: isa = "AVX-512 VNNI"; break;
    case dnnl_cpu_isa_avx512_core_bf16: isa = "AVX-512 BF16"; break;
    case dnnl_cpu_isa_avx512_core_amx: isa = "AVX-512 AMX"; break;
    default: isa = "ISA " + std::to_string(static_cast<int>(dnnl_get_effective_cpu_isa()));
  }
  const std::string onednn =
      "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch) + " (" + isa + ")";
  const std::string openblas = std::string("OpenBLAS ") + openblas_get_corename();
  if (f32_library() == F32Library::onednn) return onednn + "; f64: " + openblas;
  return openblas + " (" + onednn + " not used)";
#else
  return std::string("OpenBLAS ") + openblas_get_corename();
#endif
}

GemmSplit gemm_split(int64_t M, int64_t N, int64_t K) {
  const int64_t macs = M * N * K;
  if (macs < kSerialMacs) return {M, N, 1, 1, K, 1};
  const int64_t tasks = std::max(ceil_div(macs, kTaskMacs), std::min(kMediumTasks, macs / kMinTaskMacs));
  GemmSplit s;
  // Tiles of C in proportion to its sides, no narrower than 16 in either.
  const double ratio = std::sqrt(static_cast<double>(tasks) * static_cast<double>(N) / static_cast<double>(M));
  const int64_t want_n = std::clamp<int64_t>(std::llround(ratio), 1, std::max<int64_t>(1, N / 16));
  const int64_t want_m = std::clamp<int64_t>(ceil_div(tasks, want_n), 1, std::max<int64_t>(1, M / 16));
  split_dim(M, ceil_div(M, want_m), s.tile_m, s.tiles_m);
  split_dim(N, ceil_div(N, want_n), s.tile_n, s.tiles_n);
  even_tiles(M, N, s);
  s.k_chunk = K, s.k_chunks = 1;
  const int64_t tiles = s.tiles_m * s.tiles_n;
  if (tiles < tasks && K >= 2 * kMinKChunk) {
    const int64_t chunks = std::min(K / kMinKChunk, ceil_div(tasks, tiles));
    s.k_chunk = round_up(ceil_div(K, chunks), 16);
    s.k_chunks = ceil_div(K, s.k_chunk);
  }
  return s;
}

void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc, const GemmEpilogue* epilogue) {
  tiled_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, epilogue);
}

void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
          int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc,
          const GemmEpilogue* epilogue) {
  tiled_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, epilogue);
}

}  // namespace evit::detail

// CUDA kernels of the reduction family: sum/mean and var over [outer, inner] rows, max/min
// (values + first-occurrence indices) over [pre, n, post], and the max/min backward scatter.
//
// Determinism: no atomics. Every output is produced by a fixed tree of additions that depends
// only on the shape:
//  - short rows (inner <= kShortRow): one thread per row sums it sequentially;
//  - longer rows: each row is cut into fixed kPiece-element pieces; one block per (row, piece)
//    accumulates a strided slice per thread and combines the threads with a shared-memory tree;
//    a second kernel adds the pieces of each row in piece order.
// f32 accumulates in f64 (as the CPU), integers in i64. The order differs from the CPU's, so f32
// results agree to rounding, not bitwise.
//
// max/min: one thread per output scans its column (k ascending, replace only when strictly
// better: first occurrence) when the reduced dim is not innermost or short; a long innermost run
// is cut into pieces whose (value, index) winners are merged by value and then by smaller index,
// which is exactly the first occurrence a sequential scan finds.
#include <limits>
#include <type_traits>

#include "core/cuda/runtime.cuh"
#include "ops/reduce/cuda_slots.h"

namespace evit {
namespace {

constexpr int kThreads = 256;        // block size of the per-piece kernels (a power of two)
constexpr int64_t kPiece = 16384;    // elements of a row handled by one block
constexpr int64_t kShortRow = 64;    // rows up to this length: one thread per row
constexpr int64_t kMaxBlocks = 65535 * 4;

template <class T>
using AccOf = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;

__host__ __device__ __forceinline__ int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }

unsigned grid_for_blocks(int64_t n) {
  return static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>(n, kMaxBlocks)));
}

// Sum of v over the block in a fixed tree order; every thread gets the result.
template <class Acc>
__device__ Acc block_sum(Acc v, Acc* sh) {
  sh[threadIdx.x] = v;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
    __syncthreads();
  }
  const Acc r = sh[0];
  __syncthreads();  // sh may be reused by the next row
  return r;
}

// The term a row element contributes: x, or (x - mean)^2 for the second pass of var.
template <bool SqDev, class Acc, class T>
__device__ __forceinline__ Acc term(T x, double mean) {
  if constexpr (SqDev) {
    const double d = static_cast<double>(x) - mean;
    return d * d;
  } else {
    return static_cast<Acc>(x);
  }
}

// partial[row] = sum of a whole short row (one thread per row).
template <bool SqDev, class T, class Acc>
__global__ void short_rows_kernel(const T* in, int64_t outer, int64_t inner, const double* means,
                                  Acc* partial) {
  for (int64_t row = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; row < outer;
       row += int64_t(gridDim.x) * blockDim.x) {
    const T* r = in + row * inner;
    const double m = SqDev ? means[row] : 0.0;
    Acc acc = 0;
    for (int64_t j = 0; j < inner; ++j) acc += term<SqDev, Acc>(r[j], m);
    partial[row] = acc;
  }
}

// partial[row * pieces + p] = sum of piece p of row `row` (one block per piece).
template <bool SqDev, class T, class Acc>
__global__ void piece_rows_kernel(const T* in, int64_t outer, int64_t inner, int64_t pieces,
                                  const double* means, Acc* partial) {
  __shared__ Acc sh[kThreads];
  // t depends on blockIdx only, so the whole block runs the same iterations (safe barriers).
  for (int64_t t = blockIdx.x; t < outer * pieces; t += gridDim.x) {
    const int64_t row = t / pieces, p = t % pieces;
    const int64_t j0 = p * kPiece, j1 = imin(inner, j0 + kPiece);
    const T* r = in + row * inner;
    const double m = SqDev ? means[row] : 0.0;
    Acc acc = 0;
    for (int64_t j = j0 + threadIdx.x; j < j1; j += kThreads) acc += term<SqDev, Acc>(r[j], m);
    acc = block_sum(acc, sh);
    if (threadIdx.x == 0) partial[t] = acc;
  }
}

// Row totals from the pieces, in piece order; `finish(row, total)` stores the result.
template <class Acc, class F>
__global__ void finish_rows_kernel(const Acc* partial, int64_t outer, int64_t pieces, F finish) {
  for (int64_t row = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; row < outer;
       row += int64_t(gridDim.x) * blockDim.x) {
    Acc acc = 0;
    for (int64_t p = 0; p < pieces; ++p) acc += partial[row * pieces + p];
    finish(row, acc);
  }
}

template <class T>
struct SumFinish {
  T* out;
  double scale;         // floating: multiply (1 or 1/inner)
  int64_t int_divisor;  // integers: divide (1 for sum, max(inner, 1) for mean)
  template <class Acc>
  __device__ void operator()(int64_t row, Acc acc) const {
    if constexpr (std::is_floating_point_v<T>)
      out[row] = static_cast<T>(acc * scale);
    else
      out[row] = static_cast<T>(acc / int_divisor);
  }
};

struct MeanFinish {
  double* means;
  double inv_n;
  __device__ void operator()(int64_t row, double acc) const { means[row] = acc * inv_n; }
};

template <class T>
struct VarFinish {
  T* out;
  double divisor;
  __device__ void operator()(int64_t row, double acc) const {
    out[row] = static_cast<T>(acc / divisor);
  }
};

// One reduction pass over the rows into `partial` (outer * pieces Acc values); returns pieces.
template <bool SqDev, class T, class Acc>
int64_t reduce_pass(const T* in, int64_t outer, int64_t inner, const double* means, Acc* partial,
                    cudaStream_t s) {
  if (inner <= kShortRow) {
    short_rows_kernel<SqDev, T, Acc><<<cuda::blocks_for(outer), 256, 0, s>>>(in, outer, inner,
                                                                            means, partial);
    EVIT_CUDA_LAUNCH_CHECK("reduce short_rows_kernel");
    return 1;
  }
  const int64_t pieces = (inner + kPiece - 1) / kPiece;
  piece_rows_kernel<SqDev, T, Acc><<<grid_for_blocks(outer * pieces), kThreads, 0, s>>>(
      in, outer, inner, pieces, means, partial);
  EVIT_CUDA_LAUNCH_CHECK("reduce piece_rows_kernel");
  return pieces;
}

int64_t max_pieces(int64_t inner) {
  return inner <= kShortRow ? 1 : (inner + kPiece - 1) / kPiece;
}

void sum_rows_launch(const Tensor& rows, const Tensor& y, int64_t outer, int64_t inner,
                     bool average) {
  if (outer == 0) return;
  cuda::DeviceGuard guard(rows);
  cudaStream_t s = cuda::stream_of(rows);
  dispatch_numeric(rows.dtype(), "sum (CUDA)", [&](auto tag) {
    using T = decltype(tag);
    using Acc = AccOf<T>;
    const DType acc_dtype = std::is_floating_point_v<T> ? DType::f64 : DType::i64;
    Tensor partial = empty({outer * max_pieces(inner)}, {acc_dtype, rows.device()});
    Acc* pp = static_cast<Acc*>(partial.raw_data());
    const int64_t pieces = reduce_pass<false>(static_cast<const T*>(rows.raw_data()), outer,
                                              inner, static_cast<const double*>(nullptr), pp, s);
    SumFinish<T> fin{static_cast<T*>(y.raw_data()),
                     average ? 1.0 / static_cast<double>(inner) : 1.0,
                     average ? std::max<int64_t>(inner, 1) : 1};
    finish_rows_kernel<<<cuda::blocks_for(outer), 256, 0, s>>>(pp, outer, pieces, fin);
    EVIT_CUDA_LAUNCH_CHECK("sum finish_rows_kernel");
  });
}

void var_rows_launch(const Tensor& rows, const Tensor& y, int64_t outer, int64_t inner,
                     double divisor) {
  if (outer == 0) return;
  cuda::DeviceGuard guard(rows);
  cudaStream_t s = cuda::stream_of(rows);
  dispatch_floating(rows.dtype(), "var (CUDA)", [&](auto tag) {
    using T = decltype(tag);
    const T* in = static_cast<const T*>(rows.raw_data());
    Tensor partial = empty({outer * max_pieces(inner)}, {DType::f64, rows.device()});
    Tensor means = empty({outer}, {DType::f64, rows.device()});
    double* pp = static_cast<double*>(partial.raw_data());
    double* mp = static_cast<double*>(means.raw_data());
    const double inv_n = inner > 0 ? 1.0 / static_cast<double>(inner)
                                   : std::numeric_limits<double>::quiet_NaN();
    const double* no_means = nullptr;
    // pass 1: means
    int64_t pieces = reduce_pass<false>(in, outer, inner, no_means, pp, s);
    finish_rows_kernel<<<cuda::blocks_for(outer), 256, 0, s>>>(pp, outer, pieces,
                                                               MeanFinish{mp, inv_n});
    EVIT_CUDA_LAUNCH_CHECK("var mean finish_rows_kernel");
    // pass 2: squared deviations from the means
    pieces = reduce_pass<true>(in, outer, inner, static_cast<const double*>(mp), pp, s);
    finish_rows_kernel<<<cuda::blocks_for(outer), 256, 0, s>>>(
        pp, outer, pieces, VarFinish<T>{static_cast<T*>(y.raw_data()), divisor});
    EVIT_CUDA_LAUNCH_CHECK("var finish_rows_kernel");
  });
}

// ------------------------------------------------------------------------------ max / min
template <bool IsMax, class T>
__device__ __forceinline__ bool better(T cand, T best) {
  if constexpr (std::is_floating_point_v<T>) {
    if (cand != cand) return best == best;  // NaN beats any non-NaN
    if (best != best) return false;
  }
  if constexpr (IsMax)
    return cand > best;
  else
    return cand < best;
}

// (vb, ib) replaces (va, ia) when strictly better, or equally good and earlier. Index -1 marks
// "no element" (a thread whose strided slice of a piece was empty).
template <bool IsMax, class T>
__device__ __forceinline__ bool takes(T va, int64_t ia, T vb, int64_t ib) {
  if (ib < 0) return false;
  if (ia < 0) return true;
  if (better<IsMax>(vb, va)) return true;
  return !better<IsMax>(va, vb) && ib < ia;
}

// One thread per output (p, j): sequential scan over k of column j of block p.
template <bool IsMax, class T>
__global__ void minmax_column_kernel(const T* in, T* vals, int64_t* idx, int64_t pre, int64_t n,
                                     int64_t post) {
  for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < pre * post;
       o += int64_t(gridDim.x) * blockDim.x) {
    const int64_t p = o / post, j = o % post;
    const T* base = in + p * n * post + j;
    T best = base[0];
    int64_t bi = 0;
    for (int64_t k = 1; k < n; ++k) {
      const T c = base[k * post];
      if (better<IsMax>(c, best)) {
        best = c;
        bi = k;
      }
    }
    vals[o] = best;
    idx[o] = bi;
  }
}

// Contiguous rows (post == 1): one block per (row, piece) finds the piece's first best.
template <bool IsMax, class T>
__global__ void minmax_piece_kernel(const T* in, int64_t rows, int64_t n, int64_t pieces,
                                    T* pv, int64_t* pi) {
  __shared__ T sv[kThreads];
  __shared__ int64_t si[kThreads];
  for (int64_t t = blockIdx.x; t < rows * pieces; t += gridDim.x) {
    const int64_t row = t / pieces, p = t % pieces;
    const int64_t j0 = p * kPiece, j1 = imin(n, j0 + kPiece);
    const T* r = in + row * n;
    T best{};
    int64_t bi = -1;
    for (int64_t j = j0 + threadIdx.x; j < j1; j += kThreads) {
      const T c = r[j];
      if (bi < 0 || better<IsMax>(c, best)) {  // ascending j: strictly better keeps the first
        best = c;
        bi = j;
      }
    }
    sv[threadIdx.x] = best;
    si[threadIdx.x] = bi;
    __syncthreads();
    for (int s = kThreads / 2; s > 0; s >>= 1) {
      if (threadIdx.x < s &&
          takes<IsMax>(sv[threadIdx.x], si[threadIdx.x], sv[threadIdx.x + s], si[threadIdx.x + s])) {
        sv[threadIdx.x] = sv[threadIdx.x + s];
        si[threadIdx.x] = si[threadIdx.x + s];
      }
      __syncthreads();
    }
    if (threadIdx.x == 0) {
      pv[t] = sv[0];
      pi[t] = si[0];
    }
    __syncthreads();
  }
}

// Row winners from the piece winners, merged in piece order (ties keep the earlier piece).
template <bool IsMax, class T>
__global__ void minmax_finish_kernel(const T* pv, const int64_t* pi, int64_t rows, int64_t pieces,
                                     T* vals, int64_t* idx) {
  for (int64_t row = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; row < rows;
       row += int64_t(gridDim.x) * blockDim.x) {
    T best = pv[row * pieces];
    int64_t bi = pi[row * pieces];
    for (int64_t p = 1; p < pieces; ++p)
      if (better<IsMax>(pv[row * pieces + p], best)) {
        best = pv[row * pieces + p];
        bi = pi[row * pieces + p];
      }
    vals[row] = best;
    idx[row] = bi;
  }
}

template <bool IsMax, class T>
void minmax_typed(const Tensor& x, const Tensor& vals, const Tensor& idx, int64_t pre, int64_t n,
                  int64_t post, cudaStream_t s) {
  const T* in = static_cast<const T*>(x.raw_data());
  T* vp = static_cast<T*>(vals.raw_data());
  int64_t* ip = static_cast<int64_t*>(idx.raw_data());
  if (post > 1 || n <= kShortRow) {
    minmax_column_kernel<IsMax, T><<<cuda::blocks_for(pre * post), 256, 0, s>>>(in, vp, ip, pre,
                                                                                n, post);
    EVIT_CUDA_LAUNCH_CHECK("minmax_column_kernel");
    return;
  }
  const int64_t pieces = (n + kPiece - 1) / kPiece;
  Tensor pv = empty({pre * pieces}, {x.dtype(), x.device()});
  Tensor pi = empty({pre * pieces}, {DType::i64, x.device()});
  T* pvp = static_cast<T*>(pv.raw_data());
  int64_t* pip = static_cast<int64_t*>(pi.raw_data());
  minmax_piece_kernel<IsMax, T><<<grid_for_blocks(pre * pieces), kThreads, 0, s>>>(in, pre, n,
                                                                                   pieces, pvp, pip);
  EVIT_CUDA_LAUNCH_CHECK("minmax_piece_kernel");
  minmax_finish_kernel<IsMax, T><<<cuda::blocks_for(pre), 256, 0, s>>>(pvp, pip, pre, pieces, vp, ip);
  EVIT_CUDA_LAUNCH_CHECK("minmax_finish_kernel");
}

void minmax_dim_launch(const Tensor& x, const Tensor& vals, const Tensor& idx, int64_t pre,
                       int64_t n, int64_t post, bool is_max) {
  if (pre * post == 0) return;
  cuda::DeviceGuard guard(x);
  cudaStream_t s = cuda::stream_of(x);
  dispatch_numeric(x.dtype(), is_max ? "max (CUDA)" : "min (CUDA)", [&](auto tag) {
    using T = decltype(tag);
    if (is_max)
      minmax_typed<true, T>(x, vals, idx, pre, n, post, s);
    else
      minmax_typed<false, T>(x, vals, idx, pre, n, post, s);
  });
}

// One thread per selected element; every output writes its own input position (no conflicts).
template <class T>
__global__ void minmax_backward_kernel(const T* g, const int64_t* idx, T* gx, int64_t pre,
                                       int64_t n, int64_t post) {
  for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < pre * post;
       o += int64_t(gridDim.x) * blockDim.x) {
    const int64_t p = o / post, j = o % post;
    gx[(p * n + idx[o]) * post + j] = g[o];
  }
}

void minmax_backward_launch(const Tensor& g, const Tensor& idx, const Tensor& gx, int64_t pre,
                            int64_t n, int64_t post) {
  if (pre * post == 0) return;
  cuda::DeviceGuard guard(g);
  cudaStream_t s = cuda::stream_of(g);
  dispatch_floating(g.dtype(), "max/min backward (CUDA)", [&](auto tag) {
    using T = decltype(tag);
    minmax_backward_kernel<T><<<cuda::blocks_for(pre * post), 256, 0, s>>>(
        static_cast<const T*>(g.raw_data()), static_cast<const int64_t*>(idx.raw_data()),
        static_cast<T*>(gx.raw_data()), pre, n, post);
    EVIT_CUDA_LAUNCH_CHECK("minmax_backward_kernel");
  });
}

}  // namespace

EVIT_REGISTER_CUDA_KERNEL(sum_rows_cuda, sum_rows_launch);
EVIT_REGISTER_CUDA_KERNEL(var_rows_cuda, var_rows_launch);
EVIT_REGISTER_CUDA_KERNEL(minmax_dim_cuda, minmax_dim_launch);
EVIT_REGISTER_CUDA_KERNEL(minmax_backward_cuda, minmax_backward_launch);

}  // namespace evit

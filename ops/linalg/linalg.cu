// CUDA twins of the linalg family: the GEMM slot over cuBLAS (core/cuda/cublas.cuh) used by
// matmul and linear, and the deterministic column sums of linear's bias gradient.
#include <algorithm>

#include "core/cuda/cublas.cuh"
#include "ops/linalg/cuda_slots.h"

namespace evit {
namespace {

void gemm_launch(const DeviceGemm& p, const Tensor& a, const Tensor& b, const Tensor& c) {
  cuda::check_same_cuda_device("matmul/linear (cuda gemm)", {&a, &b, &c});
  EVIT_CHECK(a.dtype() == b.dtype(), "cuda gemm: operand dtypes differ: ", a.desc(), " and ",
             b.desc());
  const size_t ea = dtype_size(a.dtype()), ec = dtype_size(c.dtype());
  const char* pa = static_cast<const char*>(a.raw_data()) + p.offset_a * ea;
  const char* pb = static_cast<const char*>(b.raw_data()) + p.offset_b * ea;
  char* pc = static_cast<char*>(c.raw_data()) + p.offset_c * ec;
  cuda::gemm_strided_batched(p.trans_a, p.trans_b, p.m, p.n, p.k, p.alpha, pa, p.lda, p.stride_a,
                             pb, p.ldb, p.stride_b, p.beta, pc, p.ldc, p.stride_c, p.batch,
                             a.dtype(), c.dtype(), c.device().index);
}

constexpr int64_t kRowsPerChunk = 256;

// Pass 1: part[chunk, o] = Σ of rows [chunk·256, chunk·256 + 256) of column o, in row order.
// Consecutive threads take consecutive columns, so each row read is coalesced.
template <class T>
__global__ void column_partials_kernel(const T* __restrict g, double* __restrict part, int64_t R,
                                       int64_t out, int64_t nchunks) {
  const int64_t total = nchunks * out;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t chunk = i / out, o = i % out;
    const int64_t r0 = chunk * kRowsPerChunk;
    const int64_t r1 = r0 + kRowsPerChunk < R ? r0 + kRowsPerChunk : R;
    double acc = 0;
    for (int64_t r = r0; r < r1; ++r) acc += static_cast<double>(g[r * out + o]);
    part[i] = acc;
  }
}

// Pass 2: db[o] = Σ over chunks in order.
template <class T>
__global__ void column_finish_kernel(const double* __restrict part, T* __restrict db, int64_t out,
                                     int64_t nchunks) {
  for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < out;
       o += int64_t(gridDim.x) * blockDim.x) {
    double acc = 0;
    for (int64_t c = 0; c < nchunks; ++c) acc += part[c * out + o];
    db[o] = static_cast<T>(acc);
  }
}

void column_sums_launch(const Tensor& g, const Tensor& db) {
  cuda::check_same_cuda_device("linear (bias gradient)", {&g, &db});
  EVIT_CHECK(g.dim() == 2 && g.is_contiguous() && db.is_contiguous() && db.numel() == g.size(1),
             "linear: column sums of ", g.desc(), " into ", db.desc());
  const int64_t R = g.size(0), out = g.size(1);
  if (out == 0) return;
  cuda::DeviceGuard guard(g);
  cudaStream_t s = cuda::stream_of(g);
  const int64_t nchunks = std::max<int64_t>(1, (R + kRowsPerChunk - 1) / kRowsPerChunk);
  Tensor part = empty({nchunks, out}, {DType::f64, g.device()});
  dispatch_floating(g.dtype(), "linear", [&](auto tag) {
    using T = decltype(tag);
    column_partials_kernel<T><<<cuda::blocks_for(nchunks * out), 256, 0, s>>>(
        g.data_ptr<T>(), part.data_ptr<double>(), R, out, nchunks);
    EVIT_CUDA_LAUNCH_CHECK("column_partials_kernel");
    column_finish_kernel<T><<<cuda::blocks_for(out), 256, 0, s>>>(part.data_ptr<double>(),
                                                                  db.data_ptr<T>(), out, nchunks);
    EVIT_CUDA_LAUNCH_CHECK("column_finish_kernel");
  });
}

}  // namespace

EVIT_REGISTER_CUDA_KERNEL(linalg_gemm_cuda, gemm_launch);
EVIT_REGISTER_CUDA_KERNEL(linalg_column_sums_cuda, column_sums_launch);

}  // namespace evit

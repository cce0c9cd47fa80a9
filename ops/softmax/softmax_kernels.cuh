// Row kernels of softmax / log_softmax (.cu files only; softmax.cu and sdpa.cu use them).
// Data is [outer, D, inner] contiguous; row r = (o, i) has its D elements at
// o*D*inner + i + j*inner. A team (ops/norm/cuda_reduce.cuh) owns one row at a time: a thread
// when inner > 1 (neighbouring threads read neighbouring i: coalesced), a warp or block when
// rows are contiguous. The math follows softmax.cpp: the row max (an all -inf row uses 0), exp
// in T, the sum of the exps in f64.
#pragma once
#include "ops/norm/cuda_reduce.cuh"

namespace evit::softmax_cuda {
using namespace cuda_reduce;

// y may alias x (sdpa normalises its scores in place; each lane rewrites only its own elements).
template <class T, TeamKind K, bool Log>
__global__ void softmax_forward_kernel(const T* x, T* y, int64_t rows, int64_t D, int64_t inner) {
  using TM = Team<K>;
  const int lane = TM::lane(), size = TM::size();
  for (int64_t r = TM::first(); r < rows; r += TM::step()) {
    const int64_t o = r / inner, i = r - o * inner;
    const int64_t base = o * D * inner + i;
    T mx = -INFINITY;
    for (int64_t j = lane; j < D; j += size) {
      const T v = x[base + j * inner];
      mx = v > mx ? v : mx;
    }
    mx = TM::reduce(mx, MaxOp{});
    if (isinf(mx)) mx = mx > T(0) ? mx : T(0);  // all -inf rows: avoid inf - inf
    double s = 0;
    for (int64_t j = lane; j < D; j += size) {
      const T e = dev_exp(static_cast<T>(x[base + j * inner] - mx));
      if constexpr (!Log) y[base + j * inner] = e;
      s += static_cast<double>(e);
    }
    s = TM::reduce(s, SumOp{});
    if constexpr (!Log) {
      const T rs = static_cast<T>(1.0 / s);
      for (int64_t j = lane; j < D; j += size) y[base + j * inner] *= rs;
    } else {
      const T sub = mx + static_cast<T>(dev_log(s));
      for (int64_t j = lane; j < D; j += size) y[base + j * inner] = x[base + j * inner] - sub;
    }
  }
}

// softmax: gx = y * (g - sum(g*y)); log_softmax: gx = g - exp(y) * sum(g).
template <class T, TeamKind K, bool Log>
__global__ void softmax_backward_kernel(const T* y, const T* g, T* gx, int64_t rows, int64_t D,
                                        int64_t inner) {
  using TM = Team<K>;
  const int lane = TM::lane(), size = TM::size();
  for (int64_t r = TM::first(); r < rows; r += TM::step()) {
    const int64_t o = r / inner, i = r - o * inner;
    const int64_t base = o * D * inner + i;
    double s = 0;
    for (int64_t j = lane; j < D; j += size) {
      const int64_t p = base + j * inner;
      if constexpr (Log) s += static_cast<double>(g[p]);
      else s += static_cast<double>(g[p] * y[p]);
    }
    const T t = static_cast<T>(TM::reduce(s, SumOp{}));
    for (int64_t j = lane; j < D; j += size) {
      const int64_t p = base + j * inner;
      if constexpr (Log) gx[p] = g[p] - dev_exp(y[p]) * t;
      else gx[p] = y[p] * (g[p] - t);
    }
  }
}

// Launches the forward over rows = outer * inner rows on the stream of `like`.
template <class T, bool Log>
void launch_softmax_forward(const T* x, T* y, int64_t outer, int64_t D, int64_t inner,
                            const Tensor& like) {
  const int64_t rows = outer * inner;
  if (rows == 0 || D == 0) return;
  cudaStream_t st = cuda::stream_of(like);
  with_team(team_for(D, inner == 1), rows, [&](auto kind, unsigned blocks) {
    softmax_forward_kernel<T, decltype(kind)::value, Log><<<blocks, kThreads, 0, st>>>(x, y, rows, D,
                                                                                       inner);
    EVIT_CUDA_LAUNCH_CHECK("softmax_forward_kernel");
  });
}

}  // namespace evit::softmax_cuda

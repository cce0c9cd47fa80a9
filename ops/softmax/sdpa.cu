// CUDA twin of sdpa.cpp: out = softmax(q k^T * scale) v, correctness first.
//
// Every product is a batched "one thread per output element" kernel over strided operands (the
// transposes are just strides), accumulating in T in the same order as the CPU's axpy loops.
// The probabilities are normalised in place by the softmax row kernel. Backward:
//   dP = g v^T;  dS = P * (dP - sum(P dP)) * scale (a row kernel);  dq = dS k;  dk = dS^T q;
//   dv = P^T g.
// No pass reduces across threads except the per-row sums, which use a fixed tree.
#include "ops/softmax/cuda_slots.h"
#include "ops/softmax/softmax_kernels.cuh"

namespace evit {
namespace {
using namespace cuda_reduce;

// Element strides of a batched matrix operand: batch, then the output-side dim, then the
// reduced dim (A: m, k; B: n, k).
struct Operand {
  int64_t batch, outer, red;
};

// C[b, m, n] = sum_k (A[b, m, k] * alpha) * B[b, k, n]; C contiguous [batch, M, N].
template <class T>
__global__ void bmm_kernel(int64_t batch, int64_t M, int64_t N, int64_t K, const T* A, Operand a,
                           const T* B, Operand b, T alpha, T* C) {
  const int64_t total = batch * M * N;
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < total;
       idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t n = idx % N, t = idx / N;
    const int64_t m = t % M, bb = t / M;
    const T* ap = A + bb * a.batch + m * a.outer;
    const T* bp = B + bb * b.batch + n * b.outer;
    T acc = T(0);
    for (int64_t k = 0; k < K; ++k) acc += (ap[k * a.red] * alpha) * bp[k * b.red];
    C[idx] = acc;
  }
}

template <class T>
void bmm(int64_t batch, int64_t M, int64_t N, int64_t K, const T* A, Operand a, const T* B,
         Operand b, T alpha, T* C, cudaStream_t st) {
  const int64_t total = batch * M * N;
  if (total == 0) return;
  bmm_kernel<T><<<cuda::blocks_for(total), kThreads, 0, st>>>(batch, M, N, K, A, a, B, b, alpha, C);
  EVIT_CUDA_LAUNCH_CHECK("sdpa bmm_kernel");
}

// In place on dS (holding dP): dS = P * (dP - sum_j dP_j P_j) * scale, one team per row.
template <class T, TeamKind K>
__global__ void ds_rows_kernel(const T* P, T* dS, int64_t rows, int64_t Nk, T scale) {
  using TM = Team<K>;
  const int lane = TM::lane(), size = TM::size();
  for (int64_t r = TM::first(); r < rows; r += TM::step()) {
    const T* p = P + r * Nk;
    T* ds = dS + r * Nk;
    double s = 0;
    for (int64_t j = lane; j < Nk; j += size) s += static_cast<double>(ds[j]) * p[j];
    const T st = static_cast<T>(TM::reduce(s, SumOp{}));
    for (int64_t j = lane; j < Nk; j += size) ds[j] = p[j] * (ds[j] - st) * scale;
  }
}

void forward_launch(const Tensor& q, const Tensor& k, const Tensor& v, int64_t BH, int64_t Nq,
                    int64_t Nk, int64_t d, int64_t dv, double scale, const Tensor& P,
                    const Tensor& out) {
  const char* op = "scaled_dot_product_attention";
  cuda::check_same_cuda_device(op, {&q, &k, &v, &P, &out});
  cuda::DeviceGuard guard(q);
  cudaStream_t st = cuda::stream_of(q);
  dispatch_floating(q.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    T* pp = P.data_ptr<T>();
    // scores = (q * scale) k^T: A = q [m = i, k = c], B = k [n = j, k = c]
    bmm<T>(BH, Nq, Nk, d, q.data_ptr<T>(), Operand{Nq * d, d, 1}, k.data_ptr<T>(),
           Operand{Nk * d, d, 1}, static_cast<T>(scale), pp, st);
    softmax_cuda::launch_softmax_forward<T, false>(pp, pp, BH * Nq, Nk, 1, q);
    // out = P v: A = P [m = i, k = j], B = v [n = e, k = j]
    bmm<T>(BH, Nq, dv, Nk, pp, Operand{Nq * Nk, Nk, 1}, v.data_ptr<T>(), Operand{Nk * dv, 1, dv},
           T(1), out.data_ptr<T>(), st);
  });
}

void backward_launch(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& P,
                     const Tensor& g, int64_t BH, int64_t Nq, int64_t Nk, int64_t d, int64_t dv,
                     double scale, const Tensor& dq, const Tensor& dk, const Tensor& dv_out) {
  const char* op = "ScaledDotProductAttentionBackward";
  cuda::check_same_cuda_device(op, {&q, &k, &v, &P, &g, &dq, &dk, &dv_out});
  cuda::DeviceGuard guard(q);
  cudaStream_t st = cuda::stream_of(q);
  dispatch_floating(q.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* pp = P.data_ptr<T>();
    const T* gp = g.data_ptr<T>();
    if (dq.defined() || dk.defined()) {
      Tensor dS = empty({BH, Nq, Nk}, {q.dtype(), q.device()});
      T* ds = dS.data_ptr<T>();
      // dP = g v^T: A = g [m = i, k = e], B = v [n = j, k = e]
      bmm<T>(BH, Nq, Nk, dv, gp, Operand{Nq * dv, dv, 1}, v.data_ptr<T>(), Operand{Nk * dv, dv, 1},
             T(1), ds, st);
      const int64_t rows = BH * Nq;
      if (rows > 0) {
        with_team(team_for(Nk, true), rows, [&](auto kind, unsigned blocks) {
          ds_rows_kernel<T, decltype(kind)::value><<<blocks, kThreads, 0, st>>>(
              pp, ds, rows, Nk, static_cast<T>(scale));
          EVIT_CUDA_LAUNCH_CHECK("sdpa ds_rows_kernel");
        });
      }
      // dq = dS k: A = dS [m = i, k = j], B = k [n = c, k = j]
      if (dq.defined())
        bmm<T>(BH, Nq, d, Nk, ds, Operand{Nq * Nk, Nk, 1}, k.data_ptr<T>(), Operand{Nk * d, 1, d},
               T(1), dq.data_ptr<T>(), st);
      // dk = dS^T q: A = dS [m = j, k = i], B = q [n = c, k = i]
      if (dk.defined())
        bmm<T>(BH, Nk, d, Nq, ds, Operand{Nq * Nk, 1, Nk}, q.data_ptr<T>(), Operand{Nq * d, 1, d},
               T(1), dk.data_ptr<T>(), st);
    }
    // dv = P^T g: A = P [m = j, k = i], B = g [n = e, k = i]
    if (dv_out.defined())
      bmm<T>(BH, Nk, dv, Nq, pp, Operand{Nq * Nk, 1, Nk}, gp, Operand{Nq * dv, 1, dv}, T(1),
             dv_out.data_ptr<T>(), st);
  });
}

}  // namespace

EVIT_REGISTER_CUDA_KERNEL(sdpa_forward_cuda, forward_launch);
EVIT_REGISTER_CUDA_KERNEL(sdpa_backward_cuda, backward_launch);

}  // namespace evit

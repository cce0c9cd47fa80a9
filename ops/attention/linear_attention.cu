// CUDA kernels of the fused ReLU linear attention (LiteMLA). Same math as the CPU kernels in
// linear_attention.cpp; per (batch, head) with q' = relu(q), k' = relu(k), v^ = [v; 1]:
//
//   forward:  A = v^ k'^T ((dv+1) x d),  den = A[dv] q' + eps,  out = A[0:dv] q' / den
//   backward: dO[0:dv] = G / den,  dO[dv] = -sum_r G[r] out[r] / den
//             dq = (A^T dO) * [q > 0],  dA = dO q'^T,
//             dk = (dA[0:dv]^T v + dA[dv]) * [k > 0],  dv = dA[0:dv] k'
//
// No N x N matrix is formed, whatever N is (the CPU switches to the quadratic form for N <= d;
// both forms are the same function, so the CUDA path always takes the linear one).
//
// The two reductions over N (A and dA) are "gram" kernels: each block sums a fixed chunk of
// kChunk positions for one head into a partial (rows x d) matrix in a temporary buffer, and a
// second kernel adds the partials of a head in chunk order. No atomics: the result is the same
// on every run and does not depend on the GPU's size. The per-position kernels (outputs, dO/dq,
// dk/dv) run one thread per (head, position), so reads along N are coalesced; the small state
// matrices are read by all threads of a warp at the same address (a broadcast).
#include <algorithm>

#include "core/cuda/runtime.cuh"
#include "ops/attention/cuda_slots.h"

namespace evit {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kChunk = 256;  // positions per partial state (fixed: deterministic results)
constexpr int kMaxAcc = 8;       // outputs of the gram kernel per thread and pass
constexpr size_t kSmemBudget = 48 * 1024;

// Element strides of a [B, H, rows, N] operand whose N stride is 1.
struct Layout {
  int64_t sb, sh, ld;  // batch, head, row
};

Layout layout_of(const Tensor& x) { return {x.stride(0), x.stride(1), x.stride(2)}; }
Layout contiguous_layout(int64_t H, int64_t rows, int64_t N) { return {H * rows * N, rows * N, N}; }

__device__ __forceinline__ int64_t head_offset(const Layout& l, int64_t bh, int64_t H) {
  return (bh / H) * l.sb + (bh % H) * l.sh;
}

template <class T> __device__ __forceinline__ T relu_d(T x) { return x > T(0) ? x : T(0); }

// ---- reductions over N ----------------------------------------------------------------------

template <class T>
struct GramArgs {
  const T* x;       // rows_x rows; with ones_row a row of ones follows them
  Layout xl;
  int64_t rows_x;
  bool ones_row;
  const T* y;       // d rows, relu applied
  Layout yl;
  int64_t d;
  int64_t H, N, BH, nchunk;
  int tile;         // positions staged in shared memory at a time
};

// partial[(bh * nchunk + chunk) * E + r * d + c] = sum over the chunk's positions j of
// X(r, j) * relu(Y(c, j)), E = R * d, R = rows_x (+1 with the ones row).
template <class T>
__global__ void gram_partial_kernel(GramArgs<T> a, T* __restrict__ partial) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* smem = reinterpret_cast<T*>(smem_raw);
  const int64_t pitch = a.tile + 1;  // odd pitch: threads reading different rows hit different banks
  T* sx = smem;                      // rows_x x pitch
  T* sy = smem + a.rows_x * pitch;   // d x pitch
  const int64_t R = a.rows_x + (a.ones_row ? 1 : 0);
  const int64_t E = R * a.d;
  const int64_t staged_rows = a.rows_x + a.d;
  const int64_t nblocks = a.BH * a.nchunk;
  for (int64_t blk = blockIdx.x; blk < nblocks; blk += gridDim.x) {
    const int64_t bh = blk / a.nchunk;
    const int64_t j0 = (blk % a.nchunk) * kChunk;
    const int64_t j1 = min(a.N, j0 + kChunk);
    const T* xh = a.x ? a.x + head_offset(a.xl, bh, a.H) : nullptr;
    const T* yh = a.y + head_offset(a.yl, bh, a.H);
    // Outputs in passes of kMaxAcc per thread (one pass for (dv+1) * d <= 2048).
    for (int64_t e0 = 0; e0 < E; e0 += int64_t{kMaxAcc} * blockDim.x) {
      T acc[kMaxAcc];
#pragma unroll
      for (int t = 0; t < kMaxAcc; ++t) acc[t] = T(0);
      for (int64_t t0 = j0; t0 < j1; t0 += a.tile) {
        const int64_t tn = min(static_cast<int64_t>(a.tile), j1 - t0);
        __syncthreads();  // the previous tile is no longer read
        for (int64_t idx = threadIdx.x; idx < staged_rows * a.tile; idx += blockDim.x) {
          const int64_t row = idx / a.tile, jj = idx % a.tile;
          if (row < a.rows_x) {
            sx[row * pitch + jj] = jj < tn ? xh[row * a.xl.ld + t0 + jj] : T(0);
          } else {
            const int64_t c = row - a.rows_x;
            sy[c * pitch + jj] = jj < tn ? relu_d(yh[c * a.yl.ld + t0 + jj]) : T(0);
          }
        }
        __syncthreads();
#pragma unroll
        for (int t = 0; t < kMaxAcc; ++t) {
          const int64_t e = e0 + static_cast<int64_t>(t) * blockDim.x + threadIdx.x;
          if (e < E) {
            const int64_t r = e / a.d, c = e % a.d;
            const T* ys = sy + c * pitch;
            T s = T(0);  // this tile's sum, then added to the running sum (fixed order)
            if (r < a.rows_x) {
              const T* xs = sx + r * pitch;
              for (int64_t jj = 0; jj < tn; ++jj) s += xs[jj] * ys[jj];
            } else {  // the ones row: column sums of relu(Y)
              for (int64_t jj = 0; jj < tn; ++jj) s += ys[jj];
            }
            acc[t] += s;
          }
        }
      }
#pragma unroll
      for (int t = 0; t < kMaxAcc; ++t) {
        const int64_t e = e0 + static_cast<int64_t>(t) * blockDim.x + threadIdx.x;
        if (e < E) partial[blk * E + e] = acc[t];
      }
    }
    __syncthreads();  // shared memory is reused by the next block index of this block
  }
}

// out[bh * E + e] = sum over chunks, in chunk order, of partial[(bh * nchunk + chunk) * E + e].
template <class T>
__global__ void sum_partials_kernel(const T* __restrict__ partial, int64_t nchunk, int64_t E,
                                    int64_t total, T* __restrict__ out) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t bh = i / E, e = i % E;
    const T* p = partial + bh * nchunk * E + e;
    T s = T(0);
    for (int64_t c = 0; c < nchunk; ++c) s += p[c * E];
    out[i] = s;
  }
}

// The per-head (R x d) matrix X^ relu(Y)^T, contiguous [BH, R, d].
template <class T>
Tensor gram(const GramArgs<T>& args_in, const Tensor& like) {
  GramArgs<T> a = args_in;
  const int64_t R = a.rows_x + (a.ones_row ? 1 : 0);
  const int64_t E = R * a.d;
  a.nchunk = (a.N + kChunk - 1) / kChunk;
  Tensor S = empty({a.BH, R, a.d}, {like.dtype(), like.device()});
  if (E == 0) return S;
  // Largest tile (<= 64 positions) whose staged rows fit the shared-memory budget.
  const int64_t staged_rows = a.rows_x + a.d;
  int tile = 64;
  while (tile > 1 && static_cast<size_t>(staged_rows * (tile + 1)) * sizeof(T) > kSmemBudget) tile /= 2;
  EVIT_CHECK(static_cast<size_t>(staged_rows * (tile + 1)) * sizeof(T) <= kSmemBudget,
             "linear_attention: feature dimensions too large for the CUDA kernel (", a.rows_x,
             " + ", a.d, " rows)");
  a.tile = tile;
  const size_t smem = static_cast<size_t>(staged_rows * (tile + 1)) * sizeof(T);
  Tensor partial = empty({a.BH * a.nchunk * E}, {like.dtype(), like.device()});
  cudaStream_t s = cuda::stream_of(like);
  const int64_t nblocks = a.BH * a.nchunk;
  const unsigned grid = static_cast<unsigned>(std::min<int64_t>(nblocks, int64_t{1} << 20));
  gram_partial_kernel<T><<<grid, kThreads, smem, s>>>(a, partial.data_ptr<T>());
  EVIT_CUDA_LAUNCH_CHECK("linear_attention gram_partial_kernel");
  const int64_t total = a.BH * E;
  sum_partials_kernel<T><<<cuda::blocks_for(total), kThreads, 0, s>>>(
      partial.data_ptr<T>(), a.nchunk, E, total, S.data_ptr<T>());
  EVIT_CUDA_LAUNCH_CHECK("linear_attention sum_partials_kernel");
  return S;
}

// ---- per-position kernels -------------------------------------------------------------------

// den[n] = A[dv] . relu(q[:, n]) + eps, summed over c in order (as the CPU).
template <class T>
__device__ __forceinline__ T denominator(const T* __restrict__ qc, int64_t ldq,
                                         const T* __restrict__ last_row, int64_t d, T eps) {
  T den = T(0);
  for (int64_t c = 0; c < d; ++c) den += last_row[c] * relu_d(qc[c * ldq]);
  return den + eps;
}

// out[bh, r, n] = (A[r] . relu(q[:, n])) / den[n]. Rows in groups of 4 so each q value is read
// once per group.
template <class T>
__global__ void attention_out_kernel(const T* __restrict__ q, Layout ql, const T* __restrict__ S,
                                     int64_t H, int64_t d, int64_t dv, int64_t N, int64_t total,
                                     T eps, T* __restrict__ out) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t bh = i / N, n = i % N;
    const T* qc = q + head_offset(ql, bh, H) + n;
    const T* A = S + bh * (dv + 1) * d;
    const T den = denominator(qc, ql.ld, A + dv * d, d, eps);
    T* o = out + bh * dv * N + n;
    for (int64_t r0 = 0; r0 < dv; r0 += 4) {
      const int nr = static_cast<int>(min(int64_t{4}, dv - r0));
      T acc[4] = {T(0), T(0), T(0), T(0)};
      for (int64_t c = 0; c < d; ++c) {
        const T qv = relu_d(qc[c * ql.ld]);
#pragma unroll
        for (int t = 0; t < 4; ++t)
          if (t < nr) acc[t] += A[(r0 + t) * d + c] * qv;
      }
#pragma unroll
      for (int t = 0; t < 4; ++t)
        if (t < nr) o[(r0 + t) * N] = acc[t] / den;
    }
  }
}

// dO[bh, 0:dv, n] = g / den, dO[bh, dv, n] = -(sum_r g[r] out[r]) / den; then (when dq is
// wanted) dq[bh, c, n] = (sum_r A[r][c] dO[r][n]) masked by q > 0.
template <class T>
__global__ void attention_dO_kernel(const T* __restrict__ q, Layout ql, const T* __restrict__ S,
                                    const T* __restrict__ g, const T* __restrict__ out, int64_t H,
                                    int64_t d, int64_t dv, int64_t N, int64_t total, T eps,
                                    T* __restrict__ dO, T* __restrict__ dq) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t bh = i / N, n = i % N;
    const T* qc = q + head_offset(ql, bh, H) + n;
    const T* A = S + bh * (dv + 1) * d;
    const T den = denominator(qc, ql.ld, A + dv * d, d, eps);
    const T* gc = g + bh * dv * N + n;
    const T* oc = out + bh * dv * N + n;
    T* dc = dO + bh * (dv + 1) * N + n;
    T last = T(0);
    for (int64_t r = 0; r < dv; ++r) {
      const T gr = gc[r * N];
      dc[r * N] = gr / den;
      last += gr * oc[r * N];
    }
    dc[dv * N] = -last / den;
    if (dq) {
      T* dqc = dq + bh * d * N + n;
      for (int64_t c = 0; c < d; ++c) {
        T acc = T(0);
        for (int64_t r = 0; r <= dv; ++r) acc += A[r * d + c] * dc[r * N];  // own writes above
        dqc[c * N] = qc[c * ql.ld] > T(0) ? acc : T(0);
      }
    }
  }
}

// dk[bh, c, j] = (sum_{r<dv} dA[r][c] v[r][j] + dA[dv][c]) masked by k > 0;
// dv[bh, r, j] = sum_c dA[r][c] relu(k[c][j]).
template <class T>
__global__ void attention_dkv_kernel(const T* __restrict__ k, Layout kl, const T* __restrict__ v,
                                     Layout vl, const T* __restrict__ dA, int64_t H, int64_t d,
                                     int64_t dv, int64_t N, int64_t total, T* __restrict__ dk,
                                     T* __restrict__ dvv) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t bh = i / N, j = i % N;
    const T* kc = k + head_offset(kl, bh, H) + j;
    const T* vc = v + head_offset(vl, bh, H) + j;
    const T* G = dA + bh * (dv + 1) * d;
    if (dk) {
      T* dkc = dk + bh * d * N + j;
      for (int64_t c = 0; c < d; ++c) {
        T acc = T(0);
        for (int64_t r = 0; r < dv; ++r) acc += G[r * d + c] * vc[r * vl.ld];
        dkc[c * N] = kc[c * kl.ld] > T(0) ? acc + G[dv * d + c] : T(0);
      }
    }
    if (dvv) {
      T* dvc = dvv + bh * dv * N + j;
      for (int64_t r = 0; r < dv; ++r) {
        T acc = T(0);
        for (int64_t c = 0; c < d; ++c) acc += G[r * d + c] * relu_d(kc[c * kl.ld]);
        dvc[r * N] = acc;
      }
    }
  }
}

// ---- launchers ------------------------------------------------------------------------------

// A = [v; 1] relu(k)^T per head: [BH, dv + 1, d].
template <class T>
Tensor attention_state(const Tensor& k, const Tensor& v) {
  GramArgs<T> a{};
  a.x = v.data_ptr<T>();
  a.xl = layout_of(v);
  a.rows_x = v.size(2);
  a.ones_row = true;
  a.y = k.data_ptr<T>();
  a.yl = layout_of(k);
  a.d = k.size(2);
  a.H = k.size(1);
  a.N = k.size(3);
  a.BH = k.size(0) * k.size(1);
  return gram<T>(a, k);
}

void linear_attention_forward_launch(const Tensor& q, const Tensor& k, const Tensor& v, double eps,
                                     const Tensor& out) {
  if (out.numel() == 0) return;
  cuda::DeviceGuard guard(q);
  dispatch_floating(q.dtype(), "linear_attention", [&](auto tag) {
    using T = decltype(tag);
    const int64_t H = q.size(1), d = q.size(2), dv = v.size(2), N = q.size(3);
    const int64_t BH = q.size(0) * H;
    Tensor S = attention_state<T>(k, v);
    const int64_t total = BH * N;
    attention_out_kernel<T><<<cuda::blocks_for(total), kThreads, 0, cuda::stream_of(q)>>>(
        q.data_ptr<T>(), layout_of(q), S.data_ptr<T>(), H, d, dv, N, total, static_cast<T>(eps),
        out.data_ptr<T>());
    EVIT_CUDA_LAUNCH_CHECK("linear_attention attention_out_kernel");
  });
}

void linear_attention_backward_launch(const Tensor& q, const Tensor& k, const Tensor& v,
                                      const Tensor& out, const Tensor& g, double eps,
                                      const Tensor& dq, const Tensor& dk, const Tensor& dv_out) {
  const int64_t B = q.size(0), H = q.size(1), d = q.size(2), dv = v.size(2), N = q.size(3);
  const int64_t BH = B * H;
  if (BH == 0 || N == 0) return;
  cuda::DeviceGuard guard(q);
  dispatch_floating(q.dtype(), "LinearAttentionBackward", [&](auto tag) {
    using T = decltype(tag);
    cudaStream_t s = cuda::stream_of(q);
    const int64_t total = BH * N;
    Tensor S = attention_state<T>(k, v);
    Tensor dO = empty({B, H, dv + 1, N}, {q.dtype(), q.device()});
    attention_dO_kernel<T><<<cuda::blocks_for(total), kThreads, 0, s>>>(
        q.data_ptr<T>(), layout_of(q), S.data_ptr<T>(), g.data_ptr<T>(), out.data_ptr<T>(), H, d,
        dv, N, total, static_cast<T>(eps), dO.data_ptr<T>(),
        dq.defined() ? dq.data_ptr<T>() : nullptr);
    EVIT_CUDA_LAUNCH_CHECK("linear_attention attention_dO_kernel");
    if (!dk.defined() && !dv_out.defined()) return;
    // dA = dO relu(q)^T: the gram kernel with dO's dv + 1 real rows and q as the relu operand.
    GramArgs<T> a{};
    a.x = dO.data_ptr<T>();
    a.xl = contiguous_layout(H, dv + 1, N);
    a.rows_x = dv + 1;
    a.ones_row = false;
    a.y = q.data_ptr<T>();
    a.yl = layout_of(q);
    a.d = d;
    a.H = H;
    a.N = N;
    a.BH = BH;
    Tensor dA = gram<T>(a, q);
    attention_dkv_kernel<T><<<cuda::blocks_for(total), kThreads, 0, s>>>(
        k.data_ptr<T>(), layout_of(k), v.data_ptr<T>(), layout_of(v), dA.data_ptr<T>(), H, d, dv,
        N, total, dk.defined() ? dk.data_ptr<T>() : nullptr,
        dv_out.defined() ? dv_out.data_ptr<T>() : nullptr);
    EVIT_CUDA_LAUNCH_CHECK("linear_attention attention_dkv_kernel");
  });
}

}  // namespace

EVIT_REGISTER_CUDA_KERNEL(linear_attention_forward_cuda, linear_attention_forward_launch);
EVIT_REGISTER_CUDA_KERNEL(linear_attention_backward_cuda, linear_attention_backward_launch);

}  // namespace evit

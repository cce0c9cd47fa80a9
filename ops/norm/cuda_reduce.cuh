// Reduction building blocks shared by the CUDA kernels of the norm, softmax and loss families
// (.cu files only). Every reduction here runs in an order fixed by the launch shape, never by
// timing (no float atomics), so results are identical run to run.
//
// Teams: a row-style kernel (softmax row, layer-norm row, cross-entropy position) is written once
// for a "team" that owns one row at a time and strides over the row's elements:
//   Team<TeamKind::thread>  one thread per row (rows strided in memory: coalesced across threads)
//   Team<TeamKind::warp>    one warp per row (short contiguous rows)
//   Team<TeamKind::block>   one block per row (long contiguous rows)
// Team::reduce(v, op) combines the lanes' values in a fixed tree and gives every lane the result.
#pragma once
#include <cstdint>
#include <type_traits>

#include "core/cuda/runtime.cuh"

namespace evit::cuda_reduce {

inline constexpr int kThreads = 256;  // threads per block of every kernel of these families

__device__ __forceinline__ float dev_exp(float x) { return expf(x); }
__device__ __forceinline__ double dev_exp(double x) { return exp(x); }
__device__ __forceinline__ float dev_log(float x) { return logf(x); }
__device__ __forceinline__ double dev_log(double x) { return log(x); }

struct SumOp {
  template <class A> __device__ __forceinline__ A operator()(A a, A b) const { return a + b; }
};
// Like the CPU's `m = x > m ? x : m`.
struct MaxOp {
  template <class A> __device__ __forceinline__ A operator()(A a, A b) const { return b > a ? b : a; }
};

// Butterfly over the 32 lanes: every lane ends with the same bits (each step adds a pair in
// both orders, and a + b == b + a exactly).
template <class A, class Op>
__device__ __forceinline__ A warp_allreduce(A v, Op op) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Whole-block reduction (blockDim.x a multiple of 32, at most 1024); every thread gets the
// result. Safe to call repeatedly in one kernel (the leading barrier protects the scratch).
template <class A, class Op>
__device__ __forceinline__ A block_allreduce(A v, Op op) {
  __shared__ A scratch[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_allreduce(v, op);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  if (threadIdx.x == 0) {  // the warp totals, left to right
    A acc = scratch[0];
    for (int k = 1; k < warps; ++k) acc = op(acc, scratch[k]);
    scratch[0] = acc;
  }
  __syncthreads();
  return scratch[0];
}

enum class TeamKind { thread, warp, block };

template <TeamKind K> struct Team;

template <> struct Team<TeamKind::thread> {
  __device__ static int64_t first() { return blockIdx.x * int64_t(blockDim.x) + threadIdx.x; }
  __device__ static int64_t step() { return int64_t(gridDim.x) * blockDim.x; }
  __device__ static int lane() { return 0; }
  __device__ static int size() { return 1; }
  template <class A, class Op> __device__ static A reduce(A v, Op) { return v; }
};

template <> struct Team<TeamKind::warp> {
  __device__ static int64_t first() { return (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) >> 5; }
  __device__ static int64_t step() { return (int64_t(gridDim.x) * blockDim.x) >> 5; }
  __device__ static int lane() { return threadIdx.x & 31; }
  __device__ static int size() { return 32; }
  template <class A, class Op> __device__ static A reduce(A v, Op op) { return warp_allreduce(v, op); }
};

template <> struct Team<TeamKind::block> {
  __device__ static int64_t first() { return blockIdx.x; }
  __device__ static int64_t step() { return gridDim.x; }
  __device__ static int lane() { return threadIdx.x; }
  __device__ static int size() { return blockDim.x; }
  template <class A, class Op> __device__ static A reduce(A v, Op op) { return block_allreduce(v, op); }
};

// The team for rows of `len` elements: strided rows get a thread each; contiguous rows a warp
// when short, a block when long.
inline TeamKind team_for(int64_t len, bool contiguous_rows) {
  if (!contiguous_rows) return TeamKind::thread;
  return len <= 512 ? TeamKind::warp : TeamKind::block;
}

// Calls launch(tag, blocks) with tag a std::integral_constant<TeamKind, K> and enough blocks of
// kThreads threads for `rows` teams (grid-stride loops cover the rest).
template <class F>
void with_team(TeamKind kind, int64_t rows, const F& launch) {
  switch (kind) {
    case TeamKind::thread:
      launch(std::integral_constant<TeamKind, TeamKind::thread>{}, cuda::blocks_for(rows, kThreads));
      break;
    case TeamKind::warp:
      launch(std::integral_constant<TeamKind, TeamKind::warp>{}, cuda::blocks_for(rows, kThreads / 32));
      break;
    case TeamKind::block:
      launch(std::integral_constant<TeamKind, TeamKind::block>{}, cuda::blocks_for(rows, 1));
      break;
  }
}

// ---- deterministic sums of K sequences: out[k] = sum_{i < n} f(k, i) in f64.
// Fixed contiguous ranges per block (chosen from n only), then one block per k adds the
// block partials in a fixed tree.
template <class F>
__global__ void partial_sums_kernel(int64_t n, int64_t chunk, F f, double* partial) {
  const int k = blockIdx.y;
  const int64_t i0 = blockIdx.x * chunk;
  const int64_t i1 = i0 + chunk < n ? i0 + chunk : n;
  double acc = 0;
  for (int64_t i = i0 + threadIdx.x; i < i1; i += blockDim.x) acc += f(k, i);
  acc = block_allreduce(acc, SumOp{});
  if (threadIdx.x == 0) partial[int64_t(k) * gridDim.x + blockIdx.x] = acc;
}

template <int = 0>
__global__ void final_sums_kernel(const double* partial, int64_t parts, double* out) {
  const int k = blockIdx.x;
  double acc = 0;
  for (int64_t b = threadIdx.x; b < parts; b += blockDim.x) acc += partial[k * parts + b];
  acc = block_allreduce(acc, SumOp{});
  if (threadIdx.x == 0) out[k] = acc;
}

// out: K doubles on the device of `like`. f: __device__ functor double(int k, int64_t i).
template <class F>
void deterministic_sums(int K, int64_t n, const F& f, double* out, const Tensor& like) {
  int64_t chunk = 8192;
  int64_t parts = n <= 0 ? 1 : (n + chunk - 1) / chunk;
  if (parts > 1024) {
    chunk = (n + 1023) / 1024;
    parts = (n + chunk - 1) / chunk;
  }
  Tensor partial = empty({K * parts}, {DType::f64, like.device()});
  cudaStream_t s = cuda::stream_of(like);
  partial_sums_kernel<<<dim3(static_cast<unsigned>(parts), K), kThreads, 0, s>>>(
      n, chunk, f, partial.data_ptr<double>());
  EVIT_CUDA_LAUNCH_CHECK("partial_sums_kernel");
  final_sums_kernel<><<<K, kThreads, 0, s>>>(partial.data_ptr<double>(), parts, out);
  EVIT_CUDA_LAUNCH_CHECK("final_sums_kernel");
}

// ---- per-channel sums over [N, C, S] data: for channel c, the N*S values at (n, c, s).
// Splits the N*S values of a channel into `splits` fixed ranges; block (split, c) accumulates
// f(c, n, s, a, b) (two f64 sums) over its range and writes partial[(c * splits + split) * 2 + {0,1}].
struct ChannelSplit {
  int64_t splits, chunk;
};

inline ChannelSplit channel_split(int64_t M) {
  ChannelSplit cs{1, M > 0 ? M : 1};
  const int64_t target = 4096;
  if (M > target) {
    cs.splits = (M + target - 1) / target;
    if (cs.splits > 256) cs.splits = 256;
    cs.chunk = (M + cs.splits - 1) / cs.splits;
    cs.splits = (M + cs.chunk - 1) / cs.chunk;
  }
  return cs;
}

// Channels stride over grid.y (capped at 65535, the hardware limit of grid.y): c depends on
// blockIdx only, so every thread of a block runs the same iterations (safe barriers).
template <class F>
__global__ void channel_partials_kernel(int64_t C, int64_t S, int64_t M, int64_t chunk, F f,
                                        double* partial) {
  const int64_t split = blockIdx.x;
  const int64_t i0 = split * chunk;
  const int64_t i1 = i0 + chunk < M ? i0 + chunk : M;
  for (int64_t c = blockIdx.y; c < C; c += gridDim.y) {
    double a = 0, b = 0;
    for (int64_t i = i0 + threadIdx.x; i < i1; i += blockDim.x) {
      const int64_t n = i / S, s = i - n * S;
      f(c, n, s, a, b);
    }
    a = block_allreduce(a, SumOp{});
    b = block_allreduce(b, SumOp{});
    if (threadIdx.x == 0) {
      partial[(c * gridDim.x + split) * 2] = a;
      partial[(c * gridDim.x + split) * 2 + 1] = b;
    }
  }
}

// Returns the [C, splits, 2] partials (f64) for C channels of N*S values each.
template <class F>
Tensor channel_partials(int64_t C, int64_t S, int64_t M, const ChannelSplit& cs, const F& f,
                        const Tensor& like) {
  Tensor partial = empty({C * cs.splits * 2}, {DType::f64, like.device()});
  if (C == 0) return partial;
  // grid.y is limited to 65535: more channels (e.g. batch_norm over [N, 100000] features) are
  // covered by the kernel's stride loop over c instead of an invalid launch.
  const unsigned gy = static_cast<unsigned>(C < 65535 ? C : 65535);
  channel_partials_kernel<<<dim3(static_cast<unsigned>(cs.splits), gy), kThreads, 0,
                            cuda::stream_of(like)>>>(C, S, M, cs.chunk, f,
                                                     partial.data_ptr<double>());
  EVIT_CUDA_LAUNCH_CHECK("channel_partials_kernel");
  return partial;
}

// Sum of channel c's partials in split order: (a, b).
__device__ __forceinline__ void channel_total(const double* partial, int64_t c, int64_t splits,
                                              double& a, double& b) {
  a = 0;
  b = 0;
  for (int64_t k = 0; k < splits; ++k) {
    a += partial[(c * splits + k) * 2];
    b += partial[(c * splits + k) * 2 + 1];
  }
}

}  // namespace evit::cuda_reduce

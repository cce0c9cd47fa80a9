// CUDA twins of gradient clipping (clip.cpp): the global norm by a deterministic two-pass
// reduction in f64 (per-chunk partial sums of squares, then one block adding the partials in
// a fixed order), the clip factor computed and applied on the device, and clipping by value.
#include "optim/cuda_slots.h"
#include "optim/multi_tensor.cuh"

namespace evit::optim {
namespace {

using mt::kMTThreads;
using mt::MTEntry;

// Fixed-order tree sum of red[0 .. blockDim.x) into red[0] (blockDim.x a power of two).
__device__ __forceinline__ void block_tree_sum(double* red) {
  for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) red[threadIdx.x] += red[threadIdx.x + s];
    __syncthreads();
  }
}

// partial[offset + chunk] = sum over the chunk's elements of x^2 (in f64).
template <class T>
__global__ void sum_squares_partial_kernel(const MTEntry* __restrict__ table, int ntensors,
                                           int64_t nchunks, double* __restrict__ partial) {
  __shared__ double red[kMTThreads];
  for (int64_t chunk = blockIdx.x; chunk < nchunks; chunk += gridDim.x) {
    const MTEntry e = table[mt::find_entry(table, ntensors, chunk)];
    const T* x = static_cast<const T*>(e.ptr[0]);
    const int64_t begin = (chunk - e.chunk_begin) * mt::kMTChunk;
    const int64_t end = min(e.n, begin + mt::kMTChunk);
    double acc = 0.0;
    for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
      const double v = static_cast<double>(x[i]);
      acc += v * v;
    }
    red[threadIdx.x] = acc;
    __syncthreads();
    block_tree_sum(red);
    if (threadIdx.x == 0) partial[chunk] = red[0];
    __syncthreads();  // red is reused by the next chunk of this block
  }
}

// out[0] = sum of partial[0 .. n) (each thread a strided subset in order, then a tree);
// out[1] = sqrt(out[0]).
__global__ void sum_partials_kernel(const double* __restrict__ partial, int64_t n,
                                    double* __restrict__ out) {
  __shared__ double red[kMTThreads];
  double acc = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) acc += partial[i];
  red[threadIdx.x] = acc;
  __syncthreads();
  block_tree_sum(red);
  if (threadIdx.x == 0) {
    out[0] = red[0];
    out[1] = sqrt(red[0]);
  }
}

// One entry per gradient (ptr[0]) of element type T, in the order of idx.
template <class T>
std::vector<MTEntry> grad_entries(const std::vector<Tensor>& grads, const std::vector<size_t>& idx) {
  std::vector<MTEntry> entries;
  for (size_t i : idx) {
    MTEntry e{};
    e.ptr[0] = grads[i].data_ptr<T>();
    e.n = grads[i].numel();
    entries.push_back(e);
  }
  return entries;
}

std::vector<DType> dtypes_of(const std::vector<Tensor>& ts) {
  std::vector<DType> out;
  for (const Tensor& t : ts) out.push_back(t.dtype());
  return out;
}

// [sum of squares, norm] of all gradients, as an f64 tensor on their device (no host wait).
Tensor device_norm(const std::vector<Tensor>& grads) {
  const Device device = grads.at(0).device();
  cuda::DeviceGuard guard(device.index);
  cudaStream_t s = cuda::stream(device.index);
  // Chunks per element type, so one partial buffer holds them all (f32 chunks first).
  struct Group {
    std::vector<MTEntry> entries;
    int64_t nchunks;
    bool is_double;
  };
  std::vector<Group> groups;
  int64_t total_chunks = 0;
  mt::by_dtype(dtypes_of(grads), "clip_grad_norm", [&](auto tag, const std::vector<size_t>& idx) {
    using T = decltype(tag);
    Group g{grad_entries<T>(grads, idx), 0, std::is_same_v<T, double>};
    g.nchunks = mt::assign_chunks(g.entries);
    total_chunks += g.nchunks;
    groups.push_back(std::move(g));
  });
  Tensor partial = empty({std::max<int64_t>(total_chunks, 1)}, {DType::f64, device});
  Tensor out = empty({2}, {DType::f64, device});
  int64_t offset = 0;
  for (Group& g : groups) {
    if (g.nchunks == 0) continue;
    Tensor table = mt::upload_table(g.entries, device);
    const auto* tp = static_cast<const MTEntry*>(table.raw_data());
    const unsigned grid = static_cast<unsigned>(std::min<int64_t>(g.nchunks, int64_t{1} << 20));
    double* pp = partial.data_ptr<double>() + offset;
    if (g.is_double)
      sum_squares_partial_kernel<double><<<grid, kMTThreads, 0, s>>>(tp, static_cast<int>(g.entries.size()), g.nchunks, pp);
    else
      sum_squares_partial_kernel<float><<<grid, kMTThreads, 0, s>>>(tp, static_cast<int>(g.entries.size()), g.nchunks, pp);
    EVIT_CUDA_LAUNCH_CHECK("clip_grad_norm sum_squares_partial_kernel");
    offset += g.nchunks;
  }
  sum_partials_kernel<<<1, kMTThreads, 0, s>>>(partial.data_ptr<double>(), total_chunks,
                                               out.data_ptr<double>());
  EVIT_CUDA_LAUNCH_CHECK("clip_grad_norm sum_partials_kernel");
  return out;
}

double grad_sum_of_squares_launch(const std::vector<Tensor>& grads) {
  if (grads.empty()) return 0.0;
  return device_norm(grads).to(kCPU).data_ptr<double>()[0];
}

// x *= coef with coef = max_norm / (norm + 1e-6) read on the device; nothing when coef >= 1
// (a NaN coef is applied, as on the CPU and in torch).
template <class T>
struct ClipNormOp {
  const double* norm;
  double max_norm;
  __device__ void operator()(const MTEntry& e, int64_t i) const {
    const double coef = max_norm / (*norm + 1e-6);
    if (coef >= 1.0) return;
    T* x = static_cast<T*>(e.ptr[0]);
    x[i] = x[i] * static_cast<T>(coef);
  }
};

double clip_grad_norm_launch(const std::vector<Tensor>& grads, double max_norm) {
  if (grads.empty()) return 0.0;
  Tensor norm = device_norm(grads);
  const double* np = norm.data_ptr<double>() + 1;
  mt::by_dtype(dtypes_of(grads), "clip_grad_norm", [&](auto tag, const std::vector<size_t>& idx) {
    using T = decltype(tag);
    mt::launch<T>(grad_entries<T>(grads, idx), grads[0].device(), ClipNormOp<T>{np, max_norm},
                  "clip_grad_norm multi_tensor_kernel");
  });
  return norm.to(kCPU).data_ptr<double>()[1];  // the only host wait
}

template <class T>
struct ScaleOp {
  T coef;
  __device__ void operator()(const MTEntry& e, int64_t i) const {
    T* x = static_cast<T*>(e.ptr[0]);
    x[i] = x[i] * coef;
  }
};

void scale_grads_launch(const std::vector<Tensor>& grads, double coef) {
  if (grads.empty()) return;
  mt::by_dtype(dtypes_of(grads), "clip_grad_norm", [&](auto tag, const std::vector<size_t>& idx) {
    using T = decltype(tag);
    mt::launch<T>(grad_entries<T>(grads, idx), grads[0].device(), ScaleOp<T>{static_cast<T>(coef)},
                  "clip_grad_norm multi_tensor_kernel");
  });
}

template <class T>
struct ClampOp {
  T lo, hi;
  __device__ void operator()(const MTEntry& e, int64_t i) const {
    T* p = static_cast<T*>(e.ptr[0]);
    const T x = p[i];
    p[i] = x < lo ? lo : (x > hi ? hi : x);  // NaN passes through, as torch.clamp
  }
};

void clip_grad_value_launch(const std::vector<Tensor>& grads, double clip_value) {
  if (grads.empty()) return;
  mt::by_dtype(dtypes_of(grads), "clip_grad_value", [&](auto tag, const std::vector<size_t>& idx) {
    using T = decltype(tag);
    const T hi = static_cast<T>(clip_value);
    mt::launch<T>(grad_entries<T>(grads, idx), grads[0].device(), ClampOp<T>{-hi, hi},
                  "clip_grad_value multi_tensor_kernel");
  });
}

}  // namespace

EVIT_REGISTER_CUDA_KERNEL(grad_sum_of_squares_cuda, grad_sum_of_squares_launch);
EVIT_REGISTER_CUDA_KERNEL(clip_grad_norm_cuda, clip_grad_norm_launch);
EVIT_REGISTER_CUDA_KERNEL(scale_grads_cuda, scale_grads_launch);
EVIT_REGISTER_CUDA_KERNEL(clip_grad_value_cuda, clip_grad_value_launch);

}  // namespace evit::optim

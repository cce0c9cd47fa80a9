// Multi-tensor CUDA launches for the optimizers, EMA, gradient clipping and the loss scaler
// (include only from .cu files): one kernel updates every tensor of a list.
//
// The host packs one MTEntry per tensor (up to four pointers of the same length, four
// per-tensor scalars, flags) into a small table, copies it to the device on the compute stream
// and launches one kernel. Each tensor is cut into chunks of kMTChunk elements; block b handles
// chunk b (grid-stride over chunks), finding its tensor by binary search over the entries'
// first-chunk indices. Elements are updated independently, so the result does not depend on
// the launch shape.
#pragma once
#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "core/cuda/runtime.cuh"

namespace evit::optim::mt {

inline constexpr int kMTThreads = 256;
inline constexpr int64_t kMTChunk = 16384;  // elements per block iteration (64 per thread)

struct MTEntry {
  void* ptr[4];           // tensor data (same element count; unused slots null)
  int64_t n;              // element count
  int64_t chunk_begin;    // index of the tensor's first chunk in this launch
  double s[4];            // per-tensor scalars, rounded to the element type in the kernel
  int32_t flags;          // per-tensor flags (meaning set by the op)
  int32_t pad;
};

// The entry that holds `chunk`: the last one whose first chunk is <= chunk (entries are
// non-empty and in chunk order).
__device__ __forceinline__ int find_entry(const MTEntry* __restrict__ table, int ntensors,
                                          int64_t chunk) {
  int lo = 0, hi = ntensors - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (table[mid].chunk_begin <= chunk) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

template <class T, class Op>
__global__ void multi_tensor_kernel(const MTEntry* __restrict__ table, int ntensors,
                                    int64_t nchunks, Op op) {
  for (int64_t chunk = blockIdx.x; chunk < nchunks; chunk += gridDim.x) {
    const MTEntry e = table[find_entry(table, ntensors, chunk)];
    const int64_t begin = (chunk - e.chunk_begin) * kMTChunk;
    const int64_t end = min(e.n, begin + kMTChunk);
    for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) op(e, i);
  }
}

// Assigns first-chunk indices (dropping empty tensors) and returns the total chunk count.
inline int64_t assign_chunks(std::vector<MTEntry>& entries) {
  std::vector<MTEntry> kept;
  kept.reserve(entries.size());
  int64_t next = 0;
  for (MTEntry e : entries) {
    if (e.n <= 0) continue;
    e.chunk_begin = next;
    next += (e.n + kMTChunk - 1) / kMTChunk;
    kept.push_back(e);
  }
  entries.swap(kept);
  return next;
}

// The entry table on `device` (a few KB). The host copy is a pageable buffer: cudaMemcpyAsync
// from pageable memory has staged it before returning (the driver may first wait for the
// stream, a small cost once per step), so it may be freed at once. The device copy is a
// caching-allocator block freed after the launch, which is safe because all work of a device
// runs on one stream.
inline Tensor upload_table(const std::vector<MTEntry>& entries, Device device) {
  const int64_t bytes = static_cast<int64_t>(entries.size() * sizeof(MTEntry));
  Tensor host = empty({bytes}, DType::u8);
  std::memcpy(host.raw_data(), entries.data(), static_cast<size_t>(bytes));
  return host.to(device);
}

// One launch of op over every element of every entry (all on `device`, element type T).
template <class T, class Op>
void launch(std::vector<MTEntry> entries, Device device, const Op& op, const char* name) {
  const int64_t nchunks = assign_chunks(entries);
  if (nchunks == 0) return;
  cuda::DeviceGuard guard(device.index);
  Tensor table = upload_table(entries, device);
  const unsigned grid = static_cast<unsigned>(std::min<int64_t>(nchunks, int64_t{1} << 20));
  multi_tensor_kernel<T, Op><<<grid, kMTThreads, 0, cuda::stream(device.index)>>>(
      static_cast<const MTEntry*>(table.raw_data()), static_cast<int>(entries.size()), nchunks, op);
  EVIT_CUDA_LAUNCH_CHECK(name);
}

// Calls fn(tag, indices) once per floating element type present in `dtypes` (f32 first, then
// f64) with the indices of the items of that type, in the order given; throws for any other
// type, naming `op`.
template <class F>
void by_dtype(const std::vector<DType>& dtypes, const char* op, F&& fn) {
  std::vector<size_t> f32, f64;
  for (size_t i = 0; i < dtypes.size(); ++i) {
    dispatch_floating(dtypes[i], op, [&](auto tag) {
      if constexpr (std::is_same_v<decltype(tag), float>) f32.push_back(i);
      else f64.push_back(i);
    });
  }
  if (!f32.empty()) fn(float{}, f32);
  if (!f64.empty()) fn(double{}, f64);
}

}  // namespace evit::optim::mt

// The CUDA backend as the rest of evit sees it. Nothing here needs CUDA headers: in a CPU-only
// build, or on a machine without a GPU, `device_count()` is 0 and asking for a CUDA tensor
// throws an error that says why.
//
// Execution model: one compute stream per device; every kernel, copy and cuBLAS call of evit
// goes on it, so work is ordered without events. Host-visible results (item(), to(cpu),
// to_vector) synchronize that stream. With EVIT_CUDA_SYNC=1 in the environment every launch is
// followed by a device synchronize and an error check, so a failing kernel is named at once.
#pragma once
#include <cstddef>

#include "core/caching_allocator.h"
#include "core/cuda_kernel.h"
#include "core/tensor.h"

namespace evit::cuda {

// True when this build contains the CUDA backend (whether or not a GPU is present).
bool is_built();
// Number of visible GPUs; 0 without the backend or without a driver/GPU.
int device_count();
bool is_available();
// Waits until all work queued on the device's stream is done (all devices with -1).
void synchronize(int device = -1);

// The caching allocator of a device: statistics (with peaks), peak reset, releasing the cache.
AllocatorStats memory_stats(int device = 0);
void reset_peak_memory_stats(int device = 0);
void empty_cache(int device = 0);

// TF32 tensor-core math for f32 GEMMs and convolutions: off by default (results then match
// the CPU to f32 rounding); turning it on trades ~10 mantissa bits for speed, like PyTorch's
// `allow_tf32`.
void set_allow_tf32(bool on);
bool allow_tf32();

// A CPU tensor in page-locked memory, so copies to the GPU run asynchronously (the data
// loader stages batches this way). Without the backend it returns an ordinary copy.
Tensor pin_memory(const Tensor& cpu_tensor);

// ---- slots the backend fills (see core/cuda_kernel.h); the front-end functions above wrap them.
EVIT_CUDA_KERNEL(cuda_device_count_impl, int());
EVIT_CUDA_KERNEL(cuda_synchronize_impl, void(int));
EVIT_CUDA_KERNEL(cuda_memory_stats_impl, AllocatorStats(int));
EVIT_CUDA_KERNEL(cuda_reset_peak_impl, void(int));
EVIT_CUDA_KERNEL(cuda_empty_cache_impl, void(int));
EVIT_CUDA_KERNEL(cuda_pin_memory_impl, Tensor(const Tensor&));
// Element copy where either side is on a GPU: any strides, dtypes and broadcast of src to dst.
EVIT_CUDA_KERNEL(cuda_copy_elements, void(const Tensor& dst, const Tensor& src));
// dst[...] = value for a CUDA tensor of any strides and dtype.
EVIT_CUDA_KERNEL(cuda_fill, void(const Tensor& dst, double value));
// acc[i] += x[i] for CUDA tensors of one shape, f32, f64 or i64 (the sums of core/dist/tree_reduce.h).
EVIT_CUDA_KERNEL(cuda_accumulate, void(const Tensor& acc, const Tensor& x));

}  // namespace evit::cuda

// Internal helpers for evit's CUDA sources (.cu files only): error checks, the per-device
// stream, launch bookkeeping, device guards.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "core/cuda.h"
#include "core/tensor.h"

namespace evit::cuda {

// Throws evit::Error naming the CUDA call, its file:line and the driver's message.
[[noreturn]] void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line);

#define EVIT_CUDA_CHECK(call)                                                        \
  do {                                                                               \
    cudaError_t evit_cuda_err_ = (call);                                             \
    if (evit_cuda_err_ != cudaSuccess)                                               \
      ::evit::cuda::throw_cuda_error(evit_cuda_err_, #call, __FILE__, __LINE__);     \
  } while (0)

// After every kernel launch: reports a launch failure at once, naming the kernel, and with
// EVIT_CUDA_SYNC=1 also waits for the kernel so faults inside it are named too.
void check_launch(const char* kernel, const char* file, int line);
#define EVIT_CUDA_LAUNCH_CHECK(kernel) ::evit::cuda::check_launch(kernel, __FILE__, __LINE__)

// The compute stream of a device (created on first use).
cudaStream_t stream(int device);
inline cudaStream_t stream_of(const Tensor& t) { return stream(t.device().index); }

// Makes `device` current for the guard's lifetime.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  explicit DeviceGuard(const Tensor& t) : DeviceGuard(t.device().index) {}
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_;
};

// Properties of a device, cached.
const cudaDeviceProp& properties(int device);

// Blocks for a 1-D launch of n threads in blocks of `threads`, capped so grid-stride loops
// cover the rest (enough blocks to fill any current GPU several times).
inline unsigned blocks_for(int64_t n, int threads = 256) {
  int64_t b = (n + threads - 1) / threads;
  if (b < 1) b = 1;
  if (b > (int64_t{1} << 20)) b = int64_t{1} << 20;
  return static_cast<unsigned>(b);
}

// Launches `kernel` — one thread per element, its body a grid-stride loop over n elements — on
// the device and stream of `on` with 256-thread blocks, then checks the launch. Nothing is
// launched for n == 0.
template <class Kernel, class... Args>
void launch_elementwise(const char* name, const Tensor& on, int64_t n, Kernel kernel, Args... args) {
  if (n == 0) return;
  DeviceGuard guard(on);
  kernel<<<blocks_for(n), 256, 0, stream_of(on)>>>(args...);
  EVIT_CUDA_LAUNCH_CHECK(name);
}

// Checks that every defined tensor is on `device` (a CUDA device), naming the op and tensor.
void check_same_cuda_device(const char* op, std::initializer_list<const Tensor*> tensors);

}  // namespace evit::cuda

// CUDA kernels of point_sample: the forward reads four neighbours per output (one thread per
// output); the backward gives each (n, c) plane one thread that adds its points in order, the
// CPU's order, so no atomics make the result depend on scheduling. Mask losses sample one
// channel per mask, so planes are few and cheap; this favours determinism over occupancy.
#include "core/cuda/runtime.cuh"
#include "ops/resize/cuda_slots.h"
#include "ops/resize/point_sample_taps.h"

namespace evit {
namespace {

using point_sample_detail::Taps;
using point_sample_detail::taps_of;

template <class T>
__global__ void forward_kernel(const T* x, const T* coords, T* y, int64_t N, int64_t C, int64_t H, int64_t W,
                               int64_t P) {
  const int64_t total = N * C * P;
  for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < total; o += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = o % P, q = o / P, n = q / C;
    const T* c = coords + (n * P + i) * 2;
    const Taps<T> t = taps_of<T>(c[0], c[1], H, W);
    const T* plane = x + q * H * W;
    T acc = 0;
    for (int k = 0; k < 4; ++k)
      if (t.idx[k] >= 0) acc += plane[t.idx[k]] * t.w[k];
    y[o] = acc;
  }
}

template <class T>
__global__ void backward_kernel(const T* g, const T* coords, T* gx, int64_t N, int64_t C, int64_t H, int64_t W,
                                int64_t P) {
  for (int64_t q = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; q < N * C; q += int64_t(gridDim.x) * blockDim.x) {
    const int64_t n = q / C;
    T* plane = gx + q * H * W;
    for (int64_t i = 0; i < P; ++i) {
      const T* c = coords + (n * P + i) * 2;
      const Taps<T> t = taps_of<T>(c[0], c[1], H, W);
      const T gi = g[q * P + i];
      for (int k = 0; k < 4; ++k)
        if (t.idx[k] >= 0) plane[t.idx[k]] += t.w[k] * gi;
    }
  }
}

void forward_launch(const Tensor& x, const Tensor& coords, const Tensor& y) {
  if (y.numel() == 0) return;
  cuda::DeviceGuard guard(x);
  cudaStream_t s = cuda::stream_of(x);
  dispatch_floating(x.dtype(), "point_sample (CUDA)", [&](auto tag) {
    using T = decltype(tag);
    forward_kernel<T><<<cuda::blocks_for(y.numel()), 256, 0, s>>>(
        static_cast<const T*>(x.raw_data()), static_cast<const T*>(coords.raw_data()), static_cast<T*>(y.raw_data()),
        x.size(0), x.size(1), x.size(2), x.size(3), coords.size(1));
    EVIT_CUDA_LAUNCH_CHECK("point_sample forward_kernel");
  });
}

void backward_launch(const Tensor& gy, const Tensor& coords, const Tensor& gx) {
  if (gy.numel() == 0) return;
  cuda::DeviceGuard guard(gy);
  cudaStream_t s = cuda::stream_of(gy);
  const int64_t planes = gx.size(0) * gx.size(1);
  dispatch_floating(gy.dtype(), "point_sample backward (CUDA)", [&](auto tag) {
    using T = decltype(tag);
    backward_kernel<T><<<cuda::blocks_for(planes), 256, 0, s>>>(
        static_cast<const T*>(gy.raw_data()), static_cast<const T*>(coords.raw_data()), static_cast<T*>(gx.raw_data()),
        gx.size(0), gx.size(1), gx.size(2), gx.size(3), coords.size(1));
    EVIT_CUDA_LAUNCH_CHECK("point_sample backward_kernel");
  });
}

}  // namespace

EVIT_REGISTER_CUDA_KERNEL(point_sample_forward_cuda, forward_launch);
EVIT_REGISTER_CUDA_KERNEL(point_sample_backward_cuda, backward_launch);

}  // namespace evit

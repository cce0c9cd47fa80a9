// CUDA kernels of the dropout family: the keep mask drawn on the device, and the masked scale.
//
// The mask uses the same Philox4x32-10 stream as the CPU (core/generator.cpp), so for the same
// generator state both devices drop exactly the same units. Generator::philox is a host
// function, so the device copy below repeats its ten rounds; the [cuda] tests compare the masks
// bit for bit with the CPU's.
#include <array>

#include "core/cuda/runtime.cuh"
#include "ops/dropout/cuda_slots.h"

namespace evit {
namespace {

// Philox4x32-10 with the multipliers and Weyl constants of Generator::philox.
__device__ __forceinline__ void philox(uint64_t seed, uint64_t counter, uint32_t (&out)[4]) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32);
  uint32_t c2 = 0, c3 = 0;
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
#pragma unroll
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(kM0) * c0;
    const uint64_t p1 = static_cast<uint64_t>(kM1) * c2;
    const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    const uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0;
    c1 = n1;
    c2 = n2;
    c3 = n3;
    k0 += kW0;
    k1 += kW1;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

// One thread per Philox counter, writing up to four mask bytes.
__global__ void mask_kernel(uint8_t* m, int64_t groups, uint64_t seed, uint64_t base,
                            double keep) {
  const int64_t counters = (groups + 3) / 4;
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < counters;
       c += int64_t(gridDim.x) * blockDim.x) {
    uint32_t w[4];
    philox(seed, base + static_cast<uint64_t>(c), w);
    for (int l = 0; l < 4 && c * 4 + l < groups; ++l) {
      // Generator::to_unit_float: 24 random bits scaled to [0, 1), compared in double.
      const float u = static_cast<float>(w[l] >> 8) * (1.0f / 16777216.0f);
      m[c * 4 + l] = static_cast<double>(u) < keep ? 1 : 0;
    }
  }
}

template <class T>
__global__ void apply_kernel(const T* x, const uint8_t* m, T* y, int64_t n, int64_t unit, T scale) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    y[i] = m[i / unit] ? x[i] * scale : T(0);
}

void mask_launch(const Tensor& mask, uint64_t seed, uint64_t base, double keep) {
  const int64_t groups = mask.numel();
  if (groups == 0) return;
  cuda::DeviceGuard guard(mask);
  mask_kernel<<<cuda::blocks_for((groups + 3) / 4), 256, 0, cuda::stream_of(mask)>>>(
      static_cast<uint8_t*>(mask.raw_data()), groups, seed, base, keep);
  EVIT_CUDA_LAUNCH_CHECK("dropout mask_kernel");
}

void apply_launch(const Tensor& x, const Tensor& mask, const Tensor& y, int64_t unit,
                  double scale) {
  const int64_t n = x.numel();
  if (n == 0) return;
  cuda::DeviceGuard guard(x);
  dispatch_floating(x.dtype(), "dropout (CUDA)", [&](auto tag) {
    using T = decltype(tag);
    apply_kernel<T><<<cuda::blocks_for(n), 256, 0, cuda::stream_of(x)>>>(
        static_cast<const T*>(x.raw_data()), static_cast<const uint8_t*>(mask.raw_data()),
        static_cast<T*>(y.raw_data()), n, unit, static_cast<T>(scale));
    EVIT_CUDA_LAUNCH_CHECK("dropout apply_kernel");
  });
}

}  // namespace

EVIT_REGISTER_CUDA_KERNEL(dropout_mask_cuda, mask_launch);
EVIT_REGISTER_CUDA_KERNEL(dropout_apply_cuda, apply_launch);

}  // namespace evit

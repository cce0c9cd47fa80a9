// CUDA kernel of pixel_shuffle / pixel_unshuffle: one thread per output element, moving raw
// elements (any dtype of 1, 2, 4 or 8 bytes), so the result is an exact permutation.
//   shuffled[b, ch, hh*r + i, ww*r + j] = unshuffled[b, ch*r*r + i*r + j, hh, ww]
#include "core/cuda/runtime.cuh"
#include "ops/shape/cuda_slots.h"

namespace evit {
namespace {

// Output of shuffle: o indexes [batch*c, h*r, w*r] (coalesced writes).
template <class E>
__global__ void shuffle_kernel(const E* in, E* out, int64_t total, int64_t h, int64_t w,
                               int64_t r) {
  const int64_t oh_n = h * r, ow_n = w * r;
  for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < total;
       o += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ow = o % ow_n, oh = (o / ow_n) % oh_n, bc = o / (ow_n * oh_n);
    const int64_t i = oh % r, j = ow % r;
    out[o] = in[((bc * r * r + i * r + j) * h + oh / r) * w + ow / r];
  }
}

// Output of unshuffle: o indexes [batch*c, r*r, h, w].
template <class E>
__global__ void unshuffle_kernel(const E* in, E* out, int64_t total, int64_t h, int64_t w,
                                 int64_t r) {
  for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < total;
       o += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ww = o % w, hh = (o / w) % h, sub = (o / (w * h)) % (r * r),
                  bc = o / (w * h * r * r);
    const int64_t i = sub / r, j = sub % r;
    out[o] = in[(bc * h * r + hh * r + i) * (w * r) + ww * r + j];
  }
}

template <class E>
void run(const Tensor& x, const Tensor& y, int64_t h, int64_t w, int64_t r, bool forward) {
  const int64_t total = y.numel();
  const E* in = static_cast<const E*>(x.raw_data());
  E* out = static_cast<E*>(y.raw_data());
  cudaStream_t s = cuda::stream_of(x);
  if (forward) {
    shuffle_kernel<E><<<cuda::blocks_for(total), 256, 0, s>>>(in, out, total, h, w, r);
    EVIT_CUDA_LAUNCH_CHECK("pixel shuffle_kernel");
  } else {
    unshuffle_kernel<E><<<cuda::blocks_for(total), 256, 0, s>>>(in, out, total, h, w, r);
    EVIT_CUDA_LAUNCH_CHECK("pixel unshuffle_kernel");
  }
}

void pixel_shuffle_launch(const Tensor& x, const Tensor& y, int64_t /*batch*/, int64_t /*c*/,
                          int64_t h, int64_t w, int64_t r, bool forward) {
  if (y.numel() == 0) return;
  cuda::DeviceGuard guard(x);
  switch (dtype_size(x.dtype())) {
    case 1: run<uint8_t>(x, y, h, w, r, forward); break;
    case 2: run<uint16_t>(x, y, h, w, r, forward); break;
    case 4: run<uint32_t>(x, y, h, w, r, forward); break;
    case 8: run<uint64_t>(x, y, h, w, r, forward); break;
    default: EVIT_THROW("pixel_shuffle: unsupported element size for ", dtype_name(x.dtype()));
  }
}

}  // namespace

EVIT_REGISTER_CUDA_KERNEL(pixel_shuffle_cuda, pixel_shuffle_launch);

}  // namespace evit

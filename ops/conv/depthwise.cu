// CUDA twin of depthwise.cpp (groups == C == O): direct kernels, no GEMM, no autocast.
// - forward: one thread per output element, taps in (i, j) order with bounds checks;
// - input gradient: one thread per input element gathering the outputs whose window covers it
//   (the exact adjoint of the forward for any stride, padding and dilation), taps in order;
// - weight gradient: one block per (channel, tap) reducing dy · x over N×OH×OW: each thread
//   sums a fixed strided subset in order (double), then a fixed shared-memory tree
//   (deterministic, no atomics).
#include <algorithm>

#include "core/cuda/runtime.cuh"
#include "ops/conv/cuda_slots.h"

namespace evit {
namespace {

using conv::Geom;

struct KGeom {
  int64_t N, C, H, W, OH, OW, KH, KW, sh, sw, ph, pw, dh, dw;
};
KGeom kgeom(const Geom& g) {
  return {g.N, g.C, g.H, g.W, g.OH, g.OW, g.KH, g.KW, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw};
}

template <class T>
__global__ void dw_forward_kernel(const T* __restrict x, const T* __restrict w,
                                  const T* __restrict bias, T* __restrict y, KGeom g) {
  const int64_t KK = g.KH * g.KW, total = g.N * g.C * g.OH * g.OW;
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < total;
       idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ow = idx % g.OW, oh = (idx / g.OW) % g.OH;
    const int64_t plane = idx / (g.OW * g.OH);  // n·C + c
    const int64_t c = plane % g.C;
    const T* xp = x + plane * g.H * g.W;
    const T* k = w + c * KK;
    T acc = bias ? bias[c] : T(0);
    for (int64_t i = 0; i < g.KH; ++i) {
      const int64_t ih = oh * g.sh - g.ph + i * g.dh;
      if (ih < 0 || ih >= g.H) continue;
      for (int64_t j = 0; j < g.KW; ++j) {
        const int64_t iw = ow * g.sw - g.pw + j * g.dw;
        if (iw < 0 || iw >= g.W) continue;
        acc += k[i * g.KW + j] * xp[ih * g.W + iw];
      }
    }
    y[idx] = acc;
  }
}

template <class T>
__global__ void dw_backward_input_kernel(const T* __restrict dy, const T* __restrict w,
                                         T* __restrict dx, KGeom g) {
  const int64_t KK = g.KH * g.KW, total = g.N * g.C * g.H * g.W;
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < total;
       idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t iw = idx % g.W, ih = (idx / g.W) % g.H;
    const int64_t plane = idx / (g.W * g.H);
    const int64_t c = plane % g.C;
    const T* dp = dy + plane * g.OH * g.OW;
    const T* k = w + c * KK;
    T acc = T(0);
    for (int64_t i = 0; i < g.KH; ++i) {
      const int64_t num = ih + g.ph - i * g.dh;  // = oh · sh when tap row i reads ih
      if (num < 0 || num % g.sh != 0) continue;
      const int64_t oh = num / g.sh;
      if (oh >= g.OH) continue;
      for (int64_t j = 0; j < g.KW; ++j) {
        const int64_t numw = iw + g.pw - j * g.dw;
        if (numw < 0 || numw % g.sw != 0) continue;
        const int64_t ow = numw / g.sw;
        if (ow >= g.OW) continue;
        acc += k[i * g.KW + j] * dp[oh * g.OW + ow];
      }
    }
    dx[idx] = acc;
  }
}

constexpr int kReduceThreads = 256;

template <class T>
__global__ void dw_backward_weight_kernel(const T* __restrict x, const T* __restrict dy,
                                          T* __restrict dw, KGeom g) {
  __shared__ double red[kReduceThreads];
  const int64_t KK = g.KH * g.KW, OHW = g.OH * g.OW, per = g.N * OHW;
  for (int64_t b = blockIdx.x; b < g.C * KK; b += gridDim.x) {
    const int64_t c = b / KK, t = b % KK, i = t / g.KW, j = t % g.KW;
    double acc = 0;
    for (int64_t e = threadIdx.x; e < per; e += kReduceThreads) {
      const int64_t n = e / OHW, p = e % OHW, oh = p / g.OW, ow = p % g.OW;
      const int64_t ih = oh * g.sh - g.ph + i * g.dh;
      const int64_t iw = ow * g.sw - g.pw + j * g.dw;
      if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
      const int64_t plane = n * g.C + c;
      acc += static_cast<double>(dy[plane * OHW + p]) *
             static_cast<double>(x[(plane * g.H + ih) * g.W + iw]);
    }
    red[threadIdx.x] = acc;
    __syncthreads();
    for (unsigned s = kReduceThreads / 2; s > 0; s >>= 1) {
      if (threadIdx.x < s) red[threadIdx.x] += red[threadIdx.x + s];
      __syncthreads();
    }
    if (threadIdx.x == 0) dw[b] = static_cast<T>(red[0]);
    __syncthreads();  // red is reused by the next (channel, tap)
  }
}

void forward_launch(const Geom& g, const Tensor& x, const Tensor& w, const Tensor& bias,
                    const Tensor& y) {
  cuda::check_same_cuda_device("conv2d (depthwise, cuda)", {&x, &w, &bias, &y});
  const int64_t total = y.numel();
  if (total == 0) return;
  cuda::DeviceGuard guard(y);
  dispatch_floating(y.dtype(), "conv2d (depthwise)", [&](auto tag) {
    using T = decltype(tag);
    dw_forward_kernel<T><<<cuda::blocks_for(total), 256, 0, cuda::stream_of(y)>>>(
        x.data_ptr<T>(), w.data_ptr<T>(), bias.defined() ? bias.data_ptr<T>() : nullptr,
        y.data_ptr<T>(), kgeom(g));
    EVIT_CUDA_LAUNCH_CHECK("dw_forward_kernel");
  });
}

void backward_launch(const Geom& g, const Tensor& x, const Tensor& w, const Tensor& dy,
                     const Tensor& dx, const Tensor& dw) {
  cuda::check_same_cuda_device("conv2d backward (depthwise, cuda)", {&x, &w, &dy, &dx, &dw});
  cuda::DeviceGuard guard(dy);
  cudaStream_t s = cuda::stream_of(dy);
  dispatch_floating(dy.dtype(), "conv2d backward (depthwise)", [&](auto tag) {
    using T = decltype(tag);
    if (dx.defined() && dx.numel() > 0) {
      dw_backward_input_kernel<T><<<cuda::blocks_for(dx.numel()), 256, 0, s>>>(
          dy.data_ptr<T>(), w.data_ptr<T>(), dx.data_ptr<T>(), kgeom(g));
      EVIT_CUDA_LAUNCH_CHECK("dw_backward_input_kernel");
    }
    if (dw.defined() && dw.numel() > 0) {
      const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(dw.numel(), 65535));
      dw_backward_weight_kernel<T><<<blocks, kReduceThreads, 0, s>>>(
          x.data_ptr<T>(), dy.data_ptr<T>(), dw.data_ptr<T>(), kgeom(g));
      EVIT_CUDA_LAUNCH_CHECK("dw_backward_weight_kernel");
    }
  });
}

}  // namespace

EVIT_REGISTER_CUDA_KERNEL(conv_depthwise_forward_cuda, forward_launch);
EVIT_REGISTER_CUDA_KERNEL(conv_depthwise_backward_cuda, backward_launch);

}  // namespace evit

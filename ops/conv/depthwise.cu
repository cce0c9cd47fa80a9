// CUDA twin of depthwise.cpp (groups == C == O): direct kernels, no GEMM, no autocast.
// - forward: one thread per output element, taps in (i, j) order with bounds checks;
// - input gradient: one thread per input element gathering the outputs whose window covers it
//   (the exact adjoint of the forward for any stride, padding and dilation), taps in order;
// - weight gradient, 3×3 and 5×5 kernels: one block per (channel, run of images) reads each
//   output-gradient value once and accumulates all taps (double, a fixed subset per thread, in
//   order), reduces them over the block in a fixed shared-memory tree, and a second kernel adds
//   the runs' partial sums in order; other kernel sizes: one block per (channel, tap). Both
//   deterministic, no atomics; pixel coordinates in 32-bit arithmetic (64-bit division per
//   element dominated the first version).
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

// kUnitStride: stride 1, where every tap row/column maps to an output and the divisibility
// tests (64-bit modulo per tap, the kernel's main cost) fall away.
template <class T, bool kUnitStride>
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
      if (num < 0 || (!kUnitStride && num % g.sh != 0)) continue;
      const int64_t oh = kUnitStride ? num : num / g.sh;
      if (oh >= g.OH) continue;
      for (int64_t j = 0; j < g.KW; ++j) {
        const int64_t numw = iw + g.pw - j * g.dw;
        if (numw < 0 || (!kUnitStride && numw % g.sw != 0)) continue;
        const int64_t ow = kUnitStride ? numw : numw / g.sw;
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
  const int64_t KK = g.KH * g.KW, OHW = g.OH * g.OW;
  for (int64_t b = blockIdx.x; b < g.C * KK; b += gridDim.x) {
    const int64_t c = b / KK, t = b % KK, i = t / g.KW, j = t % g.KW;
    double acc = 0;
    const int OW = static_cast<int>(g.OW), H = static_cast<int>(g.H), W = static_cast<int>(g.W);
    const int ioff = static_cast<int>(i * g.dh - g.ph), joff = static_cast<int>(j * g.dw - g.pw);
    const int sh = static_cast<int>(g.sh), sw = static_cast<int>(g.sw);
    for (int64_t n = 0; n < g.N; ++n) {
      const int64_t plane = n * g.C + c;
      const T* dyp = dy + plane * OHW;
      const T* xp = x + plane * g.H * g.W;
      for (int p = threadIdx.x; p < OHW; p += kReduceThreads) {
        const int oh = p / OW, ow = p - oh * OW;
        const int ih = oh * sh + ioff, iw = ow * sw + joff;
        if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
        acc += static_cast<double>(dyp[p]) * static_cast<double>(xp[ih * W + iw]);
      }
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

// Block (c, s): channel c, images [s·N/S, (s+1)·N/S) for S = gridDim.y; partial[(c·S + s)·KK + t]
// is that run's sum of dy · x under tap t.
template <class T, int KH, int KW>
__global__ void dw_weight_partials_kernel(const T* __restrict x, const T* __restrict dy,
                                          double* __restrict partial, KGeom g) {
  constexpr int KK = KH * KW;
  __shared__ double red[kReduceThreads];
  const int64_t c = blockIdx.x, S = gridDim.y, s = blockIdx.y;
  const int64_t n_begin = s * g.N / S, n_end = (s + 1) * g.N / S;
  const int OW = static_cast<int>(g.OW), H = static_cast<int>(g.H), W = static_cast<int>(g.W);
  const int OHW = static_cast<int>(g.OH * g.OW);
  const int sh = static_cast<int>(g.sh), sw = static_cast<int>(g.sw);
  const int ph = static_cast<int>(g.ph), pw = static_cast<int>(g.pw);
  const int dh = static_cast<int>(g.dh), dwl = static_cast<int>(g.dw);
  double acc[KK];
#pragma unroll
  for (int t = 0; t < KK; ++t) acc[t] = 0;
  for (int64_t n = n_begin; n < n_end; ++n) {
    const int64_t plane = n * g.C + c;
    const T* dyp = dy + plane * OHW;
    const T* xp = x + plane * g.H * g.W;
    for (int p = threadIdx.x; p < OHW; p += kReduceThreads) {
      const int oh = p / OW, ow = p - oh * OW;
      const double d = static_cast<double>(dyp[p]);
#pragma unroll
      for (int i = 0; i < KH; ++i) {
        const int ih = oh * sh - ph + i * dh;
        if (ih < 0 || ih >= H) continue;
#pragma unroll
        for (int j = 0; j < KW; ++j) {
          const int iw = ow * sw - pw + j * dwl;
          if (iw < 0 || iw >= W) continue;
          acc[i * KW + j] += d * static_cast<double>(xp[ih * W + iw]);
        }
      }
    }
  }
#pragma unroll
  for (int t = 0; t < KK; ++t) {
    red[threadIdx.x] = acc[t];
    __syncthreads();
    for (unsigned half = kReduceThreads / 2; half > 0; half >>= 1) {
      if (threadIdx.x < half) red[threadIdx.x] += red[threadIdx.x + half];
      __syncthreads();
    }
    if (threadIdx.x == 0) partial[(c * S + s) * KK + t] = red[0];
    __syncthreads();  // red is reused by the next tap
  }
}

// dw[c·KK + t] = Σ over runs s in order of partial[(c·S + s)·KK + t].
template <class T>
__global__ void dw_weight_finish_kernel(const double* __restrict partial, T* __restrict dw,
                                        int64_t C, int64_t S, int64_t KK) {
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < C * KK;
       idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t c = idx / KK, t = idx % KK;
    double sum = 0;
    for (int64_t s = 0; s < S; ++s) sum += partial[(c * S + s) * KK + t];
    dw[idx] = static_cast<T>(sum);
  }
}

// The weight gradient through the per-channel kernels when the kernel is 3×3 or 5×5; false for
// other sizes.
template <class T>
bool weight_gradient_by_channel(const Geom& g, const Tensor& x, const Tensor& dy, const Tensor& dw,
                                cudaStream_t s) {
  if (!((g.KH == 3 && g.KW == 3) || (g.KH == 5 && g.KW == 5))) return false;
  // Enough blocks to fill the GPU when channels are few: runs of images, fixed by the shape.
  const int64_t S = std::clamp<int64_t>(1024 / std::max<int64_t>(g.C, 1), 1, std::min<int64_t>(g.N, 65535));
  const int64_t KK = g.KH * g.KW;
  Tensor partial = empty({g.C * S * KK}, {DType::f64, dw.device()});
  const dim3 grid(static_cast<unsigned>(g.C), static_cast<unsigned>(S));
  if (g.KH == 3)
    dw_weight_partials_kernel<T, 3, 3><<<grid, kReduceThreads, 0, s>>>(
        x.data_ptr<T>(), dy.data_ptr<T>(), partial.data_ptr<double>(), kgeom(g));
  else
    dw_weight_partials_kernel<T, 5, 5><<<grid, kReduceThreads, 0, s>>>(
        x.data_ptr<T>(), dy.data_ptr<T>(), partial.data_ptr<double>(), kgeom(g));
  EVIT_CUDA_LAUNCH_CHECK("dw_weight_partials_kernel");
  dw_weight_finish_kernel<T><<<cuda::blocks_for(g.C * KK), 256, 0, s>>>(
      partial.data_ptr<double>(), dw.data_ptr<T>(), g.C, S, KK);
  EVIT_CUDA_LAUNCH_CHECK("dw_weight_finish_kernel");
  return true;
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
      if (g.sh == 1 && g.sw == 1)
        dw_backward_input_kernel<T, true><<<cuda::blocks_for(dx.numel()), 256, 0, s>>>(
            dy.data_ptr<T>(), w.data_ptr<T>(), dx.data_ptr<T>(), kgeom(g));
      else
        dw_backward_input_kernel<T, false><<<cuda::blocks_for(dx.numel()), 256, 0, s>>>(
            dy.data_ptr<T>(), w.data_ptr<T>(), dx.data_ptr<T>(), kgeom(g));
      EVIT_CUDA_LAUNCH_CHECK("dw_backward_input_kernel");
    }
    if (dw.defined() && dw.numel() > 0 && !weight_gradient_by_channel<T>(g, x, dy, dw, s)) {
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

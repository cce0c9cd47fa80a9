// CUDA kernels of interpolate (nearest / bilinear / bicubic), forward and backward.
//
// The taps (indices and weights per output index of each axis) come from the CPU code in
// interpolate.cpp, so both devices interpolate with identical coefficients. The arithmetic is
// the CPU's, in the CPU's order:
//  - forward: a horizontal pass into a [P, H, OW] buffer (one thread per buffer element), then a
//    vertical pass (one thread per output element); nearest is a plain gather;
//  - backward: the adjoint written as gathers, no atomics. The vertical adjoint gives each
//    buffer element (h, ow) the sum over the taps that read row h, in (oh, k) order; the
//    horizontal adjoint gives each input (h, w) the sum over the taps that read column w, in
//    (ow, k) order; nearest gathers over (oh, ow) pairs. These are the orders in which the CPU's
//    scatter loops add into the same element, so only floating-point contraction (FMA) can make
//    the results differ from the CPU's in the last bits.
#include "core/cuda/runtime.cuh"
#include "ops/resize/cuda_slots.h"

namespace evit {
namespace {

#define EVIT_GRID_STRIDE(i, n)                                                   \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); \
       i += int64_t(gridDim.x) * blockDim.x)

// Device pointers of one axis' taps.
template <class T>
struct Axis {
  const int64_t* idx;
  const T* w;
  const int64_t* inv_off;
  const int64_t* inv;
  int K;
  int64_t in, out;
};

template <class T>
Axis<T> axis_of(const InterpAxisCuda& a) {
  return {static_cast<const int64_t*>(a.idx.raw_data()), static_cast<const T*>(a.w.raw_data()),
          static_cast<const int64_t*>(a.inv_off.raw_data()),
          static_cast<const int64_t*>(a.inv.raw_data()), a.K, a.in, a.out};
}

template <class T>
__global__ void nearest_forward_kernel(const T* x, T* y, int64_t P, Axis<T> ay, Axis<T> ax) {
  const int64_t H = ay.in, W = ax.in, OH = ay.out, OW = ax.out;
  EVIT_GRID_STRIDE(o, P * OH * OW) {
    const int64_t ow = o % OW, oh = (o / OW) % OH, q = o / (OW * OH);
    y[o] = x[(q * H + ay.idx[oh]) * W + ax.idx[ow]];
  }
}

// tmp[q, h, ow] = sum_k wx[ow, k] * x[q, h, ix[ow, k]]
template <class T>
__global__ void horizontal_kernel(const T* x, T* tmp, int64_t P, int64_t H, Axis<T> ax) {
  const int64_t W = ax.in, OW = ax.out;
  const int K = ax.K;
  EVIT_GRID_STRIDE(t, P * H * OW) {
    const int64_t ow = t % OW, qh = t / OW;
    const T* row = x + qh * W;
    const int64_t* ix = ax.idx + ow * K;
    const T* wx = ax.w + ow * K;
    T s = wx[0] * row[ix[0]];
    for (int k = 1; k < K; ++k) s += wx[k] * row[ix[k]];
    tmp[t] = s;
  }
}

// y[q, oh, ow] = sum_k wy[oh, k] * tmp[q, iy[oh, k], ow]
template <class T>
__global__ void vertical_kernel(const T* tmp, T* y, int64_t P, Axis<T> ay, int64_t OW) {
  const int64_t H = ay.in, OH = ay.out;
  const int K = ay.K;
  EVIT_GRID_STRIDE(o, P * OH * OW) {
    const int64_t ow = o % OW, oh = (o / OW) % OH, q = o / (OW * OH);
    const T* plane = tmp + q * H * OW;
    const int64_t* iy = ay.idx + oh * K;
    const T* wy = ay.w + oh * K;
    T s = wy[0] * plane[iy[0] * OW + ow];
    for (int k = 1; k < K; ++k) s += wy[k] * plane[iy[k] * OW + ow];
    y[o] = s;
  }
}

// gx[q, h, w] = sum over (oh, ow) with iy[oh] == h and ix[ow] == w of gy[q, oh, ow]
template <class T>
__global__ void nearest_backward_kernel(const T* gy, T* gx, int64_t P, Axis<T> ay, Axis<T> ax) {
  const int64_t H = ay.in, W = ax.in, OH = ay.out, OW = ax.out;
  EVIT_GRID_STRIDE(i, P * H * W) {
    const int64_t w = i % W, h = (i / W) % H, q = i / (W * H);
    const T* plane = gy + q * OH * OW;
    T acc = T(0);
    for (int64_t a = ay.inv_off[h]; a < ay.inv_off[h + 1]; ++a) {
      const T* orow = plane + ay.inv[a] * OW;  // K == 1: the entry is oh itself
      for (int64_t b = ax.inv_off[w]; b < ax.inv_off[w + 1]; ++b) acc += orow[ax.inv[b]];
    }
    gx[i] = acc;
  }
}

// Adjoint of the vertical pass: tmp[q, h, ow] = sum over taps (oh, k) reading row h of
// wy[oh, k] * gy[q, oh, ow].
template <class T>
__global__ void vertical_adjoint_kernel(const T* gy, T* tmp, int64_t P, Axis<T> ay, int64_t OW) {
  const int64_t H = ay.in, OH = ay.out;
  const int K = ay.K;
  EVIT_GRID_STRIDE(t, P * H * OW) {
    const int64_t ow = t % OW, h = (t / OW) % H, q = t / (OW * H);
    const T* plane = gy + q * OH * OW;
    T acc = T(0);
    for (int64_t a = ay.inv_off[h]; a < ay.inv_off[h + 1]; ++a) {
      const int64_t e = ay.inv[a];
      acc += ay.w[e] * plane[(e / K) * OW + ow];
    }
    tmp[t] = acc;
  }
}

// Adjoint of the horizontal pass: gx[q, h, w] = sum over taps (ow, k) reading column w of
// wx[ow, k] * tmp[q, h, ow].
template <class T>
__global__ void horizontal_adjoint_kernel(const T* tmp, T* gx, int64_t P, int64_t H, Axis<T> ax) {
  const int64_t W = ax.in, OW = ax.out;
  const int K = ax.K;
  EVIT_GRID_STRIDE(i, P * H * W) {
    const int64_t w = i % W, qh = i / W;
    const T* trow = tmp + qh * OW;
    T acc = T(0);
    for (int64_t b = ax.inv_off[w]; b < ax.inv_off[w + 1]; ++b) {
      const int64_t e = ax.inv[b];
      acc += ax.w[e] * trow[e / K];
    }
    gx[i] = acc;
  }
}

void forward_launch(const Tensor& x, const Tensor& y, const InterpAxisCuda& ty,
                    const InterpAxisCuda& tx, bool nearest) {
  if (y.numel() == 0) return;
  const int64_t P = x.numel() / (ty.in * tx.in);
  cuda::DeviceGuard guard(x);
  cudaStream_t s = cuda::stream_of(x);
  dispatch_floating(x.dtype(), "interpolate (CUDA)", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = static_cast<const T*>(x.raw_data());
    T* yp = static_cast<T*>(y.raw_data());
    const Axis<T> ay = axis_of<T>(ty), ax = axis_of<T>(tx);
    if (nearest) {
      nearest_forward_kernel<T><<<cuda::blocks_for(y.numel()), 256, 0, s>>>(xp, yp, P, ay, ax);
      EVIT_CUDA_LAUNCH_CHECK("nearest_forward_kernel");
      return;
    }
    Tensor tmp = empty({P * ty.in * tx.out}, {x.dtype(), x.device()});
    T* tp = static_cast<T*>(tmp.raw_data());
    horizontal_kernel<T><<<cuda::blocks_for(tmp.numel()), 256, 0, s>>>(xp, tp, P, ty.in, ax);
    EVIT_CUDA_LAUNCH_CHECK("interpolate horizontal_kernel");
    vertical_kernel<T><<<cuda::blocks_for(y.numel()), 256, 0, s>>>(tp, yp, P, ay, tx.out);
    EVIT_CUDA_LAUNCH_CHECK("interpolate vertical_kernel");
  });
}

void backward_launch(const Tensor& gy, const Tensor& gx, const InterpAxisCuda& ty,
                     const InterpAxisCuda& tx, bool nearest) {
  if (gx.numel() == 0) return;
  const int64_t P = gx.numel() / (ty.in * tx.in);
  cuda::DeviceGuard guard(gy);
  cudaStream_t s = cuda::stream_of(gy);
  dispatch_floating(gy.dtype(), "interpolate backward (CUDA)", [&](auto tag) {
    using T = decltype(tag);
    const T* gp = static_cast<const T*>(gy.raw_data());
    T* gxp = static_cast<T*>(gx.raw_data());
    const Axis<T> ay = axis_of<T>(ty), ax = axis_of<T>(tx);
    if (nearest) {
      nearest_backward_kernel<T><<<cuda::blocks_for(gx.numel()), 256, 0, s>>>(gp, gxp, P, ay, ax);
      EVIT_CUDA_LAUNCH_CHECK("nearest_backward_kernel");
      return;
    }
    Tensor tmp = empty({P * ty.in * tx.out}, {gy.dtype(), gy.device()});
    T* tp = static_cast<T*>(tmp.raw_data());
    vertical_adjoint_kernel<T><<<cuda::blocks_for(tmp.numel()), 256, 0, s>>>(gp, tp, P, ay, tx.out);
    EVIT_CUDA_LAUNCH_CHECK("interpolate vertical_adjoint_kernel");
    horizontal_adjoint_kernel<T><<<cuda::blocks_for(gx.numel()), 256, 0, s>>>(tp, gxp, P, ty.in, ax);
    EVIT_CUDA_LAUNCH_CHECK("interpolate horizontal_adjoint_kernel");
  });
}

}  // namespace

EVIT_REGISTER_CUDA_KERNEL(interpolate_forward_cuda, forward_launch);
EVIT_REGISTER_CUDA_KERNEL(interpolate_backward_cuda, backward_launch);

}  // namespace evit

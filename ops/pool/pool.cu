// CUDA kernels of avg_pool2d, max_pool2d and adaptive_avg_pool2d, forward and backward.
//
// Forward: one thread per output element, the same window loop (and f64 window sums) as the
// CPU kernels of pool.cpp, so results match them exactly.
// Backward: gathers, one thread per input element. The thread visits the output windows that
// contain its element in (oh, ow) order — the order in which the CPU's scatter loop adds to that
// element — so the sums are the CPU's sums, with no atomics and no run-to-run variation.
#include <type_traits>

#include "core/cuda/runtime.cuh"
#include "ops/pool/cuda_slots.h"

namespace evit {
namespace {

using Acc = double;

__device__ __forceinline__ int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }
__device__ __forceinline__ int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }

// The window of output (oh, ow) clipped to the input, and its avg_pool divisor (pool.cpp's
// avg_window).
struct Window {
  int64_t h0, h1, w0, w1, divisor;
};
__device__ __forceinline__ Window avg_window(const Pool2dGeom& g, int64_t oh, int64_t ow,
                                             bool count_include_pad) {
  int64_t h0 = oh * g.sh - g.ph, w0 = ow * g.sw - g.pw;
  int64_t h1 = imin(h0 + g.kh, g.H + g.ph), w1 = imin(w0 + g.kw, g.W + g.pw);
  const int64_t padded = (h1 - h0) * (w1 - w0);
  h0 = imax(h0, 0), w0 = imax(w0, 0);
  h1 = imin(h1, g.H), w1 = imin(w1, g.W);
  return {h0, h1, w0, w1, count_include_pad ? padded : (h1 - h0) * (w1 - w0)};
}

// Outputs along one axis whose (unclipped) window [o*s - p, o*s - p + k) contains input i:
// o in [lo, hi] (empty when lo > hi).
__device__ __forceinline__ void covering(int64_t i, int64_t k, int64_t s, int64_t p, int64_t out,
                                         int64_t& lo, int64_t& hi) {
  const int64_t a = i + p - k + 1;  // o*s >= a
  lo = a <= 0 ? 0 : (a + s - 1) / s;
  hi = imin(out - 1, (i + p) / s);  // o*s <= i + p
}

// +infinity of T in device code (std::numeric_limits is host-only without relaxed constexpr).
template <class T>
__device__ __forceinline__ T cuda_infinity() {
  if constexpr (std::is_same_v<T, float>)
    return __int_as_float(0x7f800000);
  else
    return __longlong_as_double(0x7ff0000000000000LL);
}

#define EVIT_GRID_STRIDE(i, n)                                                   \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); \
       i += int64_t(gridDim.x) * blockDim.x)

template <class T>
__global__ void avg_pool_forward_kernel(const T* x, T* y, Pool2dGeom g, bool cip) {
  const int64_t total = g.N * g.C * g.OH * g.OW;
  EVIT_GRID_STRIDE(o, total) {
    const int64_t ow = o % g.OW, oh = (o / g.OW) % g.OH, p = o / (g.OW * g.OH);
    const T* in = x + p * g.H * g.W;
    const Window win = avg_window(g, oh, ow, cip);
    Acc s = 0;
    for (int64_t h = win.h0; h < win.h1; ++h)
      for (int64_t w = win.w0; w < win.w1; ++w) s += in[h * g.W + w];
    y[o] = win.divisor > 0 ? static_cast<T>(s / win.divisor) : T(0);
  }
}

template <class T>
__global__ void avg_pool_backward_kernel(const T* gy, T* gx, Pool2dGeom g, bool cip) {
  const int64_t total = g.N * g.C * g.H * g.W;
  EVIT_GRID_STRIDE(i, total) {
    const int64_t w = i % g.W, h = (i / g.W) % g.H, p = i / (g.W * g.H);
    const T* out = gy + p * g.OH * g.OW;
    int64_t oh0, oh1, ow0, ow1;
    covering(h, g.kh, g.sh, g.ph, g.OH, oh0, oh1);
    covering(w, g.kw, g.sw, g.pw, g.OW, ow0, ow1);
    T acc = T(0);
    for (int64_t oh = oh0; oh <= oh1; ++oh)
      for (int64_t ow = ow0; ow <= ow1; ++ow) {
        const Window win = avg_window(g, oh, ow, cip);
        if (win.divisor <= 0 || h < win.h0 || h >= win.h1 || w < win.w0 || w >= win.w1) continue;
        acc += static_cast<T>(static_cast<Acc>(out[oh * g.OW + ow]) / win.divisor);
      }
    gx[i] = acc;
  }
}

template <class T>
__global__ void max_pool_forward_kernel(const T* x, T* y, int64_t* idx, Pool2dGeom g) {
  const int64_t total = g.N * g.C * g.OH * g.OW;
  EVIT_GRID_STRIDE(o, total) {
    const int64_t ow = o % g.OW, oh = (o / g.OW) % g.OH, p = o / (g.OW * g.OH);
    const T* in = x + p * g.H * g.W;
    const int64_t hs = oh * g.sh - g.ph, ws = ow * g.sw - g.pw;
    const int64_t h0 = imax(hs, 0), h1 = imin(hs + g.kh, g.H);
    const int64_t w0 = imax(ws, 0), w1 = imin(ws + g.kw, g.W);
    T best = -cuda_infinity<T>();
    int64_t bi = h0 * g.W + w0;
    for (int64_t h = h0; h < h1; ++h)
      for (int64_t w = w0; w < w1; ++w) {
        const T v = in[h * g.W + w];
        if (v > best || v != v) {  // NaN wins (the CPU's std::isnan)
          best = v;
          bi = h * g.W + w;
        }
      }
    y[o] = best;
    idx[o] = bi;
  }
}

template <class T>
__global__ void max_pool_backward_kernel(const T* gy, const int64_t* idx, T* gx, Pool2dGeom g) {
  const int64_t total = g.N * g.C * g.H * g.W;
  EVIT_GRID_STRIDE(i, total) {
    const int64_t w = i % g.W, h = (i / g.W) % g.H, p = i / (g.W * g.H);
    const int64_t O = g.OH * g.OW;
    const int64_t self = h * g.W + w;
    // The argmax of a window lies inside it, so only windows covering (h, w) can select it.
    int64_t oh0, oh1, ow0, ow1;
    covering(h, g.kh, g.sh, g.ph, g.OH, oh0, oh1);
    covering(w, g.kw, g.sw, g.pw, g.OW, ow0, ow1);
    T acc = T(0);
    for (int64_t oh = oh0; oh <= oh1; ++oh)
      for (int64_t ow = ow0; ow <= ow1; ++ow) {
        const int64_t o = p * O + oh * g.OW + ow;
        if (idx[o] == self) acc += gy[o];
      }
    gx[i] = acc;
  }
}

__device__ __forceinline__ int64_t bin_start(int64_t i, int64_t in, int64_t out) {
  return (i * in) / out;
}
__device__ __forceinline__ int64_t bin_end(int64_t i, int64_t in, int64_t out) {
  return ((i + 1) * in + out - 1) / out;
}

template <class T>
__global__ void adaptive_forward_kernel(const T* x, T* y, int64_t planes, int64_t H, int64_t W,
                                        int64_t OH, int64_t OW) {
  EVIT_GRID_STRIDE(o, planes * OH * OW) {
    const int64_t ow = o % OW, oh = (o / OW) % OH, p = o / (OW * OH);
    const T* in = x + p * H * W;
    const int64_t h0 = bin_start(oh, H, OH), h1 = bin_end(oh, H, OH);
    const int64_t w0 = bin_start(ow, W, OW), w1 = bin_end(ow, W, OW);
    Acc s = 0;
    for (int64_t h = h0; h < h1; ++h)
      for (int64_t w = w0; w < w1; ++w) s += in[h * W + w];
    y[o] = static_cast<T>(s / static_cast<Acc>((h1 - h0) * (w1 - w0)));
  }
}

// Bins along one axis that contain input i: o in [lo, hi]. bin_start(o) <= i  <=>  o*in <
// (i+1)*out, and bin_end(o) > i  <=>  o >= floor(i*out/in); one bin on each side is added and
// membership re-checked exactly, so integer rounding cannot drop a bin.
__device__ __forceinline__ void bins_of(int64_t i, int64_t in, int64_t out, int64_t& lo,
                                        int64_t& hi) {
  lo = imax(0, (i * out) / in - 1);
  hi = imin(out - 1, ((i + 1) * out + in - 1) / in);
}

template <class T>
__global__ void adaptive_backward_kernel(const T* gy, T* gx, int64_t planes, int64_t H, int64_t W,
                                         int64_t OH, int64_t OW) {
  EVIT_GRID_STRIDE(i, planes * H * W) {
    const int64_t w = i % W, h = (i / W) % H, p = i / (W * H);
    const T* out = gy + p * OH * OW;
    int64_t oh0, oh1, ow0, ow1;
    bins_of(h, H, OH, oh0, oh1);
    bins_of(w, W, OW, ow0, ow1);
    T acc = T(0);
    for (int64_t oh = oh0; oh <= oh1; ++oh) {
      const int64_t h0 = bin_start(oh, H, OH), h1 = bin_end(oh, H, OH);
      if (h < h0 || h >= h1) continue;
      for (int64_t ow = ow0; ow <= ow1; ++ow) {
        const int64_t w0 = bin_start(ow, W, OW), w1 = bin_end(ow, W, OW);
        if (w < w0 || w >= w1) continue;
        acc += static_cast<T>(static_cast<Acc>(out[oh * OW + ow]) /
                              static_cast<Acc>((h1 - h0) * (w1 - w0)));
      }
    }
    gx[i] = acc;
  }
}

void avg_pool2d_launch(const Tensor& x, const Tensor& y, Pool2dGeom g, bool cip) {
  dispatch_floating(x.dtype(), "avg_pool2d (CUDA)", [&](auto tag) {
    using T = decltype(tag);
    cuda::launch_elementwise("avg_pool_forward_kernel", x, y.numel(), avg_pool_forward_kernel<T>,
                             x.data_ptr<T>(), y.data_ptr<T>(), g, cip);
  });
}

void avg_pool2d_backward_launch(const Tensor& gy, const Tensor& gx, Pool2dGeom g, bool cip) {
  dispatch_floating(gy.dtype(), "avg_pool2d backward (CUDA)", [&](auto tag) {
    using T = decltype(tag);
    cuda::launch_elementwise("avg_pool_backward_kernel", gy, gx.numel(), avg_pool_backward_kernel<T>,
                             gy.data_ptr<T>(), gx.data_ptr<T>(), g, cip);
  });
}

void max_pool2d_launch(const Tensor& x, const Tensor& y, const Tensor& idx, Pool2dGeom g) {
  dispatch_floating(x.dtype(), "max_pool2d (CUDA)", [&](auto tag) {
    using T = decltype(tag);
    cuda::launch_elementwise("max_pool_forward_kernel", x, y.numel(), max_pool_forward_kernel<T>,
                             x.data_ptr<T>(), y.data_ptr<T>(), idx.data_ptr<int64_t>(), g);
  });
}

void max_pool2d_backward_launch(const Tensor& gy, const Tensor& idx, const Tensor& gx,
                                Pool2dGeom g) {
  dispatch_floating(gy.dtype(), "max_pool2d backward (CUDA)", [&](auto tag) {
    using T = decltype(tag);
    cuda::launch_elementwise("max_pool_backward_kernel", gy, gx.numel(), max_pool_backward_kernel<T>,
                             gy.data_ptr<T>(), idx.data_ptr<int64_t>(), gx.data_ptr<T>(), g);
  });
}

void adaptive_launch(const Tensor& x, const Tensor& y, int64_t planes, int64_t H, int64_t W,
                     int64_t OH, int64_t OW) {
  dispatch_floating(x.dtype(), "adaptive_avg_pool2d (CUDA)", [&](auto tag) {
    using T = decltype(tag);
    cuda::launch_elementwise("adaptive_forward_kernel", x, y.numel(), adaptive_forward_kernel<T>,
                             x.data_ptr<T>(), y.data_ptr<T>(), planes, H, W, OH, OW);
  });
}

void adaptive_backward_launch(const Tensor& gy, const Tensor& gx, int64_t planes, int64_t H,
                              int64_t W, int64_t OH, int64_t OW) {
  dispatch_floating(gy.dtype(), "adaptive_avg_pool2d backward (CUDA)", [&](auto tag) {
    using T = decltype(tag);
    cuda::launch_elementwise("adaptive_backward_kernel", gy, gx.numel(), adaptive_backward_kernel<T>,
                             gy.data_ptr<T>(), gx.data_ptr<T>(), planes, H, W, OH, OW);
  });
}

}  // namespace

EVIT_REGISTER_CUDA_KERNEL(avg_pool2d_cuda, avg_pool2d_launch);
EVIT_REGISTER_CUDA_KERNEL(avg_pool2d_backward_cuda, avg_pool2d_backward_launch);
EVIT_REGISTER_CUDA_KERNEL(max_pool2d_cuda, max_pool2d_launch);
EVIT_REGISTER_CUDA_KERNEL(max_pool2d_backward_cuda, max_pool2d_backward_launch);
EVIT_REGISTER_CUDA_KERNEL(adaptive_avg_pool2d_cuda, adaptive_launch);
EVIT_REGISTER_CUDA_KERNEL(adaptive_avg_pool2d_backward_cuda, adaptive_backward_launch);

}  // namespace evit

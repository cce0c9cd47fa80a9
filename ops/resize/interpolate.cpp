// interpolate: nearest / bilinear / bicubic resizing of [N, C, H, W], forward and backward.
//
// Both interpolating modes are separable: y[oh][ow] = sum_i wy[oh][i] * (sum_j wx[ow][j] *
// x[iy[oh][i]][ix[ow][j]]). The kernel first interpolates every input row horizontally into a
// [H, OW] buffer, then combines rows vertically (contiguous, vectorizable over ow). That is the
// same arithmetic, in the same order, as evaluating the nested sum per output pixel, at a
// fraction of the cost. The backward is the exact adjoint (vertical scatter, then horizontal
// scatter). Work is split over (n, c) planes, so results do not depend on the thread count.
#include <cmath>
#include <memory>
#include <utility>

#include "autograd/node.h"
#include "core/parallel.h"
#include "ops/resize.h"
#include "ops/resize/cuda_slots.h"

namespace evit {

InterpolateMode interpolate_mode(const std::string& name) {
  if (name == "nearest") return InterpolateMode::nearest;
  if (name == "bilinear") return InterpolateMode::bilinear;
  if (name == "bicubic") return InterpolateMode::bicubic;
  EVIT_THROW("interpolate: unknown mode '", name, "' (expected nearest, bilinear or bicubic)");
}

const char* interpolate_mode_name(InterpolateMode mode) {
  switch (mode) {
    case InterpolateMode::nearest: return "nearest";
    case InterpolateMode::bilinear: return "bilinear";
    case InterpolateMode::bicubic: return "bicubic";
  }
  return "?";
}

namespace {

// Taps of one axis: for output index o, taps idx[o*K + k] with weights w[o*K + k].
template <class T>
struct AxisTaps {
  int K = 1;
  std::vector<int64_t> idx;
  std::vector<T> w;
};

// PyTorch's compute_scales_value / area_pixel_compute_scale.
template <class T>
T axis_scale(int64_t in, int64_t out, bool align_corners, double scale_factor) {
  if (align_corners) return out > 1 ? static_cast<T>(in - 1) / static_cast<T>(out - 1) : T(0);
  if (scale_factor > 0) return static_cast<T>(1.0 / scale_factor);
  return static_cast<T>(in) / static_cast<T>(out);
}

template <class T>
T cubic1(T x, T A) {  // |x| <= 1
  return ((A + 2) * x - (A + 3)) * x * x + 1;
}
template <class T>
T cubic2(T x, T A) {  // 1 < |x| < 2
  return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
}

// scale_factor <= 0 means "none given".
template <class T>
AxisTaps<T> axis_taps(int64_t in, int64_t out, double scale_factor, InterpolateMode mode,
                      bool align_corners) {
  AxisTaps<T> t;
  if (mode == InterpolateMode::nearest) {
    t.K = 1;
    t.idx.resize(out);
    t.w.assign(out, T(1));
    // Legacy 'nearest' index, in f32 arithmetic for every dtype (as PyTorch).
    const float scale = scale_factor > 0 ? static_cast<float>(1.0 / scale_factor)
                                         : static_cast<float>(in) / static_cast<float>(out);
    for (int64_t o = 0; o < out; ++o) {
      if (out == in) {
        t.idx[o] = o;
      } else if (out == 2 * in) {
        t.idx[o] = o >> 1;
      } else {
        t.idx[o] = std::min(static_cast<int64_t>(std::floor(static_cast<float>(o) * scale)),
                            in - 1);
      }
    }
    return t;
  }
  if (mode == InterpolateMode::bilinear && in == out) {
    // PyTorch's separable bilinear kernel leaves an axis whose size does not change untouched,
    // even when a scale factor != 1 was given (bicubic does not).
    t.K = 1;
    t.idx.resize(out);
    t.w.assign(out, T(1));
    for (int64_t o = 0; o < out; ++o) t.idx[o] = o;
    return t;
  }
  const T scale = axis_scale<T>(in, out, align_corners, scale_factor);
  if (mode == InterpolateMode::bilinear) {
    t.K = 2;
    t.idx.resize(2 * out);
    t.w.resize(2 * out);
    for (int64_t o = 0; o < out; ++o) {
      T src = align_corners ? scale * static_cast<T>(o)
                            : scale * (static_cast<T>(o) + T(0.5)) - T(0.5);
      if (src < 0) src = 0;
      const int64_t i0 = std::min(static_cast<int64_t>(std::floor(src)), in - 1);
      const T lambda = std::min(std::max(src - static_cast<T>(i0), T(0)), T(1));
      t.idx[2 * o] = i0;
      t.idx[2 * o + 1] = i0 + (i0 < in - 1 ? 1 : 0);
      t.w[2 * o] = T(1) - lambda;
      t.w[2 * o + 1] = lambda;
    }
    return t;
  }
  // bicubic
  t.K = 4;
  t.idx.resize(4 * out);
  t.w.resize(4 * out);
  const T A = T(-0.75);
  for (int64_t o = 0; o < out; ++o) {
    const T src = align_corners ? scale * static_cast<T>(o)
                                : scale * (static_cast<T>(o) + T(0.5)) - T(0.5);
    const T fl = std::floor(src);
    const int64_t i0 = static_cast<int64_t>(fl);
    const T x = src - fl;
    t.w[4 * o + 0] = cubic2<T>(x + 1, A);
    t.w[4 * o + 1] = cubic1<T>(x, A);
    t.w[4 * o + 2] = cubic1<T>(1 - x, A);
    t.w[4 * o + 3] = cubic2<T>(2 - x, A);
    for (int k = 0; k < 4; ++k)
      t.idx[4 * o + k] = std::min(std::max<int64_t>(i0 - 1 + k, 0), in - 1);
  }
  return t;
}

struct Plan {
  int64_t N, C, H, W, OH, OW;
  double sh, sw;  // scale factors given (<= 0: none)
  InterpolateMode mode;
  bool align_corners;
  int64_t grain() const {
    return std::max<int64_t>(1, kPointwiseGrain / std::max<int64_t>(OH * OW, 1));
  }
};

template <class T>
void forward_kernel(const Plan& p, const T* xp, T* yp) {
  const AxisTaps<T> ty = axis_taps<T>(p.H, p.OH, p.sh, p.mode, p.align_corners);
  const AxisTaps<T> tx = axis_taps<T>(p.W, p.OW, p.sw, p.mode, p.align_corners);
  const int64_t H = p.H, W = p.W, OH = p.OH, OW = p.OW;
  parallel_for(0, p.N * p.C, p.grain(), [&](int64_t p0, int64_t p1) {
    if (p.mode == InterpolateMode::nearest) {
      for (int64_t q = p0; q < p1; ++q) {
        const T* in = xp + q * H * W;
        T* out = yp + q * OH * OW;
        for (int64_t oh = 0; oh < OH; ++oh) {
          const T* row = in + ty.idx[oh] * W;
          T* orow = out + oh * OW;
          for (int64_t ow = 0; ow < OW; ++ow) orow[ow] = row[tx.idx[ow]];
        }
      }
      return;
    }
    const int KX = tx.K, KY = ty.K;
    std::vector<T> tmp(H * OW);
    for (int64_t q = p0; q < p1; ++q) {
      const T* in = xp + q * H * W;
      T* out = yp + q * OH * OW;
      for (int64_t h = 0; h < H; ++h) {  // horizontal pass
        const T* row = in + h * W;
        T* trow = tmp.data() + h * OW;
        for (int64_t ow = 0; ow < OW; ++ow) {
          const int64_t* ix = tx.idx.data() + ow * KX;
          const T* wx = tx.w.data() + ow * KX;
          T s = wx[0] * row[ix[0]];
          for (int k = 1; k < KX; ++k) s += wx[k] * row[ix[k]];
          trow[ow] = s;
        }
      }
      for (int64_t oh = 0; oh < OH; ++oh) {  // vertical pass
        const int64_t* iy = ty.idx.data() + oh * KY;
        const T* wy = ty.w.data() + oh * KY;
        T* __restrict orow = out + oh * OW;
        {
          const T* __restrict r = tmp.data() + iy[0] * OW;
          const T w0 = wy[0];
          for (int64_t ow = 0; ow < OW; ++ow) orow[ow] = w0 * r[ow];
        }
        for (int k = 1; k < KY; ++k) {
          const T* __restrict r = tmp.data() + iy[k] * OW;
          const T wk = wy[k];
          for (int64_t ow = 0; ow < OW; ++ow) orow[ow] += wk * r[ow];
        }
      }
    }
  });
}

template <class T>
void backward_kernel(const Plan& p, const T* gp, T* gxp) {
  const AxisTaps<T> ty = axis_taps<T>(p.H, p.OH, p.sh, p.mode, p.align_corners);
  const AxisTaps<T> tx = axis_taps<T>(p.W, p.OW, p.sw, p.mode, p.align_corners);
  const int64_t H = p.H, W = p.W, OH = p.OH, OW = p.OW;
  parallel_for(0, p.N * p.C, p.grain(), [&](int64_t p0, int64_t p1) {
    if (p.mode == InterpolateMode::nearest) {
      for (int64_t q = p0; q < p1; ++q) {
        T* in = gxp + q * H * W;
        const T* out = gp + q * OH * OW;
        for (int64_t oh = 0; oh < OH; ++oh) {
          T* row = in + ty.idx[oh] * W;
          const T* orow = out + oh * OW;
          for (int64_t ow = 0; ow < OW; ++ow) row[tx.idx[ow]] += orow[ow];
        }
      }
      return;
    }
    const int KX = tx.K, KY = ty.K;
    std::vector<T> tmp(H * OW);
    for (int64_t q = p0; q < p1; ++q) {
      T* in = gxp + q * H * W;
      const T* out = gp + q * OH * OW;
      std::fill(tmp.begin(), tmp.end(), T(0));
      for (int64_t oh = 0; oh < OH; ++oh) {  // adjoint of the vertical pass
        const int64_t* iy = ty.idx.data() + oh * KY;
        const T* wy = ty.w.data() + oh * KY;
        const T* __restrict orow = out + oh * OW;
        for (int k = 0; k < KY; ++k) {
          T* __restrict r = tmp.data() + iy[k] * OW;
          const T wk = wy[k];
          for (int64_t ow = 0; ow < OW; ++ow) r[ow] += wk * orow[ow];
        }
      }
      for (int64_t h = 0; h < H; ++h) {  // adjoint of the horizontal pass
        T* row = in + h * W;
        const T* trow = tmp.data() + h * OW;
        for (int64_t ow = 0; ow < OW; ++ow) {
          const int64_t* ix = tx.idx.data() + ow * KX;
          const T* wx = tx.w.data() + ow * KX;
          const T v = trow[ow];
          for (int k = 0; k < KX; ++k) row[ix[k]] += wx[k] * v;
        }
      }
    }
  });
}

// The taps of one axis on `dev`, with the inverse map for the backward gather: the entries
// e = o*K + k are bucketed by the input index they read, in increasing e (= (o, k)) order.
template <class T>
InterpAxisCuda upload_taps(const AxisTaps<T>& t, int64_t in, int64_t out, Device dev) {
  const int64_t n = static_cast<int64_t>(t.idx.size());
  std::vector<int64_t> off(in + 1, 0), inv(n);
  for (int64_t e = 0; e < n; ++e) ++off[t.idx[e] + 1];
  for (int64_t i = 0; i < in; ++i) off[i + 1] += off[i];
  std::vector<int64_t> next(off.begin(), off.end() - 1);
  for (int64_t e = 0; e < n; ++e) inv[next[t.idx[e]]++] = e;
  InterpAxisCuda a;
  a.K = t.K;
  a.in = in;
  a.out = out;
  a.idx = from_vector(t.idx, {n}).to(dev);
  a.w = from_vector(t.w, {n}).to(dev);
  a.inv_off = from_vector(off, {in + 1}).to(dev);
  a.inv = from_vector(inv, {n}).to(dev);
  return a;
}

// Both axes' taps for a CUDA run, computed by the CPU code above (identical coefficients).
using CudaTaps = std::pair<InterpAxisCuda, InterpAxisCuda>;  // (y axis, x axis)
std::shared_ptr<CudaTaps> cuda_taps(const Plan& p, DType dt, Device dev) {
  return dispatch_floating(dt, "interpolate", [&](auto tag) {
    using T = decltype(tag);
    return std::make_shared<CudaTaps>(
        upload_taps(axis_taps<T>(p.H, p.OH, p.sh, p.mode, p.align_corners), p.H, p.OH, dev),
        upload_taps(axis_taps<T>(p.W, p.OW, p.sw, p.mode, p.align_corners), p.W, p.OW, dev));
  });
}

}  // namespace

Tensor interpolate(const Tensor& x, const std::vector<int64_t>& size,
                   const std::vector<double>& scale_factor, InterpolateMode mode,
                   bool align_corners) {
  const char* op = "interpolate";
  EVIT_CHECK(x.dim() == 4, op, ": input must be 4-D [N,C,H,W], got ", x.desc());
  EVIT_CHECK(is_floating(x.dtype()), op, ": expected a floating dtype (f32 or f64), got ",
             x.desc());
  EVIT_CHECK(size.empty() != scale_factor.empty(), op,
             ": give exactly one of size and scale_factor");
  EVIT_CHECK(!(mode == InterpolateMode::nearest && align_corners), op,
             ": align_corners can only be set with the interpolating modes (bilinear, bicubic)");
  Plan p{};
  p.N = x.size(0), p.C = x.size(1), p.H = x.size(2), p.W = x.size(3);
  p.mode = mode;
  p.align_corners = align_corners;
  p.sh = p.sw = -1;
  EVIT_CHECK(p.H >= 1 && p.W >= 1, op, ": input has an empty plane: ", x.desc());
  if (!size.empty()) {
    EVIT_CHECK(size.size() <= 2, op, ": size must have 1 or 2 values, got ", size.size());
    p.OH = size[0];
    p.OW = size.size() == 2 ? size[1] : size[0];
    EVIT_CHECK(p.OH >= 1 && p.OW >= 1, op, ": output size must be positive, got ", p.OH, "x",
               p.OW);
  } else {
    EVIT_CHECK(scale_factor.size() <= 2, op, ": scale_factor must have 1 or 2 values, got ",
               scale_factor.size());
    p.sh = scale_factor[0];
    p.sw = scale_factor.size() == 2 ? scale_factor[1] : scale_factor[0];
    EVIT_CHECK(p.sh > 0 && p.sw > 0 && std::isfinite(p.sh) && std::isfinite(p.sw), op,
               ": scale_factor must be positive, got ", p.sh, "x", p.sw);
    p.OH = static_cast<int64_t>(std::floor(static_cast<double>(p.H) * p.sh));
    p.OW = static_cast<int64_t>(std::floor(static_cast<double>(p.W) * p.sw));
    EVIT_CHECK(p.OH >= 1 && p.OW >= 1, op, ": scale_factor ", p.sh, "x", p.sw, " gives an empty ",
               "output ", p.OH, "x", p.OW, " for ", x.desc());
  }
  const Tensor xc = x.contiguous();
  Tensor y = empty({p.N, p.C, p.OH, p.OW}, {x.dtype(), x.device()});
  std::shared_ptr<CudaTaps> taps;  // kept for the backward of a CUDA run
  if (x.device().is_cuda()) {
    taps = cuda_taps(p, x.dtype(), x.device());
    interpolate_forward_cuda(xc, y, taps->first, taps->second, mode == InterpolateMode::nearest);
  } else {
    dispatch_floating(x.dtype(), op, [&](auto tag) {
      using T = decltype(tag);
      forward_kernel<T>(p, xc.data_ptr<T>(), y.data_ptr<T>());
    });
  }
  const char* name = mode == InterpolateMode::nearest    ? "UpsampleNearest2dBackward"
                     : mode == InterpolateMode::bilinear ? "UpsampleBilinear2dBackward"
                                                         : "UpsampleBicubic2dBackward";
  autograd::record(name, {x}, {y}, {},
                   [p, taps, dt = x.dtype()](const BackwardContext& ctx) -> std::vector<Tensor> {
                     const Tensor g = ctx.grad_output(0).contiguous();
                     if (g.device().is_cuda()) {  // a gather: writes every element
                       Tensor gx = empty({p.N, p.C, p.H, p.W}, {dt, g.device()});
                       interpolate_backward_cuda(g, gx, taps->first, taps->second,
                                                 p.mode == InterpolateMode::nearest);
                       return {gx};
                     }
                     Tensor gx = zeros({p.N, p.C, p.H, p.W}, {dt, g.device()});
                     dispatch_floating(dt, "interpolate backward", [&](auto tag) {
                       using T = decltype(tag);
                       backward_kernel<T>(p, g.data_ptr<T>(), gx.data_ptr<T>());
                     });
                     return {gx};
                   });
  return y;
}

}  // namespace evit

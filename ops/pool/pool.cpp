// avg_pool2d, max_pool2d and adaptive_avg_pool2d: forward and backward.
//
// Every (n, c) plane is independent: forward and backward both parallelise over planes, and the
// backward scatter-adds into its own plane in a fixed order, so results are deterministic.
// Window sums accumulate in f64.
#include <cmath>
#include <limits>
#include <tuple>
#include <utility>

#include "autograd/node.h"
#include "core/parallel.h"
#include "ops/pool.h"
#include "ops/pool/cuda_slots.h"

namespace evit {
namespace {

using Acc = double;

using Geom = Pool2dGeom;  // shared with the CUDA kernels (ops/pool/cuda_slots.h)

// One value for both dims or {h, w}.
std::pair<int64_t, int64_t> pair_arg(const std::vector<int64_t>& v, const char* op,
                                     const char* what) {
  EVIT_CHECK(v.size() == 1 || v.size() == 2, op, ": ", what,
             " must have 1 or 2 values, got ", v.size());
  return {v[0], v.size() == 2 ? v[1] : v[0]};
}

void check_input(const Tensor& x, const char* op) {
  EVIT_CHECK(x.dim() == 4, op, ": input must be 4-D [N,C,H,W], got ", x.desc());
  EVIT_CHECK(is_floating(x.dtype()), op, ": expected a floating dtype (f32 or f64), got ",
             x.desc());
}

// PyTorch's pooling_output_shape (dilation 1).
int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t p, bool ceil_mode) {
  int64_t num = in + 2 * p - k + (ceil_mode ? s - 1 : 0);
  int64_t o = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1;  // floor division
  if (ceil_mode && (o - 1) * s >= in + p) --o;
  return o;
}

Geom pool_geom(const Tensor& x, const std::vector<int64_t>& kernel,
               const std::vector<int64_t>& stride, const std::vector<int64_t>& padding,
               bool ceil_mode, const char* op) {
  check_input(x, op);
  Geom g;
  g.N = x.size(0), g.C = x.size(1), g.H = x.size(2), g.W = x.size(3);
  std::tie(g.kh, g.kw) = pair_arg(kernel, op, "kernel");
  std::tie(g.sh, g.sw) = stride.empty() ? std::make_pair(g.kh, g.kw) : pair_arg(stride, op, "stride");
  std::tie(g.ph, g.pw) = pair_arg(padding, op, "padding");
  EVIT_CHECK(g.kh > 0 && g.kw > 0, op, ": kernel must be positive, got ", g.kh, "x", g.kw);
  EVIT_CHECK(g.sh > 0 && g.sw > 0, op, ": stride must be positive, got ", g.sh, "x", g.sw);
  EVIT_CHECK(g.ph >= 0 && g.pw >= 0, op, ": padding must be >= 0, got ", g.ph, "x", g.pw);
  EVIT_CHECK(g.ph <= g.kh / 2 && g.pw <= g.kw / 2, op, ": padding ", g.ph, "x", g.pw,
             " must be at most half the kernel ", g.kh, "x", g.kw);
  g.OH = out_size(g.H, g.kh, g.sh, g.ph, ceil_mode);
  g.OW = out_size(g.W, g.kw, g.sw, g.pw, ceil_mode);
  EVIT_CHECK(g.OH >= 1 && g.OW >= 1, op, ": output size ", g.OH, "x", g.OW,
             " is too small for input ", x.desc(), " with kernel ", g.kh, "x", g.kw,
             ", stride ", g.sh, "x", g.sw, ", padding ", g.ph, "x", g.pw);
  return g;
}

inline int64_t plane_grain(int64_t work_per_plane) {
  return std::max<int64_t>(1, kPointwiseGrain / std::max<int64_t>(work_per_plane, 1));
}

// The window of output (oh, ow) clipped to the input, and its avg_pool divisor.
struct Window {
  int64_t h0, h1, w0, w1, divisor;
};
inline Window avg_window(const Geom& g, int64_t oh, int64_t ow, bool count_include_pad) {
  int64_t h0 = oh * g.sh - g.ph, w0 = ow * g.sw - g.pw;
  int64_t h1 = std::min(h0 + g.kh, g.H + g.ph), w1 = std::min(w0 + g.kw, g.W + g.pw);
  const int64_t padded = (h1 - h0) * (w1 - w0);
  h0 = std::max<int64_t>(h0, 0), w0 = std::max<int64_t>(w0, 0);
  h1 = std::min(h1, g.H), w1 = std::min(w1, g.W);
  return {h0, h1, w0, w1, count_include_pad ? padded : (h1 - h0) * (w1 - w0)};
}

}  // namespace

// ---------------------------------------------------------------------------------------------
Tensor avg_pool2d(const Tensor& x, const std::vector<int64_t>& kernel,
                  const std::vector<int64_t>& stride, const std::vector<int64_t>& padding,
                  bool ceil_mode, bool count_include_pad) {
  const Geom g = pool_geom(x, kernel, stride, padding, ceil_mode, "avg_pool2d");
  const Tensor xc = x.contiguous();
  Tensor y = empty({g.N, g.C, g.OH, g.OW}, {x.dtype(), x.device()});
  const int64_t grain = plane_grain(g.OH * g.OW * g.kh * g.kw);
  if (x.device().is_cuda()) {
    avg_pool2d_cuda(xc, y, g, count_include_pad);
  } else {
    dispatch_floating(x.dtype(), "avg_pool2d", [&](auto tag) {
      using T = decltype(tag);
      const T* xp = xc.data_ptr<T>();
      T* yp = y.data_ptr<T>();
      parallel_for(0, g.planes(), grain, [&](int64_t p0, int64_t p1) {
        for (int64_t p = p0; p < p1; ++p) {
          const T* in = xp + p * g.H * g.W;
          T* out = yp + p * g.OH * g.OW;
          for (int64_t oh = 0; oh < g.OH; ++oh)
            for (int64_t ow = 0; ow < g.OW; ++ow) {
              const Window win = avg_window(g, oh, ow, count_include_pad);
              Acc s = 0;
              for (int64_t h = win.h0; h < win.h1; ++h)
                for (int64_t w = win.w0; w < win.w1; ++w) s += in[h * g.W + w];
              out[oh * g.OW + ow] = win.divisor > 0 ? static_cast<T>(s / win.divisor) : T(0);
            }
        }
      });
    });
  }
  autograd::record("AvgPool2dBackward", {x}, {y}, {},
                   [g, grain, count_include_pad, dt = x.dtype()](
                       const BackwardContext& ctx) -> std::vector<Tensor> {
                     const Tensor go = ctx.grad_output(0).contiguous();
                     if (go.device().is_cuda()) {  // a gather: writes every element
                       Tensor gx = empty({g.N, g.C, g.H, g.W}, {dt, go.device()});
                       avg_pool2d_backward_cuda(go, gx, g, count_include_pad);
                       return {gx};
                     }
                     Tensor gx = zeros({g.N, g.C, g.H, g.W}, {dt, go.device()});
                     dispatch_floating(dt, "avg_pool2d backward", [&](auto tag) {
                       using T = decltype(tag);
                       const T* gp = go.data_ptr<T>();
                       T* xp = gx.data_ptr<T>();
                       parallel_for(0, g.planes(), grain, [&](int64_t p0, int64_t p1) {
                         for (int64_t p = p0; p < p1; ++p) {
                           T* in = xp + p * g.H * g.W;
                           const T* out = gp + p * g.OH * g.OW;
                           for (int64_t oh = 0; oh < g.OH; ++oh)
                             for (int64_t ow = 0; ow < g.OW; ++ow) {
                               const Window win = avg_window(g, oh, ow, count_include_pad);
                               if (win.divisor <= 0) continue;
                               const T v = static_cast<T>(
                                   static_cast<Acc>(out[oh * g.OW + ow]) / win.divisor);
                               for (int64_t h = win.h0; h < win.h1; ++h)
                                 for (int64_t w = win.w0; w < win.w1; ++w) in[h * g.W + w] += v;
                             }
                         }
                       });
                     });
                     return {gx};
                   });
  return y;
}

// ---------------------------------------------------------------------------------------------
std::pair<Tensor, Tensor> max_pool2d_with_indices(const Tensor& x,
                                                  const std::vector<int64_t>& kernel,
                                                  const std::vector<int64_t>& stride,
                                                  const std::vector<int64_t>& padding,
                                                  bool ceil_mode) {
  const Geom g = pool_geom(x, kernel, stride, padding, ceil_mode, "max_pool2d");
  const Tensor xc = x.contiguous();
  Tensor y = empty({g.N, g.C, g.OH, g.OW}, {x.dtype(), x.device()});
  Tensor idx = empty({g.N, g.C, g.OH, g.OW}, {DType::i64, x.device()});
  const int64_t grain = plane_grain(g.OH * g.OW * g.kh * g.kw);
  if (x.device().is_cuda()) {
    max_pool2d_cuda(xc, y, idx, g);
  } else {
    dispatch_floating(x.dtype(), "max_pool2d", [&](auto tag) {
      using T = decltype(tag);
      const T* xp = xc.data_ptr<T>();
      T* yp = y.data_ptr<T>();
      int64_t* ip = idx.data_ptr<int64_t>();
      parallel_for(0, g.planes(), grain, [&](int64_t p0, int64_t p1) {
        for (int64_t p = p0; p < p1; ++p) {
          const T* in = xp + p * g.H * g.W;
          T* out = yp + p * g.OH * g.OW;
          int64_t* oi = ip + p * g.OH * g.OW;
          for (int64_t oh = 0; oh < g.OH; ++oh) {
            const int64_t hs = oh * g.sh - g.ph;
            const int64_t h0 = std::max<int64_t>(hs, 0), h1 = std::min(hs + g.kh, g.H);
            for (int64_t ow = 0; ow < g.OW; ++ow) {
              const int64_t ws = ow * g.sw - g.pw;
              const int64_t w0 = std::max<int64_t>(ws, 0), w1 = std::min(ws + g.kw, g.W);
              T best = -std::numeric_limits<T>::infinity();
              int64_t bi = h0 * g.W + w0;
              for (int64_t h = h0; h < h1; ++h)
                for (int64_t w = w0; w < w1; ++w) {
                  const T v = in[h * g.W + w];
                  if (v > best || std::isnan(v)) {
                    best = v;
                    bi = h * g.W + w;
                  }
                }
              out[oh * g.OW + ow] = best;
              oi[oh * g.OW + ow] = bi;
            }
          }
        }
      });
    });
  }
  const int64_t bgrain = plane_grain(g.OH * g.OW);
  autograd::record("MaxPool2dBackward", {x}, {y}, {idx},
                   [g, bgrain, dt = x.dtype()](const BackwardContext& ctx) -> std::vector<Tensor> {
                     const Tensor go = ctx.grad_output(0).contiguous();
                     if (go.device().is_cuda()) {  // a gather: writes every element
                       Tensor gx = empty({g.N, g.C, g.H, g.W}, {dt, go.device()});
                       max_pool2d_backward_cuda(go, ctx.saved(0), gx, g);
                       return {gx};
                     }
                     const int64_t* ip = ctx.saved(0).data_ptr<int64_t>();
                     Tensor gx = zeros({g.N, g.C, g.H, g.W}, {dt, go.device()});
                     dispatch_floating(dt, "max_pool2d backward", [&](auto tag) {
                       using T = decltype(tag);
                       const T* gp = go.data_ptr<T>();
                       T* xp = gx.data_ptr<T>();
                       const int64_t O = g.OH * g.OW;
                       parallel_for(0, g.planes(), bgrain, [&](int64_t p0, int64_t p1) {
                         for (int64_t p = p0; p < p1; ++p) {
                           T* in = xp + p * g.H * g.W;
                           for (int64_t o = 0; o < O; ++o) in[ip[p * O + o]] += gp[p * O + o];
                         }
                       });
                     });
                     return {gx};
                   });
  return {y, idx};
}

Tensor max_pool2d(const Tensor& x, const std::vector<int64_t>& kernel,
                  const std::vector<int64_t>& stride, const std::vector<int64_t>& padding,
                  bool ceil_mode) {
  return max_pool2d_with_indices(x, kernel, stride, padding, ceil_mode).first;
}

// ---------------------------------------------------------------------------------------------
namespace {
inline int64_t bin_start(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
inline int64_t bin_end(int64_t i, int64_t in, int64_t out) {
  return ((i + 1) * in + out - 1) / out;
}
}  // namespace

Tensor adaptive_avg_pool2d(const Tensor& x, const std::vector<int64_t>& output_size) {
  const char* op = "adaptive_avg_pool2d";
  check_input(x, op);
  // Plain variables, not a structured binding: the kernel lambda captures them (clang before 16
  // cannot capture bindings).
  const auto output_hw = pair_arg(output_size, op, "output_size");
  const int64_t OH = output_hw.first, OW = output_hw.second;
  EVIT_CHECK(OH >= 1 && OW >= 1, op, ": output size must be positive, got ", OH, "x", OW);
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  EVIT_CHECK(H >= 1 && W >= 1, op, ": input has an empty plane: ", x.desc());
  const Tensor xc = x.contiguous();
  Tensor y = empty({N, C, OH, OW}, {x.dtype(), x.device()});
  const int64_t grain = plane_grain(std::max(H * W, OH * OW));
  if (x.device().is_cuda()) {
    adaptive_avg_pool2d_cuda(xc, y, N * C, H, W, OH, OW);
  } else {
    dispatch_floating(x.dtype(), op, [&](auto tag) {
      using T = decltype(tag);
      const T* xp = xc.data_ptr<T>();
      T* yp = y.data_ptr<T>();
      parallel_for(0, N * C, grain, [&](int64_t p0, int64_t p1) {
        for (int64_t p = p0; p < p1; ++p) {
          const T* in = xp + p * H * W;
          T* out = yp + p * OH * OW;
          for (int64_t oh = 0; oh < OH; ++oh) {
            const int64_t h0 = bin_start(oh, H, OH), h1 = bin_end(oh, H, OH);
            for (int64_t ow = 0; ow < OW; ++ow) {
              const int64_t w0 = bin_start(ow, W, OW), w1 = bin_end(ow, W, OW);
              Acc s = 0;
              for (int64_t h = h0; h < h1; ++h)
                for (int64_t w = w0; w < w1; ++w) s += in[h * W + w];
              out[oh * OW + ow] = static_cast<T>(s / static_cast<Acc>((h1 - h0) * (w1 - w0)));
            }
          }
        }
      });
    });
  }
  autograd::record(
      "AdaptiveAvgPool2dBackward", {x}, {y}, {},
      [N, C, H, W, OH, OW, grain, dt = x.dtype()](const BackwardContext& ctx) -> std::vector<Tensor> {
        const Tensor go = ctx.grad_output(0).contiguous();
        if (go.device().is_cuda()) {  // a gather: writes every element
          Tensor gx = empty({N, C, H, W}, {dt, go.device()});
          adaptive_avg_pool2d_backward_cuda(go, gx, N * C, H, W, OH, OW);
          return {gx};
        }
        Tensor gx = zeros({N, C, H, W}, {dt, go.device()});
        dispatch_floating(dt, "adaptive_avg_pool2d backward", [&](auto tag) {
          using T = decltype(tag);
          const T* gp = go.data_ptr<T>();
          T* xp = gx.data_ptr<T>();
          parallel_for(0, N * C, grain, [&](int64_t p0, int64_t p1) {
            for (int64_t p = p0; p < p1; ++p) {
              T* in = xp + p * H * W;
              const T* out = gp + p * OH * OW;
              for (int64_t oh = 0; oh < OH; ++oh) {
                const int64_t h0 = bin_start(oh, H, OH), h1 = bin_end(oh, H, OH);
                for (int64_t ow = 0; ow < OW; ++ow) {
                  const int64_t w0 = bin_start(ow, W, OW), w1 = bin_end(ow, W, OW);
                  const T v = static_cast<T>(static_cast<Acc>(out[oh * OW + ow]) /
                                             static_cast<Acc>((h1 - h0) * (w1 - w0)));
                  for (int64_t h = h0; h < h1; ++h)
                    for (int64_t w = w0; w < w1; ++w) in[h * W + w] += v;
                }
              }
            }
          });
        });
        return {gx};
      });
  return y;
}

}  // namespace evit

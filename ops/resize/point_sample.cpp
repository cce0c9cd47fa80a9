// point_sample: bilinear values of [N, C, H, W] maps at N×P points given in [0, 1]² — PyTorch's
// grid_sample(x, 2·coords − 1, mode="bilinear", padding_mode="zeros", align_corners=False) on an
// [N, P, 1, 2] grid, the sampler of PointRend-style mask losses (train/sam_mask_loss.h).
//
// A point (u, v) reads the pixel-centre coordinates (u·W − 0.5, v·H − 0.5); each of its four
// neighbours outside the map contributes zero. The backward scatters each point's gradient into
// the four neighbours; work is split over (n, c) planes and each plane adds its points in order,
// so results do not depend on the thread count.
#include <cmath>

#include "autograd/node.h"
#include "core/parallel.h"
#include "ops/resize.h"
#include "ops/resize/cuda_slots.h"
#include "ops/resize/point_sample_taps.h"

namespace evit {
namespace {

using point_sample_detail::Taps;
using point_sample_detail::taps_of;

struct Plan {
  int64_t N, C, H, W, P;
  int64_t grain() const { return std::max<int64_t>(1, kPointwiseGrain / std::max<int64_t>(P * 4, 1)); }
};

template <class T>
void forward_kernel(const Plan& p, const T* x, const T* coords, T* y) {
  parallel_for(0, p.N * p.C, p.grain(), [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t n = q / p.C;
      const T* plane = x + q * p.H * p.W;
      const T* c = coords + n * p.P * 2;
      T* out = y + q * p.P;
      for (int64_t i = 0; i < p.P; ++i) {
        const Taps<T> t = taps_of<T>(c[2 * i], c[2 * i + 1], p.H, p.W);
        T acc = 0;
        for (int k = 0; k < 4; ++k)
          if (t.idx[k] >= 0) acc += plane[t.idx[k]] * t.w[k];
        out[i] = acc;
      }
    }
  });
}

template <class T>
void backward_kernel(const Plan& p, const T* g, const T* coords, T* gx) {
  parallel_for(0, p.N * p.C, p.grain(), [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t n = q / p.C;
      T* plane = gx + q * p.H * p.W;
      const T* c = coords + n * p.P * 2;
      const T* gy = g + q * p.P;
      for (int64_t i = 0; i < p.P; ++i) {
        const Taps<T> t = taps_of<T>(c[2 * i], c[2 * i + 1], p.H, p.W);
        for (int k = 0; k < 4; ++k)
          if (t.idx[k] >= 0) plane[t.idx[k]] += t.w[k] * gy[i];
      }
    }
  });
}

}  // namespace

Tensor point_sample(const Tensor& x, const Tensor& coords) {
  const char* op = "point_sample";
  EVIT_CHECK(x.dim() == 4, op, ": input must be 4-D [N,C,H,W], got ", x.desc());
  EVIT_CHECK(is_floating(x.dtype()), op, ": expected a floating input (f32 or f64), got ", x.desc());
  EVIT_CHECK(coords.dim() == 3 && coords.size(2) == 2 && coords.size(0) == x.size(0), op,
             ": coords must be [N, P, 2] with N = ", x.size(0), " (the input's batch), got ", coords.desc());
  EVIT_CHECK(coords.dtype() == x.dtype() && coords.device() == x.device(), op,
             ": coords must have the input's dtype and device: input ", x.desc(), ", coords ", coords.desc());
  EVIT_CHECK(!coords.requires_grad(), op, ": coords are sampling positions and take no gradient; detach them");
  EVIT_CHECK(x.size(2) >= 1 && x.size(3) >= 1, op, ": input has an empty plane: ", x.desc());
  const Plan p{x.size(0), x.size(1), x.size(2), x.size(3), coords.size(1)};
  const Tensor xc = x.contiguous(), cc = coords.contiguous();
  Tensor y = empty({p.N, p.C, p.P}, {x.dtype(), x.device()});
  if (x.device().is_cuda()) {
    point_sample_forward_cuda(xc, cc, y);
  } else {
    dispatch_floating(x.dtype(), op, [&](auto tag) {
      using T = decltype(tag);
      forward_kernel<T>(p, xc.data_ptr<T>(), cc.data_ptr<T>(), y.data_ptr<T>());
    });
  }
  autograd::record("PointSampleBackward", {x}, {y}, {cc},
                   [p, dt = x.dtype()](const BackwardContext& ctx) -> std::vector<Tensor> {
                     const Tensor g = ctx.grad_output(0).contiguous();
                     const Tensor cc = ctx.saved(0);
                     Tensor gx = zeros({p.N, p.C, p.H, p.W}, {dt, g.device()});
                     if (g.device().is_cuda()) {
                       point_sample_backward_cuda(g, cc, gx);
                       return {gx};
                     }
                     dispatch_floating(dt, "point_sample backward", [&](auto tag) {
                       using T = decltype(tag);
                       backward_kernel<T>(p, g.data_ptr<T>(), cc.data_ptr<T>(), gx.data_ptr<T>());
                     });
                     return {gx};
                   });
  return y;
}

}  // namespace evit

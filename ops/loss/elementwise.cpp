// Elementwise losses: binary_cross_entropy_with_logits, mse_loss, l1_loss, smooth_l1_loss.
//
// Each loss is a functor giving the per-element loss and its derivatives; one driver handles
// shapes, reductions (f64 partial sums over fixed chunks, added in order) and the backward
// (gradient of the per-element loss times the incoming gradient, 1/n for mean).
#include <algorithm>
#include <cmath>

#include "autograd/node.h"
#include "core/parallel.h"
#include "ops/loss.h"
#include "ops/loss/common.h"
#include "ops/loss/cuda_slots.h"
#include "ops/loss/functors.h"
#include "ops/shape.h"

namespace evit {
namespace {

using loss_detail::chunked_sum;
using namespace loss_functors;

// The smooth-L1 threshold carried to the CUDA kernel (unused by the other losses).
template <class Op> double beta_of(const Op&) { return 0.0; }
double beta_of(const SmoothL1Op& op) { return op.beta; }

// x, target same shape (contiguous); pw: pos_weight expanded to x's shape (contiguous) or
// undefined.
template <class Op>
Tensor elementwise_loss(const Tensor& x_in, const Tensor& t_in, const Tensor& pw_in,
                        Reduction red, Op op) {
  EVIT_CHECK(x_in.device() == t_in.device(), Op::name,
             ": input and target must be on one device, got input on ", x_in.device().str(),
             " and target on ", t_in.device().str());
  EVIT_CHECK(x_in.sizes() == t_in.sizes(), Op::name,
             ": input and target must have the same shape, got input ", x_in.desc(),
             " and target ", t_in.desc());
  EVIT_CHECK(x_in.dtype() == t_in.dtype(), Op::name, ": dtypes differ: input ", x_in.desc(),
             ", target ", t_in.desc());
  Tensor x = x_in.contiguous(), t = t_in.contiguous();
  Tensor pw;
  if (pw_in.defined()) {
    EVIT_CHECK(pw_in.dtype() == x.dtype(), Op::name, ": pos_weight dtype differs: pos_weight ",
               pw_in.desc(), ", input ", x.desc());
    EVIT_CHECK(pw_in.device() == x.device(), Op::name, ": pos_weight is on ",
               pw_in.device().str(), ", input on ", x.device().str());
    // broadcast_shapes names both shapes when pos_weight does not broadcast to the input.
    Shape b = broadcast_shapes(x.sizes(), pw_in.sizes(), Op::name);
    EVIT_CHECK(b == x.sizes(), Op::name, ": pos_weight ", pw_in.desc(),
               " does not broadcast to the input ", x.desc());
    pw = expand(pw_in.detach(), x.sizes()).contiguous();
  }
  const int64_t n = x.numel();
  Tensor out = red == Reduction::none ? empty(x.sizes(), {x.dtype(), x.device()})
                                      : empty({}, {x.dtype(), x.device()});
  if (x.device().is_cuda())
    elementwise_loss_forward_cuda(Op::kind, beta_of(op), x, t, pw, red, out);
  else dispatch_floating(x.dtype(), Op::name, [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data_ptr<T>();
    const T* tp = t.data_ptr<T>();
    const T* pp = pw.data_ptr_or_null<T>();
    if (red == Reduction::none) {
      T* o = out.data_ptr<T>();
      parallel_for(0, n, kPointwiseGrain, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) o[i] = static_cast<T>(op.loss(xp[i], tp[i], pp ? pp[i] : 1.0));
      });
    } else {
      double s = chunked_sum(n, [&](int64_t i) { return op.loss(xp[i], tp[i], pp ? pp[i] : 1.0); });
      if (red == Reduction::mean) s /= static_cast<double>(n);
      out.data_ptr<T>()[0] = static_cast<T>(s);
    }
  });
  autograd::record(
      Op::backward_name, {x_in, t_in, pw_in}, {out}, {x, t, pw},
      [op, red, n](const BackwardContext& ctx) -> std::vector<Tensor> {
        const Tensor &x = ctx.saved(0), &t = ctx.saved(1), &pw = ctx.saved(2);
        Tensor g = ctx.grad_output(0).contiguous();
        Tensor gx, gt, gp;
        if (ctx.needs_input_grad(0)) gx = empty(x.sizes(), {x.dtype(), x.device()});
        if (ctx.needs_input_grad(1)) gt = empty(x.sizes(), {x.dtype(), x.device()});
        if (ctx.needs_input_grad(2)) gp = empty(x.sizes(), {x.dtype(), x.device()});
        if (x.device().is_cuda()) {
          elementwise_loss_backward_cuda(Op::kind, beta_of(op), x, t, pw, g, red, gx, gt, gp);
          return std::vector<Tensor>{gx, gt, gp};  // the engine sums gp back to pos_weight's shape
        }
        dispatch_floating(x.dtype(), Op::backward_name, [&](auto tag) {
          using T = decltype(tag);
          const T* xp = x.data_ptr<T>();
          const T* tp = t.data_ptr<T>();
          const T* pp = pw.data_ptr_or_null<T>();
          const T* gp_in = g.data_ptr<T>();
          T* ox = gx.data_ptr_or_null<T>();
          T* ot = gt.data_ptr_or_null<T>();
          T* op_ = gp.data_ptr_or_null<T>();
          const double scale = red == Reduction::mean ? 1.0 / static_cast<double>(n) : 1.0;
          parallel_for(0, n, kPointwiseGrain, [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) {
              const double gv = scale * (red == Reduction::none ? gp_in[i] : gp_in[0]);
              const Grads d = op.grads(xp[i], tp[i], pp ? pp[i] : 1.0);
              if (ox) ox[i] = static_cast<T>(gv * d.dx);
              if (ot) ot[i] = static_cast<T>(gv * d.dt);
              if (op_) op_[i] = static_cast<T>(gv * d.dpw);
            }
          });
        });
        return {gx, gt, gp};  // the engine sums gp back to pos_weight's shape
      });
  return out;
}

}  // namespace

Tensor binary_cross_entropy_with_logits(const Tensor& x, const Tensor& target,
                                        const Tensor& pos_weight, Reduction reduction) {
  return elementwise_loss(x, target, pos_weight, reduction, BceOp{});
}

Tensor mse_loss(const Tensor& x, const Tensor& target, Reduction reduction) {
  return elementwise_loss(x, target, Tensor(), reduction, MseOp{});
}

Tensor l1_loss(const Tensor& x, const Tensor& target, Reduction reduction) {
  return elementwise_loss(x, target, Tensor(), reduction, L1Op{});
}

Tensor smooth_l1_loss(const Tensor& x, const Tensor& target, Reduction reduction, double beta) {
  EVIT_CHECK(beta >= 0, "smooth_l1_loss: beta must be >= 0, got ", beta);
  return elementwise_loss(x, target, Tensor(), reduction, SmoothL1Op{beta});
}

}  // namespace evit

// cross_entropy with class-index or probability targets, fused with log_softmax.
//
// Logits are seen as [N, C, inner] (inner = product of the spatial dims); a "position" is one
// (n, spatial) pair whose C logits are strided by `inner`. Forward computes log_softmax per
// position (kept for backward, as PyTorch does) and the per-position loss terms; partial sums
// are taken over fixed chunks of positions and added in chunk order. Backward uses
//   d/dx_c [ -sum_c' q_c' log p_c' ] = (sum_c' q_c') p_c - q_c
// for the position's target coefficients q (one-hot, weighted, smoothed or soft).
#include <algorithm>
#include <cmath>
#include <sstream>
#include <vector>

#include "autograd/node.h"
#include "core/parallel.h"
#include "ops/loss.h"
#include "ops/loss/common.h"
#include "ops/loss/cuda_slots.h"
#include "ops/vec_exp.h"

namespace evit {
namespace {

using loss_detail::chunked_sum;
using loss_detail::kSumChunk;

struct CeGeom {
  int64_t N = 0, C = 0, inner = 1, P = 0;  // P = N * inner positions
};

// log_softmax of one position: writes lp[c * inner] and returns nothing.
template <class T>
inline void log_softmax_position(const T* x, T* lp, int64_t C, int64_t inner) {
  T mx = -INFINITY;
  for (int64_t c = 0; c < C; ++c) mx = std::max(mx, x[c * inner]);
  if (std::isinf(mx)) mx = mx > 0 ? mx : T(0);
  double s = 0;
  for (int64_t c = 0; c < C; ++c) s += std::exp(static_cast<double>(x[c * inner] - mx));
  const T lse = mx + static_cast<T>(std::log(s));
  for (int64_t c = 0; c < C; ++c) lp[c * inner] = x[c * inner] - lse;
}

inline int64_t elem(const CeGeom& g, int64_t p) {  // offset of (position p, class 0)
  return (p / g.inner) * g.C * g.inner + p % g.inner;
}

std::string position_str(const Shape& shape, int64_t flat) {
  std::vector<int64_t> idx(shape.size());
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    idx[d] = flat % shape[d];
    flat /= shape[d];
  }
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < idx.size(); ++i) os << (i ? "," : "") << idx[i];
  os << "]";
  return os.str();
}

// Work units of the class-index path: one row when inner == 1, else up to kBlock consecutive
// spatial positions of one sample (vectorised across positions, classes strided by inner).
constexpr int64_t kBlock = 64;

struct Units {
  int64_t per_sample, count, grain;
};

Units units_of(const CeGeom& G) {
  Units u;
  u.per_sample = G.inner == 1 ? 1 : (G.inner + kBlock - 1) / kBlock;
  u.count = G.N * u.per_sample;
  const int64_t elems = G.C * std::min(G.inner, kBlock);
  u.grain = std::max<int64_t>(1, kPointwiseGrain / std::max<int64_t>(1, elems));
  return u;
}

// One contiguous row (classes contiguous): P_c = exp(x_c − mx), s += sum_c P_c and, if wanted,
// xw += sum_c w_c x_c, each summed in 8 double lanes (so the class loop vectorises) added in order.
template <class T>
void ce_row_exp_sums(const T* __restrict x, T* __restrict P, const T* w, int64_t C, T mx,
                     bool want_xw, double& s, double& xw) {
  for (int64_t c = 0; c < C; ++c) P[c] = vexp<T>(x[c] - mx);
  double acc[8] = {}, accw[8] = {};
  int64_t c = 0;
  for (; c + 8 <= C; c += 8)
    for (int l = 0; l < 8; ++l) acc[l] += static_cast<double>(P[c + l]);
  for (int64_t t = 0; c + t < C; ++t) acc[t] += static_cast<double>(P[c + t]);
  if (want_xw) {
    for (c = 0; c + 8 <= C; c += 8)
      for (int l = 0; l < 8; ++l)
        accw[l] += static_cast<double>(w ? w[c + l] * x[c + l] : x[c + l]);
    for (int64_t t = 0; c + t < C; ++t)
      accw[t] += static_cast<double>(w ? w[c + t] * x[c + t] : x[c + t]);
  }
  for (int l = 0; l < 8; ++l) {
    s += acc[l];
    xw += accw[l];
  }
}

// Forward of one unit: probabilities into P, and per position lse and (if wanted) sum_c w_c x_c.
template <class T>
void ce_unit_forward(const T* __restrict x, T* __restrict P, const T* w, int64_t C, int64_t st,
                     int64_t nb, bool want_xw, double* lse, double* xw) {
  T mx[kBlock];
  double s[kBlock];
  for (int64_t i = 0; i < nb; ++i) {
    mx[i] = -INFINITY;
    s[i] = 0;
    xw[i] = 0;
  }
  for (int64_t c = 0; c < C; ++c)
    for (int64_t i = 0; i < nb; ++i) mx[i] = x[c * st + i] > mx[i] ? x[c * st + i] : mx[i];
  for (int64_t i = 0; i < nb; ++i)
    if (std::isinf(mx[i])) mx[i] = mx[i] > 0 ? mx[i] : T(0);
  if (nb == 1) {  // a contiguous row (st == 1): vectorise over classes
    ce_row_exp_sums<T>(x, P, w, C, mx[0], want_xw, s[0], xw[0]);
  } else {
    T e[kBlock];
    for (int64_t c = 0; c < C; ++c) {
      const T* xr = x + c * st;
      T* pr = P + c * st;
      for (int64_t i = 0; i < nb; ++i) e[i] = vexp<T>(xr[i] - mx[i]);
      for (int64_t i = 0; i < nb; ++i) {
        pr[i] = e[i];
        s[i] += static_cast<double>(e[i]);
      }
      if (want_xw) {
        const T wc = w ? w[c] : T(1);
        for (int64_t i = 0; i < nb; ++i) xw[i] += static_cast<double>(wc * xr[i]);
      }
    }
  }
  T r[kBlock];
  for (int64_t i = 0; i < nb; ++i) {
    r[i] = static_cast<T>(1.0 / s[i]);
    lse[i] = static_cast<double>(mx[i]) + std::log(s[i]);
  }
  for (int64_t c = 0; c < C; ++c)
    for (int64_t i = 0; i < nb; ++i) P[c * st + i] *= r[i];
}

// CUDA: the same math on the device (cross_entropy.cu). The sums of the target weights stay on
// the device (aux) for the backward. Target values are checked inside the forward kernel; one
// small host read reports a bad one with the CPU's message (training reads the loss on the host
// every step anyway, so this adds no extra stall there).
Tensor ce_class_indices_cuda(const Tensor& logits, const Tensor& target, const Tensor& weight,
                             int64_t ignore_index, Reduction red, double eps, const CeGeom& G) {
  const TensorOptions opt{logits.dtype(), logits.device()};
  Tensor probs = empty(logits.sizes(), opt);
  Tensor out = red == Reduction::none ? empty(target.sizes(), opt) : empty({}, opt);
  Tensor aux = empty({2}, {DType::f64, logits.device()});
  Tensor bad = full({1}, static_cast<double>(G.P), {DType::i64, logits.device()});
  cross_entropy_indices_forward_cuda(logits, target, weight, G.N, G.C, G.inner, ignore_index, red,
                                     eps, probs, out, aux, bad);
  const int64_t first_bad = bad.item<int64_t>();
  if (first_bad < G.P) {
    const int64_t t = target.to(kCPU).data_ptr<int64_t>()[first_bad];
    EVIT_THROW("cross_entropy: target value ", t, " at position ",
               position_str(target.sizes(), first_bad), " is out of range [0, ", G.C,
               ") (ignore_index is ", ignore_index, ")");
  }
  autograd::record(
      "CrossEntropyBackward", {logits}, {out}, {probs, target, weight, aux},
      [G, ignore_index, red, eps](const BackwardContext& ctx) -> std::vector<Tensor> {
        const Tensor &probs = ctx.saved(0), &target = ctx.saved(1), &weight = ctx.saved(2),
                     &aux = ctx.saved(3);
        Tensor g = ctx.grad_output(0).contiguous();
        Tensor gx = empty(probs.sizes(), {probs.dtype(), probs.device()});
        cross_entropy_indices_backward_cuda(probs, target, weight, aux, g, G.N, G.C, G.inner,
                                            ignore_index, red, eps, gx);
        return {gx};
      });
  return out;
}

Tensor ce_probabilities_cuda(const Tensor& logits, const Tensor& target_in, const Tensor& target,
                             const Tensor& weight, Reduction red, double eps, const CeGeom& G,
                             const Shape& pos_shape) {
  const TensorOptions opt{logits.dtype(), logits.device()};
  Tensor lp = empty(logits.sizes(), opt);
  Tensor out = red == Reduction::none ? empty(pos_shape, opt) : empty({}, opt);
  cross_entropy_probs_forward_cuda(logits, target, weight, G.N, G.C, G.inner, red, eps, lp, out);
  autograd::record(
      "CrossEntropyBackward", {logits, target_in}, {out}, {lp, target, weight},
      [G, red, eps](const BackwardContext& ctx) -> std::vector<Tensor> {
        const Tensor &lp = ctx.saved(0), &target = ctx.saved(1), &weight = ctx.saved(2);
        Tensor g = ctx.grad_output(0).contiguous();
        Tensor gx = empty(lp.sizes(), {lp.dtype(), lp.device()});
        Tensor gt;
        if (ctx.needs_input_grad(1)) gt = empty(lp.sizes(), {lp.dtype(), lp.device()});
        cross_entropy_probs_backward_cuda(lp, target, weight, g, G.N, G.C, G.inner, red, eps, gx,
                                          gt);
        return {gx, gt};
      });
  return out;
}

// sum_c w_c in double, classes in order (C when there are no weights).
template <class T>
double class_weight_sum(const T* w, int64_t C) {
  if (!w) return static_cast<double>(C);
  double W = 0;
  for (int64_t c = 0; c < C; ++c) W += static_cast<double>(w[c]);
  return W;
}

// CPU forward with class-index targets: per unit (a sample, or a block of kBlock positions) the
// softmax probabilities (kept for backward) and the weighted, smoothed NLL, reduced per unit in
// double and over units in order. Returns the sum of the target weights of counted positions.
template <class T>
double ce_class_indices_forward(const Tensor& logits, const int64_t* tp, const Tensor& weight,
                                int64_t ignore_index, Reduction red, double eps, const CeGeom& G,
                                const Units& U, Tensor& probs, Tensor& out) {
  double wsum = 0;  // sum of the target weights of non-ignored positions
  const T* x = logits.data_ptr<T>();
  T* P = probs.data_ptr<T>();
  const T* w = weight.data_ptr_or_null<T>();
  std::vector<double> nll_part(U.count), smooth_part(U.count), w_part(U.count);
  T* o = red == Reduction::none ? out.data_ptr<T>() : nullptr;
  const double a = 1.0 - eps, b = eps / static_cast<double>(G.C);
  const double Wsum = class_weight_sum(w, G.C);
  parallel_for(0, U.count, U.grain, [&](int64_t u0, int64_t u1) {
    double lse[kBlock], xw[kBlock];
    for (int64_t u = u0; u < u1; ++u) {
      const int64_t n = u / U.per_sample, i0 = (u % U.per_sample) * kBlock;
      const int64_t nb = G.inner == 1 ? 1 : std::min(kBlock, G.inner - i0);
      const int64_t e0 = n * G.C * G.inner + i0, p0 = n * G.inner + i0;
      ce_unit_forward<T>(x + e0, P + e0, w, G.C, G.inner, nb, eps != 0, lse, xw);
      double nll_s = 0, smooth_s = 0, w_s = 0;
      for (int64_t i = 0; i < nb; ++i) {
        const int64_t t = tp[p0 + i];
        if (t == ignore_index) {
          if (o) o[p0 + i] = T(0);
          continue;
        }
        const double wt = w ? static_cast<double>(w[t]) : 1.0;
        const double nll = -wt * (static_cast<double>(x[e0 + t * G.inner + i]) - lse[i]);
        const double smooth = eps != 0 ? -(xw[i] - Wsum * lse[i]) : 0.0;
        if (o) o[p0 + i] = static_cast<T>(a * nll + b * smooth);
        nll_s += nll;
        smooth_s += smooth;
        w_s += wt;
      }
      nll_part[u] = nll_s;
      smooth_part[u] = smooth_s;
      w_part[u] = w_s;
    }
  });
  double nll = 0, smooth = 0;
  for (int64_t u = 0; u < U.count; ++u) {
    nll += nll_part[u];
    smooth += smooth_part[u];
    wsum += w_part[u];
  }
  if (red == Reduction::sum) out.data_ptr<T>()[0] = static_cast<T>(a * nll + b * smooth);
  // torch: with class indices both terms of the mean divide by the summed target weights
  if (red == Reduction::mean)
    out.data_ptr<T>()[0] = static_cast<T>(a * nll / wsum + (eps != 0 ? b * smooth / wsum : 0.0));
  return wsum;
}

// CPU backward with class-index targets: grad_c = sp·p_c − beta·w_c − [c == t]·alpha·w_t per
// position, from the saved probabilities (no exp). Kept in one piece: GCC contracts mul+add into
// FMA across statements (C++ default -ffp-contract=fast), and moving the per-unit write into its
// own function changed which products fuse, so f64 gradients moved by 1 ulp.
template <class T>
void ce_class_indices_backward(const Tensor& probs, const Tensor& target, const Tensor& weight,
                               const Tensor& g, int64_t ignore_index, Reduction red, double eps,
                               double wsum, const CeGeom& G, const Units& U, Tensor& gx) {
  const T* P = probs.data_ptr<T>();
  const T* w = weight.data_ptr_or_null<T>();
  const int64_t* tp = target.data_ptr<int64_t>();
  const T* gp = g.data_ptr<T>();
  T* o = gx.data_ptr<T>();
  const double W = class_weight_sum(w, G.C);
  const double a = 1.0 - eps, b = eps / static_cast<double>(G.C);
  parallel_for(0, U.count, U.grain, [&](int64_t u0, int64_t u1) {
    T sp[kBlock], beta[kBlock];
    for (int64_t u = u0; u < u1; ++u) {
      const int64_t n = u / U.per_sample, i0 = (u % U.per_sample) * kBlock;
      const int64_t nb = G.inner == 1 ? 1 : std::min(kBlock, G.inner - i0);
      const int64_t e0 = n * G.C * G.inner + i0, p0 = n * G.inner + i0;
      // grad_c = alpha wt (p_c - [c == t]) + beta (W p_c - w_c)
      //        = sp p_c - beta w_c - [c == t] alpha wt,  sp = alpha wt + beta W
      for (int64_t i = 0; i < nb; ++i) {
        const int64_t t = tp[p0 + i];
        if (t == ignore_index) {
          sp[i] = beta[i] = T(0);
          continue;
        }
        const double gv = static_cast<double>(red == Reduction::none ? gp[p0 + i] : gp[0]);
        double alpha = gv * a, be = gv * b;
        if (red == Reduction::mean) {
          alpha /= wsum;
          be /= wsum;
        }
        const double wt = w ? static_cast<double>(w[t]) : 1.0;
        sp[i] = static_cast<T>(alpha * wt + be * W);
        beta[i] = static_cast<T>(be);
      }
      if (nb == 1) {
        const T s0 = sp[0], b0 = beta[0];
        const T* pr = P + e0;
        T* orow = o + e0;
        if (w)
          for (int64_t c = 0; c < G.C; ++c) orow[c] = s0 * pr[c] - b0 * w[c];
        else
          for (int64_t c = 0; c < G.C; ++c) orow[c] = s0 * pr[c] - b0;
      } else {
        for (int64_t c = 0; c < G.C; ++c) {
          const T wc = w ? w[c] : T(1);
          const T* pr = P + e0 + c * G.inner;
          T* orow = o + e0 + c * G.inner;
          for (int64_t i = 0; i < nb; ++i) orow[i] = sp[i] * pr[i] - beta[i] * wc;
        }
      }
      for (int64_t i = 0; i < nb; ++i) {  // the target class
        const int64_t t = tp[p0 + i];
        if (t == ignore_index) continue;
        const double gv = static_cast<double>(red == Reduction::none ? gp[p0 + i] : gp[0]);
        double alpha = gv * a;
        if (red == Reduction::mean) alpha /= wsum;
        const double wt = w ? static_cast<double>(w[t]) : 1.0;
        o[e0 + t * G.inner + i] -= static_cast<T>(alpha * wt);
      }
    }
  });
}

Tensor ce_class_indices(const Tensor& logits, const Tensor& target_in, const Tensor& weight,
                        int64_t ignore_index, Reduction red, double eps, const CeGeom& G) {
  Tensor target = target_in.contiguous();
  if (logits.device().is_cuda())
    return ce_class_indices_cuda(logits, target, weight, ignore_index, red, eps, G);
  const int64_t* tp = target.data_ptr<int64_t>();
  for (int64_t p = 0; p < G.P; ++p) {  // validate serially: the first bad target is reported
    const int64_t t = tp[p];
    EVIT_CHECK(t == ignore_index || (t >= 0 && t < G.C), "cross_entropy: target value ", t,
               " at position ", position_str(target.sizes(), p), " is out of range [0, ", G.C,
               ") (ignore_index is ", ignore_index, ")");
  }
  // Probabilities are kept for backward (the gradient is p - target, no exp needed there).
  Tensor probs = empty(logits.sizes(), {logits.dtype(), logits.device()});
  Tensor out = red == Reduction::none ? empty(target.sizes(), {logits.dtype(), logits.device()})
                                      : empty({}, {logits.dtype(), logits.device()});
  const Units U = units_of(G);
  double wsum = 0;  // sum of the target weights of non-ignored positions
  dispatch_floating(logits.dtype(), "cross_entropy", [&](auto tag) {
    wsum = ce_class_indices_forward<decltype(tag)>(logits, tp, weight, ignore_index, red, eps, G, U,
                                                   probs, out);
  });
  autograd::record(
      "CrossEntropyBackward", {logits}, {out}, {probs, target, weight},
      [G, U, ignore_index, red, eps, wsum](const BackwardContext& ctx) -> std::vector<Tensor> {
        const Tensor &probs = ctx.saved(0), &target = ctx.saved(1), &weight = ctx.saved(2);
        Tensor g = ctx.grad_output(0).contiguous();
        Tensor gx = empty(probs.sizes(), {probs.dtype(), probs.device()});
        dispatch_floating(probs.dtype(), "CrossEntropyBackward", [&](auto tag) {
          ce_class_indices_backward<decltype(tag)>(probs, target, weight, g, ignore_index, red, eps,
                                                   wsum, G, U, gx);
        });
        return {gx};
      });
  return out;
}

// CPU forward with probability targets: per position the log_softmax (kept for backward) and the
// loss −sum_c w_c·(a·t_c + b)·lp_c in double, summed over fixed chunks of positions in order.
template <class T>
void ce_probabilities_forward(const Tensor& logits, const Tensor& target, const Tensor& weight,
                              Reduction red, double a, double b, const CeGeom& G, Tensor& lp,
                              Tensor& out) {
  const T* x = logits.data_ptr<T>();
  const T* tg = target.data_ptr<T>();
  T* l = lp.data_ptr<T>();
  const T* w = weight.data_ptr_or_null<T>();
  T* o = red == Reduction::none ? out.data_ptr<T>() : nullptr;
  auto position_loss = [&](int64_t p) {
    const int64_t e = elem(G, p);
    log_softmax_position<T>(x + e, l + e, G.C, G.inner);
    double s = 0;
    for (int64_t c = 0; c < G.C; ++c) {
      const double tc = a * tg[e + c * G.inner] + b;
      s -= (w ? static_cast<double>(w[c]) : 1.0) * tc * static_cast<double>(l[e + c * G.inner]);
    }
    if (o) o[p] = static_cast<T>(s);
    return s;
  };
  const double total = chunked_sum(G.P, position_loss);
  if (red == Reduction::sum) out.data_ptr<T>()[0] = static_cast<T>(total);
  if (red == Reduction::mean) out.data_ptr<T>()[0] = static_cast<T>(total / G.P);
}

// CPU backward with probability targets: per position dx_c = g·(S·p_c − w_c·t'_c), with
// t'_c = a·t_c + b, S = sum_c w_c·t'_c and p_c = exp(lp_c); dtarget_c = −g·a·w_c·lp_c if wanted.
template <class T>
void ce_probabilities_backward(const Tensor& lp, const Tensor& target, const Tensor& weight,
                               const Tensor& g, Reduction red, double a, double b, const CeGeom& G,
                               Tensor& gx, Tensor& gt) {
  const T* l = lp.data_ptr<T>();
  const T* tg = target.data_ptr<T>();
  const T* w = weight.data_ptr_or_null<T>();
  const T* gp = g.data_ptr<T>();
  T* o = gx.data_ptr<T>();
  T* ot = gt.data_ptr_or_null<T>();
  const int64_t grain = std::max<int64_t>(1, kPointwiseGrain / std::max<int64_t>(1, G.C));
  parallel_for(0, G.P, grain, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t e = elem(G, p);
      double gv = static_cast<double>(red == Reduction::none ? gp[p] : gp[0]);
      if (red == Reduction::mean) gv /= static_cast<double>(G.P);
      double S = 0;  // sum_c w_c t'_c
      for (int64_t c = 0; c < G.C; ++c)
        S += (w ? static_cast<double>(w[c]) : 1.0) * (a * tg[e + c * G.inner] + b);
      for (int64_t c = 0; c < G.C; ++c) {
        const int64_t k = e + c * G.inner;
        const double wc = w ? static_cast<double>(w[c]) : 1.0;
        const double pc = std::exp(static_cast<double>(l[k]));
        o[k] = static_cast<T>(gv * (S * pc - wc * (a * tg[k] + b)));
        if (ot) ot[k] = static_cast<T>(-gv * a * wc * static_cast<double>(l[k]));
      }
    }
  });
}

Tensor ce_probabilities(const Tensor& logits, const Tensor& target_in, const Tensor& weight,
                        Reduction red, double eps, const CeGeom& G) {
  Tensor target = target_in.contiguous();
  Shape pos_shape = logits.sizes();
  pos_shape.erase(pos_shape.begin() + 1);
  if (logits.device().is_cuda())
    return ce_probabilities_cuda(logits, target_in, target, weight, red, eps, G, pos_shape);
  Tensor lp = empty(logits.sizes(), {logits.dtype(), logits.device()});
  Tensor out = red == Reduction::none ? empty(pos_shape, {logits.dtype(), logits.device()})
                                      : empty({}, {logits.dtype(), logits.device()});
  const double a = 1.0 - eps, b = eps / static_cast<double>(G.C);
  dispatch_floating(logits.dtype(), "cross_entropy", [&](auto tag) {
    ce_probabilities_forward<decltype(tag)>(logits, target, weight, red, a, b, G, lp, out);
  });
  autograd::record(
      "CrossEntropyBackward", {logits, target_in}, {out}, {lp, target, weight},
      [G, red, a, b](const BackwardContext& ctx) -> std::vector<Tensor> {
        const Tensor &lp = ctx.saved(0), &target = ctx.saved(1), &weight = ctx.saved(2);
        Tensor g = ctx.grad_output(0).contiguous();
        Tensor gx = empty(lp.sizes(), {lp.dtype(), lp.device()});
        Tensor gt;
        if (ctx.needs_input_grad(1)) gt = empty(lp.sizes(), {lp.dtype(), lp.device()});
        dispatch_floating(lp.dtype(), "CrossEntropyBackward", [&](auto tag) {
          ce_probabilities_backward<decltype(tag)>(lp, target, weight, g, red, a, b, G, gx, gt);
        });
        return {gx, gt};
      });
  return out;
}

}  // namespace

const char* reduction_name(Reduction r) {
  switch (r) {
    case Reduction::none: return "none";
    case Reduction::mean: return "mean";
    case Reduction::sum: return "sum";
  }
  return "?";
}

Tensor cross_entropy(const Tensor& logits_in, const Tensor& target, const Tensor& weight,
                     int64_t ignore_index, Reduction reduction, double label_smoothing) {
  const char* op = "cross_entropy";
  EVIT_CHECK(logits_in.dim() >= 2, op, ": logits must be [N, C] or [N, C, d1, ...], got ",
             logits_in.desc());
  EVIT_CHECK(logits_in.device() == target.device(), op,
             ": logits and target must be on one device, got logits on ",
             logits_in.device().str(), " and target on ", target.device().str());
  EVIT_CHECK(is_floating(logits_in.dtype()), op, ": logits must be f32 or f64, got ",
             logits_in.desc());
  EVIT_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0, op,
             ": label_smoothing must be in [0, 1], got ", label_smoothing);
  Tensor logits = logits_in.contiguous();
  CeGeom G;
  G.N = logits.size(0);
  G.C = logits.size(1);
  for (int64_t d = 2; d < logits.dim(); ++d) G.inner *= logits.size(d);
  G.P = G.N * G.inner;
  EVIT_CHECK(G.C > 0, op, ": logits have no classes: ", logits.desc());
  if (weight.defined()) {
    EVIT_CHECK(weight.dim() == 1 && weight.size(0) == G.C, op,
               ": weight must be [C] = [", G.C, "] for logits ", logits.desc(), ", got weight ",
               weight.desc());
    EVIT_CHECK(weight.dtype() == logits.dtype(), op, ": weight dtype differs from logits: weight ",
               weight.desc(), ", logits ", logits.desc());
    EVIT_CHECK(weight.device() == logits.device(), op, ": weight is on ", weight.device().str(),
               ", logits on ", logits.device().str());
    EVIT_CHECK(!weight.requires_grad(), op, ": gradients for weight are not supported (",
               weight.desc(), " requires grad)");
  }
  Tensor w = weight.defined() ? weight.contiguous() : Tensor();
  if (is_floating(target.dtype())) {
    EVIT_CHECK(target.sizes() == logits.sizes(), op,
               ": probability targets must have the logits' shape, got logits ", logits.desc(),
               " and target ", target.desc());
    EVIT_CHECK(target.dtype() == logits.dtype(), op, ": dtypes differ: logits ", logits.desc(),
               ", target ", target.desc());
    return ce_probabilities(logits, target, w, reduction, label_smoothing, G);
  }
  EVIT_CHECK(target.dtype() == DType::i64, op,
             ": target must be i64 class indices or floating probabilities, got ", target.desc());
  Shape expected = logits.sizes();
  expected.erase(expected.begin() + 1);
  EVIT_CHECK(target.sizes() == expected, op, ": class-index target must have shape ",
             shape_str(expected), " for logits ", logits.desc(), ", got target ", target.desc());
  return ce_class_indices(logits, target, w, ignore_index, reduction, label_smoothing, G);
}

}  // namespace evit

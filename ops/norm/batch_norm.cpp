// batch_norm: forward (training and eval) and the fused backward.
//
// Layout: x is made contiguous and seen as [N, C, S] (S = product of the trailing dims). Every
// channel is one task: its N rows of S contiguous elements are reduced sequentially, in 8 f64
// lanes (so the compiler vectorizes) that are combined in a fixed order at the end. Channels are
// independent, so results do not depend on the thread count. From stage 2 on, a channel of a
// batch-16 EfficientViT tensor (<= ~200 KB) stays in L2 between the statistics pass and the
// output pass, so forward and backward each read x (and g) from memory about once; at stage 1
// (16 x 112 x 112, 800 KB) it may not, and the passes must then run at memory speed, which is
// why the sums are kept vectorized on every target (Lanes below).
//
// Statistics use sums shifted by the channel's first element (sum d, sum d^2 with d = x - x0):
// one pass, and no catastrophic cancellation when |mean| >> std.
//
// batch_norm_act fuses an activation into both passes on the CPU: the output pass writes
// act(a·x + b) instead of a·x + b, and backward turns the incoming gradient into the normalised
// output's gradient on the fly (recomputing a·x + b with the a and b the forward used), so the
// intermediate tensor is never written, read back or kept for backward. The activation's math is
// its pointwise functor (ops/pointwise/functors.h), evaluated as the unfused op evaluates it.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "core/parallel.h"
#include "ops/norm.h"
#include "ops/norm/cuda_slots.h"
#include "ops/pointwise/activation_functor.h"
#include "ops/simd_width.h"

namespace evit {
namespace {

using Acc = double;
constexpr int kLanes = 8;

// The kLanes f64 lanes as whole SIMD registers: one AVX-512 register, two AVX2 ones, four SSE
// ones (GCC does not vectorize the f32 -> f64 lane sums on its own, and one 64-byte vector type
// is split through the stack on AVX2: ~7 cycles per element instead of ~0.5). Lane k of a row's
// sums takes the row's elements j with j % kLanes == k in order, the tail (n % kLanes elements)
// goes to lane 0, on every target.
constexpr int kPerRegister = std::min<int>(kLanes, simd::kVectorBytes / sizeof(Acc));
constexpr int kRegisters = kLanes / kPerRegister;
typedef Acc Register __attribute__((vector_size(kPerRegister * sizeof(Acc))));
struct Lanes {
  Register r[kRegisters];
};
inline Lanes operator+(Lanes a, const Lanes& b) {
  for (int i = 0; i < kRegisters; ++i) a.r[i] += b.r[i];
  return a;
}
inline Lanes operator*(Lanes a, const Lanes& b) {
  for (int i = 0; i < kRegisters; ++i) a.r[i] *= b.r[i];
  return a;
}
inline Lanes operator-(Lanes a, Acc shift) {
  for (int i = 0; i < kRegisters; ++i) a.r[i] -= shift;
  return a;
}
inline Lanes& operator+=(Lanes& a, const Lanes& b) { return a = a + b; }

template <class T>
inline Lanes load_lanes(const T* p) {
  typedef T Part __attribute__((vector_size(kPerRegister * sizeof(T))));
  Lanes v;
  for (int i = 0; i < kRegisters; ++i) {
    Part part;
    std::memcpy(&part, p + i * kPerRegister, sizeof part);
    if constexpr (std::is_same_v<T, Acc>) v.r[i] = part;
    else v.r[i] = __builtin_convertvector(part, Register);
  }
  return v;
}
inline Lanes load_acc(const Acc* a) { return load_lanes(a); }
inline void store_acc(Acc* a, const Lanes& v) { std::memcpy(a, v.r, sizeof v.r); }

// s += sum(p - shift), q += sum((p - shift)^2) over n contiguous elements, lane-wise.
template <class T>
inline void shifted_sums(const T* __restrict p, int64_t n, Acc shift, Acc* __restrict s,
                         Acc* __restrict q) {
  Lanes sv = load_acc(s), qv = load_acc(q);
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    const Lanes d = load_lanes(p + j) - shift;
    sv += d;
    qv += d * d;
  }
  store_acc(s, sv);
  store_acc(q, qv);
  for (; j < n; ++j) {
    Acc d = static_cast<Acc>(p[j]) - shift;
    s[0] += d;
    q[0] += d * d;
  }
}

// The gradient reaching the normalised value y = x·a + b from the gradient g of act(y).
template <class Act, class T>
inline T pre_activation_grad(T g, T x, T a, T b) {
  if constexpr (std::is_same_v<Act, NoActivation>) {
    return g;
  } else {
    const T y = x * a + b;  // as the forward computed it (affine_act_row)
    return Act().backward(y, Act::uses_output ? Act().forward(y) : T(0), g);
  }
}

// s += sum(dy), d += sum(dy * (x - mean)) over n contiguous elements, lane-wise, with dy the
// gradient of the normalised value (pre_activation_grad); with kStore, dy is also written to
// dy_out, so that the output pass reads it instead of recomputing the activation's gradient.
// With an activation, dy is made a block at a time (a plain loop the compiler vectorizes) and
// then summed as the activation-free case sums g; blocks are whole lane groups, so every
// element reaches the same lane in the same order either way.
template <class Act, bool kStore, class T>
inline void grad_sums(const T* __restrict g, const T* __restrict x, int64_t n, Acc mean, T a, T b,
                      Acc* __restrict s, Acc* __restrict d, T* __restrict dy_out) {
  if constexpr (!std::is_same_v<Act, NoActivation>) {
    constexpr int64_t kBlock = 16 * kLanes;
    T tmp[kBlock];
    for (int64_t j0 = 0; j0 < n; j0 += kBlock) {
      const int64_t m = std::min(kBlock, n - j0);
      T* __restrict dy = kStore ? dy_out + j0 : tmp;
      for (int64_t j = 0; j < m; ++j) dy[j] = pre_activation_grad<Act>(g[j0 + j], x[j0 + j], a, b);
      grad_sums<NoActivation, false>(dy, x + j0, m, mean, a, b, s, d, static_cast<T*>(nullptr));
    }
  } else {
    static_assert(!kStore, "without an activation the output pass reads g itself");
    Lanes sv = load_acc(s), dv = load_acc(d);
    int64_t j = 0;
    for (; j + kLanes <= n; j += kLanes) {
      const Lanes gv = load_lanes(g + j);
      sv += gv;
      dv += gv * (load_lanes(x + j) - mean);
    }
    store_acc(s, sv);
    store_acc(d, dv);
    for (; j < n; ++j) {
      const Acc gv = static_cast<Acc>(g[j]);
      s[0] += gv;
      d[0] += gv * (static_cast<Acc>(x[j]) - mean);
    }
  }
}

inline Acc lane_total(const Acc* v) {
  Acc t = 0;
  for (int k = 0; k < kLanes; ++k) t += v[k];
  return t;
}

// out = act(in * a + b) over n contiguous elements.
template <class Act, class T>
inline void affine_act_row(const T* __restrict in, T* __restrict out, int64_t n, T a, T b) {
  const Act act;
  for (int64_t j = 0; j < n; ++j) out[j] = act.forward(in[j] * a + b);
}

// Channels per task: enough work per task to amortize scheduling, fixed by the shape.
inline int64_t channel_grain(int64_t per_channel) {
  return std::max<int64_t>(1, kPointwiseGrain / std::max<int64_t>(per_channel, 1));
}

// Reads element c of a 1-D tensor of T (any stride) as Acc; 1 / 0 when undefined.
template <class T>
inline Acc param_at(const Tensor& t, int64_t c, Acc dflt) {
  if (!t.defined()) return dflt;
  return static_cast<Acc>(t.data_ptr<T>()[c * t.stride(0)]);
}

void check_param(const Tensor& t, const Tensor& x, int64_t C, const char* what) {
  if (!t.defined()) return;
  EVIT_CHECK(t.dim() == 1 && t.size(0) == C, "batch_norm: ", what, " must be [", C,
             "] (the channel dim of x ", x.desc(), "), got ", t.desc());
  EVIT_CHECK(t.dtype() == x.dtype(), "batch_norm: ", what, " dtype ", dtype_name(t.dtype()),
             " differs from x ", x.desc());
  EVIT_CHECK(t.device() == x.device(), "batch_norm: ", what, " is on ", t.device().str(),
             ", x on ", x.device().str());
}

// Training: running stats ← momentum·batch + (1 − momentum)·running, in place and outside autograd
// (PyTorch's order of terms); the variance uses the unbiased batch variance.
template <class T>
void update_running_stats(const Tensor& running_mean, const Tensor& running_var, const T* batch_mean,
                          const std::vector<Acc>& unbiased, double momentum, int64_t C) {
  NoGradGuard no_grad;
  T* rm = running_mean.data_ptr<T>();
  T* rv = running_var.data_ptr<T>();
  const int64_t sm = running_mean.stride(0), sv = running_var.stride(0);
  for (int64_t c = 0; c < C; ++c) {
    rm[c * sm] = static_cast<T>(momentum * static_cast<Acc>(batch_mean[c]) +
                                (1 - momentum) * static_cast<Acc>(rm[c * sm]));
    rv[c * sv] = static_cast<T>(momentum * unbiased[c] +
                                (1 - momentum) * static_cast<Acc>(rv[c * sv]));
  }
  running_mean.bump_version();
  running_var.bump_version();
}

// CPU forward: per channel the batch statistics (shifted sums accumulated in double, so large
// means do not cancel the variance away) or the running ones, then y = a·x + b; in training, the
// running statistics are updated in place afterwards.
// Also keeps each channel's a and b (as T) in save_ab [2, C], for a fused activation's backward.
template <class T, class Act>
void batch_norm_forward_cpu(const Tensor& xc, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                            const Tensor& running_var, bool training, double momentum, double eps, int64_t N,
                            int64_t C, int64_t S, Tensor& y, Tensor& save_mean, Tensor& save_invstd,
                            Tensor& save_ab) {
  const int64_t M = N * S;
  const T* xp = xc.data_ptr<T>();
  T* yp = y.data_ptr<T>();
  T* mp = save_mean.data_ptr<T>();
  T* ip = save_invstd.data_ptr<T>();
  T* abp = save_ab.data_ptr<T>();
  std::vector<Acc> unbiased(training ? C : 0);
  parallel_for(0, C, channel_grain(M), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      Acc mean, var;
      if (training) {
        const Acc shift = static_cast<Acc>(xp[c * S]);
        Acc s[kLanes] = {}, q[kLanes] = {};
        for (int64_t n = 0; n < N; ++n) shifted_sums(xp + (n * C + c) * S, S, shift, s, q);
        const Acc ds = lane_total(s), dq = lane_total(q);
        const Acc dm = ds / static_cast<Acc>(M);
        const Acc m2 = std::max<Acc>(dq - ds * dm, 0);  // sum of squared deviations
        mean = shift + dm;
        var = m2 / static_cast<Acc>(M);
        unbiased[c] = m2 / static_cast<Acc>(M - 1);
      } else {
        mean = param_at<T>(running_mean, c, 0);
        var = param_at<T>(running_var, c, 1);
      }
      const Acc invstd = 1.0 / std::sqrt(var + eps);
      mp[c] = static_cast<T>(mean);
      ip[c] = static_cast<T>(invstd);
      const Acc a = invstd * param_at<T>(weight, c, 1);
      const Acc b = param_at<T>(bias, c, 0) - mean * a;
      abp[c] = static_cast<T>(a);
      abp[C + c] = static_cast<T>(b);
      for (int64_t n = 0; n < N; ++n)
        affine_act_row<Act, T>(xp + (n * C + c) * S, yp + (n * C + c) * S, S, abp[c], abp[C + c]);
    }
  });
  if (training && running_mean.defined())
    update_running_stats<T>(running_mean, running_var, mp, unbiased, momentum, C);
}

// CPU backward: per channel sum(g) and sum(g·(x − mean)) (double accumulators), then dw, db and
// dx = ka·g + kx·(x − mean) + k0.
// With an activation, g is the gradient of act(a·x + b) (a, b from save_ab) and every pass
// turns it into the normalised value's gradient first.
template <class T, class Act>
void batch_norm_backward_cpu(const Tensor& xs, const Tensor& g, const Tensor& w, const Tensor& mean_t,
                             const Tensor& invstd_t, const Tensor& ab_t, bool training, bool has_weight, int64_t N,
                             int64_t C, int64_t S, Tensor& dx, Tensor& dw, Tensor& db) {
  const int64_t M = N * S;
  const bool need_x = dx.defined(), need_w = dw.defined(), need_b = db.defined();
  const T* xp = xs.data_ptr<T>();
  const T* gp = g.data_ptr<T>();
  const T* mp = mean_t.data_ptr<T>();
  const T* ip = invstd_t.data_ptr<T>();
  const T* abp = ab_t.data_ptr<T>();
  T* dxp = need_x ? dx.data_ptr<T>() : nullptr;
  T* dwp = need_w ? dw.data_ptr<T>() : nullptr;
  T* dbp = need_b ? db.data_ptr<T>() : nullptr;
  // Eval mode with only dx needed: no reductions at all.
  const bool reduce = training || need_w || need_b;
  // With an activation, the reduction pass leaves dy in dx for the output pass to finish in place.
  constexpr bool kFused = !std::is_same_v<Act, NoActivation>;
  const bool staged = kFused && reduce && need_x;
  parallel_for(0, C, channel_grain(M), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const Acc mean = mp[c], invstd = ip[c];
      const T fa = abp[c], fb = abp[C + c];  // the forward's a and b
      const Acc wv = has_weight ? param_at<T>(w, c, 1) : 1.0;
      Acc sum_g = 0, dot = 0;  // sum(g), sum(g * (x - mean))
      if (reduce) {
        Acc s[kLanes] = {}, d[kLanes] = {};
        for (int64_t n = 0; n < N; ++n) {
          const int64_t off = (n * C + c) * S;
          if constexpr (kFused) {
            if (staged) {
              grad_sums<Act, true>(gp + off, xp + off, S, mean, fa, fb, s, d, dxp + off);
              continue;
            }
          }
          grad_sums<Act, false>(gp + off, xp + off, S, mean, fa, fb, s, d, static_cast<T*>(nullptr));
        }
        sum_g = lane_total(s);
        dot = lane_total(d);
      }
      if (need_w) dwp[c] = static_cast<T>(dot * invstd);
      if (need_b) dbp[c] = static_cast<T>(sum_g);
      if (!need_x) continue;
      // Training: dx = w*invstd * (g - sum_g/M - (x - mean) * invstd^2 * dot/M),
      // written as dx = ka*g + kx*(x - mean) + k0 (centred first: no cancellation in
      // f32 when |mean| >> std). Eval: dx = w*invstd * g.
      const Acc a = wv * invstd;
      Acc ka = a, kx = 0, k0 = 0;
      if (training) {
        const Acc proj = dot * invstd * invstd / static_cast<Acc>(M);
        const Acc mg = sum_g / static_cast<Acc>(M);
        kx = -a * proj;
        k0 = -a * mg;
      }
      const T tka = static_cast<T>(ka), tkx = static_cast<T>(kx),
              tk0 = static_cast<T>(k0), tmean = static_cast<T>(mean);
      for (int64_t n = 0; n < N; ++n) {
        const int64_t off = (n * C + c) * S;
        const T* __restrict xr = xp + off;
        if (staged) {
          T* dy = dxp + off;  // read and overwritten in place
          for (int64_t j = 0; j < S; ++j) dy[j] = tka * dy[j] + tkx * (xr[j] - tmean) + tk0;
        } else {
          const T* __restrict gr = gp + off;
          T* __restrict out = dxp + off;
          for (int64_t j = 0; j < S; ++j) {
            const T dy = pre_activation_grad<Act>(gr[j], xr[j], fa, fb);
            out[j] = tka * dy + tkx * (xr[j] - tmean) + tk0;
          }
        }
      }
    }
  });
}

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum, double eps) {
  return batch_norm_act(x, weight, bias, running_mean, running_var, training, momentum, eps, ActivationKind::none);
}

Tensor batch_norm_act(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                      const Tensor& running_var, bool training, double momentum, double eps, ActivationKind act) {
  EVIT_CHECK(x.dim() >= 2, "batch_norm: input must be at least 2-D [N, C, ...], got ", x.desc());
  EVIT_CHECK(is_floating(x.dtype()), "batch_norm: expected a floating dtype (f32 or f64), got ",
             x.desc());
  EVIT_CHECK(eps >= 0, "batch_norm: eps must be >= 0, got ", eps);
  const int64_t N = x.size(0), C = x.size(1);
  const int64_t S = N == 0 || C == 0 ? 0 : x.numel() / (N * C);
  const int64_t M = N * S;  // values per channel
  check_param(weight, x, C, "weight");
  check_param(bias, x, C, "bias");
  check_param(running_mean, x, C, "running_mean");
  check_param(running_var, x, C, "running_var");
  EVIT_CHECK(running_mean.defined() == running_var.defined(),
             "batch_norm: running_mean and running_var must be given together");
  if (training) {
    EVIT_CHECK(M > 1, "batch_norm: expected more than 1 value per channel when training, got ",
               x.desc());
  } else {
    EVIT_CHECK(running_mean.defined(),
               "batch_norm: eval mode (training=false) needs running_mean and running_var");
  }

  if (act != ActivationKind::none && x.device().is_cuda())
    return apply_activation(batch_norm_act(x, weight, bias, running_mean, running_var, training, momentum, eps,
                                           ActivationKind::none),
                            act);

  const Tensor xc = x.contiguous();
  Tensor y = empty(x.sizes(), {x.dtype(), x.device()});
  // Saved for backward: the mean and 1/sqrt(var + eps) actually used (batch or running).
  Tensor save_mean = empty({C}, {x.dtype(), x.device()});
  Tensor save_invstd = empty({C}, {x.dtype(), x.device()});
  // The per-channel a and b of y = a·x + b as the CPU forward applied them (a fused activation's
  // backward recomputes y from them).
  Tensor save_ab = x.device().is_cuda() ? Tensor() : empty({2, C}, {x.dtype(), x.device()});

  if (x.device().is_cuda()) {
    // Parameters and running stats were checked to be on x's device (check_param).
    batch_norm_forward_cuda(xc, weight, bias, running_mean, running_var, training, momentum, eps,
                            y, save_mean, save_invstd);
    if (training && running_mean.defined()) {
      running_mean.bump_version();
      running_var.bump_version();
    }
  } else {
    dispatch_floating(x.dtype(), "batch_norm", [&](auto tag) {
      with_activation_functor(act, [&](auto fn) {
        batch_norm_forward_cpu<decltype(tag), decltype(fn)>(xc, weight, bias, running_mean, running_var, training,
                                                            momentum, eps, N, C, S, y, save_mean, save_invstd, save_ab);
      });
    });
  }

  const bool has_weight = weight.defined();
  autograd::record(
      act == ActivationKind::none ? "BatchNormBackward" : "BatchNormActBackward", {x, weight, bias}, {y},
      {xc, weight, save_mean, save_invstd, save_ab},
      [training, has_weight, N, C, S, act](const BackwardContext& ctx) -> std::vector<Tensor> {
        const Tensor& xs = ctx.saved(0);
        const Tensor& w = ctx.saved(1);
        const Tensor& mean_t = ctx.saved(2);
        const Tensor& invstd_t = ctx.saved(3);
        const Tensor& ab_t = ctx.saved(4);
        const Tensor g = ctx.grad_output(0).contiguous();
        const bool need_x = ctx.needs_input_grad(0), need_w = ctx.needs_input_grad(1),
                   need_b = ctx.needs_input_grad(2);
        Tensor dx = need_x ? empty(xs.sizes(), {xs.dtype(), xs.device()}) : Tensor();
        Tensor dw = need_w ? empty({C}, {xs.dtype(), xs.device()}) : Tensor();
        Tensor db = need_b ? empty({C}, {xs.dtype(), xs.device()}) : Tensor();
        if (xs.device().is_cuda()) {
          batch_norm_backward_cuda(xs, g, has_weight ? w : Tensor(), mean_t, invstd_t, training,
                                   dx, dw, db);
          return std::vector<Tensor>{dx, dw, db};
        }
        dispatch_floating(xs.dtype(), "batch_norm backward", [&](auto tag) {
          with_activation_functor(act, [&](auto fn) {
            batch_norm_backward_cpu<decltype(tag), decltype(fn)>(xs, g, w, mean_t, invstd_t, ab_t, training, has_weight,
                                                                 N, C, S, dx, dw, db);
          });
        });
        return {dx, dw, db};
      });
  return y;
}

}  // namespace evit

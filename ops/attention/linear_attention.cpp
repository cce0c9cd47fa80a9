// Fused ReLU linear attention (LiteMLA), forward and hand-written backward.
//
// Per (batch, head), with q, k in R^{d x N}, v in R^{dv x N}, q' = relu(q), k' = relu(k) and
// v^ = [v; 1] ((dv+1) x N, the "ones row" gives the normaliser):
//   A   = v^ k'^T                      (dv+1) x d    the state: all that N x N would hold
//   O   = A q'                         (dv+1) x N    O[0:dv] = numerator, O[dv] = sum_j k'_j.q'_i
//   den = O[dv] + eps,  out = O[0:dv] / den
// Backward, with G = dL/dout:
//   dO[0:dv] = G / den,  dO[dv] = -sum_a G[a] out[a] / den        (column-wise)
//   dq' = A^T dO,   dA = dO q'^T,   dk' = dA^T v^,   dv = dA[0:dv] k'
//   dq = dq' * [q > 0],   dk = dk' * [k > 0]
// Everything is O(d^2 N); no N x N matrix exists on this path. For N <= d the reference
// switches to the quadratic form (M = k'^T q', column-normalised, out = v M); we follow it.
//
// Kernels: reductions over N (A, dA) are dot products with a fixed set of vector lanes combined
// in a fixed order; the others vectorise over a block of positions with the short d / dv
// reduction unrolled in order. relu is applied on the fly. One task per (batch, head), so the
// result does not depend on the thread count.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <vector>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "core/parallel.h"
#include "ops/attention.h"
#include "ops/attention/cuda_slots.h"
#include "ops/linalg/small_products.h"
#include "ops/shape.h"

namespace evit {
namespace {

template <class T> inline T relu_v(T x) { return x > T(0) ? x : T(0); }

using namespace detail::small_products;

// dst[c][j] = relu(src[c][j]) into a contiguous rows x n buffer.
template <class T>
void relu_rows(const T* src, int64_t ld, int64_t rows, int64_t n, std::vector<T>& dst) {
  dst.resize(rows * n);
  for (int64_t c = 0; c < rows; ++c) {
    const T* s = src + c * ld;
    T* o = dst.data() + c * n;
    for (int64_t j = 0; j < n; ++j) o[j] = relu_v(s[j]);
  }
}

struct HeadArgs {
  int64_t d, dv, n;
  int64_t ldq, ldk, ldv;  // row strides of the [d, N] blocks
};

// Per-task scratch, reused across heads.
template <class T> struct Scratch {
  std::vector<T> qr, kr, state, dstate, den, dO;
};

// ---- linear path ----------------------------------------------------------------------------

// A = [v; 1] k'^T into s.state ((dv+1) x d); s.kr = k'.
template <class T>
void compute_state(const HeadArgs& a, const T* k, const T* v, Scratch<T>& s) {
  const int64_t d = a.d, dv = a.dv, n = a.n;
  relu_rows(k, a.ldk, d, n, s.kr);
  s.state.assign((dv + 1) * d, T(0));
  gram<T>(v, a.ldv, dv, s.kr.data(), n, d, n, s.state.data(), d);
  // ones row: column sums of k'
  constexpr int L = kLanes<T>;
  for (int64_t c = 0; c < d; ++c) {
    const T* kr = s.kr.data() + c * n;
    V<T> acc{};
    int64_t j = 0;
    for (; j + L <= n; j += L) acc += load(kr + j);
    for (int t = 0; j + t < n; ++t) acc[t] += kr[j + t];
    s.state[dv * d + c] = reduce_lanes<T>(acc);
  }
}

// s.den = A[dv] q' + eps (q' in s.qr).
template <class T>
void compute_den(const HeadArgs& a, T eps, Scratch<T>& s) {
  s.den.resize(a.n);
  small_mm<T>(s.state.data() + a.dv * a.d, 0, 1, 1, a.d, s.qr.data(), a.n, s.den.data(), a.n, a.n);
  for (int64_t i = 0; i < a.n; ++i) s.den[i] += eps;
}

template <class T>
void linear_forward_head(const HeadArgs& a, const T* q, const T* k, const T* v, T* out, T eps,
                         Scratch<T>& s) {
  const int64_t d = a.d, dv = a.dv, n = a.n;
  compute_state(a, k, v, s);
  relu_rows(q, a.ldq, d, n, s.qr);
  compute_den(a, eps, s);
  small_mm<T>(s.state.data(), d, 1, dv, d, s.qr.data(), n, out, n, n);
  for (int64_t r = 0; r < dv; ++r) {
    T* o = out + r * n;
    for (int64_t i = 0; i < n; ++i) o[i] /= s.den[i];
  }
}

template <class T>
void linear_backward_head(const HeadArgs& a, const T* q, const T* k, const T* v, const T* out,
                          const T* g, T* dq, T* dk, T* dvv, T eps, Scratch<T>& s) {
  const int64_t d = a.d, dv = a.dv, n = a.n;
  compute_state(a, k, v, s);
  relu_rows(q, a.ldq, d, n, s.qr);
  compute_den(a, eps, s);
  // dO[0:dv] = G / den, dO[dv] = -sum_r G[r] out[r] / den
  s.dO.assign((dv + 1) * n, T(0));
  T* last = s.dO.data() + dv * n;
  for (int64_t r = 0; r < dv; ++r) {
    const T* gr = g + r * n;
    const T* orow = out + r * n;
    T* dr = s.dO.data() + r * n;
    for (int64_t i = 0; i < n; ++i) {
      dr[i] = gr[i] / s.den[i];
      last[i] += gr[i] * orow[i];
    }
  }
  for (int64_t i = 0; i < n; ++i) last[i] = -last[i] / s.den[i];
  if (dq) {  // dq' = A^T dO, masked
    small_mm<T>(s.state.data(), 1, d, d, dv + 1, s.dO.data(), n, dq, n, n);
    for (int64_t c = 0; c < d; ++c) {
      const T* qr = q + c * a.ldq;
      T* o = dq + c * n;
      for (int64_t i = 0; i < n; ++i) o[i] = qr[i] > T(0) ? o[i] : T(0);
    }
  }
  if (!dk && !dvv) return;
  // dA = dO q'^T  ((dv+1) x d)
  s.dstate.assign((dv + 1) * d, T(0));
  gram<T>(s.dO.data(), n, dv + 1, s.qr.data(), n, d, n, s.dstate.data(), d);
  const T* dA = s.dstate.data();
  if (dk) {  // dk' = dA^T [v; 1], masked
    small_mm<T>(dA, 1, d, d, dv, v, a.ldv, dk, n, n);
    for (int64_t c = 0; c < d; ++c) {
      const T base = dA[dv * d + c];
      const T* kr = k + c * a.ldk;
      T* o = dk + c * n;
      for (int64_t j = 0; j < n; ++j) o[j] = kr[j] > T(0) ? o[j] + base : T(0);
    }
  }
  if (dvv)  // dv = dA[0:dv] k'
    small_mm<T>(dA, d, 1, dv, d, s.kr.data(), n, dvv, n, n);
}

// ---- quadratic path (N <= d: tiny maps) ------------------------------------------------------

// P[j][i] = M[j][i] / (sum_j M[j][i] + eps), M = k'^T q'; den[i] returned too.
template <class T>
void quadratic_probs(const HeadArgs& a, const T* q, const T* k, T eps, std::vector<T>& P,
                     std::vector<T>& den) {
  const int64_t d = a.d, n = a.n;
  P.assign(n * n, T(0));
  den.assign(n, T(0));
  for (int64_t j = 0; j < n; ++j)
    for (int64_t i = 0; i < n; ++i) {
      T s = 0;
      for (int64_t c = 0; c < d; ++c) s += relu_v(k[c * a.ldk + j]) * relu_v(q[c * a.ldq + i]);
      P[j * n + i] = s;
    }
  for (int64_t i = 0; i < n; ++i) {
    T s = 0;
    for (int64_t j = 0; j < n; ++j) s += P[j * n + i];
    den[i] = s + eps;
  }
  for (int64_t j = 0; j < n; ++j)
    for (int64_t i = 0; i < n; ++i) P[j * n + i] /= den[i];
}

template <class T>
void quadratic_forward_head(const HeadArgs& a, const T* q, const T* k, const T* v, T* out, T eps) {
  std::vector<T> P, den;
  quadratic_probs(a, q, k, eps, P, den);
  const int64_t n = a.n;
  for (int64_t r = 0; r < a.dv; ++r)
    for (int64_t i = 0; i < n; ++i) {
      T s = 0;
      for (int64_t j = 0; j < n; ++j) s += v[r * a.ldv + j] * P[j * n + i];
      out[r * n + i] = s;
    }
}

template <class T>
void quadratic_backward_head(const HeadArgs& a, const T* q, const T* k, const T* v, const T* g,
                             T* dq, T* dk, T* dvv, T eps) {
  std::vector<T> P, den;
  quadratic_probs(a, q, k, eps, P, den);
  const int64_t d = a.d, dv = a.dv, n = a.n;
  if (dvv)
    for (int64_t r = 0; r < dv; ++r)
      for (int64_t j = 0; j < n; ++j) {
        T s = 0;
        for (int64_t i = 0; i < n; ++i) s += g[r * n + i] * P[j * n + i];
        dvv[r * n + j] = s;
      }
  if (!dq && !dk) return;
  // dP = v^T G;  dM[j][i] = (dP[j][i] - sum_j' dP[j'][i] P[j'][i]) / den[i]
  std::vector<T> dM(n * n);
  for (int64_t j = 0; j < n; ++j)
    for (int64_t i = 0; i < n; ++i) {
      T s = 0;
      for (int64_t r = 0; r < dv; ++r) s += v[r * a.ldv + j] * g[r * n + i];
      dM[j * n + i] = s;
    }
  for (int64_t i = 0; i < n; ++i) {
    T s = 0;
    for (int64_t j = 0; j < n; ++j) s += dM[j * n + i] * P[j * n + i];
    for (int64_t j = 0; j < n; ++j) dM[j * n + i] = (dM[j * n + i] - s) / den[i];
  }
  for (int64_t c = 0; c < d; ++c) {
    if (dq)
      for (int64_t i = 0; i < n; ++i) {
        T s = 0;
        for (int64_t j = 0; j < n; ++j) s += relu_v(k[c * a.ldk + j]) * dM[j * n + i];
        dq[c * n + i] = q[c * a.ldq + i] > T(0) ? s : T(0);
      }
    if (dk)
      for (int64_t j = 0; j < n; ++j) {
        T s = 0;
        for (int64_t i = 0; i < n; ++i) s += relu_v(q[c * a.ldq + i]) * dM[j * n + i];
        dk[c * n + j] = k[c * a.ldk + j] > T(0) ? s : T(0);
      }
  }
}

// ---- op wrappers ----------------------------------------------------------------------------

// Keeps x as is when each [rows, N] block has unit stride along N (B/H strides are free).
Tensor block_layout(const Tensor& x) {
  if (x.stride(3) == 1 && (x.size(2) <= 1 || x.stride(2) >= x.size(3))) return x;
  return x.contiguous();
}

// Element offset of head (b, h) of a 4-D tensor.
inline int64_t head_offset(const Tensor& x, int64_t bh) {
  const int64_t H = x.size(1);
  return (bh / H) * x.stride(0) + (bh % H) * x.stride(1);
}

HeadArgs head_args(const Tensor& q, const Tensor& k, const Tensor& v) {
  HeadArgs a;
  a.d = q.size(2);
  a.dv = v.size(2);
  a.n = q.size(3);
  a.ldq = q.stride(2);
  a.ldk = k.stride(2);
  a.ldv = v.stride(2);
  return a;
}

}  // namespace

namespace {

// Calls f(bh, q, k, v, scratch) for every (batch, head) bh, in parallel (one task per head), with
// pointers to that head's q, k and v blocks.
template <class T, class F>
void for_each_head(const Tensor& q, const Tensor& k, const Tensor& v, F&& f) {
  const T* qp = q.data_ptr<T>();
  const T* kp = k.data_ptr<T>();
  const T* vp = v.data_ptr<T>();
  parallel_for(0, q.size(0) * q.size(1), 1, [&](int64_t b0, int64_t b1) {
    Scratch<T> scratch;
    for (int64_t bh = b0; bh < b1; ++bh)
      f(bh, qp + head_offset(q, bh), kp + head_offset(k, bh), vp + head_offset(v, bh), scratch);
  });
}

// Forward of every (batch, head) on the CPU into out [B, H, dv, N]: each head's [dv, N] block
// contiguous, at head_offset (out may be a slice of a tensor with more heads).
void cpu_forward(const Tensor& q, const Tensor& k, const Tensor& v, double eps, bool quadratic, const Tensor& out) {
  dispatch_floating(q.dtype(), "linear_attention", [&](auto tag) {
    using T = decltype(tag);
    const HeadArgs a = head_args(q, k, v);
    const T e = static_cast<T>(eps);
    T* op_ = out.data_ptr<T>();
    for_each_head<T>(q, k, v, [&](int64_t bh, const T* qh, const T* kh, const T* vh, Scratch<T>& scratch) {
      T* oh = op_ + head_offset(out, bh);
      if (quadratic)
        quadratic_forward_head<T>(a, qh, kh, vh, oh, e);
      else
        linear_forward_head<T>(a, qh, kh, vh, oh, e, scratch);
    });
  });
}

// Backward of every (batch, head) on the CPU: the gradients of q, k, v (each undefined when not
// wanted) are written head by head at head_offset, their [d, N] blocks with row stride N, so
// they may be slices of one packed gradient; o and g are read the same way.
void cpu_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& o, const Tensor& g, double eps,
                  bool quadratic, const Tensor& dq, const Tensor& dk, const Tensor& dvt) {
  dispatch_floating(q.dtype(), "LinearAttentionBackward", [&](auto tag) {
    using T = decltype(tag);
    const HeadArgs a = head_args(q, k, v);
    const T e = static_cast<T>(eps);
    const T* opp = o.data_ptr<T>();
    const T* gp = g.data_ptr<T>();
    T* dqp = dq.data_ptr_or_null<T>();
    T* dkp = dk.data_ptr_or_null<T>();
    T* dvp = dvt.data_ptr_or_null<T>();
    for_each_head<T>(q, k, v, [&](int64_t bh, const T* qh, const T* kh, const T* vh, Scratch<T>& scratch) {
      const T* oh = opp + head_offset(o, bh);
      const T* gh = gp + head_offset(g, bh);
      T* dqh = dqp ? dqp + head_offset(dq, bh) : nullptr;
      T* dkh = dkp ? dkp + head_offset(dk, bh) : nullptr;
      T* dvh = dvp ? dvp + head_offset(dvt, bh) : nullptr;
      if (quadratic)
        quadratic_backward_head<T>(a, qh, kh, vh, gh, dqh, dkh, dvh, e);
      else
        linear_backward_head<T>(a, qh, kh, vh, oh, gh, dqh, dkh, dvh, e, scratch);
    });
  });
}

}  // namespace

Tensor linear_attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, double eps) {
  const char* op = "linear_attention";
  EVIT_CHECK(q_in.dim() == 4 && k_in.dim() == 4 && v_in.dim() == 4, op,
             ": q, k, v must be 4-D [B, H, d, N], got q ", q_in.desc(), ", k ", k_in.desc(),
             ", v ", v_in.desc());
  EVIT_CHECK(q_in.sizes() == k_in.sizes(), op, ": q and k must have the same shape, got q ",
             q_in.desc(), " and k ", k_in.desc());
  EVIT_CHECK(v_in.size(0) == q_in.size(0) && v_in.size(1) == q_in.size(1) &&
                 v_in.size(3) == q_in.size(3),
             op, ": v must be [B, H, dv, N] matching q's B, H, N, got q ", q_in.desc(), " and v ",
             v_in.desc());
  EVIT_CHECK(q_in.dtype() == k_in.dtype() && q_in.dtype() == v_in.dtype(), op,
             ": dtypes differ: q ", q_in.desc(), ", k ", k_in.desc(), ", v ", v_in.desc());
  EVIT_CHECK(q_in.device() == k_in.device() && q_in.device() == v_in.device(), op,
             ": q, k, v must be on one device, got q on ", q_in.device().str(), ", k on ",
             k_in.device().str(), ", v on ", v_in.device().str());
  EVIT_CHECK(eps >= 0, op, ": eps must be >= 0, got ", eps);
  Tensor q = block_layout(q_in), k = block_layout(k_in), v = block_layout(v_in);
  const int64_t B = q.size(0), H = q.size(1), dv = v.size(2), N = q.size(3);
  const bool quadratic = N <= q.size(2);  // as the reference: H*W <= d
  Tensor out = empty({B, H, dv, N}, {q.dtype(), q.device()});
  if (q.device().is_cuda()) {
    // The fused kernels always take the linear form (the same function as the quadratic one).
    linear_attention_forward_cuda(q, k, v, eps, out);
  } else {
    cpu_forward(q, k, v, eps, quadratic, out);
  }
  autograd::record(
      "LinearAttentionBackward", {q_in, k_in, v_in}, {out}, {q, k, v, out},
      [eps, quadratic](const BackwardContext& ctx) -> std::vector<Tensor> {
        const Tensor &q = ctx.saved(0), &k = ctx.saved(1), &v = ctx.saved(2), &o = ctx.saved(3);
        Tensor g = ctx.grad_output(0).contiguous();
        const int64_t B = q.size(0), H = q.size(1), d = q.size(2), dv = v.size(2),
                      N = q.size(3);
        Tensor dq, dk, dvt;
        if (ctx.needs_input_grad(0)) dq = empty({B, H, d, N}, {q.dtype(), q.device()});
        if (ctx.needs_input_grad(1)) dk = empty({B, H, d, N}, {q.dtype(), q.device()});
        if (ctx.needs_input_grad(2)) dvt = empty({B, H, dv, N}, {q.dtype(), q.device()});
        if (q.device().is_cuda())
          linear_attention_backward_cuda(q, k, v, o, g, eps, dq, dk, dvt);
        else
          cpu_backward(q, k, v, o, g, eps, quadratic, dq, dk, dvt);
        return {dq, dk, dvt};
      });
  return out;
}

Tensor linear_attention_qkv(const Tensor& qkv, int64_t d, double eps) {
  return linear_attention_qkv(std::vector<Tensor>{qkv}, d, eps);
}

Tensor linear_attention_qkv(const std::vector<Tensor>& parts_in, int64_t d, double eps) {
  const char* op = "linear_attention_qkv";
  EVIT_CHECK(!parts_in.empty(), op, ": no qkv tensor given");
  const Tensor& first = parts_in[0];
  // Part i's groups are the output's groups [offset[i], offset[i + 1]).
  std::vector<int64_t> offset{0};
  for (const Tensor& p : parts_in) {
    EVIT_CHECK(p.dim() == 4 && d >= 1 && p.size(2) == 3 * d, op, ": qkv must be [B, G, 3d, N] with d = ", d,
               ", got ", p.desc());
    EVIT_CHECK(p.size(0) == first.size(0) && p.size(3) == first.size(3) && p.dtype() == first.dtype() &&
                   p.device() == first.device(),
               op, ": the parts must share B, N, dtype and device, got ", first.desc(), " and ", p.desc());
    offset.push_back(offset.back() + p.size(1));
  }
  auto qkv_slices = [d](const Tensor& t) {
    return std::array<Tensor, 3>{slice(t, 2, 0, d), slice(t, 2, d, 2 * d), slice(t, 2, 2 * d, 3 * d)};
  };
  if (first.device().is_cuda()) {  // the three-operand op, its gradient through the slices
    auto [q, k, v] = qkv_slices(parts_in.size() == 1 ? first : cat(parts_in, 1));
    return linear_attention(q, k, v, eps);
  }
  EVIT_CHECK(eps >= 0, op, ": eps must be >= 0, got ", eps);
  const int64_t B = first.size(0), N = first.size(3);
  const bool quadratic = N <= d;  // as the reference: H*W <= d
  std::vector<Tensor> packed;
  for (const Tensor& p : parts_in) packed.push_back(block_layout(p));
  Tensor out = empty({B, offset.back(), d, N}, {first.dtype(), first.device()});
  {
    NoGradGuard views_only;  // the op records itself below, on the packed tensors
    for (size_t i = 0; i < packed.size(); ++i) {
      auto [q, k, v] = qkv_slices(packed[i]);
      cpu_forward(q, k, v, eps, quadratic, slice(out, 1, offset[i], offset[i + 1]));
    }
  }
  std::vector<Tensor> saved = packed;
  saved.push_back(out);
  autograd::record(
      "LinearAttentionQkvBackward", parts_in, {out}, std::move(saved),
      [eps, quadratic, qkv_slices, offset](const BackwardContext& ctx) -> std::vector<Tensor> {
        const size_t n = offset.size() - 1;
        const Tensor& o = ctx.saved(n);
        Tensor g = ctx.grad_output(0).contiguous();
        std::vector<Tensor> grads;
        NoGradGuard views_only;
        for (size_t i = 0; i < n; ++i) {
          const Tensor& packed = ctx.saved(i);
          Tensor grad = empty(packed.sizes(), {packed.dtype(), packed.device()});  // every block written
          auto [q, k, v] = qkv_slices(packed);
          auto [dq, dk, dv] = qkv_slices(grad);
          cpu_backward(q, k, v, slice(o, 1, offset[i], offset[i + 1]), slice(g, 1, offset[i], offset[i + 1]), eps,
                       quadratic, dq, dk, dv);
          grads.push_back(grad);
        }
        return grads;
      });
  return out;
}

}  // namespace evit

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
#include <vector>

#include "autograd/node.h"
#include "core/parallel.h"
#include "ops/attention.h"

namespace evit {
namespace {

template <class T> inline T relu_v(T x) { return x > T(0) ? x : T(0); }

// Lanes per dot product: two AVX registers' worth, reduced pairwise at the end (fixed order).
template <class T> constexpr int kLanes = 64 / sizeof(T);
constexpr int64_t kBlock = 64;  // positions per block in the position-vectorised kernels

template <class T> inline T reduce_lanes(T* acc) {
  constexpr int L = kLanes<T>;
  for (int w = L / 2; w >= 1; w /= 2)
    for (int l = 0; l < w; ++l) acc[l] += acc[l + w];
  return acc[0];
}

// res[r] = sum_j x[j] * relu?(y_r[j]) for 4 rows y_r (y + r*ldy), over n elements.
template <class T, bool ReluY>
void dot4(const T* __restrict x, const T* __restrict y, int64_t ldy, int64_t n, int rows, T* res) {
  constexpr int L = kLanes<T>;
  T acc[4][L] = {};
  const T* y0 = y;
  const T* y1 = rows > 1 ? y + ldy : y;
  const T* y2 = rows > 2 ? y + 2 * ldy : y;
  const T* y3 = rows > 3 ? y + 3 * ldy : y;
  int64_t j = 0;
  for (; j + L <= n; j += L) {
    for (int l = 0; l < L; ++l) {
      T xv = x[j + l];
      T a0 = y0[j + l], a1 = y1[j + l], a2 = y2[j + l], a3 = y3[j + l];
      if constexpr (ReluY) {
        a0 = relu_v(a0); a1 = relu_v(a1); a2 = relu_v(a2); a3 = relu_v(a3);
      }
      acc[0][l] += xv * a0;
      acc[1][l] += xv * a1;
      acc[2][l] += xv * a2;
      acc[3][l] += xv * a3;
    }
  }
  for (int64_t t = 0; j + t < n; ++t) {  // tail goes into lane t (fixed)
    T xv = x[j + t];
    const T* ys[4] = {y0, y1, y2, y3};
    for (int r = 0; r < 4; ++r) {
      T a = ys[r][j + t];
      if constexpr (ReluY) a = relu_v(a);
      acc[r][t] += xv * a;
    }
  }
  for (int r = 0; r < rows; ++r) res[r] = reduce_lanes<T>(acc[r]);
}

// Same with x = relu(x) too, or x = ones (then res = sum relu?(y)).
template <class T>
void sum4_relu(const T* __restrict y, int64_t ldy, int64_t n, int rows, T* res) {
  constexpr int L = kLanes<T>;
  T acc[4][L] = {};
  for (int r = 0; r < rows; ++r) {
    const T* yr = y + r * ldy;
    int64_t j = 0;
    for (; j + L <= n; j += L)
      for (int l = 0; l < L; ++l) acc[r][l] += relu_v(yr[j + l]);
    for (int64_t t = 0; j + t < n; ++t) acc[r][t] += relu_v(yr[j + t]);
    res[r] = reduce_lanes<T>(acc[r]);
  }
}

// C[r][c] = sum_j X_r[j] * relu?(Y_c[j]) for r < m rows of X (row stride ldx), c < d rows of Y,
// over n positions. `ones_row`: an extra row m of X that is all ones (written to C[m]).
template <class T, bool ReluX>
void gram(const T* x, int64_t ldx, int64_t m, const T* y, int64_t ldy, int64_t d, int64_t n,
          bool ones_row, T* C, std::vector<T>& tmp) {
  tmp.resize(n);
  for (int64_t r = 0; r < m; ++r) {
    const T* xr = x + r * ldx;
    if constexpr (ReluX) {
      for (int64_t j = 0; j < n; ++j) tmp[j] = relu_v(xr[j]);
      xr = tmp.data();
    }
    for (int64_t c = 0; c < d; c += 4) {
      int rows = static_cast<int>(std::min<int64_t>(4, d - c));
      dot4<T, true>(xr, y + c * ldy, ldy, n, rows, C + r * d + c);
    }
  }
  if (ones_row)
    for (int64_t c = 0; c < d; c += 4)
      sum4_relu<T>(y + c * ldy, ldy, n, static_cast<int>(std::min<int64_t>(4, d - c)),
                   C + m * d + c);
}

struct HeadArgs {
  int64_t d, dv, n;
  int64_t ldq, ldk, ldv;  // row strides of the [d, N] blocks
};

// ---- linear path ----------------------------------------------------------------------------

template <class T>
void linear_forward_head(const HeadArgs& a, const T* q, const T* k, const T* v, T* out, T eps,
                         std::vector<T>& state, std::vector<T>& tmp) {
  const int64_t d = a.d, dv = a.dv, n = a.n;
  state.assign((dv + 1) * d, T(0));
  gram<T, false>(v, a.ldv, dv, k, a.ldk, d, n, true, state.data(), tmp);
  const T* A = state.data();
  T qb[kBlock], acc[kBlock], rden[kBlock];
  for (int64_t i0 = 0; i0 < n; i0 += kBlock) {
    const int64_t nb = std::min(kBlock, n - i0);
    for (int64_t i = 0; i < nb; ++i) acc[i] = T(0);
    for (int64_t c = 0; c < d; ++c) {
      const T s = A[dv * d + c];
      const T* qr = q + c * a.ldq + i0;
      for (int64_t i = 0; i < nb; ++i) acc[i] += s * relu_v(qr[i]);
    }
    for (int64_t i = 0; i < nb; ++i) rden[i] = acc[i] + eps;
    for (int64_t r = 0; r < dv; ++r) {
      for (int64_t i = 0; i < nb; ++i) acc[i] = T(0);
      for (int64_t c = 0; c < d; ++c) {
        const T s = A[r * d + c];
        const T* qr = q + c * a.ldq + i0;
        for (int64_t i = 0; i < nb; ++i) {
          qb[i] = relu_v(qr[i]);
          acc[i] += s * qb[i];
        }
      }
      T* o = out + r * n + i0;
      for (int64_t i = 0; i < nb; ++i) o[i] = acc[i] / rden[i];
    }
  }
}

template <class T>
void linear_backward_head(const HeadArgs& a, const T* q, const T* k, const T* v, const T* out,
                          const T* g, T* dq, T* dk, T* dvv, T eps) {
  const int64_t d = a.d, dv = a.dv, n = a.n;
  std::vector<T> state((dv + 1) * d), dstate((dv + 1) * d), tmp;
  std::vector<T> dO((dv + 1) * n);
  gram<T, false>(v, a.ldv, dv, k, a.ldk, d, n, true, state.data(), tmp);
  const T* A = state.data();
  T den[kBlock], acc[kBlock];
  // dO, and dq = mask * A^T dO, block by block.
  for (int64_t i0 = 0; i0 < n; i0 += kBlock) {
    const int64_t nb = std::min(kBlock, n - i0);
    for (int64_t i = 0; i < nb; ++i) acc[i] = T(0);
    for (int64_t c = 0; c < d; ++c) {
      const T s = A[dv * d + c];
      const T* qr = q + c * a.ldq + i0;
      for (int64_t i = 0; i < nb; ++i) acc[i] += s * relu_v(qr[i]);
    }
    for (int64_t i = 0; i < nb; ++i) den[i] = acc[i] + eps;
    T* dlast = dO.data() + dv * n + i0;
    for (int64_t i = 0; i < nb; ++i) acc[i] = T(0);
    for (int64_t r = 0; r < dv; ++r) {
      const T* gr = g + r * n + i0;
      const T* orow = out + r * n + i0;
      T* dr = dO.data() + r * n + i0;
      for (int64_t i = 0; i < nb; ++i) {
        dr[i] = gr[i] / den[i];
        acc[i] += gr[i] * orow[i];
      }
    }
    for (int64_t i = 0; i < nb; ++i) dlast[i] = -acc[i] / den[i];
    if (dq) {
      for (int64_t c = 0; c < d; ++c) {
        for (int64_t i = 0; i < nb; ++i) acc[i] = T(0);
        for (int64_t r = 0; r <= dv; ++r) {
          const T s = A[r * d + c];
          const T* dr = dO.data() + r * n + i0;
          for (int64_t i = 0; i < nb; ++i) acc[i] += s * dr[i];
        }
        const T* qr = q + c * a.ldq + i0;
        T* o = dq + c * n + i0;
        for (int64_t i = 0; i < nb; ++i) o[i] = qr[i] > T(0) ? acc[i] : T(0);
      }
    }
  }
  if (!dk && !dvv) return;
  // dA = dO q'^T  ((dv+1) x d)
  gram<T, false>(dO.data(), n, dv + 1, q, a.ldq, d, n, false, dstate.data(), tmp);
  const T* dA = dstate.data();
  for (int64_t j0 = 0; j0 < n; j0 += kBlock) {
    const int64_t nb = std::min(kBlock, n - j0);
    if (dk) {
      for (int64_t c = 0; c < d; ++c) {
        const T base = dA[dv * d + c];  // the ones row of v^
        for (int64_t j = 0; j < nb; ++j) acc[j] = base;
        for (int64_t r = 0; r < dv; ++r) {
          const T s = dA[r * d + c];
          const T* vr = v + r * a.ldv + j0;
          for (int64_t j = 0; j < nb; ++j) acc[j] += s * vr[j];
        }
        const T* kr = k + c * a.ldk + j0;
        T* o = dk + c * n + j0;
        for (int64_t j = 0; j < nb; ++j) o[j] = kr[j] > T(0) ? acc[j] : T(0);
      }
    }
    if (dvv) {
      for (int64_t r = 0; r < dv; ++r) {
        for (int64_t j = 0; j < nb; ++j) acc[j] = T(0);
        for (int64_t c = 0; c < d; ++c) {
          const T s = dA[r * d + c];
          const T* kr = k + c * a.ldk + j0;
          for (int64_t j = 0; j < nb; ++j) acc[j] += s * relu_v(kr[j]);
        }
        T* o = dvv + r * n + j0;
        for (int64_t j = 0; j < nb; ++j) o[j] = acc[j];
      }
    }
  }
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
  EVIT_CHECK(q_in.device().is_cpu() && k_in.device().is_cpu() && v_in.device().is_cpu(), op,
             ": no ", q_in.device().str(), " kernel in this build");
  EVIT_CHECK(eps >= 0, op, ": eps must be >= 0, got ", eps);
  Tensor q = block_layout(q_in), k = block_layout(k_in), v = block_layout(v_in);
  const int64_t B = q.size(0), H = q.size(1), dv = v.size(2), N = q.size(3);
  const bool quadratic = N <= q.size(2);  // as the reference: H*W <= d
  Tensor out = empty({B, H, dv, N}, {q.dtype(), q.device()});
  dispatch_floating(q.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const HeadArgs a = head_args(q, k, v);
    const T* qp = q.data_ptr<T>();
    const T* kp = k.data_ptr<T>();
    const T* vp = v.data_ptr<T>();
    T* op_ = out.data_ptr<T>();
    parallel_for(0, B * H, 1, [&](int64_t b0, int64_t b1) {
      std::vector<T> state, tmp;
      for (int64_t bh = b0; bh < b1; ++bh) {
        const T* qh = qp + head_offset(q, bh);
        const T* kh = kp + head_offset(k, bh);
        const T* vh = vp + head_offset(v, bh);
        T* oh = op_ + bh * dv * N;
        if (quadratic)
          quadratic_forward_head<T>(a, qh, kh, vh, oh, static_cast<T>(eps));
        else
          linear_forward_head<T>(a, qh, kh, vh, oh, static_cast<T>(eps), state, tmp);
      }
    });
  });
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
        dispatch_floating(q.dtype(), "LinearAttentionBackward", [&](auto tag) {
          using T = decltype(tag);
          const HeadArgs a = head_args(q, k, v);
          const T* qp = q.data_ptr<T>();
          const T* kp = k.data_ptr<T>();
          const T* vp = v.data_ptr<T>();
          const T* opp = o.data_ptr<T>();
          const T* gp = g.data_ptr<T>();
          T* dqp = dq.defined() ? dq.data_ptr<T>() : nullptr;
          T* dkp = dk.defined() ? dk.data_ptr<T>() : nullptr;
          T* dvp = dvt.defined() ? dvt.data_ptr<T>() : nullptr;
          parallel_for(0, B * H, 1, [&](int64_t b0, int64_t b1) {
            for (int64_t bh = b0; bh < b1; ++bh) {
              const T* qh = qp + head_offset(q, bh);
              const T* kh = kp + head_offset(k, bh);
              const T* vh = vp + head_offset(v, bh);
              const T* gh = gp + bh * dv * N;
              T* dqh = dqp ? dqp + bh * d * N : nullptr;
              T* dkh = dkp ? dkp + bh * d * N : nullptr;
              T* dvh = dvp ? dvp + bh * dv * N : nullptr;
              if (quadratic)
                quadratic_backward_head<T>(a, qh, kh, vh, gh, dqh, dkh, dvh, static_cast<T>(eps));
              else
                linear_backward_head<T>(a, qh, kh, vh, opp + bh * dv * N, gh, dqh, dkh, dvh,
                                        static_cast<T>(eps));
            }
          });
        });
        return {dq, dk, dvt};
      });
  return out;
}

}  // namespace evit

// scaled_dot_product_attention: out = softmax(q k^T * scale) v for [B, H, N, d] tensors.
//
// Forward: keys are transposed once per head to [d, Nk] so that a score row is an axpy over Nk
// (contiguous, vectorisable); each task owns a block of query rows of one head and writes their
// probabilities P (saved for backward) and outputs. Backward runs in two passes: per query row,
// dS = P * (dP - sum(P dP)) * scale and dq = dS k (rows are independent); then per key row,
// dk = dS^T q and dv = P^T dO, accumulated over query rows in fixed order. No pass reduces across
// tasks, so results are identical on any number of threads.
#include <algorithm>
#include <cmath>
#include <vector>

#include "autograd/node.h"
#include "core/parallel.h"
#include "ops/softmax.h"
#include "ops/softmax/cuda_slots.h"
#include "ops/vec_exp.h"

namespace evit {
namespace {

constexpr int64_t kRows = 16;  // query (or key) rows per task

struct Dims {
  int64_t BH, Nq, Nk, d, dv;
};

// y[0:n] += a * x[0:n]; restrict lets the short loops vectorise without alias checks.
template <class T>
inline void axpy(T a, const T* __restrict x, T* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

// dst[bh][c][j] = src[bh][j][c]: [BH, rows, cols] -> [BH, cols, rows].
template <class T>
void transpose_heads(const T* src, T* dst, int64_t BH, int64_t rows, int64_t cols) {
  parallel_for(0, BH, std::max<int64_t>(1, kPointwiseGrain / std::max<int64_t>(1, rows * cols)),
               [&](int64_t b0, int64_t b1) {
                 for (int64_t bh = b0; bh < b1; ++bh) {
                   const T* s = src + bh * rows * cols;
                   T* o = dst + bh * rows * cols;
                   for (int64_t c = 0; c < cols; ++c)  // contiguous writes
                     for (int64_t j = 0; j < rows; ++j) o[c * rows + j] = s[j * cols + c];
                 }
               });
}

template <class T>
void sdpa_forward(const Dims& D, const T* q, const T* kT, const T* v, T* P, T* out, T scale) {
  const int64_t blocks = (D.Nq + kRows - 1) / kRows;
  parallel_for(0, D.BH * blocks, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t bh = t / blocks, r0 = (t % blocks) * kRows, r1 = std::min(D.Nq, r0 + kRows);
      const T* kh = kT + bh * D.d * D.Nk;
      const T* vh = v + bh * D.Nk * D.dv;
      for (int64_t i = r0; i < r1; ++i) {
        const T* qi = q + (bh * D.Nq + i) * D.d;
        T* p = P + (bh * D.Nq + i) * D.Nk;
        T* o = out + (bh * D.Nq + i) * D.dv;
        for (int64_t j = 0; j < D.Nk; ++j) p[j] = T(0);
        for (int64_t c = 0; c < D.d; ++c) axpy<T>(qi[c] * scale, kh + c * D.Nk, p, D.Nk);
        T mx = -INFINITY;
        for (int64_t j = 0; j < D.Nk; ++j) mx = std::max(mx, p[j]);
        for (int64_t j = 0; j < D.Nk; ++j) p[j] = vexp<T>(p[j] - mx);
        double s = 0;
        for (int64_t j = 0; j < D.Nk; ++j) s += static_cast<double>(p[j]);
        const T r = static_cast<T>(1.0 / s);
        for (int64_t j = 0; j < D.Nk; ++j) p[j] *= r;
        for (int64_t e = 0; e < D.dv; ++e) o[e] = T(0);
        for (int64_t j = 0; j < D.Nk; ++j) axpy<T>(p[j], vh + j * D.dv, o, D.dv);
      }
    }
  });
}

// Pass 1: dS (into dS, scaled) and dq, per query row.
template <class T>
void sdpa_backward_rows(const Dims& D, const T* k, const T* vT, const T* P, const T* g, T* dS,
                        T* dq, T scale) {
  const int64_t blocks = (D.Nq + kRows - 1) / kRows;
  parallel_for(0, D.BH * blocks, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t bh = t / blocks, r0 = (t % blocks) * kRows, r1 = std::min(D.Nq, r0 + kRows);
      const T* vh = vT + bh * D.dv * D.Nk;
      const T* kh = k + bh * D.Nk * D.d;
      for (int64_t i = r0; i < r1; ++i) {
        const T* gi = g + (bh * D.Nq + i) * D.dv;
        const T* p = P + (bh * D.Nq + i) * D.Nk;
        T* ds = dS + (bh * D.Nq + i) * D.Nk;
        for (int64_t j = 0; j < D.Nk; ++j) ds[j] = T(0);
        for (int64_t e = 0; e < D.dv; ++e) axpy<T>(gi[e], vh + e * D.Nk, ds, D.Nk);
        double s = 0;
        for (int64_t j = 0; j < D.Nk; ++j) s += static_cast<double>(ds[j]) * p[j];
        const T st = static_cast<T>(s);
        for (int64_t j = 0; j < D.Nk; ++j) ds[j] = p[j] * (ds[j] - st) * scale;
        if (dq) {
          T* o = dq + (bh * D.Nq + i) * D.d;
          for (int64_t c = 0; c < D.d; ++c) o[c] = T(0);
          for (int64_t j = 0; j < D.Nk; ++j) axpy<T>(ds[j], kh + j * D.d, o, D.d);
        }
      }
    }
  });
}

// Pass 2: dk = dS^T q and dv = P^T g, per block of key rows.
template <class T>
void sdpa_backward_keys(const Dims& D, const T* q, const T* P, const T* g, const T* dS, T* dk,
                        T* dv) {
  const int64_t blocks = (D.Nk + kRows - 1) / kRows;
  parallel_for(0, D.BH * blocks, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t bh = t / blocks, j0 = (t % blocks) * kRows, j1 = std::min(D.Nk, j0 + kRows);
      if (dk) std::fill(dk + (bh * D.Nk + j0) * D.d, dk + (bh * D.Nk + j1) * D.d, T(0));
      if (dv) std::fill(dv + (bh * D.Nk + j0) * D.dv, dv + (bh * D.Nk + j1) * D.dv, T(0));
      for (int64_t i = 0; i < D.Nq; ++i) {
        const T* ds = dS + (bh * D.Nq + i) * D.Nk;
        const T* p = P + (bh * D.Nq + i) * D.Nk;
        const T* qi = q + (bh * D.Nq + i) * D.d;
        const T* gi = g + (bh * D.Nq + i) * D.dv;
        for (int64_t j = j0; j < j1; ++j) {
          if (dk) axpy<T>(ds[j], qi, dk + (bh * D.Nk + j) * D.d, D.d);
          if (dv) axpy<T>(p[j], gi, dv + (bh * D.Nk + j) * D.dv, D.dv);
        }
      }
    }
  });
}

}  // namespace

Tensor scaled_dot_product_attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in,
                                    std::optional<double> scale_opt) {
  const char* op = "scaled_dot_product_attention";
  EVIT_CHECK(q_in.dim() == 4 && k_in.dim() == 4 && v_in.dim() == 4, op,
             ": q, k, v must be 4-D [B, H, N, d], got q ", q_in.desc(), ", k ", k_in.desc(),
             ", v ", v_in.desc());
  EVIT_CHECK(q_in.size(0) == k_in.size(0) && q_in.size(1) == k_in.size(1) &&
                 q_in.size(3) == k_in.size(3),
             op, ": k must be [B, H, Nk, d] matching q's B, H, d, got q ", q_in.desc(), " and k ",
             k_in.desc());
  EVIT_CHECK(v_in.size(0) == k_in.size(0) && v_in.size(1) == k_in.size(1) &&
                 v_in.size(2) == k_in.size(2),
             op, ": v must be [B, H, Nk, dv] matching k's B, H, Nk, got k ", k_in.desc(),
             " and v ", v_in.desc());
  EVIT_CHECK(q_in.dtype() == k_in.dtype() && q_in.dtype() == v_in.dtype(), op,
             ": dtypes differ: q ", q_in.desc(), ", k ", k_in.desc(), ", v ", v_in.desc());
  EVIT_CHECK(q_in.device() == k_in.device() && q_in.device() == v_in.device(), op,
             ": q, k and v must be on one device, got q on ", q_in.device().str(), ", k on ",
             k_in.device().str(), ", v on ", v_in.device().str());
  EVIT_CHECK(k_in.size(2) > 0, op, ": no keys (Nk = 0) in ", k_in.desc());
  Tensor q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
  const Dims D{q.size(0) * q.size(1), q.size(2), k.size(2), q.size(3), v.size(3)};
  const double scale = scale_opt ? *scale_opt : 1.0 / std::sqrt(static_cast<double>(D.d));
  Tensor P = empty({q.size(0), q.size(1), D.Nq, D.Nk}, {q.dtype(), q.device()});
  Tensor out = empty({q.size(0), q.size(1), D.Nq, D.dv}, {q.dtype(), q.device()});
  if (q.device().is_cuda())
    sdpa_forward_cuda(q, k, v, D.BH, D.Nq, D.Nk, D.d, D.dv, scale, P, out);
  else dispatch_floating(q.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    std::vector<T> kT(D.BH * D.d * D.Nk);
    transpose_heads<T>(k.data_ptr<T>(), kT.data(), D.BH, D.Nk, D.d);
    sdpa_forward<T>(D, q.data_ptr<T>(), kT.data(), v.data_ptr<T>(), P.data_ptr<T>(),
                    out.data_ptr<T>(), static_cast<T>(scale));
  });
  autograd::record(
      "ScaledDotProductAttentionBackward", {q_in, k_in, v_in}, {out}, {q, k, v, P},
      [D, scale](const BackwardContext& ctx) -> std::vector<Tensor> {
        const Tensor &q = ctx.saved(0), &k = ctx.saved(1), &v = ctx.saved(2), &P = ctx.saved(3);
        Tensor g = ctx.grad_output(0).contiguous();
        Tensor dq, dk, dv;
        if (ctx.needs_input_grad(0)) dq = empty(q.sizes(), {q.dtype(), q.device()});
        if (ctx.needs_input_grad(1)) dk = empty(k.sizes(), {q.dtype(), q.device()});
        if (ctx.needs_input_grad(2)) dv = empty(v.sizes(), {q.dtype(), q.device()});
        if (q.device().is_cuda()) {
          sdpa_backward_cuda(q, k, v, P, g, D.BH, D.Nq, D.Nk, D.d, D.dv, scale, dq, dk, dv);
          return std::vector<Tensor>{dq, dk, dv};
        }
        dispatch_floating(q.dtype(), "ScaledDotProductAttentionBackward", [&](auto tag) {
          using T = decltype(tag);
          std::vector<T> vT(D.BH * D.dv * D.Nk), dS(D.BH * D.Nq * D.Nk);
          transpose_heads<T>(v.data_ptr<T>(), vT.data(), D.BH, D.Nk, D.dv);
          sdpa_backward_rows<T>(D, k.data_ptr<T>(), vT.data(), P.data_ptr<T>(), g.data_ptr<T>(),
                                dS.data(), dq.data_ptr_or_null<T>(),
                                static_cast<T>(scale));
          if (dk.defined() || dv.defined())
            sdpa_backward_keys<T>(D, q.data_ptr<T>(), P.data_ptr<T>(), g.data_ptr<T>(), dS.data(),
                                  dk.data_ptr_or_null<T>(),
                                  dv.data_ptr_or_null<T>());
        });
        return {dq, dk, dv};
      });
  return out;
}

}  // namespace evit

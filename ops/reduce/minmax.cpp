// max/min along a dim (values + first-occurrence i64 indices), global max/min, argmax.
//
// Kernel (along a dim): the contiguous input is viewed as [pre, n, post]. For each pre block the
// running best over k = 0..n-1 is kept for a strip of `post` columns at once, so the innermost
// loop walks contiguous memory (vectorizable) whatever the reduced dim is, e.g. max over the
// channel dim of [N,C,H,W] compares whole H*W planes. A candidate replaces the best only when
// strictly better, which keeps the first occurrence; NaN counts as larger than (max) / smaller
// than (min) everything, so it propagates as in PyTorch. No accumulation happens, so any
// parallel split gives the same result.
//
// Contiguous runs (global max/min, and max/min over the innermost dim) are read as [m, W] blocks
// so that the same vectorized column loop applies; column winners are merged by value, then by
// flat index. Global max/min: fixed chunks of the flattened input each find their first best;
// the chunk results are combined in chunk order (ties keep the earlier chunk).
//
// Backward scatters the incoming gradient into the selected positions (zeros elsewhere).
#include <cmath>
#include <cstring>
#include <type_traits>

#include "autograd/node.h"
#include "core/parallel.h"
#include "ops/reduce.h"
#include "ops/reduce/cuda_slots.h"
#include "ops/shape.h"

namespace evit {
namespace {

constexpr int64_t kPostStrip = 1024;  // columns kept in the running-best buffers per task

template <bool IsMax, class T>
inline bool better(T cand, T best) {
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(cand)) return !std::isnan(best);
    if (std::isnan(best)) return false;
  }
  if constexpr (IsMax)
    return cand > best;
  else
    return cand < best;
}

// Branch-free form of better() for the vectorized column loops: NaN beats any non-NaN.
template <bool IsMax, class T>
inline bool better_nb(T c, T b) {
  bool strict;
  if constexpr (IsMax)
    strict = c > b;
  else
    strict = c < b;
  if constexpr (std::is_floating_point_v<T>)
    return strict | ((c != c) & (b == b));
  else
    return strict;
}

// Columns of a [n, w] block with row stride `stride`: v[j], ix[j] = first best of column j over
// rows 0..n-1. Rows are visited in order and a row replaces the best only when strictly better,
// so each column keeps its first occurrence. The j loop is branch-free and vectorizes.
template <bool IsMax, class T>
inline void column_best(const T* base, int64_t n, int64_t w, int64_t stride, T* __restrict v,
                        int64_t* __restrict ix) {
  for (int64_t j = 0; j < w; ++j) {
    v[j] = base[j];
    ix[j] = 0;
  }
  for (int64_t k = 1; k < n; ++k) {
    const T* __restrict row = base + k * stride;
    for (int64_t j = 0; j < w; ++j) {
      const T c = row[j], b = v[j];
      const bool upd = better_nb<IsMax>(c, b);
      v[j] = upd ? c : b;
      ix[j] = upd ? k : ix[j];
    }
  }
}

// First best element of a contiguous run, from a [m, W] block (column_best, vectorized) plus a
// tail: the W column winners are merged by value and then by flat index (k * W + j), so the
// result is exactly the first occurrence a plain scan would find.
template <bool IsMax, int64_t W, class T>
std::pair<T, int64_t> scan_block(const T* p, int64_t n) {
  T v[W];
  int64_t ix[W];
  const int64_t m = n / W;
  column_best<IsMax>(p, m, W, W, v, ix);
  T best = v[0];
  int64_t bi = ix[0] * W;
  for (int64_t j = 1; j < W; ++j) {
    const int64_t flat = ix[j] * W + j;
    if (better<IsMax>(v[j], best) || (!better<IsMax>(best, v[j]) && flat < bi)) {
      best = v[j];
      bi = flat;
    }
  }
  for (int64_t j = m * W; j < n; ++j)
    if (better<IsMax>(p[j], best)) {
      best = p[j];
      bi = j;
    }
  return {best, bi};
}

// (value, index) of the first best element of p[0..n), n >= 1. The block width depends on n
// only (wider blocks for long runs, a plain scan for very short ones).
template <bool IsMax, class T>
std::pair<T, int64_t> scan_first_best(const T* p, int64_t n) {
  if (n >= 128) return scan_block<IsMax, 64>(p, n);
  if (n >= 32) return scan_block<IsMax, 16>(p, n);
  T best = p[0];
  int64_t bi = 0;
  for (int64_t j = 1; j < n; ++j)
    if (better<IsMax>(p[j], best)) {
      best = p[j];
      bi = j;
    }
  return {best, bi};
}

template <bool IsMax, class T>
void minmax_dim_kernel(const T* in, T* vals, int64_t* idx, int64_t pre, int64_t n, int64_t post) {
  const int64_t strips = num_chunks(0, post, kPostStrip);
  const int64_t work_per_task = n * std::min(post, kPostStrip);
  const int64_t grain = std::max<int64_t>(1, kPointwiseGrain / std::max<int64_t>(work_per_task, 1));
  parallel_for(0, pre * strips, grain, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t p = t / strips;
      const int64_t c0 = (t % strips) * kPostStrip;
      const int64_t c1 = std::min(post, c0 + kPostStrip);
      const int64_t w = c1 - c0;
      const T* base = in + p * n * post + c0;
      T* v = vals + p * post + c0;
      int64_t* ix = idx + p * post + c0;
      if (post == 1) {  // reducing the innermost dim: a scan of one contiguous row
        auto [best, bi] = scan_first_best<IsMax>(base, n);
        v[0] = best;
        ix[0] = bi;
        continue;
      }
      column_best<IsMax>(base, n, w, post, v, ix);
    }
  });
}

struct DimLayout {
  int64_t dim = 0, pre = 1, n = 1, post = 1;
};

DimLayout dim_layout(const Tensor& x, int64_t dim, const char* op) {
  DimLayout l;
  if (x.dim() == 0) {  // a scalar has one element along dim 0 / -1, as in PyTorch
    wrap_dim(dim, 0, op);
    return l;
  }
  l.dim = wrap_dim(dim, x.dim(), op);
  for (int64_t i = 0; i < l.dim; ++i) l.pre *= x.sizes()[i];
  l.n = x.sizes()[l.dim];
  for (int64_t i = l.dim + 1; i < x.dim(); ++i) l.post *= x.sizes()[i];
  return l;
}

Shape dim_out_shape(const Tensor& x, const DimLayout& l, bool keepdim) {
  Shape s = x.sizes();
  if (x.dim() == 0) return s;
  if (keepdim)
    s[l.dim] = 1;
  else
    s.erase(s.begin() + l.dim);
  return s;
}

// Values and indices along a dim; no autograd.
template <bool IsMax>
std::pair<Tensor, Tensor> minmax_dim_forward(const Tensor& x, int64_t dim, bool keepdim,
                                             const char* op, DimLayout& l) {
  l = dim_layout(x, dim, op);
  EVIT_CHECK(l.n > 0, op, ": cannot reduce over dim ", dim, " of size 0 in ", x.desc());
  Shape out_shape = dim_out_shape(x, l, keepdim);
  Tensor xc = x.detach().contiguous();
  Tensor vals = empty(out_shape, {x.dtype(), x.device()});
  Tensor idx = empty(out_shape, {DType::i64, x.device()});
  if (vals.numel() == 0) return {vals, idx};
  if (x.device().is_cuda()) {
    minmax_dim_cuda(xc, vals, idx, l.pre, l.n, l.post, IsMax);
    return {vals, idx};
  }
  dispatch_numeric(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    minmax_dim_kernel<IsMax, T>(xc.data_ptr<T>(), vals.data_ptr<T>(), idx.data_ptr<int64_t>(),
                                l.pre, l.n, l.post);
  });
  return {vals, idx};
}

template <bool IsMax>
std::pair<Tensor, Tensor> minmax_dim(const Tensor& x, int64_t dim, bool keepdim, const char* op,
                                     const char* backward_name) {
  DimLayout l;
  auto [vals, idx] = minmax_dim_forward<IsMax>(x, dim, keepdim, op, l);
  Shape in_shape = x.sizes();
  autograd::record(backward_name, {x}, {vals}, {idx},
                   [in_shape, l](const BackwardContext& ctx) -> std::vector<Tensor> {
                     const Tensor& g = ctx.grad_output(0);
                     Tensor gc = g.contiguous();
                     const Tensor& ix = ctx.saved(0);  // contiguous: made by the forward
                     Tensor gx = zeros(in_shape, {g.dtype(), g.device()});
                     if (g.device().is_cuda()) {
                       minmax_backward_cuda(gc, ix, gx, l.pre, l.n, l.post);
                       return {gx};
                     }
                     dispatch_floating(g.dtype(), "max/min backward", [&](auto tag) {
                       using T = decltype(tag);
                       const T* gp = gc.data_ptr<T>();
                       const int64_t* ip = ix.data_ptr<int64_t>();
                       T* out = gx.data_ptr<T>();
                       for (int64_t p = 0; p < l.pre; ++p)
                         for (int64_t j = 0; j < l.post; ++j) {
                           const int64_t o = p * l.post + j;
                           out[(p * l.n + ip[o]) * l.post + j] = gp[o];
                         }
                     });
                     return {gx};
                   });
  return {vals, idx};
}

// First best over all elements: (value, flat index).
template <bool IsMax, class T>
std::pair<T, int64_t> minmax_all_kernel(const T* in, int64_t n) {
  constexpr int64_t kChunk = 65536;
  const int64_t chunks = num_chunks(0, n, kChunk);
  std::vector<T> best(chunks);
  std::vector<int64_t> where(chunks);
  parallel_for(0, chunks, 1, [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e; ++c) {
      const int64_t j0 = c * kChunk, j1 = std::min(n, j0 + kChunk);
      auto [bv, off] = scan_first_best<IsMax>(in + j0, j1 - j0);
      const int64_t bi = j0 + off;
      best[c] = bv;
      where[c] = bi;
    }
  });
  T bv = best[0];
  int64_t bi = where[0];
  for (int64_t c = 1; c < chunks; ++c)
    if (better<IsMax>(best[c], bv)) {
      bv = best[c];
      bi = where[c];
    }
  return {bv, bi};
}

template <bool IsMax>
Tensor minmax_all(const Tensor& x, const char* op, const char* backward_name) {
  EVIT_CHECK(x.numel() > 0, op, ": cannot reduce an empty tensor ", x.desc(),
             "; give a dim or check the input");
  Tensor xc = x.detach().contiguous();
  if (x.device().is_cuda()) {
    // The flat input as one row [1, numel, 1]; the index stays on the device (no sync), and
    // the backward scatters through it.
    const int64_t n = xc.numel();
    Tensor y = empty({}, {x.dtype(), x.device()});
    Tensor idx = empty({}, {DType::i64, x.device()});
    minmax_dim_cuda(xc, y, idx, 1, n, 1, IsMax);
    Shape in_shape = x.sizes();
    autograd::record(backward_name, {x}, {y}, {idx},
                     [in_shape, n](const BackwardContext& ctx) -> std::vector<Tensor> {
                       const Tensor g = ctx.grad_output(0).contiguous();
                       Tensor gx = zeros(in_shape, {g.dtype(), g.device()});
                       minmax_backward_cuda(g, ctx.saved(0), gx, 1, n, 1);
                       return {gx};
                     });
    return y;
  }
  Tensor y = empty({}, {x.dtype(), x.device()});
  int64_t flat = 0;
  dispatch_numeric(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    auto [v, i] = minmax_all_kernel<IsMax, T>(xc.data_ptr<T>(), xc.numel());
    *y.data_ptr<T>() = v;
    flat = i;
  });
  Shape in_shape = x.sizes();
  autograd::record(backward_name, {x}, {y}, {},
                   [in_shape, flat](const BackwardContext& ctx) -> std::vector<Tensor> {
                     const Tensor& g = ctx.grad_output(0);
                     Tensor gx = zeros(in_shape, {g.dtype(), g.device()});
                     dispatch_floating(g.dtype(), "max/min backward", [&](auto tag) {
                       using T = decltype(tag);
                       gx.data_ptr<T>()[flat] = g.item<T>();
                     });
                     return {gx};
                   });
  return y;
}

}  // namespace

std::pair<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim) {
  return minmax_dim<true>(x, dim, keepdim, "max", "MaxBackward");
}

std::pair<Tensor, Tensor> min(const Tensor& x, int64_t dim, bool keepdim) {
  return minmax_dim<false>(x, dim, keepdim, "min", "MinBackward");
}

Tensor max(const Tensor& x) { return minmax_all<true>(x, "max", "MaxBackward"); }

Tensor min(const Tensor& x) { return minmax_all<false>(x, "min", "MinBackward"); }

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  DimLayout l;
  return minmax_dim_forward<true>(x, dim, keepdim, "argmax", l).second;
}

}  // namespace evit

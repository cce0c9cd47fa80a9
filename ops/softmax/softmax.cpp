// softmax and log_softmax along one dim.
//
// The input is made contiguous and seen as [outer, D, inner] (D = the softmax dim). With
// inner == 1 every row is contiguous and handled by one task; otherwise positions are processed
// in blocks of kBlock along `inner`, vectorised across the block with the D loop outside (rows
// are strided by `inner`). Each output depends on one row only, so any thread count gives the
// same bits. Sums accumulate in f64; exp is the vectorisable vexp (ops/vec_exp.h).
#include <algorithm>
#include <cmath>

#include "autograd/node.h"
#include "core/parallel.h"
#include "ops/softmax.h"
#include "ops/softmax/cuda_slots.h"
#include "ops/vec_exp.h"

namespace evit {
namespace {

constexpr int64_t kBlock = 64;

enum class Mode { softmax, log_softmax };

struct Layout {
  int64_t outer = 1, D = 1, inner = 1;
};

Layout layout_of(const Shape& s, int64_t dim) {
  Layout l;
  for (int64_t i = 0; i < static_cast<int64_t>(s.size()); ++i) {
    if (i < dim) l.outer *= s[i];
    else if (i == dim) l.D = s[i];
    else l.inner *= s[i];
  }
  return l;
}

constexpr int kL = 8;  // lanes of the row reductions (max is exact; sums in f64 per lane)

template <class T> inline T row_max(const T* x, int64_t n) {
  T m[kL];
  for (int l = 0; l < kL; ++l) m[l] = -INFINITY;
  int64_t j = 0;
  for (; j + kL <= n; j += kL)
    for (int l = 0; l < kL; ++l) m[l] = x[j + l] > m[l] ? x[j + l] : m[l];
  for (int64_t t = 0; j + t < n; ++t) m[t] = x[j + t] > m[t] ? x[j + t] : m[t];
  T r = m[0];
  for (int l = 1; l < kL; ++l) r = m[l] > r ? m[l] : r;
  return r;
}

// sum_j a[j] (* b[j] when b): f64 lanes, combined in a fixed order.
template <class T> inline double row_sum(const T* a, const T* b, int64_t n) {
  double s[kL] = {};
  int64_t j = 0;
  if (b) {
    for (; j + kL <= n; j += kL)
      for (int l = 0; l < kL; ++l) s[l] += static_cast<double>(a[j + l] * b[j + l]);
    for (int64_t t = 0; j + t < n; ++t) s[t] += static_cast<double>(a[j + t] * b[j + t]);
  } else {
    for (; j + kL <= n; j += kL)
      for (int l = 0; l < kL; ++l) s[l] += static_cast<double>(a[j + l]);
    for (int64_t t = 0; j + t < n; ++t) s[t] += static_cast<double>(a[j + t]);
  }
  double r = 0;
  for (int l = 0; l < kL; ++l) r += s[l];
  return r;
}

// One contiguous row (inner == 1).
template <class T, Mode M>
void forward_row(const T* __restrict x, T* __restrict y, int64_t D) {
  T mx = row_max(x, D);
  if (std::isinf(mx)) mx = mx > 0 ? mx : T(0);  // all -inf rows: avoid inf - inf
  for (int64_t j = 0; j < D; ++j) y[j] = vexp<T>(x[j] - mx);
  const double s = row_sum<T>(y, nullptr, D);
  if constexpr (M == Mode::softmax) {
    const T r = static_cast<T>(1.0 / s);
    for (int64_t j = 0; j < D; ++j) y[j] *= r;
  } else {
    const T sub = mx + static_cast<T>(std::log(s));
    for (int64_t j = 0; j < D; ++j) y[j] = x[j] - sub;
  }
}

template <class T, Mode M>
void backward_row(const T* __restrict y, const T* __restrict g, T* __restrict gx, int64_t D) {
  if constexpr (M == Mode::softmax) {
    const T t = static_cast<T>(row_sum<T>(g, y, D));
    for (int64_t j = 0; j < D; ++j) gx[j] = y[j] * (g[j] - t);
  } else {
    const T t = static_cast<T>(row_sum<T>(g, nullptr, D));
    for (int64_t j = 0; j < D; ++j) gx[j] = g[j] - vexp<T>(y[j]) * t;
  }
}

// Positions [i0, i0+nb) of one outer slice (inner > 1): vectorised across positions.
template <class T, Mode M>
void forward_block(const T* __restrict x, T* __restrict y, const Layout& l, int64_t nb) {
  if (l.inner == 1) return forward_row<T, M>(x, y, l.D);
  const int64_t st = l.inner;
  T mx[kBlock];
  double s[kBlock];
  for (int64_t i = 0; i < nb; ++i) {
    mx[i] = -INFINITY;
    s[i] = 0;
  }
  for (int64_t c = 0; c < l.D; ++c)
    for (int64_t i = 0; i < nb; ++i) mx[i] = x[c * st + i] > mx[i] ? x[c * st + i] : mx[i];
  for (int64_t i = 0; i < nb; ++i)
    if (std::isinf(mx[i])) mx[i] = mx[i] > 0 ? mx[i] : T(0);
  T e[kBlock];
  for (int64_t c = 0; c < l.D; ++c) {
    for (int64_t i = 0; i < nb; ++i) e[i] = vexp<T>(x[c * st + i] - mx[i]);
    if constexpr (M == Mode::softmax)
      for (int64_t i = 0; i < nb; ++i) y[c * st + i] = e[i];
    for (int64_t i = 0; i < nb; ++i) s[i] += static_cast<double>(e[i]);
  }
  if constexpr (M == Mode::softmax) {
    T r[kBlock];
    for (int64_t i = 0; i < nb; ++i) r[i] = static_cast<T>(1.0 / s[i]);
    for (int64_t c = 0; c < l.D; ++c)
      for (int64_t i = 0; i < nb; ++i) y[c * st + i] *= r[i];
  } else {
    T sub[kBlock];
    for (int64_t i = 0; i < nb; ++i) sub[i] = mx[i] + static_cast<T>(std::log(s[i]));
    for (int64_t c = 0; c < l.D; ++c)
      for (int64_t i = 0; i < nb; ++i) y[c * st + i] = x[c * st + i] - sub[i];
  }
}

template <class T, Mode M>
void backward_block(const T* __restrict y, const T* __restrict g, T* __restrict gx,
                    const Layout& l, int64_t nb) {
  if (l.inner == 1) return backward_row<T, M>(y, g, gx, l.D);
  const int64_t st = l.inner;
  double s[kBlock];
  for (int64_t i = 0; i < nb; ++i) s[i] = 0;
  for (int64_t c = 0; c < l.D; ++c)
    for (int64_t i = 0; i < nb; ++i) {
      if constexpr (M == Mode::softmax) s[i] += static_cast<double>(g[c * st + i] * y[c * st + i]);
      else s[i] += static_cast<double>(g[c * st + i]);
    }
  T t[kBlock];
  for (int64_t i = 0; i < nb; ++i) t[i] = static_cast<T>(s[i]);
  for (int64_t c = 0; c < l.D; ++c)
    for (int64_t i = 0; i < nb; ++i) {
      const int64_t p = c * st + i;
      if constexpr (M == Mode::softmax) gx[p] = y[p] * (g[p] - t[i]);
      else gx[p] = g[p] - vexp<T>(y[p]) * t[i];
    }
}

// Runs `block(offset, nb)` over every (outer, position block); tasks sized by element count.
template <class F>
void for_blocks(const Layout& l, const F& block) {
  const int64_t bpo = (l.inner + kBlock - 1) / kBlock;  // blocks per outer slice
  const int64_t tasks = l.outer * bpo;
  const int64_t per_task = std::max<int64_t>(1, l.D * std::min(l.inner, kBlock));
  const int64_t grain = std::max<int64_t>(1, kPointwiseGrain / per_task);
  parallel_for(0, tasks, grain, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t o = t / bpo, i0 = (t % bpo) * kBlock;
      block(o * l.D * l.inner + i0, std::min(kBlock, l.inner - i0));
    }
  });
}

template <Mode M>
Tensor softmax_impl(const Tensor& x_in, int64_t dim_in, const char* name, const char* bname) {
  const int64_t dim = x_in.dim() == 0 ? 0 : wrap_dim(dim_in, x_in.dim(), name);
  Tensor x = x_in.contiguous();
  Layout l = x.dim() == 0 ? Layout{} : layout_of(x.sizes(), dim);
  Tensor y = empty(x.sizes(), {x.dtype(), x.device()});
  if (x.device().is_cuda()) {
    softmax_forward_cuda(x, l.outer, l.D, l.inner, M == Mode::log_softmax, y);
  } else dispatch_floating(x.dtype(), name, [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data_ptr<T>();
    T* yp = y.data_ptr<T>();
    if (l.D == 0 || x.numel() == 0) return;
    for_blocks(l, [&](int64_t off, int64_t nb) { forward_block<T, M>(xp + off, yp + off, l, nb); });
  });
  autograd::record(bname, {x_in}, {y}, {y}, [l](const BackwardContext& ctx) -> std::vector<Tensor> {
    const Tensor& y = ctx.saved(0);
    Tensor g = ctx.grad_output(0).contiguous();
    Tensor gx = empty(y.sizes(), {y.dtype(), y.device()});
    if (y.device().is_cuda()) {
      softmax_backward_cuda(y, g, l.outer, l.D, l.inner, M == Mode::log_softmax, gx);
      return std::vector<Tensor>{gx};
    }
    dispatch_floating(y.dtype(), "softmax backward", [&](auto tag) {
      using T = decltype(tag);
      const T* yp = y.data_ptr<T>();
      const T* gp = g.data_ptr<T>();
      T* gxp = gx.data_ptr<T>();
      if (y.numel() == 0) return;
      for_blocks(l, [&](int64_t off, int64_t nb) {
        backward_block<T, M>(yp + off, gp + off, gxp + off, l, nb);
      });
    });
    return {gx};
  });
  return y;
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) {
  return softmax_impl<Mode::softmax>(x, dim, "softmax", "SoftmaxBackward");
}

Tensor log_softmax(const Tensor& x, int64_t dim) {
  return softmax_impl<Mode::log_softmax>(x, dim, "log_softmax", "LogSoftmaxBackward");
}

}  // namespace evit

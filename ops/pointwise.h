// Pointwise arithmetic, math functions, comparisons and in-place updates.
//
// Binary ops broadcast (numpy rules) and require equal dtypes and devices: there is no implicit
// type promotion. Scalars take the tensor's dtype. All floating ops are differentiable; the
// in-place ops (trailing underscore) are for tensors outside the graph (optimizer steps, running
// statistics, initialisation) and throw when used on a tensor that requires grad in grad mode.
#pragma once
#include "core/tensor.h"
#include "ops/pointwise/list.h"

namespace evit {

Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, double b);
Tensor sub(const Tensor& a, double b);
Tensor mul(const Tensor& a, double b);
Tensor div(const Tensor& a, double b);
// neg, exp, log, sqrt, rsqrt, abs (declared from ops/pointwise/list.h).
EVIT_POINTWISE_MATH(EVIT_POINTWISE_DECLARE_UNARY)
Tensor pow(const Tensor& x, double exponent);
// Clamps into [lo, hi]; the gradient is 1 strictly inside, 0 outside.
Tensor clamp(const Tensor& x, double lo, double hi);
Tensor clamp_min(const Tensor& x, double lo);
// Elementwise max/min; at ties the gradient is split equally (as PyTorch does).
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);

// Comparisons give bool tensors and no gradient.
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor eq(const Tensor& a, double b);
Tensor lt(const Tensor& a, double b);
Tensor gt(const Tensor& a, double b);
// cond ? a : b with broadcasting; cond is bool. Differentiable in a and b.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);

// In-place (no autograd): a op= b with b broadcast to a's shape. They bump a's version.
Tensor& add_(Tensor& a, const Tensor& b, double alpha = 1.0);
Tensor& add_(Tensor& a, double b);
Tensor& mul_(Tensor& a, const Tensor& b);
Tensor& mul_(Tensor& a, double b);
Tensor& copy_(Tensor& dst, const Tensor& src);
Tensor& fill_(Tensor& t, double value);
Tensor& zero_(Tensor& t);
// Overloads for temporaries (views returned by slice/select).
inline const Tensor& add_(const Tensor& a, const Tensor& b, double alpha = 1.0) {
  Tensor t = a;
  add_(t, b, alpha);
  return a;
}
inline const Tensor& copy_(const Tensor& dst, const Tensor& src) {
  Tensor t = dst;
  copy_(t, src);
  return dst;
}
inline const Tensor& fill_(const Tensor& t, double v) {
  Tensor x = t;
  fill_(x, v);
  return t;
}

// True when every element is finite (used by anomaly mode and NaN checks in training).
bool all_finite(const Tensor& t);

inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator+(const Tensor& a, double b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, double b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, double b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, double b) { return div(a, b); }
inline Tensor operator*(double a, const Tensor& b) { return mul(b, a); }
inline Tensor operator+(double a, const Tensor& b) { return add(b, a); }
inline Tensor operator-(const Tensor& x) { return neg(x); }

}  // namespace evit

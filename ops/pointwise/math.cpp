// exp, log, sqrt, rsqrt, abs, pow(scalar).
#include <cmath>

#include "ops/iter/pointwise.h"
#include "ops/pointwise.h"

namespace evit {
namespace {

struct ExpOp {
  static constexpr const char* name = "exp";
  static constexpr const char* backward_name = "ExpBackward";
  static constexpr bool uses_input = false, uses_output = true;
  template <class T> EVIT_HD T forward(T x) const { return std::exp(x); }
  template <class T> EVIT_HD T backward(T, T y, T g) const { return g * y; }
};

struct LogOp {
  static constexpr const char* name = "log";
  static constexpr const char* backward_name = "LogBackward";
  static constexpr bool uses_input = true, uses_output = false;
  template <class T> EVIT_HD T forward(T x) const { return std::log(x); }
  template <class T> EVIT_HD T backward(T x, T, T g) const { return g / x; }
};

struct SqrtOp {
  static constexpr const char* name = "sqrt";
  static constexpr const char* backward_name = "SqrtBackward";
  static constexpr bool uses_input = false, uses_output = true;
  template <class T> EVIT_HD T forward(T x) const { return std::sqrt(x); }
  template <class T> EVIT_HD T backward(T, T y, T g) const { return g / (T(2) * y); }
};

struct RsqrtOp {
  static constexpr const char* name = "rsqrt";
  static constexpr const char* backward_name = "RsqrtBackward";
  static constexpr bool uses_input = true, uses_output = true;
  template <class T> EVIT_HD T forward(T x) const { return T(1) / std::sqrt(x); }
  template <class T> EVIT_HD T backward(T x, T y, T g) const { return T(-0.5) * g * y / x; }
};

struct AbsOp {
  static constexpr const char* name = "abs";
  static constexpr const char* backward_name = "AbsBackward";
  static constexpr bool uses_input = true, uses_output = false;
  template <class T> EVIT_HD T forward(T x) const { return std::abs(x); }
  template <class T> EVIT_HD T backward(T x, T, T g) const {
    return x > T(0) ? g : (x < T(0) ? -g : T(0));
  }
};

struct PowOp {
  static constexpr const char* name = "pow";
  static constexpr const char* backward_name = "PowBackward";
  static constexpr bool uses_input = true, uses_output = false;
  double p;
  template <class T> EVIT_HD T forward(T x) const {
    return p == 2.0 ? x * x : static_cast<T>(std::pow(x, static_cast<T>(p)));
  }
  template <class T> EVIT_HD T backward(T x, T, T g) const {
    if (p == 0.0) return T(0);
    return g * static_cast<T>(p) * static_cast<T>(std::pow(x, static_cast<T>(p - 1)));
  }
};

}  // namespace

Tensor exp(const Tensor& x) { return unary_op(x, ExpOp{}); }
Tensor log(const Tensor& x) { return unary_op(x, LogOp{}); }
Tensor sqrt(const Tensor& x) { return unary_op(x, SqrtOp{}); }
Tensor rsqrt(const Tensor& x) { return unary_op(x, RsqrtOp{}); }
Tensor abs(const Tensor& x) { return unary_op(x, AbsOp{}); }
Tensor pow(const Tensor& x, double exponent) { return unary_op(x, PowOp{exponent}); }

}  // namespace evit

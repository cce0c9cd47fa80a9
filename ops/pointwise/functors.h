// The math of every pointwise op: one functor per op, compiled for the CPU (ops/pointwise/*.cpp)
// and for CUDA (ops/pointwise/pointwise.cu) from this single source. The contract of a functor
// is described in ops/iter/pointwise.h.
#pragma once
#include <cmath>

#include "core/error.h"
#include "ops/vec_exp.h"

namespace evit::pointwise {
// ---- relu
struct ReluOp {
  static constexpr const char* name = "relu";
  static constexpr const char* backward_name = "ReluBackward";
  static constexpr bool uses_input = false, uses_output = true;
  template <class T> EVIT_HD T forward(T x) const { return x > T(0) ? x : T(0); }
  template <class T> EVIT_HD T backward(T, T y, T g) const { return y > T(0) ? g : T(0); }
};

// ---- relu6
struct Relu6Op {
  static constexpr const char* name = "relu6";
  static constexpr const char* backward_name = "Relu6Backward";
  static constexpr bool uses_input = true, uses_output = false;
  template <class T> EVIT_HD T forward(T x) const {
    return x < T(0) ? T(0) : (x > T(6) ? T(6) : x);
  }
  // PyTorch (hardtanh backward): the gradient passes strictly inside (0, 6).
  template <class T> EVIT_HD T backward(T x, T, T g) const {
    return (x > T(0) && x < T(6)) ? g : T(0);
  }
};

// ---- hardswish
struct HardswishOp {
  static constexpr const char* name = "hardswish";
  static constexpr const char* backward_name = "HardswishBackward";
  static constexpr bool uses_input = true, uses_output = false;
  template <class T> EVIT_HD T forward(T x) const {
    T r = x + T(3);
    r = r < T(0) ? T(0) : (r > T(6) ? T(6) : r);
    return x * r * T(1.0 / 6.0);
  }
  // d/dx = 0 for x < -3, 1 for x > 3, (2x + 3) / 6 between (PyTorch uses the same boundaries).
  template <class T> EVIT_HD T backward(T x, T, T g) const {
    return x < T(-3) ? T(0) : (x <= T(3) ? g * (x * T(1.0 / 3.0) + T(0.5)) : g);
  }
};

// ---- gelu
struct GeluOp {
  static constexpr const char* name = "gelu";
  static constexpr const char* backward_name = "GeluBackward";
  static constexpr bool uses_input = true, uses_output = false;
  template <class T> EVIT_HD T forward(T x) const {
    return T(0.5) * x * (T(1) + std::erf(x * T(0.70710678118654752440)));
  }
  // d/dx = Phi(x) + x phi(x)
  template <class T> EVIT_HD T backward(T x, T, T g) const {
    T cdf = T(0.5) * (T(1) + std::erf(x * T(0.70710678118654752440)));
    T pdf = std::exp(T(-0.5) * x * x) * T(0.39894228040143267794);
    return g * (cdf + x * pdf);
  }
};

struct GeluTanhOp {
  static constexpr const char* name = "gelu_tanh";
  static constexpr const char* backward_name = "GeluTanhBackward";
  static constexpr bool uses_input = true, uses_output = false;
  static constexpr double kBeta = 0.79788456080286535588;  // sqrt(2/pi)
  static constexpr double kKappa = 0.044715;
  // 0.5 x (1 + tanh(u)) = x sigmoid(2u): the same function, computed through one exp that
  // vectorises (ops/vec_exp.h) and without the cancellation of 1 + tanh(u) for negative u.
  template <class T> EVIT_HD T forward(T x) const {
    T u = T(kBeta) * (x + T(kKappa) * x * x * x);
    return x / (T(1) + vexp(T(-2) * u));
  }
  // With s = sigmoid(2u): 0.5 (1 + tanh u) = s and 0.5 (1 - tanh² u) = 2 s (1 - s).
  template <class T> EVIT_HD T backward(T x, T, T g) const {
    T x2 = x * x;
    T u = T(kBeta) * (x + T(kKappa) * x2 * x);
    T s = T(1) / (T(1) + vexp(T(-2) * u));
    T du = T(kBeta) * (T(1) + T(3 * kKappa) * x2);
    return g * (s + T(2) * x * s * (T(1) - s) * du);
  }
};

// ---- silu
struct SiluOp {
  static constexpr const char* name = "silu";
  static constexpr const char* backward_name = "SiluBackward";
  static constexpr bool uses_input = true, uses_output = false;
  template <class T> EVIT_HD T forward(T x) const { return x / (T(1) + vexp(-x)); }
  template <class T> EVIT_HD T backward(T x, T, T g) const {
    T s = T(1) / (T(1) + vexp(-x));
    return g * s * (T(1) + x * (T(1) - s));
  }
};

// ---- sigmoid
struct SigmoidOp {
  static constexpr const char* name = "sigmoid";
  static constexpr const char* backward_name = "SigmoidBackward";
  static constexpr bool uses_input = false, uses_output = true;
  template <class T> EVIT_HD T forward(T x) const { return T(1) / (T(1) + vexp(-x)); }
  template <class T> EVIT_HD T backward(T, T y, T g) const { return g * y * (T(1) - y); }
};

// ---- tanh
struct TanhOp {
  static constexpr const char* name = "tanh";
  static constexpr const char* backward_name = "TanhBackward";
  static constexpr bool uses_input = false, uses_output = true;
  template <class T> EVIT_HD T forward(T x) const { return std::tanh(x); }
  template <class T> EVIT_HD T backward(T, T y, T g) const { return g * (T(1) - y * y); }
};

// ---- math
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

// ---- clamp
struct ClampOp {
  static constexpr const char* name = "clamp";
  static constexpr const char* backward_name = "ClampBackward";
  static constexpr bool uses_input = true, uses_output = false;
  double lo, hi;
  template <class T> EVIT_HD T forward(T x) const {
    return x < T(lo) ? T(lo) : (x > T(hi) ? T(hi) : x);
  }
  // PyTorch passes the gradient where lo <= x <= hi.
  template <class T> EVIT_HD T backward(T x, T, T g) const {
    return (x >= T(lo) && x <= T(hi)) ? g : T(0);
  }
};

// Ties split the gradient in half between the operands (PyTorch's rule for maximum/minimum).
struct MaximumOp {
  static constexpr const char* name = "maximum";
  static constexpr const char* backward_name = "MaximumBackward";
  static constexpr bool uses_output = false;
  template <class T> EVIT_HD T forward(T a, T b) const { return a > b ? a : b; }
  template <class T> EVIT_HD T grad_a(T a, T b, T, T g) const {
    return a > b ? g : (a == b ? g / T(2) : T(0));
  }
  template <class T> EVIT_HD T grad_b(T a, T b, T, T g) const {
    return b > a ? g : (a == b ? g / T(2) : T(0));
  }
};

struct MinimumOp {
  static constexpr const char* name = "minimum";
  static constexpr const char* backward_name = "MinimumBackward";
  static constexpr bool uses_output = false;
  template <class T> EVIT_HD T forward(T a, T b) const { return a < b ? a : b; }
  template <class T> EVIT_HD T grad_a(T a, T b, T, T g) const {
    return a < b ? g : (a == b ? g / T(2) : T(0));
  }
  template <class T> EVIT_HD T grad_b(T a, T b, T, T g) const {
    return b < a ? g : (a == b ? g / T(2) : T(0));
  }
};

// ---- arithmetic
struct MulOp {
  static constexpr const char* name = "mul";
  static constexpr const char* backward_name = "MulBackward";
  static constexpr bool uses_output = false;
  template <class T> EVIT_HD T forward(T a, T b) const { return a * b; }
  template <class T> EVIT_HD T grad_a(T, T b, T, T g) const { return g * b; }
  template <class T> EVIT_HD T grad_b(T a, T, T, T g) const { return g * a; }
};

struct DivOp {
  static constexpr const char* name = "div";
  static constexpr const char* backward_name = "DivBackward";
  static constexpr bool uses_output = true;
  template <class T> EVIT_HD T forward(T a, T b) const { return a / b; }
  template <class T> EVIT_HD T grad_a(T, T b, T, T g) const { return g / b; }
  template <class T> EVIT_HD T grad_b(T, T b, T y, T g) const { return -g * y / b; }
};

struct NegOp {
  static constexpr const char* name = "neg";
  static constexpr const char* backward_name = "NegBackward";
  static constexpr bool uses_input = false, uses_output = false;
  template <class T> EVIT_HD T forward(T x) const { return -x; }
  template <class T> EVIT_HD T backward(T, T, T g) const { return -g; }
};

// ---- forward-only binaries: add/sub (their gradients need no kernel), comparisons, where,
// and the in-place updates of optimizers and running statistics

struct AddOp {
  static constexpr const char* name = "add";
  template <class T> EVIT_HD T forward(T a, T b) const { return static_cast<T>(a + b); }
};

struct SubOp {
  static constexpr const char* name = "sub";
  template <class T> EVIT_HD T forward(T a, T b) const { return static_cast<T>(a - b); }
};

// Comparisons produce bool for operands of any dtype.
#define EVIT_COMPARISON_OP(Name, str, expr)                          \
  struct Name {                                                      \
    static constexpr const char* name = str;                         \
    static constexpr bool is_comparison = true;                      \
    template <class T> EVIT_HD bool forward(T a, T b) const { return expr; } \
  };
EVIT_COMPARISON_OP(EqOp, "eq", a == b)
EVIT_COMPARISON_OP(NeOp, "ne", a != b)
EVIT_COMPARISON_OP(LtOp, "lt", a < b)
EVIT_COMPARISON_OP(LeOp, "le", a <= b)
EVIT_COMPARISON_OP(GtOp, "gt", a > b)
EVIT_COMPARISON_OP(GeOp, "ge", a >= b)
#undef EVIT_COMPARISON_OP

struct WhereOp {
  static constexpr const char* name = "where";
  template <class T> EVIT_HD T operator()(bool c, T a, T b) const { return c ? a : b; }
};

// a += alpha * b (alpha == 1 skips the multiply so integer and exact float adds stay exact).
struct AddScaledInplaceOp {
  static constexpr const char* name = "add_";
  double alpha = 1.0;
  template <class T> EVIT_HD T forward(T x, T y) const {
    return alpha == 1.0 ? static_cast<T>(x + y) : static_cast<T>(x + static_cast<T>(alpha) * y);
  }
};

struct MulInplaceOp {
  static constexpr const char* name = "mul_";
  template <class T> EVIT_HD T forward(T x, T y) const { return static_cast<T>(x * y); }
};

}  // namespace evit::pointwise

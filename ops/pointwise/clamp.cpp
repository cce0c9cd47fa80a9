// clamp, clamp_min, maximum, minimum.
#include <algorithm>
#include <limits>

#include "ops/iter/pointwise.h"
#include "ops/pointwise.h"

namespace evit {
namespace {

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

}  // namespace

Tensor clamp(const Tensor& x, double lo, double hi) {
  EVIT_CHECK(lo <= hi, "clamp: lo ", lo, " > hi ", hi);
  return unary_op(x, ClampOp{lo, hi});
}
Tensor clamp_min(const Tensor& x, double lo) {
  return unary_op(x, ClampOp{lo, std::numeric_limits<double>::infinity()});
}
Tensor maximum(const Tensor& a, const Tensor& b) { return binary_op(a, b, MaximumOp{}); }
Tensor minimum(const Tensor& a, const Tensor& b) { return binary_op(a, b, MinimumOp{}); }

}  // namespace evit

// add, sub, mul, div, neg (and their scalar forms).
#include "ops/iter/pointwise.h"
#include "ops/pointwise.h"

namespace evit {
namespace {

// add and sub pass the gradient through (negated for sub's second operand): nothing is saved.
Tensor add_sub(const Tensor& a, const Tensor& b, bool subtract) {
  const char* name = subtract ? "sub" : "add";
  check_binary_operands(a, b, name);
  Tensor y = empty(broadcast_shapes(a.sizes(), b.sizes(), name), {a.dtype(), a.device()});
  dispatch_numeric(a.dtype(), name, [&](auto tag) {
    using T = decltype(tag);
    if (subtract)
      cpu_map<T, T, T>(y, [](T u, T v) { return static_cast<T>(u - v); }, a, b);
    else
      cpu_map<T, T, T>(y, [](T u, T v) { return static_cast<T>(u + v); }, a, b);
  });
  autograd::record(subtract ? "SubBackward" : "AddBackward", {a, b}, {y}, {},
                   [subtract](const BackwardContext& ctx) -> std::vector<Tensor> {
                     const Tensor& g = ctx.grad_output(0);
                     Tensor gb;
                     if (ctx.needs_input_grad(1)) gb = subtract ? neg(g) : g;
                     return {g, gb};
                   });
  return y;
}

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

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return add_sub(a, b, false); }
Tensor sub(const Tensor& a, const Tensor& b) { return add_sub(a, b, true); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary_op(a, b, MulOp{}); }
Tensor div(const Tensor& a, const Tensor& b) { return binary_op(a, b, DivOp{}); }
Tensor add(const Tensor& a, double b) { return add(a, scalar_like(a, b)); }
Tensor sub(const Tensor& a, double b) { return sub(a, scalar_like(a, b)); }
Tensor mul(const Tensor& a, double b) { return mul(a, scalar_like(a, b)); }
Tensor div(const Tensor& a, double b) { return div(a, scalar_like(a, b)); }
Tensor neg(const Tensor& x) { return unary_op(x, NegOp{}); }

}  // namespace evit

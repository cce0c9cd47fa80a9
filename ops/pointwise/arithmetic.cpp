// add, sub, mul, div (and their scalar forms); neg is defined from ops/pointwise/list.h.
#include "ops/iter/pointwise.h"
#include "ops/pointwise/functors.h"
#include "ops/pointwise.h"

namespace evit {
namespace {
using namespace pointwise;

// add and sub pass the gradient through (negated for sub's second operand): nothing is saved.
Tensor add_sub(const Tensor& a, const Tensor& b, bool subtract) {
  const char* name = subtract ? "sub" : "add";
  check_binary_operands(a, b, name);
  Tensor y = empty(broadcast_shapes(a.sizes(), b.sizes(), name), {a.dtype(), a.device()});
  if (subtract)
    binary_forward_into(y, a, b, SubOp{});
  else
    binary_forward_into(y, a, b, AddOp{});
  autograd::record(subtract ? "SubBackward" : "AddBackward", {a, b}, {y}, {},
                   [subtract](const BackwardContext& ctx) -> std::vector<Tensor> {
                     const Tensor& g = ctx.grad_output(0);
                     Tensor gb;
                     if (ctx.needs_input_grad(1)) gb = subtract ? neg(g) : g;
                     return {g, gb};
                   });
  return y;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return add_sub(a, b, false); }
Tensor sub(const Tensor& a, const Tensor& b) { return add_sub(a, b, true); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary_op(a, b, MulOp{}); }
Tensor div(const Tensor& a, const Tensor& b) { return binary_op(a, b, DivOp{}); }
Tensor add(const Tensor& a, double b) { return add(a, scalar_like(a, b)); }
Tensor sub(const Tensor& a, double b) { return sub(a, scalar_like(a, b)); }
Tensor mul(const Tensor& a, double b) { return mul(a, scalar_like(a, b)); }
Tensor div(const Tensor& a, double b) { return div(a, scalar_like(a, b)); }

}  // namespace evit

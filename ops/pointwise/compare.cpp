// Comparisons (bool results, no gradient) and where().
#include "ops/iter/pointwise.h"
#include "ops/pointwise.h"
#include "ops/pointwise/functors.h"
#include "ops/pointwise/cuda_slots.h"

namespace evit {
namespace {
using namespace pointwise;

template <class Op>
Tensor compare(const Tensor& a, const Tensor& b, Op op) {
  check_binary_operands(a, b, Op::name);
  Tensor y = empty(broadcast_shapes(a.sizes(), b.sizes(), Op::name), {DType::boolean, a.device()});
  binary_forward_into(y, a, b, op);
  return y;
}

}  // namespace

Tensor eq(const Tensor& a, const Tensor& b) { return compare(a, b, EqOp{}); }
Tensor ne(const Tensor& a, const Tensor& b) { return compare(a, b, NeOp{}); }
Tensor lt(const Tensor& a, const Tensor& b) { return compare(a, b, LtOp{}); }
Tensor le(const Tensor& a, const Tensor& b) { return compare(a, b, LeOp{}); }
Tensor gt(const Tensor& a, const Tensor& b) { return compare(a, b, GtOp{}); }
Tensor ge(const Tensor& a, const Tensor& b) { return compare(a, b, GeOp{}); }
Tensor eq(const Tensor& a, double b) { return eq(a, scalar_like(a, b)); }
Tensor lt(const Tensor& a, double b) { return lt(a, scalar_like(a, b)); }
Tensor gt(const Tensor& a, double b) { return gt(a, scalar_like(a, b)); }

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  EVIT_CHECK(cond.dtype() == DType::boolean, "where: condition must be bool, got ", cond.desc());
  check_binary_operands(a, b, "where");
  EVIT_CHECK(cond.device() == a.device(), "where: condition is on ", cond.device().str(),
             ", values on ", a.device().str());
  Shape shape = broadcast_shapes(broadcast_shapes(cond.sizes(), a.sizes(), "where"), b.sizes(),
                                 "where");
  Tensor y = empty(shape, {a.dtype(), a.device()});
  if (y.device().is_cuda()) {
    where_cuda(y, cond, a, b);
  } else {
    dispatch_all(a.dtype(), "where", [&](auto tag) {
      using T = decltype(tag);
      cpu_map<T, bool, T, T>(y, WhereOp{}, cond, a, b);
    });
  }
  autograd::record("WhereBackward", {a, b}, {y}, {cond},
                   [](const BackwardContext& ctx) -> std::vector<Tensor> {
                     const Tensor& g = ctx.grad_output(0);
                     const Tensor& c = ctx.saved(0);
                     Tensor zero = scalar_like(g, 0.0);
                     Tensor ga, gb;
                     if (ctx.needs_input_grad(0)) ga = where(c, g, zero);
                     if (ctx.needs_input_grad(1)) gb = where(c, zero, g);
                     return {ga, gb};
                   });
  return y;
}

}  // namespace evit

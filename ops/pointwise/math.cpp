// pow(scalar) (the plain math functions are defined from ops/pointwise/list.h in unary.cpp).
#include "ops/iter/pointwise.h"
#include "ops/pointwise/functors.h"
#include "ops/pointwise.h"

namespace evit {
using namespace pointwise;

Tensor pow(const Tensor& x, double exponent) { return unary_op(x, PowOp{exponent}); }

}  // namespace evit

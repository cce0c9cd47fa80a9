// exp, log, sqrt, rsqrt, abs, pow(scalar).
#include "ops/iter/pointwise.h"
#include "ops/pointwise/functors.h"
#include "ops/pointwise.h"

namespace evit {
using namespace pointwise;

Tensor exp(const Tensor& x) { return unary_op(x, ExpOp{}); }
Tensor log(const Tensor& x) { return unary_op(x, LogOp{}); }
Tensor sqrt(const Tensor& x) { return unary_op(x, SqrtOp{}); }
Tensor rsqrt(const Tensor& x) { return unary_op(x, RsqrtOp{}); }
Tensor abs(const Tensor& x) { return unary_op(x, AbsOp{}); }
Tensor pow(const Tensor& x, double exponent) { return unary_op(x, PowOp{exponent}); }

}  // namespace evit

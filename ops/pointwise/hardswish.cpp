#include "ops/activation.h"
#include "ops/iter/pointwise.h"
#include "ops/pointwise/functors.h"

namespace evit {
using namespace pointwise;

Tensor hardswish(const Tensor& x) { return unary_op(x, HardswishOp{}); }

}  // namespace evit

#include "ops/activation.h"
#include "ops/iter/pointwise.h"
#include "ops/pointwise/functors.h"

namespace evit {
using namespace pointwise;

Tensor sigmoid(const Tensor& x) { return unary_op(x, SigmoidOp{}); }

}  // namespace evit

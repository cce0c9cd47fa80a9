#include "ops/activation.h"
#include "ops/iter/pointwise.h"
#include "ops/pointwise/functors.h"

namespace evit {
using namespace pointwise;

Tensor relu6(const Tensor& x) { return unary_op(x, Relu6Op{}); }

}  // namespace evit

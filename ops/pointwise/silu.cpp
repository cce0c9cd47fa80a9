#include "ops/activation.h"
#include "ops/iter/pointwise.h"
#include "ops/pointwise/functors.h"

namespace evit {
using namespace pointwise;

Tensor silu(const Tensor& x) { return unary_op(x, SiluOp{}); }

}  // namespace evit

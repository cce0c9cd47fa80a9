// GELU, exact (erf) and the tanh approximation EfficientViT's backbones use.
#include "ops/activation.h"
#include "ops/iter/pointwise.h"
#include "ops/pointwise/functors.h"

namespace evit {
using namespace pointwise;

Tensor gelu(const Tensor& x) { return unary_op(x, GeluOp{}); }
Tensor gelu_tanh(const Tensor& x) { return unary_op(x, GeluTanhOp{}); }

}  // namespace evit

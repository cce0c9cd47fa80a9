// The plain unary ops of ops/pointwise/list.h: each is its functor on the generic unary op.
#include "ops/activation.h"
#include "ops/iter/pointwise.h"
#include "ops/pointwise.h"
#include "ops/pointwise/functors.h"
#include "ops/pointwise/list.h"

namespace evit {
using namespace pointwise;

#define EVIT_DEFINE_UNARY(fn, Op) \
  Tensor fn(const Tensor& x) { return unary_op(x, Op{}); }
EVIT_POINTWISE_ACTIVATIONS(EVIT_DEFINE_UNARY)
EVIT_POINTWISE_MATH(EVIT_DEFINE_UNARY)
#undef EVIT_DEFINE_UNARY

Tensor apply_activation(const Tensor& x, ActivationKind act) {
  switch (act) {
    case ActivationKind::none: return x;
    case ActivationKind::relu: return relu(x);
    case ActivationKind::relu6: return relu6(x);
    case ActivationKind::hardswish: return hardswish(x);
    case ActivationKind::silu: return silu(x);
    case ActivationKind::gelu: return gelu(x);
    case ActivationKind::gelu_tanh: return gelu_tanh(x);
  }
  EVIT_THROW("apply_activation: unknown activation kind ", static_cast<int>(act));
}

}  // namespace evit

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

}  // namespace evit

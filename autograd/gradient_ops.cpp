#include "autograd/gradient_ops.h"

#include "core/error.h"

namespace evit {
namespace {
GradientOps& storage() {
  static GradientOps ops;
  return ops;
}
}  // namespace

void set_gradient_ops(const GradientOps& ops) { storage() = ops; }

const GradientOps& gradient_ops() {
  const GradientOps& ops = storage();
  EVIT_CHECK(ops.add && ops.add_ && ops.sum_to && ops.all_finite,
             "autograd: no gradient arithmetic installed (the ops library is not linked in)");
  return ops;
}

}  // namespace evit

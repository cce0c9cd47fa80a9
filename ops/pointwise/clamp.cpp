// clamp, clamp_min, maximum, minimum.
#include <algorithm>
#include <limits>

#include "ops/iter/pointwise.h"
#include "ops/pointwise/functors.h"
#include "ops/pointwise.h"

namespace evit {
using namespace pointwise;

Tensor clamp(const Tensor& x, double lo, double hi) {
  EVIT_CHECK(lo <= hi, "clamp: lo ", lo, " > hi ", hi);
  return unary_op(x, ClampOp{lo, hi});
}
Tensor clamp_min(const Tensor& x, double lo) {
  return unary_op(x, ClampOp{lo, std::numeric_limits<double>::infinity()});
}
Tensor maximum(const Tensor& a, const Tensor& b) { return binary_op(a, b, MaximumOp{}); }
Tensor minimum(const Tensor& a, const Tensor& b) { return binary_op(a, b, MinimumOp{}); }

}  // namespace evit

#include <cmath>

#include "ops/activation.h"
#include "ops/iter/pointwise.h"

namespace evit {
namespace {
struct SigmoidOp {
  static constexpr const char* name = "sigmoid";
  static constexpr const char* backward_name = "SigmoidBackward";
  static constexpr bool uses_input = false, uses_output = true;
  template <class T> EVIT_HD T forward(T x) const { return T(1) / (T(1) + std::exp(-x)); }
  template <class T> EVIT_HD T backward(T, T y, T g) const { return g * y * (T(1) - y); }
};
}  // namespace

Tensor sigmoid(const Tensor& x) { return unary_op(x, SigmoidOp{}); }

}  // namespace evit

#include "ops/activation.h"
#include "ops/iter/pointwise.h"

namespace evit {
namespace {
struct ReluOp {
  static constexpr const char* name = "relu";
  static constexpr const char* backward_name = "ReluBackward";
  static constexpr bool uses_input = false, uses_output = true;
  template <class T> EVIT_HD T forward(T x) const { return x > T(0) ? x : T(0); }
  template <class T> EVIT_HD T backward(T, T y, T g) const { return y > T(0) ? g : T(0); }
};
}  // namespace

Tensor relu(const Tensor& x) { return unary_op(x, ReluOp{}); }

}  // namespace evit

#include "ops/activation.h"
#include "ops/iter/pointwise.h"

namespace evit {
namespace {
struct Relu6Op {
  static constexpr const char* name = "relu6";
  static constexpr const char* backward_name = "Relu6Backward";
  static constexpr bool uses_input = true, uses_output = false;
  template <class T> EVIT_HD T forward(T x) const {
    return x < T(0) ? T(0) : (x > T(6) ? T(6) : x);
  }
  // PyTorch (hardtanh backward): the gradient passes strictly inside (0, 6).
  template <class T> EVIT_HD T backward(T x, T, T g) const {
    return (x > T(0) && x < T(6)) ? g : T(0);
  }
};
}  // namespace

Tensor relu6(const Tensor& x) { return unary_op(x, Relu6Op{}); }

}  // namespace evit

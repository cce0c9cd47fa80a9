#include "ops/activation.h"
#include "ops/iter/pointwise.h"

namespace evit {
namespace {
struct HardswishOp {
  static constexpr const char* name = "hardswish";
  static constexpr const char* backward_name = "HardswishBackward";
  static constexpr bool uses_input = true, uses_output = false;
  template <class T> EVIT_HD T forward(T x) const {
    T r = x + T(3);
    r = r < T(0) ? T(0) : (r > T(6) ? T(6) : r);
    return x * r * T(1.0 / 6.0);
  }
  // d/dx = 0 for x < -3, 1 for x > 3, (2x + 3) / 6 between (PyTorch uses the same boundaries).
  template <class T> EVIT_HD T backward(T x, T, T g) const {
    return x < T(-3) ? T(0) : (x <= T(3) ? g * (x * T(1.0 / 3.0) + T(0.5)) : g);
  }
};
}  // namespace

Tensor hardswish(const Tensor& x) { return unary_op(x, HardswishOp{}); }

}  // namespace evit

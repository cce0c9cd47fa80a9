#include <cmath>

#include "ops/activation.h"
#include "ops/iter/pointwise.h"

namespace evit {
namespace {
struct SiluOp {
  static constexpr const char* name = "silu";
  static constexpr const char* backward_name = "SiluBackward";
  static constexpr bool uses_input = true, uses_output = false;
  template <class T> EVIT_HD T forward(T x) const { return x / (T(1) + std::exp(-x)); }
  template <class T> EVIT_HD T backward(T x, T, T g) const {
    T s = T(1) / (T(1) + std::exp(-x));
    return g * s * (T(1) + x * (T(1) - s));
  }
};
}  // namespace

Tensor silu(const Tensor& x) { return unary_op(x, SiluOp{}); }

}  // namespace evit

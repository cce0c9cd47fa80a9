// GELU, exact (erf) and the tanh approximation EfficientViT's backbones use.
#include <cmath>

#include "ops/activation.h"
#include "ops/iter/pointwise.h"

namespace evit {
namespace {
struct GeluOp {
  static constexpr const char* name = "gelu";
  static constexpr const char* backward_name = "GeluBackward";
  static constexpr bool uses_input = true, uses_output = false;
  template <class T> EVIT_HD T forward(T x) const {
    return T(0.5) * x * (T(1) + std::erf(x * T(0.70710678118654752440)));
  }
  // d/dx = Phi(x) + x phi(x)
  template <class T> EVIT_HD T backward(T x, T, T g) const {
    T cdf = T(0.5) * (T(1) + std::erf(x * T(0.70710678118654752440)));
    T pdf = std::exp(T(-0.5) * x * x) * T(0.39894228040143267794);
    return g * (cdf + x * pdf);
  }
};

struct GeluTanhOp {
  static constexpr const char* name = "gelu_tanh";
  static constexpr const char* backward_name = "GeluTanhBackward";
  static constexpr bool uses_input = true, uses_output = false;
  static constexpr double kBeta = 0.79788456080286535588;  // sqrt(2/pi)
  static constexpr double kKappa = 0.044715;
  template <class T> EVIT_HD T forward(T x) const {
    T inner = T(kBeta) * (x + T(kKappa) * x * x * x);
    return T(0.5) * x * (T(1) + std::tanh(inner));
  }
  template <class T> EVIT_HD T backward(T x, T, T g) const {
    T x2 = x * x;
    T inner = T(kBeta) * (x + T(kKappa) * x2 * x);
    T t = std::tanh(inner);
    T dinner = T(kBeta) * (T(1) + T(3 * kKappa) * x2);
    return g * (T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * dinner);
  }
};
}  // namespace

Tensor gelu(const Tensor& x) { return unary_op(x, GeluOp{}); }
Tensor gelu_tanh(const Tensor& x) { return unary_op(x, GeluTanhOp{}); }

}  // namespace evit

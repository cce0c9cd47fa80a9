// The pointwise functor of an ActivationKind, for kernels that apply an activation inside their
// own loops (ops/norm/batch_norm.cpp, ops/conv): the same math as the activation op itself.
#pragma once
#include "core/error.h"
#include "ops/activation.h"
#include "ops/pointwise/functors.h"

namespace evit {

// The identity in the functor interface of ops/pointwise/functors.h.
struct NoActivation {
  static constexpr bool uses_output = false;
  template <class T> T forward(T x) const { return x; }
  template <class T> T backward(T, T, T g) const { return g; }
};

// Calls f with the functor of `act` (NoActivation for none).
template <class F>
void with_activation_functor(ActivationKind act, F&& f) {
  switch (act) {
    case ActivationKind::none: return f(NoActivation{});
    case ActivationKind::relu: return f(pointwise::ReluOp{});
    case ActivationKind::relu6: return f(pointwise::Relu6Op{});
    case ActivationKind::hardswish: return f(pointwise::HardswishOp{});
    case ActivationKind::silu: return f(pointwise::SiluOp{});
    case ActivationKind::gelu: return f(pointwise::GeluOp{});
    case ActivationKind::gelu_tanh: return f(pointwise::GeluTanhOp{});
  }
  EVIT_THROW("unknown activation kind ", static_cast<int>(act));
}

}  // namespace evit

// Activation functions (pointwise, differentiable, f32/f64). The plain ones are declared from
// ops/pointwise/list.h (relu, relu6, hardswish = x·relu6(x + 3)/6, silu, sigmoid, tanh); their math
// is in ops/pointwise/functors.h.
#pragma once
#include "core/tensor.h"
#include "ops/pointwise/list.h"

namespace evit {

EVIT_POINTWISE_ACTIVATIONS(EVIT_POINTWISE_DECLARE_UNARY)
// Exact: 0.5 x (1 + erf(x / sqrt 2)).
Tensor gelu(const Tensor& x);
// Tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), used by EfficientViT.
Tensor gelu_tanh(const Tensor& x);

// The activations other ops can apply inside their own passes (batch_norm_act, conv2d_act);
// gelu: the erf form, gelu_tanh: the tanh approximation.
enum class ActivationKind { none, relu, relu6, hardswish, silu, gelu, gelu_tanh };
// The activation as its own op (x itself for none).
Tensor apply_activation(const Tensor& x, ActivationKind act);

}  // namespace evit

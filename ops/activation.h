// Activation functions (pointwise, differentiable, f32/f64). Each lives in its own file under
// ops/pointwise/.
#pragma once
#include "core/tensor.h"

namespace evit {

Tensor relu(const Tensor& x);
Tensor relu6(const Tensor& x);
// x * relu6(x + 3) / 6
Tensor hardswish(const Tensor& x);
// Exact: 0.5 x (1 + erf(x / sqrt 2)).
Tensor gelu(const Tensor& x);
// Tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), used by EfficientViT.
Tensor gelu_tanh(const Tensor& x);
Tensor silu(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);

}  // namespace evit

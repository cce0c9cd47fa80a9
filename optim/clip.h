// Gradient clipping, like torch.nn.utils.clip_grad_norm_ (norm_type 2) and clip_grad_value_.
//
// The global norm is accumulated in f64 in a fixed order — parameters in the given order, each
// parameter's elements in fixed chunks combined in chunk order — so it does not depend on the
// thread count. Parameters without a gradient are skipped, as in PyTorch.
#pragma once
#include <vector>

#include "core/tensor.h"
#include "nn/module.h"

namespace evit::optim {

// sqrt(sum over all gradients of g^2), in f64.
double grad_norm(const std::vector<Tensor>& params);

// Scales every gradient by min(1, max_norm / (total_norm + 1e-6)) and returns the total norm
// before clipping. A non-finite total norm throws when error_if_nonfinite, otherwise (torch's
// default) the gradients are scaled by the non-finite factor just as torch does, and the caller
// sees the norm it returned.
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm, bool error_if_nonfinite = false);
double clip_grad_norm(const nn::Module& m, double max_norm, bool error_if_nonfinite = false);

// Clamps every gradient element to [-clip_value, clip_value] (clip_value >= 0). NaN stays NaN.
void clip_grad_value(const std::vector<Tensor>& params, double clip_value);
void clip_grad_value(const nn::Module& m, double clip_value);

}  // namespace evit::optim

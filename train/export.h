// Deployment export: BatchNorm folding.
//
// An eval-mode BatchNorm after a convolution is a per-channel affine map, so it can be merged into
// the convolution: with s = gamma / sqrt(running_var + eps),
//   W' = W * s (per output channel),  b' = beta - running_mean * s (+ b * s when the conv has a bias).
// The folded network computes the eval-mode outputs of the original one (up to rounding) with one
// pass less over every activation, and its checkpoint has no norm entries. Only ConvLayers whose
// norm is BatchNorm2d are folded; other norms (LayerNorm, ...) depend on the input and stay.
// Folding always uses the running statistics, i.e. it reproduces eval mode, whatever the model's mode.
#pragma once
#include <cstdint>

#include "core/safetensors.h"
#include "nn/conv.h"
#include "nn/module.h"
#include "nn/norm.h"

namespace evit::train {

struct FoldedConv {
  Tensor weight;  // [out, in/groups, k, k], the conv weight's dtype and device
  Tensor bias;    // [out]
};
// The folded weight and bias of conv followed by bn (computed in f64). Checks that the channel
// counts agree.
FoldedConv fold_conv_bn(const nn::Conv2d& conv, const nn::BatchNorm2d& bn);

// The model's state dict with every foldable ConvLayer folded: "<layer>.norm.*" entries removed,
// "<layer>.conv.weight" replaced and "<layer>.conv.bias" set. The model is not changed. The result
// loads strictly into a model on which fold_batchnorm() has run.
TensorMap export_folded(nn::Module& model);

// Folds in place: each ConvLayer with a BatchNorm2d gets the folded conv parameters (a bias
// parameter is added where the conv had none) and loses its norm (the "norm" child is removed, so
// state_dict() equals export_folded() of the original). Returns the number of layers folded.
int64_t fold_batchnorm(nn::Module& model);

}  // namespace evit::train

// Node patterns that several emitters share (emit_nn.cpp defines them).
#pragma once
#include <string>

#include "nn/conv.h"
#include "ops/resize.h"
#include "train/onnx/onnx_emitter.h"

namespace evit::train {

// A Conv node with the given weights (a folded BatchNorm's, or the layer's own) named
// path.weight / path.bias; `example` is evit's output.
OnnxValue emit_onnx_conv(OnnxEmitter& e, const std::string& path, const OnnxValue& x, const nn::Conv2dOptions& o,
                         const Tensor& weight, const Tensor& bias, const Tensor& example);

// (x - mean) / sqrt(var + eps) · weight + bias over one axis, with biased variance: LayerNorm
// where no LayerNormalization op exists (before opset 17) or over the channel axis.
OnnxValue emit_onnx_normalize(OnnxEmitter& e, const std::string& path, const OnnxValue& x, int64_t axis, double eps,
                              const std::string& weight, const std::string& bias, const Tensor& example);

// A Resize node to example's spatial size, with PyTorch's interpolate conventions.
OnnxValue emit_onnx_resize(OnnxEmitter& e, const std::string& path, const OnnxValue& x, InterpolateMode mode,
                           bool align_corners, const Tensor& example);

}  // namespace evit::train

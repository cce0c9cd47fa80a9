// ONNX emitters of the nn layers: convolution, linear, the norms, resizing, the activations and
// the modules that are identities at inference (dropout, drop path).
//
// Activations follow what torch.onnx writes for the same opset, so an engine sees familiar
// patterns: HardSwish from opset 14 (HardSigmoid·x before), GELU spelled out with Erf or Tanh,
// LayerNormalization from opset 17 (mean/variance nodes before).
#include <cmath>
#include <numbers>

#include "autograd/grad_mode.h"
#include "core/error.h"
#include "nn/activation.h"
#include "nn/container.h"
#include "nn/conv.h"
#include "nn/dropout.h"
#include "nn/linear.h"
#include "nn/norm.h"
#include "nn/upsample.h"
#include "ops/activation.h"
#include "ops/pointwise.h"
#include "ops/shape.h"
#include "train/onnx/onnx_emitter.h"
#include "train/onnx/onnx_nn.h"

namespace evit::train {
namespace {

// ---- convolution and linear ----

OnnxValue emit_conv2d(nn::Module& m, const std::string& path, const OnnxValue& x, OnnxEmitter& e) {
  auto& conv = dynamic_cast<nn::Conv2d&>(m);
  return emit_onnx_conv(e, path, x, conv.options(), conv.weight, conv.bias, conv.forward(x.example));
}

OnnxValue emit_conv_transpose2d(nn::Module& m, const std::string& path, const OnnxValue& x, OnnxEmitter& e) {
  auto& conv = dynamic_cast<nn::ConvTranspose2d&>(m);
  const auto& o = conv.options();
  EVIT_CHECK(o.output_padding == 0, "ONNX export: ConvTranspose2d '", path, "' has output padding ", o.output_padding,
             ", which the export does not write");
  const int64_t k = o.kernel_size;
  std::vector<std::string> inputs{x.name, e.weight(path + ".weight", conv.weight)};
  if (conv.bias.defined()) inputs.push_back(e.weight(path + ".bias", conv.bias));
  return e.node("ConvTranspose", inputs, conv.forward(x.example), x.type, path,
                {{"kernel_shape", std::vector<int64_t>{k, k}},
                 {"strides", std::vector<int64_t>{o.stride, o.stride}},
                 {"pads", std::vector<int64_t>{o.padding, o.padding, o.padding, o.padding}},
                 {"dilations", std::vector<int64_t>{o.dilation, o.dilation}},
                 {"group", o.groups}});
}

OnnxValue emit_linear(nn::Module& m, const std::string& path, const OnnxValue& x, OnnxEmitter& e) {
  auto& linear = dynamic_cast<nn::Linear&>(m);
  EVIT_CHECK(x.example.dim() == 2, "ONNX export: Linear '", path, "' gets ", x.example.desc(),
             "; the export handles [batch, features] inputs");
  std::vector<std::string> inputs{x.name, e.weight(path + ".weight", linear.weight)};
  if (linear.bias.defined()) inputs.push_back(e.weight(path + ".bias", linear.bias));
  return e.node("Gemm", inputs, linear.forward(x.example), x.type, path, {{"transB", int64_t{1}}});
}

// ---- norms ----

OnnxValue emit_batch_norm(nn::Module& m, const std::string& path, const OnnxValue& x, OnnxEmitter& e) {
  auto& bn = dynamic_cast<nn::BatchNorm2d&>(m);
  return e.node("BatchNormalization",
                {x.name, e.weight(path + ".weight", bn.weight), e.weight(path + ".bias", bn.bias),
                 e.weight(path + ".running_mean", bn.running_mean), e.weight(path + ".running_var", bn.running_var)},
                bn.forward(x.example), x.type, path, {{"epsilon", bn.eps}});
}

OnnxValue emit_layer_norm(nn::Module& m, const std::string& path, const OnnxValue& x, OnnxEmitter& e) {
  auto& ln = dynamic_cast<nn::LayerNorm&>(m);
  const Tensor y = ln.forward(x.example);
  const std::string w = e.weight(path + ".weight", ln.weight), b = e.weight(path + ".bias", ln.bias);
  if (e.opset() >= 17)
    return e.node("LayerNormalization", {x.name, w, b}, y, x.type, path,
                  {{"axis", int64_t{-1}}, {"epsilon", ln.eps}});
  return emit_onnx_normalize(e, path, x, -1, ln.eps, w, b, y);
}

OnnxValue emit_layer_norm2d(nn::Module& m, const std::string& path, const OnnxValue& x, OnnxEmitter& e) {
  auto& ln = dynamic_cast<nn::LayerNorm2d&>(m);
  // Per pixel over the channels: weight and bias broadcast as [C, 1, 1].
  const int64_t c = ln.weight.numel();
  const std::string w = e.weight(path + ".weight", reshape(ln.weight, {c, 1, 1}));
  const std::string b = e.weight(path + ".bias", reshape(ln.bias, {c, 1, 1}));
  return emit_onnx_normalize(e, path, x, 1, ln.eps, w, b, ln.forward(x.example));
}

// ---- resizing ----

OnnxValue emit_upsample(nn::Module& m, const std::string& path, const OnnxValue& x, OnnxEmitter& e) {
  auto& up = dynamic_cast<nn::UpSample&>(m);
  const Tensor y = up.forward(x.example);
  if (y.sizes() == x.example.sizes()) return x;  // identity, as in evit
  return emit_onnx_resize(e, path, x, up.mode(), up.align_corners(), y);
}

// ---- activations ----

OnnxValue emit_relu(nn::Module&, const std::string& path, const OnnxValue& x, OnnxEmitter& e) {
  return e.unary("Relu", x, relu(x.example), path);
}

OnnxValue emit_relu6(nn::Module&, const std::string& path, const OnnxValue& x, OnnxEmitter& e) {
  return e.node("Clip", {x.name, e.scalar(0, x.type), e.scalar(6, x.type)}, relu6(x.example), x.type, path);
}

OnnxValue emit_hardswish(nn::Module&, const std::string& path, const OnnxValue& x, OnnxEmitter& e) {
  const Tensor y = hardswish(x.example);
  if (e.opset() >= 14) return e.unary("HardSwish", x, y, path);
  // x · clip(x/6 + 1/2, 0, 1)
  OnnxValue gate = e.unary("HardSigmoid", x, y, path, {{"alpha", 1.0 / 6.0}, {"beta", 0.5}});
  return e.node("Mul", {x.name, gate.name}, y, x.type, path);
}

OnnxValue emit_gelu(nn::Module& m, const std::string& path, const OnnxValue& x, OnnxEmitter& e) {
  const bool tanh_form = dynamic_cast<nn::Lambda&>(m).variant() == "tanh";
  const Tensor y = tanh_form ? gelu_tanh(x.example) : gelu(x.example);
  OnnxValue inner;
  if (tanh_form) {
    // tanh(sqrt(2/pi) · (x + 0.044715 x³))
    OnnxValue cube = e.node("Mul", {x.name, x.name}, y, x.type, path);
    cube = e.node("Mul", {cube.name, x.name}, y, x.type, path);
    OnnxValue u = e.node("Mul", {cube.name, e.scalar(0.044715, x.type)}, y, x.type, path);
    u = e.node("Add", {x.name, u.name}, y, x.type, path);
    u = e.node("Mul", {u.name, e.scalar(std::sqrt(2.0 / std::numbers::pi), x.type)}, y, x.type, path);
    inner = e.unary("Tanh", u, y, path);
  } else {
    // erf(x / sqrt 2)
    OnnxValue u = e.node("Mul", {x.name, e.scalar(1.0 / std::numbers::sqrt2, x.type)}, y, x.type, path);
    inner = e.unary("Erf", u, y, path);
  }
  // 0.5 · x · (1 + inner)
  OnnxValue s = e.node("Add", {inner.name, e.scalar(1.0, x.type)}, y, x.type, path);
  s = e.node("Mul", {x.name, s.name}, y, x.type, path);
  return e.node("Mul", {s.name, e.scalar(0.5, x.type)}, y, x.type, path);
}

OnnxValue emit_silu(nn::Module&, const std::string& path, const OnnxValue& x, OnnxEmitter& e) {
  const Tensor y = silu(x.example);
  OnnxValue s = e.unary("Sigmoid", x, y, path);
  return e.node("Mul", {x.name, s.name}, y, x.type, path);
}

OnnxValue emit_sigmoid(nn::Module&, const std::string& path, const OnnxValue& x, OnnxEmitter& e) {
  return e.unary("Sigmoid", x, sigmoid(x.example), path);
}

OnnxValue emit_tanh(nn::Module&, const std::string& path, const OnnxValue& x, OnnxEmitter& e) {
  return e.unary("Tanh", x, tanh(x.example), path);
}

OnnxValue emit_identity(nn::Module&, const std::string&, const OnnxValue& x, OnnxEmitter&) { return x; }

OnnxValue emit_global_pool(nn::Module& m, const std::string& path, const OnnxValue& x, OnnxEmitter& e) {
  const Tensor y = m.forward(x.example);
  EVIT_CHECK(y.dim() == 4 && y.size(2) == 1 && y.size(3) == 1, "ONNX export: pooling '", path, "' gives ",
             y.desc(), "; the export handles global (1x1) pooling");
  return e.unary("GlobalAveragePool", x, y, path);
}

OnnxValue emit_chain(nn::Module& m, const std::string& path, const OnnxValue& x, OnnxEmitter& e) {
  return e.emit_children(m, path, x);
}

const OnnxEmitterRegistrar registrars[] = {
    {typeid(nn::Conv2d), emit_conv2d},
    {typeid(nn::ConvTranspose2d), emit_conv_transpose2d},
    {typeid(nn::Linear), emit_linear},
    {typeid(nn::BatchNorm2d), emit_batch_norm},
    {typeid(nn::LayerNorm), emit_layer_norm},
    {typeid(nn::LayerNorm2d), emit_layer_norm2d},
    {typeid(nn::UpSample), emit_upsample},
    {typeid(nn::Sequential), emit_chain},
    // Inference: dropout and stochastic depth pass their input through.
    {typeid(nn::Dropout), emit_identity},
    {typeid(nn::Dropout2d), emit_identity},
    {typeid(nn::DropPath), emit_identity},
    {std::string("ReLU"), emit_relu},
    {std::string("ReLU6"), emit_relu6},
    {std::string("Hardswish"), emit_hardswish},
    {std::string("GELU"), emit_gelu},
    {std::string("SiLU"), emit_silu},
    {std::string("Sigmoid"), emit_sigmoid},
    {std::string("Tanh"), emit_tanh},
    {std::string("Identity"), emit_identity},
    {std::string("AdaptiveAvgPool2d"), emit_global_pool},
};

}  // namespace

OnnxValue emit_onnx_conv(OnnxEmitter& e, const std::string& path, const OnnxValue& x, const nn::Conv2dOptions& o,
                         const Tensor& weight, const Tensor& bias, const Tensor& example) {
  const int64_t k = o.kernel_size;
  std::vector<std::string> inputs{x.name, e.weight(path + ".weight", weight)};
  if (bias.defined()) inputs.push_back(e.weight(path + ".bias", bias));
  return e.node("Conv", inputs, example, x.type, path,
                {{"kernel_shape", std::vector<int64_t>{k, k}},
                 {"strides", std::vector<int64_t>{o.stride, o.stride}},
                 {"pads", std::vector<int64_t>{o.padding, o.padding, o.padding, o.padding}},
                 {"dilations", std::vector<int64_t>{o.dilation, o.dilation}},
                 {"group", o.groups}});
}

OnnxValue emit_onnx_normalize(OnnxEmitter& e, const std::string& path, const OnnxValue& x, int64_t axis, double eps,
                              const std::string& weight, const std::string& bias, const Tensor& example) {
  const Tensor& y = example;
  const std::vector<OnnxAttr> reduce{{"axes", std::vector<int64_t>{axis}}, {"keepdims", int64_t{1}}};
  OnnxValue mean = e.unary("ReduceMean", x, y, path, reduce);
  OnnxValue centred = e.node("Sub", {x.name, mean.name}, y, x.type, path);
  OnnxValue square = e.node("Mul", {centred.name, centred.name}, y, x.type, path);
  OnnxValue var = e.unary("ReduceMean", square, y, path, reduce);
  OnnxValue den = e.node("Add", {var.name, e.scalar(eps, x.type)}, y, x.type, path);
  den = e.unary("Sqrt", den, y, path);
  OnnxValue out = e.node("Div", {centred.name, den.name}, y, x.type, path);
  out = e.node("Mul", {out.name, weight}, y, x.type, path);
  return e.node("Add", {out.name, bias}, y, x.type, path);
}

OnnxValue emit_onnx_resize(OnnxEmitter& e, const std::string& path, const OnnxValue& x, InterpolateMode mode,
                           bool align_corners, const Tensor& example) {
  EVIT_CHECK(x.example.dim() == 4 && example.dim() == 4, "ONNX export: resize '", path, "' of ", x.example.desc());
  // Scales rather than sizes keep the batch dimension free. PyTorch's coordinate rule is
  // pytorch_half_pixel (align_corners false) and its cubic kernel has a = -0.75.
  const double sh = static_cast<double>(example.size(2)) / static_cast<double>(x.example.size(2));
  const double sw = static_cast<double>(example.size(3)) / static_cast<double>(x.example.size(3));
  const std::string scales =
      e.graph().add_initializer(e.graph().fresh_name(path + ".scales"),
                                from_vector(std::vector<float>{1.f, 1.f, static_cast<float>(sh), static_cast<float>(sw)}, {4}),
                                OnnxType::f32);
  std::vector<OnnxAttr> attrs;
  if (mode == InterpolateMode::nearest) {
    attrs = {{"mode", std::string("nearest")}, {"coordinate_transformation_mode", std::string("asymmetric")},
             {"nearest_mode", std::string("floor")}};
  } else {
    attrs = {{"mode", std::string(mode == InterpolateMode::bicubic ? "cubic" : "linear")},
             {"coordinate_transformation_mode", std::string(align_corners ? "align_corners" : "pytorch_half_pixel")}};
    if (mode == InterpolateMode::bicubic) attrs.push_back({"cubic_coeff_a", -0.75});
  }
  return e.node("Resize", {x.name, e.empty_floats(), scales}, example, x.type, path, attrs);
}

}  // namespace evit::train

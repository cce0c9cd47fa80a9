// ONNX emitters of EfficientViT's layers and blocks (zoo/): ConvLayer with its BatchNorm folded,
// LinearLayer, the residual and chain blocks, and LiteMLA with its multi-scale aggregation and
// ReLU linear attention.
#include "autograd/grad_mode.h"
#include "core/error.h"
#include "nn/container.h"
#include "nn/norm.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/conv.h"
#include "ops/pointwise.h"
#include "ops/shape.h"
#include "train/export.h"
#include "train/onnx/onnx_emitter.h"
#include "train/onnx/onnx_nn.h"
#include "zoo/heads.h"
#include "zoo/layers.h"
#include "zoo/lite_mla.h"
#include "zoo/local_blocks.h"

namespace evit::train {
namespace {

std::shared_ptr<nn::Module> child_or_null(nn::Module& m, const std::string& name) {
  for (auto& [n, c] : m.named_children())
    if (n == name) return c;
  return nullptr;
}

// conv -> [norm] -> [act]; an eval-mode BatchNorm is folded into the Conv node's weights (the
// deployment form, train/export.h), so the graph has one Conv where the checkpoint has two layers.
OnnxValue emit_conv_layer(nn::Module& m, const std::string& path, const OnnxValue& x, OnnxEmitter& e) {
  auto& layer = dynamic_cast<zoo::ConvLayer&>(m);
  auto conv = std::dynamic_pointer_cast<nn::Conv2d>(layer.conv());
  EVIT_CHECK(conv != nullptr, "ONNX export: ConvLayer '", path, "' has no Conv2d");
  OnnxValue y;
  if (auto bn = std::dynamic_pointer_cast<nn::BatchNorm2d>(layer.norm())) {
    const FoldedConv f = fold_conv_bn(*conv, *bn);
    const auto& o = conv->options();
    const Tensor example = conv2d(x.example, f.weight, f.bias, o.stride, o.padding, o.dilation, o.groups);
    y = emit_onnx_conv(e, path + ".conv", x, o, f.weight, f.bias, example);
  } else {
    y = e.emit(*conv, path + ".conv", x);
    if (layer.norm()) y = e.emit(*layer.norm(), path + ".norm", y);
  }
  if (auto act = child_or_null(m, "act")) y = e.emit(*act, path + ".act", y);
  return y;
}

// Flattens to [batch, features] first, as the layer does.
OnnxValue emit_linear_layer(nn::Module& m, const std::string& path, const OnnxValue& x, OnnxEmitter& e) {
  OnnxValue y = x;
  if (x.example.dim() > 2) y = e.unary("Flatten", x, flatten(x.example, 1), path, {{"axis", int64_t{1}}});
  return e.emit_children(m, path, y);
}

OnnxValue emit_residual(nn::Module& m, const std::string& path, const OnnxValue& x, OnnxEmitter& e) {
  auto& block = dynamic_cast<zoo::ResidualBlock&>(m);
  OnnxValue y = e.emit(*m.child("main"), path + ".main", x);
  if (!block.has_shortcut()) return y;
  return e.node("Add", {y.name, x.name}, add(y.example, x.example), y.type, path);
}

OnnxValue emit_chain(nn::Module& m, const std::string& path, const OnnxValue& x, OnnxEmitter& e) {
  return e.emit_children(m, path, x);
}

OnnxValue emit_op_sequential(nn::Module& m, const std::string& path, const OnnxValue& x, OnnxEmitter& e) {
  return e.emit_children(*m.child("op_list"), path + ".op_list", x);
}

// LiteMLA: qkv -> multi-scale aggregation -> concat -> [B, groups, 3d, N] -> q, k, v slices ->
// ReLU linear attention -> proj. The attention runs in f32 even in a half-precision graph (Cast
// nodes around it): its normaliser sums N products and its eps (1e-15) vanishes in f16, which is
// why the reference computes it in f32 too.
OnnxValue emit_lite_mla(nn::Module& m, const std::string& path, const OnnxValue& x, OnnxEmitter& e) {
  auto& mla = dynamic_cast<zoo::LiteMLA&>(m);
  const int64_t d = mla.dim();
  OnnxValue qkv = e.emit(*m.child("qkv"), path + ".qkv", x);
  std::vector<std::string> parts{qkv.name};
  std::vector<Tensor> part_examples{qkv.example};
  for (auto& [name, op] : m.child("aggreg")->named_children()) {
    OnnxValue a = e.emit(*op, path + ".aggreg." + name, qkv);
    parts.push_back(a.name);
    part_examples.push_back(a.example);
  }
  OnnxValue z = parts.size() == 1
                    ? qkv
                    : e.node("Concat", parts, cat(part_examples, 1), qkv.type, path, {{"axis", int64_t{1}}});
  const int64_t b = z.example.size(0), h = z.example.size(2), w = z.example.size(3), n = h * w;
  const int64_t groups = z.example.size(1) / (3 * d);
  // 0 keeps the batch dimension as it comes, so the graph takes any batch.
  const Tensor heads_example = reshape(z.example, {b, groups, 3 * d, n});
  OnnxValue heads = e.node("Reshape", {z.name, e.ints({0, groups, 3 * d, n})}, heads_example, z.type, path);
  heads = e.cast(heads, OnnxType::f32, path);
  auto part = [&](int64_t begin, int64_t end) {
    return e.node("Slice", {heads.name, e.ints({begin}), e.ints({end}), e.ints({2})},
                  slice(heads_example, 2, begin, end), OnnxType::f32, path);
  };
  OnnxValue q = part(0, d), k = part(d, 2 * d), v = part(2 * d, 3 * d);
  const Tensor att_example = linear_attention(q.example, k.example, v.example, mla.eps());
  q = e.unary("Relu", q, Tensor(), path);
  k = e.unary("Relu", k, Tensor(), path);
  OnnxValue kt = e.unary("Transpose", k, Tensor(), path, {{"perm", std::vector<int64_t>{0, 1, 3, 2}}});
  const std::string eps = e.scalar(mla.eps(), OnnxType::f32);
  OnnxValue att;
  if (n > d) {
    // Linear form: v padded with a row of ones, so one product gives numerator and denominator.
    OnnxValue vp = e.node("Pad", {v.name, e.ints({0, 0, 0, 0, 0, 0, 1, 0}), e.scalar(1.0, OnnxType::f32)}, Tensor(),
                          OnnxType::f32, path);
    OnnxValue vk = e.node("MatMul", {vp.name, kt.name}, Tensor(), OnnxType::f32, path);  // [B, g, d+1, d]
    OnnxValue o = e.node("MatMul", {vk.name, q.name}, Tensor(), OnnxType::f32, path);    // [B, g, d+1, N]
    OnnxValue num = e.node("Slice", {o.name, e.ints({0}), e.ints({d}), e.ints({2})}, Tensor(), OnnxType::f32, path);
    OnnxValue den =
        e.node("Slice", {o.name, e.ints({d}), e.ints({d + 1}), e.ints({2})}, Tensor(), OnnxType::f32, path);
    den = e.node("Add", {den.name, eps}, Tensor(), OnnxType::f32, path);
    att = e.node("Div", {num.name, den.name}, att_example, OnnxType::f32, path);
  } else {
    // Quadratic form (few tokens): the N x N map normalised over the keys.
    OnnxValue map = e.node("MatMul", {kt.name, q.name}, Tensor(), OnnxType::f32, path);  // [B, g, N, N]
    OnnxValue total = e.opset() >= 13
                          ? e.node("ReduceSum", {map.name, e.ints({2})}, Tensor(), OnnxType::f32, path,
                                   {{"keepdims", int64_t{1}}})
                          : e.unary("ReduceSum", map, Tensor(), path,
                                    {{"axes", std::vector<int64_t>{2}}, {"keepdims", int64_t{1}}});
    total = e.node("Add", {total.name, eps}, Tensor(), OnnxType::f32, path);
    map = e.node("Div", {map.name, total.name}, Tensor(), OnnxType::f32, path);
    att = e.node("MatMul", {v.name, map.name}, att_example, OnnxType::f32, path);
  }
  att = e.cast(att, z.type, path);
  OnnxValue merged = e.node("Reshape", {att.name, e.ints({0, groups * d, h, w})},
                            reshape(att_example, {b, groups * d, h, w}), z.type, path);
  return e.emit(*m.child("proj"), path + ".proj", merged);
}

const OnnxEmitterRegistrar registrars[] = {
    {typeid(zoo::ConvLayer), emit_conv_layer},
    {typeid(zoo::LinearLayer), emit_linear_layer},
    {typeid(zoo::ResidualBlock), emit_residual},
    {typeid(zoo::LiteMLA), emit_lite_mla},
    {typeid(zoo::OpSequential), emit_op_sequential},
    {typeid(zoo::ClsHead), emit_op_sequential},
    // Blocks whose forward runs their children in registration order.
    {typeid(zoo::DSConv), emit_chain},
    {typeid(zoo::MBConv), emit_chain},
    {typeid(zoo::FusedMBConv), emit_chain},
    {typeid(zoo::ResBlock), emit_chain},
    {typeid(zoo::EfficientViTBlock), emit_chain},
};

}  // namespace
}  // namespace evit::train

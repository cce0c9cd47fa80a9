#include "zoo/layers.h"

#include "autograd/grad_mode.h"
#include "nn/activation.h"
#include "nn/conv.h"
#include "nn/dropout.h"
#include "nn/linear.h"
#include "nn/macs.h"
#include "nn/norm.h"
#include "ops/conv.h"
#include "ops/dropout.h"
#include "ops/pointwise.h"
#include "ops/shape.h"

namespace evit::zoo {

std::shared_ptr<nn::Module> make_norm(const NormSpec& spec, int64_t channels) {
  if (spec.none()) return nullptr;
  if (spec.kind == "bn2d") return std::make_shared<nn::BatchNorm2d>(channels, spec.eps);
  if (spec.kind == "ln") return std::make_shared<nn::LayerNorm>(channels, spec.eps);
  if (spec.kind == "ln2d") return std::make_shared<nn::LayerNorm2d>(channels, spec.eps);
  EVIT_THROW("unknown norm '", spec.kind, "' (known: bn2d, ln, ln2d)");
}

std::shared_ptr<nn::Module> make_act_or_null(const std::string& name) {
  return name.empty() ? nullptr : nn::make_activation(name);
}

std::optional<ActivationKind> fusable_norm_activation(const std::string& name) {
  if (name == "relu") return ActivationKind::relu;
  if (name == "relu6") return ActivationKind::relu6;
  if (name == "hswish") return ActivationKind::hardswish;
  if (name == "silu") return ActivationKind::silu;
  if (name == "gelu") return ActivationKind::gelu_tanh;  // make_activation's GELU
  return std::nullopt;
}

std::pair<Tensor, Tensor> ConvLayer::folded_conv_bn() {
  auto conv = std::static_pointer_cast<nn::Conv2d>(conv_);
  auto bn = std::static_pointer_cast<nn::BatchNorm2d>(norm_);
  std::vector<uint64_t> versions;
  for (const Tensor* t : {&conv->weight, &conv->bias, &bn->weight, &bn->bias, &bn->running_mean, &bn->running_var})
    versions.push_back(t->defined() ? t->version() : 0);  // every in-place change bumps it
  const bool cacheable = !GradMode::is_enabled();
  if (cacheable && folded_w_.defined() && versions == folded_versions_) return {folded_w_, folded_b_};
  // Differentiable ops, so that in grad mode gradients still reach every parameter.
  Tensor scale = mul(rsqrt(add(bn->running_var, bn->eps)), bn->weight);
  Tensor shift = sub(bn->bias, mul(bn->running_mean, scale));
  if (conv->bias.defined()) shift = add(shift, mul(conv->bias, scale));
  Tensor w = mul(conv->weight, reshape(scale, {-1, 1, 1, 1}));
  if (cacheable) {
    folded_w_ = w, folded_b_ = shift, folded_versions_ = versions;
  } else {
    folded_w_ = Tensor(), folded_b_ = Tensor(), folded_versions_.clear();
  }
  return {w, shift};
}

ConvLayer::ConvLayer(const ConvLayerOptions& o) : nn::Module("ConvLayer") {
  EVIT_CHECK(o.kernel % 2 == 1, "ConvLayer: kernel size must be odd, got ", o.kernel);
  if (o.dropout > 0) dropout_ = register_module("dropout", std::make_shared<nn::Dropout2d>(o.dropout));
  nn::Conv2dOptions c{o.in, o.out, o.kernel};
  c.stride = o.stride;
  c.padding = (o.kernel / 2) * o.dilation;
  c.dilation = o.dilation;
  c.groups = o.groups;
  c.bias = o.bias;
  conv_ = register_module("conv", std::make_shared<nn::Conv2d>(c));
  if (auto n = make_norm(o.norm, o.out)) norm_ = register_module("norm", n);
  if (auto a = make_act_or_null(o.act)) act_ = register_module("act", a);
  if (o.norm.kind == "bn2d" || o.norm.none()) fused_act_ = fusable_norm_activation(o.act);
}

Tensor ConvLayer::forward_plus(const Tensor& x, const Tensor& shortcut) {
  const auto plus_shortcut = [&](const Tensor& y) { return shortcut.defined() ? add(y, shortcut) : y; };
  Tensor y = dropout_ ? dropout_->forward(x) : x;
  auto bn = std::dynamic_pointer_cast<nn::BatchNorm2d>(norm_);
  const bool eval_bn = bn && !bn->is_training();
  if (eval_bn || (!norm_ && fused_act_)) {
    // Eval-mode BatchNorm is a per-channel affine map: fold it into the convolution's weight and
    // bias and save a full pass over the activation. Without a norm (the first two layers of
    // the attention stages' MBConvs) the activation can follow the convolution at once too.
    auto conv = std::static_pointer_cast<nn::Conv2d>(conv_);
    auto [w, shift] = eval_bn ? folded_conv_bn() : std::pair{conv->weight, conv->bias};
    const auto& o = conv->options();
    const int64_t macs_per_output = w.size(1) * w.size(2) * w.size(3);
    // A fusable activation (or none) and the shortcut run inside the convolution's output blocks
    // (without gradients).
    if (!act_ || fused_act_) {
      y = conv2d_act(y, w, shift, o.stride, o.padding, o.dilation, o.groups,
                     act_ ? *fused_act_ : ActivationKind::none, shortcut);
      nn::MacCounter::add(y.numel() * macs_per_output);
      return y;
    }
    y = conv2d(y, w, shift, o.stride, o.padding, o.dilation, o.groups);
    nn::MacCounter::add(y.numel() * macs_per_output);
    return plus_shortcut(act_->forward(y));
  }
  y = conv_->forward(y);
  if (bn && act_ && fused_act_) return plus_shortcut(bn->forward_act(y, *fused_act_));
  if (norm_) y = norm_->forward(y);
  if (act_) y = act_->forward(y);
  return plus_shortcut(y);
}

std::optional<ConvStage> ConvLayer::inference_stage() {
  auto bn = std::dynamic_pointer_cast<nn::BatchNorm2d>(norm_);
  const bool eval_bn = bn && !bn->is_training();
  if ((norm_ && !eval_bn) || (act_ && !fused_act_) || (dropout_ && dropout_->is_training())) return std::nullopt;
  auto conv = std::static_pointer_cast<nn::Conv2d>(conv_);
  auto [w, shift] = eval_bn ? folded_conv_bn() : std::pair{conv->weight, conv->bias};
  return ConvStage{w, shift, act_ ? *fused_act_ : ActivationKind::none};
}

void ConvLayer::drop_norm() {
  if (!norm_) return;
  unregister_module("norm");
  norm_ = nullptr;
}

LinearLayer::LinearLayer(const LinearLayerOptions& o) : nn::Module("LinearLayer") {
  if (o.dropout > 0) dropout_ = register_module("dropout", std::make_shared<nn::Dropout>(o.dropout));
  linear_ = register_module("linear", std::make_shared<nn::Linear>(o.in, o.out, o.bias));
  if (auto n = make_norm(o.norm, o.out)) norm_ = register_module("norm", n);
  if (auto a = make_act_or_null(o.act)) act_ = register_module("act", a);
}

Tensor LinearLayer::forward(const Tensor& x) {
  Tensor y = x.dim() > 2 ? flatten(x, 1) : x;
  if (dropout_) y = dropout_->forward(y);
  y = linear_->forward(y);
  if (norm_) y = norm_->forward(y);
  if (act_) y = act_->forward(y);
  return y;
}

OpSequential::OpSequential(std::vector<std::shared_ptr<nn::Module>> ops) : nn::Module("OpSequential") {
  op_list_ = register_module("op_list", std::make_shared<nn::ModuleList>());
  for (auto& op : ops)
    if (op) op_list_->push_back(op);
}

Tensor OpSequential::forward(const Tensor& x) {
  Tensor y = x;
  for (size_t i = 0; i < op_list_->size(); ++i) y = (*op_list_)[i]->forward(y);
  return y;
}

ResidualBlock::ResidualBlock(std::shared_ptr<nn::Module> main, bool identity_shortcut)
    : nn::Module("ResidualBlock") {
  main_ = register_module("main", std::move(main));
  if (identity_shortcut) shortcut_ = register_module("shortcut", nn::Identity());
}

Tensor ResidualBlock::forward(const Tensor& x) {
  if (!shortcut_) return main_->forward(x);
  const bool drop = drop_path_prob > 0 && is_training();
  if (auto* adds = dynamic_cast<AddsShortcut*>(main_.get()); adds && !drop)
    return adds->forward_plus(x, shortcut_->forward(x));
  Tensor y = main_->forward(x);
  if (drop) y = drop_path(y, drop_path_prob, true);
  return add(y, shortcut_->forward(x));
}

int64_t set_drop_path(nn::Module& model, double p, int64_t skip, double factor) {
  EVIT_CHECK(p >= 0 && p < 1, "drop path: probability must be in [0, 1), got ", p);
  std::vector<ResidualBlock*> blocks;
  for (auto& [name, m] : model.named_modules()) {
    auto* r = dynamic_cast<ResidualBlock*>(m.get());
    if (r && r->has_shortcut() && name.rfind("backbone.stages.", 0) == 0) blocks.push_back(r);
  }
  const int64_t n = std::max<int64_t>(0, static_cast<int64_t>(blocks.size()) - skip);
  for (size_t i = 0; i < blocks.size(); ++i) {
    const int64_t k = static_cast<int64_t>(i) - skip;
    blocks[i]->drop_path_prob = k < 0 ? 0.0 : p * static_cast<double>(k + 1) / static_cast<double>(n) * factor;
  }
  return n;
}

}  // namespace evit::zoo

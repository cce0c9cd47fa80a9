#include "zoo/lite_mla.h"

#include "nn/activation.h"
#include "nn/conv.h"
#include "nn/macs.h"
#include "ops/attention.h"
#include "ops/shape.h"
#include "zoo/local_blocks.h"

namespace evit::zoo {

LiteMLA::LiteMLA(int64_t in, int64_t out, int64_t dim, const std::vector<int64_t>& scales,
                 const NormSpec& proj_norm, double heads_ratio, double eps)
    : nn::Module("LiteMLA"), dim_(dim), eps_(eps) {
  heads_ = static_cast<int64_t>(static_cast<double>(in / dim) * heads_ratio);
  EVIT_CHECK(heads_ >= 1, "LiteMLA: ", in, " channels give no head of dim ", dim);
  const int64_t total = heads_ * dim;
  ConvLayerOptions q{in, 3 * total, 1};
  q.norm = {};
  q.act = "";
  qkv_ = register_module("qkv", std::make_shared<ConvLayer>(q));
  auto aggreg = register_module("aggreg", std::make_shared<nn::ModuleList>());
  for (int64_t k : scales) {
    nn::Conv2dOptions dw{3 * total, 3 * total, k};
    dw.padding = k / 2;
    dw.groups = 3 * total;
    dw.bias = false;
    nn::Conv2dOptions pw{3 * total, 3 * total, 1};
    pw.groups = 3 * heads_;
    pw.bias = false;
    auto seq = std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::Module>>{
        std::make_shared<nn::Conv2d>(dw), std::make_shared<nn::Conv2d>(pw)});
    aggreg->push_back(seq);
    aggreg_.push_back(seq);
  }
  register_module("kernel_func", nn::ReLU());  // applied inside linear_attention
  ConvLayerOptions p{total * (1 + static_cast<int64_t>(scales.size())), out, 1};
  p.norm = proj_norm;
  p.act = "";
  proj_ = register_module("proj", std::make_shared<ConvLayer>(p));
}

Tensor LiteMLA::forward_plus(const Tensor& x, const Tensor& shortcut) {
  EVIT_CHECK(x.dim() == 4, "LiteMLA: input must be [B,C,H,W], got ", x.desc());
  const int64_t b = x.size(0), h = x.size(2), w = x.size(3), n = h * w;
  Tensor qkv = qkv_->forward(x);
  // The heads of qkv and of each multi-scale aggregate, [B, heads, 3d, N] each: a head's q, k, v
  // are consecutive blocks of d channels. The attention reads them in that order, as from their
  // concatenation along the channels, without making it.
  const auto heads_of = [&](const Tensor& t) { return reshape(t, {b, t.size(1) / (3 * dim_), 3 * dim_, n}); };
  std::vector<Tensor> multi{heads_of(qkv)};
  for (auto& op : aggreg_) multi.push_back(heads_of(op->forward(qkv)));
  Tensor att = linear_attention_qkv(multi, dim_, eps_);  // [B, groups, d, N]
  const int64_t groups = att.size(1);
  // The paper counts the two matmuls of the linear form: (d+1)·d·N each, per head.
  nn::MacCounter::add(b * groups * 2 * (dim_ + 1) * dim_ * n);
  return proj_->forward_plus(reshape(att, {b, groups * dim_, h, w}), shortcut);
}

EfficientViTBlock::EfficientViTBlock(int64_t channels, int64_t dim, double expand,
                                     const std::vector<int64_t>& scales, const NormSpec& norm,
                                     const std::string& act, double heads_ratio)
    : nn::Module("EfficientViTBlock") {
  context_module_ = register_module(
      "context_module",
      std::make_shared<ResidualBlock>(
          std::make_shared<LiteMLA>(channels, channels, dim, scales, norm, heads_ratio), true));
  local_module_ = register_module(
      "local_module",
      std::make_shared<ResidualBlock>(
          make_local_block("mb", channels, channels, 1, expand, norm, act, /*fewer_norm=*/true), true));
}

Tensor EfficientViTBlock::forward(const Tensor& x) {
  return local_module_->forward(context_module_->forward(x));
}

}  // namespace evit::zoo

#include "zoo/sam.h"

#include <cmath>

#include "nn/activation.h"
#include "nn/conv.h"
#include "nn/upsample.h"
#include "ops/activation.h"
#include "ops/linalg.h"
#include "ops/pointwise.h"
#include "ops/shape.h"
#include "ops/softmax.h"
#include "zoo/local_blocks.h"

namespace evit::zoo {

// ---------------------------------------------------------------- image encoder

SamNeck::SamNeck(const SamNeckConfig& c) : nn::Module("SamNeck"), fids_(c.fids) {
  EVIT_CHECK(c.fids.size() == c.in_channels.size(), "SamNeck: fids and in_channels must have the same length");
  input_ops_ = register_module("input_ops", std::make_shared<nn::ModuleList>());
  for (size_t i = 0; i < c.fids.size(); ++i) {
    ConvLayerOptions o{c.in_channels[i], c.width, 1};
    o.norm = c.norm;
    o.act = "";
    // Every input is resized to the fixed embedding size (identity when it already has it), so
    // the reference always has op_list.1 = UpSampleLayer here.
    input_ops_->push_back(std::make_shared<OpSequential>(std::vector<std::shared_ptr<nn::Module>>{
        std::make_shared<ConvLayer>(o),
        std::make_shared<nn::UpSample>(InterpolateMode::bicubic, std::vector<int64_t>{c.size, c.size})}));
  }
  std::vector<std::shared_ptr<nn::Module>> middle;
  for (int64_t i = 0; i < c.depth; ++i)
    middle.push_back(std::make_shared<ResidualBlock>(
        make_local_block("fmb", c.width, c.width, 1, c.expand, c.norm, c.act, false), true));
  middle_ = register_module("middle", std::make_shared<OpSequential>(middle));
  ConvLayerOptions out{c.width, c.out_dim, 1};
  out.bias = true;
  out.norm = {};
  out.act = "";
  output_ops_ = register_module("output_ops", std::make_shared<nn::ModuleList>());
  output_ops_->push_back(
      std::make_shared<OpSequential>(std::vector<std::shared_ptr<nn::Module>>{std::make_shared<ConvLayer>(out)}));
}

Tensor SamNeck::forward_features(const FeatureMap& f) {
  Tensor acc;
  for (size_t i = 0; i < fids_.size(); ++i) {
    auto it = f.find(fids_[i]);
    EVIT_CHECK(it != f.end(), "SamNeck: backbone has no feature '", fids_[i], "'");
    Tensor y = (*input_ops_)[i]->forward(it->second);
    acc = acc.defined() ? add(acc, y) : y;
  }
  return (*output_ops_)[0]->forward(middle_->forward(acc));
}

SamImageEncoder::SamImageEncoder(std::shared_ptr<Backbone> bb, const SamNeckConfig& neck_cfg, double eps)
    : nn::Module("EfficientViTSamImageEncoder") {
  backbone = register_module("backbone", std::move(bb));
  neck = register_module("neck", std::make_shared<SamNeck>(neck_cfg));
  norm = register_module("norm", std::make_shared<nn::LayerNorm2d>(neck_cfg.out_dim, eps));
}

FeatureMap SamImageEncoder::forward_features(const Tensor& x) {
  FeatureMap f = backbone->forward_features(x);
  f["output"] = norm->forward(neck->forward_features(f));
  return f;
}

// ---------------------------------------------------------------- prompt encoder

SamEmbedding::SamEmbedding(int64_t num, int64_t dim) : nn::Module("Embedding") {
  weight = register_parameter("weight", randn({num, dim}));
}

PositionEmbeddingRandom::PositionEmbeddingRandom(int64_t f) : nn::Module("PositionEmbeddingRandom") {
  gaussian = register_buffer("positional_encoding_gaussian_matrix", randn({2, f}));
}

Tensor PositionEmbeddingRandom::encode(const std::vector<std::array<float, 2>>& coords) const {
  // Mirrors the reference's float32 steps: u -> 2u - 1, [x, y] @ G, times 2π, sin | cos. Computed
  // on the host: the two-row matmul is tiny and G is a buffer (no gradient).
  const int64_t f = gaussian.size(1);
  std::vector<float> g = gaussian.to(DType::f32).to(kCPU).to_vector<float>();
  const int64_t n = static_cast<int64_t>(coords.size());
  std::vector<float> out(static_cast<size_t>(n * 2 * f));
  const float two_pi = static_cast<float>(2 * M_PI);
  for (int64_t i = 0; i < n; ++i) {
    const float x = 2 * coords[i][0] - 1, y = 2 * coords[i][1] - 1;
    for (int64_t k = 0; k < f; ++k) {
      const float c = two_pi * (x * g[k] + y * g[f + k]);
      out[i * 2 * f + k] = std::sin(c);
      out[i * 2 * f + f + k] = std::cos(c);
    }
  }
  return from_vector<float>(out, {n, 2 * f}, TensorOptions(gaussian.dtype(), gaussian.device()));
}

Tensor PositionEmbeddingRandom::dense(int64_t h, int64_t w) const {
  std::vector<std::array<float, 2>> coords;
  coords.reserve(static_cast<size_t>(h * w));
  for (int64_t r = 0; r < h; ++r)
    for (int64_t c = 0; c < w; ++c)
      coords.push_back({(static_cast<float>(c) + 0.5f) / static_cast<float>(w),
                        (static_cast<float>(r) + 0.5f) / static_cast<float>(h)});
  // [h*w, 2F] -> [2F, h, w]
  return permute(reshape(encode(coords), {h, w, -1}), {2, 0, 1}).contiguous();
}

PromptEncoder::PromptEncoder(int64_t embed_dim, int64_t embedding_size, int64_t input_size, int64_t mask_in_chans)
    : nn::Module("PromptEncoder"), embed_dim_(embed_dim), embedding_size_(embedding_size), input_size_(input_size) {
  EVIT_CHECK(embed_dim % 2 == 0, "PromptEncoder: embed_dim must be even, got ", embed_dim);
  pe_layer = register_module("pe_layer", std::make_shared<PositionEmbeddingRandom>(embed_dim / 2));
  point_embeddings_ = register_module("point_embeddings", std::make_shared<nn::ModuleList>());
  for (int i = 0; i < 4; ++i) point_embeddings_->push_back(std::make_shared<SamEmbedding>(1, embed_dim));
  not_a_point_embed_ = register_module("not_a_point_embed", std::make_shared<SamEmbedding>(1, embed_dim));
  const int64_t q = mask_in_chans / 4;
  mask_downscaling_ = register_module(
      "mask_downscaling",
      std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::Module>>{
          std::make_shared<nn::Conv2d>(nn::Conv2dOptions{1, q, 2, 2}),
          std::make_shared<nn::LayerNorm2d>(q, 1e-6), nn::GELU("none"),
          std::make_shared<nn::Conv2d>(nn::Conv2dOptions{q, mask_in_chans, 2, 2}),
          std::make_shared<nn::LayerNorm2d>(mask_in_chans, 1e-6), nn::GELU("none"),
          std::make_shared<nn::Conv2d>(nn::Conv2dOptions{mask_in_chans, embed_dim, 1})}));
  no_mask_embed_ = register_module("no_mask_embed", std::make_shared<SamEmbedding>(1, embed_dim));
}

Tensor PromptEncoder::dense_pe() const {
  return unsqueeze(pe_layer->dense(embedding_size_, embedding_size_), 0);
}

std::pair<Tensor, Tensor> PromptEncoder::forward(const std::vector<SamPoint>& points,
                                                 const std::optional<std::array<float, 4>>& box,
                                                 const Tensor& mask) {
  auto point_weight = [&](size_t i) {
    return std::static_pointer_cast<SamEmbedding>((*point_embeddings_)[i])->weight;
  };
  const float in = static_cast<float>(input_size_);
  std::vector<Tensor> rows;
  if (!points.empty()) {
    std::vector<SamPoint> pts = points;
    // Shift to pixel centres; the padding point is appended after the shift (reference order);
    // its encoding is replaced anyway.
    for (auto& p : pts) {
      EVIT_CHECK(p.label == -1 || p.label == 0 || p.label == 1, "PromptEncoder: point label must be -1, 0 or 1, got ",
                 p.label);
      p.x += 0.5f, p.y += 0.5f;
    }
    if (!box) pts.push_back({0.f, 0.f, -1});
    std::vector<std::array<float, 2>> coords;
    for (auto& p : pts) coords.push_back({p.x / in, p.y / in});
    Tensor pe = pe_layer->encode(coords);
    for (size_t i = 0; i < pts.size(); ++i) {
      Tensor row = slice(pe, 0, static_cast<int64_t>(i), static_cast<int64_t>(i) + 1);
      if (pts[i].label == -1) rows.push_back(not_a_point_embed_->weight);
      else rows.push_back(add(row, point_weight(pts[i].label == 1 ? 1 : 0)));
    }
  }
  if (box) {
    const auto& b = *box;
    Tensor pe = pe_layer->encode({{(b[0] + 0.5f) / in, (b[1] + 0.5f) / in}, {(b[2] + 0.5f) / in, (b[3] + 0.5f) / in}});
    rows.push_back(add(slice(pe, 0, 0, 1), point_weight(2)));
    rows.push_back(add(slice(pe, 0, 1, 2), point_weight(3)));
  }
  Tensor sparse = rows.empty() ? zeros({1, 0, embed_dim_}, TensorOptions(no_mask_embed_->weight.dtype()))
                               : unsqueeze(cat(rows, 0), 0);
  Tensor dense;
  if (mask.defined()) {
    EVIT_CHECK(mask.dim() == 4 && mask.size(1) == 1 && mask.size(2) == 4 * embedding_size_ &&
                   mask.size(3) == 4 * embedding_size_,
               "PromptEncoder: mask input must be [B, 1, ", 4 * embedding_size_, ", ", 4 * embedding_size_, "], got ",
               mask.desc());
    dense = mask_downscaling_->forward(mask);
  } else {
    dense = expand(reshape(no_mask_embed_->weight, {1, -1, 1, 1}), {1, -1, embedding_size_, embedding_size_});
  }
  return {sparse, dense};
}

// ---------------------------------------------------------------- mask decoder

SamAttention::SamAttention(int64_t dim, int64_t heads, int64_t downsample_rate)
    : nn::Module("Attention"), heads_(heads) {
  const int64_t inner = dim / downsample_rate;
  EVIT_CHECK(inner % heads == 0, "SamAttention: heads (", heads, ") must divide the internal dim ", inner);
  q_proj_ = register_module("q_proj", std::make_shared<nn::Linear>(dim, inner));
  k_proj_ = register_module("k_proj", std::make_shared<nn::Linear>(dim, inner));
  v_proj_ = register_module("v_proj", std::make_shared<nn::Linear>(dim, inner));
  out_proj_ = register_module("out_proj", std::make_shared<nn::Linear>(inner, dim));
}

Tensor SamAttention::forward(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in) {
  auto heads = [&](const Tensor& x) {  // [B, N, C] -> [B, h, N, C/h]
    return transpose(reshape(x, {x.size(0), x.size(1), heads_, x.size(2) / heads_}), 1, 2);
  };
  Tensor q = heads(q_proj_->forward(q_in)), k = heads(k_proj_->forward(k_in)), v = heads(v_proj_->forward(v_in));
  Tensor o = scaled_dot_product_attention(q, k, v);  // scale 1/sqrt(head dim), as the reference
  o = reshape(transpose(o, 1, 2), {o.size(0), o.size(2), o.size(1) * o.size(3)});
  return out_proj_->forward(o);
}

namespace {
// SAM's MLPBlock: lin1 -> ReLU -> lin2 (attribute names lin1, act, lin2).
class MLPBlock : public nn::Module {
 public:
  MLPBlock(int64_t dim, int64_t hidden) : nn::Module("MLPBlock") {
    lin1_ = register_module("lin1", std::make_shared<nn::Linear>(dim, hidden));
    lin2_ = register_module("lin2", std::make_shared<nn::Linear>(hidden, dim));
    register_module("act", nn::ReLU());
  }
  Tensor forward(const Tensor& x) override { return lin2_->forward(relu(lin1_->forward(x))); }

 private:
  std::shared_ptr<nn::Linear> lin1_, lin2_;
};
}  // namespace

SamMLP::SamMLP(int64_t in, int64_t hidden, int64_t out, int64_t n) : nn::Module("MLP") {
  layers_ = register_module("layers", std::make_shared<nn::ModuleList>());
  for (int64_t i = 0; i < n; ++i)
    layers_->push_back(std::make_shared<nn::Linear>(i == 0 ? in : hidden, i == n - 1 ? out : hidden));
}

Tensor SamMLP::forward(const Tensor& x) {
  Tensor y = x;
  for (size_t i = 0; i < layers_->size(); ++i) {
    y = (*layers_)[i]->forward(y);
    if (i + 1 < layers_->size()) y = relu(y);
  }
  return y;
}

TwoWayAttentionBlock::TwoWayAttentionBlock(int64_t dim, int64_t heads, int64_t mlp_dim, bool skip_pe, double eps)
    : nn::Module("TwoWayAttentionBlock"), skip_first_layer_pe_(skip_pe) {
  // Registration order = the reference's __init__ order (state-dict order).
  self_attn_ = register_module("self_attn", std::make_shared<SamAttention>(dim, heads, 1));
  norm1_ = register_module("norm1", std::make_shared<nn::LayerNorm>(dim, eps));
  cross_token_to_image_ = register_module("cross_attn_token_to_image", std::make_shared<SamAttention>(dim, heads, 2));
  norm2_ = register_module("norm2", std::make_shared<nn::LayerNorm>(dim, eps));
  mlp_ = register_module("mlp", std::make_shared<MLPBlock>(dim, mlp_dim));
  norm3_ = register_module("norm3", std::make_shared<nn::LayerNorm>(dim, eps));
  norm4_ = register_module("norm4", std::make_shared<nn::LayerNorm>(dim, eps));
  cross_image_to_token_ = register_module("cross_attn_image_to_token", std::make_shared<SamAttention>(dim, heads, 2));
}

std::pair<Tensor, Tensor> TwoWayAttentionBlock::forward(const Tensor& queries_in, const Tensor& keys_in,
                                                        const Tensor& query_pe, const Tensor& key_pe) {
  Tensor queries = queries_in, keys = keys_in;
  if (skip_first_layer_pe_) {
    queries = self_attn_->forward(queries, queries, queries);  // no PE and no residual (reference)
  } else {
    Tensor q = add(queries, query_pe);
    queries = add(queries, self_attn_->forward(q, q, queries));
  }
  queries = norm1_->forward(queries);
  Tensor q = add(queries, query_pe), k = add(keys, key_pe);
  queries = norm2_->forward(add(queries, cross_token_to_image_->forward(q, k, keys)));
  queries = norm3_->forward(add(queries, mlp_->forward(queries)));
  q = add(queries, query_pe);
  keys = norm4_->forward(add(keys, cross_image_to_token_->forward(k, q, queries)));
  return {queries, keys};
}

TwoWayTransformer::TwoWayTransformer(int64_t depth, int64_t dim, int64_t heads, int64_t mlp_dim, double eps)
    : nn::Module("TwoWayTransformer") {
  layers_ = register_module("layers", std::make_shared<nn::ModuleList>());
  for (int64_t i = 0; i < depth; ++i)
    layers_->push_back(std::make_shared<TwoWayAttentionBlock>(dim, heads, mlp_dim, i == 0, eps));
  final_attn_ = register_module("final_attn_token_to_image", std::make_shared<SamAttention>(dim, heads, 2));
  norm_final_ = register_module("norm_final_attn", std::make_shared<nn::LayerNorm>(dim, eps));
}

std::pair<Tensor, Tensor> TwoWayTransformer::forward(const Tensor& image, const Tensor& image_pe,
                                                     const Tensor& tokens) {
  EVIT_CHECK(image.dim() == 4 && tokens.dim() == 3 && tokens.size(0) == image.size(0) &&
                 tokens.size(2) == image.size(1),
             "TwoWayTransformer: expected image [B, C, H, W] and tokens [B, N, C], got ", image.desc(), " and ",
             tokens.desc());
  // [B, C, H, W] -> [B, HW, C]
  Tensor keys = permute(flatten(image, 2), {0, 2, 1});
  Tensor key_pe = permute(flatten(image_pe, 2), {0, 2, 1});
  if (key_pe.size(0) != keys.size(0)) key_pe = expand(key_pe, {keys.size(0), -1, -1});
  Tensor queries = tokens;
  for (size_t i = 0; i < layers_->size(); ++i) {
    auto layer = std::static_pointer_cast<TwoWayAttentionBlock>((*layers_)[i]);
    std::tie(queries, keys) = layer->forward(queries, keys, tokens, key_pe);
  }
  Tensor q = add(queries, tokens), k = add(keys, key_pe);
  queries = norm_final_->forward(add(queries, final_attn_->forward(q, k, keys)));
  return {queries, keys};
}

MaskDecoder::MaskDecoder(int64_t dim, int64_t num_multimask_outputs, int64_t iou_head_depth, int64_t iou_head_hidden,
                         double eps)
    : nn::Module("MaskDecoder"), num_mask_tokens_(num_multimask_outputs + 1) {
  transformer_ = register_module("transformer", std::make_shared<TwoWayTransformer>(2, dim, 8, 2048, eps));
  iou_token_ = register_module("iou_token", std::make_shared<SamEmbedding>(1, dim));
  mask_tokens_ = register_module("mask_tokens", std::make_shared<SamEmbedding>(num_mask_tokens_, dim));
  // ConvTranspose 2×2 s2 -> LayerNorm2d -> GELU (exact) -> ConvTranspose 2×2 s2 -> GELU.
  nn::ConvTranspose2dOptions up1{dim, dim / 4, 2}, up2{dim / 4, dim / 8, 2};
  up1.stride = 2, up2.stride = 2;
  output_upscaling_ = register_module(
      "output_upscaling",
      std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::Module>>{
          std::make_shared<nn::ConvTranspose2d>(up1), std::make_shared<nn::LayerNorm2d>(dim / 4, 1e-6),
          nn::GELU("none"), std::make_shared<nn::ConvTranspose2d>(up2), nn::GELU("none")}));
  hyper_mlps_ = register_module("output_hypernetworks_mlps", std::make_shared<nn::ModuleList>());
  for (int64_t i = 0; i < num_mask_tokens_; ++i) hyper_mlps_->push_back(std::make_shared<SamMLP>(dim, dim, dim / 8, 3));
  iou_head_ = register_module("iou_prediction_head",
                              std::make_shared<SamMLP>(dim, iou_head_hidden, num_mask_tokens_, iou_head_depth));
}

std::pair<Tensor, Tensor> MaskDecoder::forward(const Tensor& image_embedding, const Tensor& image_pe,
                                               const Tensor& sparse, const Tensor& dense, bool multimask) {
  EVIT_CHECK(sparse.dim() == 3, "MaskDecoder: sparse prompt embeddings must be [B, N, C], got ", sparse.desc());
  EVIT_CHECK(image_embedding.dim() == 4 && (image_embedding.size(0) == 1 || image_embedding.size(0) == sparse.size(0)),
             "MaskDecoder: image embedding must be [1 or B, C, H, W] with B = ", sparse.size(0), " prompt sets, got ",
             image_embedding.desc());
  const int64_t b = sparse.size(0);
  Tensor out_tokens = cat({iou_token_->weight, mask_tokens_->weight}, 0);
  Tensor tokens = cat({expand(unsqueeze(out_tokens, 0), {b, -1, -1}), sparse}, 1);
  // One image embedding serves every prompt set (repeat_interleave in the reference).
  Tensor src = image_embedding.size(0) == b ? image_embedding : expand(image_embedding, {b, -1, -1, -1});
  src = add(src, dense);
  auto [hs, keys] = transformer_->forward(src, image_pe, tokens);
  const int64_t c = src.size(1), h = src.size(2), w = src.size(3);
  Tensor iou_out = select(hs, 1, 0);
  Tensor img = reshape(transpose(keys, 1, 2), {b, c, h, w});
  Tensor up = output_upscaling_->forward(img);
  std::vector<Tensor> hyper;
  for (int64_t i = 0; i < num_mask_tokens_; ++i)
    hyper.push_back(unsqueeze((*hyper_mlps_)[i]->forward(select(hs, 1, 1 + i)), 1));
  Tensor hyper_in = cat(hyper, 1);  // [B, T, c']
  const int64_t uc = up.size(1), uh = up.size(2), uw = up.size(3);
  Tensor masks = reshape(matmul(hyper_in, reshape(up, {b, uc, uh * uw})), {b, num_mask_tokens_, uh, uw});
  Tensor iou = iou_head_->forward(iou_out);
  if (multimask) return {slice(masks, 1, 1, num_mask_tokens_), slice(iou, 1, 1, num_mask_tokens_)};
  return {slice(masks, 1, 0, 1), slice(iou, 1, 0, 1)};
}

// ---------------------------------------------------------------- full model

EfficientViTSam::EfficientViTSam(std::shared_ptr<Backbone> backbone, const SamNeckConfig& neck, int64_t image_size)
    : Model("EfficientViTSam"), image_size_(image_size) {
  image_encoder = register_module("image_encoder", std::make_shared<SamImageEncoder>(std::move(backbone), neck, 1e-6));
  prompt_encoder = register_module("prompt_encoder", std::make_shared<PromptEncoder>());
  mask_decoder = register_module("mask_decoder", std::make_shared<MaskDecoder>());
}

FeatureMap EfficientViTSam::forward_with_features(const Tensor& x) { return image_encoder->forward_features(x); }

std::pair<Tensor, Tensor> EfficientViTSam::predict(const Tensor& embedding, const std::vector<SamPoint>& points,
                                                   const std::optional<std::array<float, 4>>& box, bool multimask) {
  EVIT_CHECK(!points.empty() || box, "EfficientViTSam::predict: give at least one point or a box");
  auto [sparse, dense] = prompt_encoder->forward(points, box);
  return mask_decoder->forward(embedding, prompt_encoder->dense_pe(), sparse, dense, multimask);
}

std::shared_ptr<EfficientViTSam> make_efficientvit_sam(const std::string& name) {
  SamNeckConfig n;
  int64_t size;
  if (name == "l0" || name == "l1" || name == "l2") {
    n.fids = {"stage4", "stage3", "stage2"};
    n.in_channels = {512, 256, 128};
    n.depth = name == "l0" ? 4 : name == "l1" ? 8 : 12;
    n.expand = 1;
    size = 512;
  } else if (name == "xl0" || name == "xl1") {
    n.fids = {"stage5", "stage4", "stage3"};
    n.in_channels = {1024, 512, 256};
    n.depth = name == "xl0" ? 6 : 12;
    n.expand = 4;
    size = 1024;
  } else {
    EVIT_THROW("unknown EfficientViT-SAM variant '", name, "' (known: l0, l1, l2, xl0, xl1)");
  }
  return std::make_shared<EfficientViTSam>(make_backbone(name, 1e-6), n, size);
}

}  // namespace evit::zoo

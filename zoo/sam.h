// EfficientViT-SAM (arXiv 2402.05008; docs/models.md): the image encoder (L/XL backbone -> SamNeck -> LayerNorm2d), and the
// Segment Anything prompt encoder and mask decoder (two-way transformer), with the reference
// attribute names so that state-dict keys equal the released checkpoints'.
//
// Prompts live in the 1024×1024 input frame (also for the 512-input L models); the decoder
// returns low-resolution mask logits (256×256) and IoU predictions.
#pragma once
#include <array>
#include <optional>
#include <utility>

#include "nn/container.h"
#include "nn/linear.h"
#include "nn/norm.h"
#include "zoo/models.h"

namespace evit::zoo {

// ---- image encoder ----

struct SamNeckConfig {
  std::vector<std::string> fids;      // e.g. stage4, stage3, stage2
  std::vector<int64_t> in_channels;   // channels of those features
  int64_t width = 256, depth = 4;
  double expand = 1;
  int64_t out_dim = 256, size = 64;   // output channels and fixed spatial size
  NormSpec norm{"bn2d", 1e-6};
  std::string act = "gelu";
};

// The DAG head of the reference SAM neck: per feature a 1×1 ConvLayer + bicubic resize to size×size,
// summed; `middle` residual FusedMBConvs; output 1×1 conv with bias.
class SamNeck : public nn::Module {
 public:
  explicit SamNeck(const SamNeckConfig& c);
  Tensor forward_features(const FeatureMap& f);
  // The backbone features it reads, in the order of input_ops.
  const std::vector<std::string>& fids() const { return fids_; }

 private:
  std::vector<std::string> fids_;
  std::shared_ptr<nn::ModuleList> input_ops_, output_ops_;
  std::shared_ptr<nn::Module> middle_;
};

class SamImageEncoder : public nn::Module {
 public:
  SamImageEncoder(std::shared_ptr<Backbone> backbone, const SamNeckConfig& neck, double eps = 1e-6);
  // Backbone features plus "output" = the image embedding B×256×64×64.
  FeatureMap forward_features(const Tensor& x);
  Tensor forward(const Tensor& x) override { return forward_features(x).at("output"); }

  std::shared_ptr<Backbone> backbone;
  std::shared_ptr<SamNeck> neck;
  std::shared_ptr<nn::LayerNorm2d> norm;
};

// ---- prompt encoder ----

// A one-module holder of a `weight` parameter [num, dim] (nn.Embedding's layout; only its weight
// is ever read).
class SamEmbedding : public nn::Module {
 public:
  SamEmbedding(int64_t num, int64_t dim);
  Tensor weight;
};

// Random Fourier position encoding: buffer positional_encoding_gaussian_matrix [2, F].
class PositionEmbeddingRandom : public nn::Module {
 public:
  explicit PositionEmbeddingRandom(int64_t num_pos_feats = 128);
  // coords: n points (x, y) already normalised to [0, 1]; returns [n, 2F] (sin then cos).
  Tensor encode(const std::vector<std::array<float, 2>>& coords) const;
  // The encoding of the cell centres of an h×w grid: [2F, h, w].
  Tensor dense(int64_t h, int64_t w) const;
  Tensor gaussian;
};

struct SamPoint {
  float x, y;  // pixels of the 1024 input frame
  int label;   // 1 foreground, 0 background, -1 padding
};

class PromptEncoder : public nn::Module {
 public:
  PromptEncoder(int64_t embed_dim = 256, int64_t embedding_size = 64, int64_t input_size = 1024,
                int64_t mask_in_chans = 16);
  // Sparse tokens [1, N, 256] (points, with one padding point appended when there is no box,
  // then the two box corners) and dense embedding [1, 256, 64, 64] (no_mask_embed, or the
  // downscaled mask when `mask` [1, 1, 256, 256] is given).
  std::pair<Tensor, Tensor> forward(const std::vector<SamPoint>& points,
                                    const std::optional<std::array<float, 4>>& box,
                                    const Tensor& mask = Tensor());
  // Dense positional encoding of the image embedding grid: [1, 256, 64, 64].
  Tensor dense_pe() const;
  int64_t input_size() const { return input_size_; }          // the prompt frame's side (1024)
  int64_t embedding_size() const { return embedding_size_; }  // the embedding grid's side (64)

  std::shared_ptr<PositionEmbeddingRandom> pe_layer;

 private:
  int64_t embed_dim_, embedding_size_, input_size_;
  std::shared_ptr<nn::ModuleList> point_embeddings_;
  std::shared_ptr<SamEmbedding> not_a_point_embed_, no_mask_embed_;
  std::shared_ptr<nn::Sequential> mask_downscaling_;
};

// ---- mask decoder ----

// Multi-head attention with q/k/v projections to dim / downsample_rate (SAM's Attention).
class SamAttention : public nn::Module {
 public:
  SamAttention(int64_t dim, int64_t heads, int64_t downsample_rate = 1);
  Tensor forward(const Tensor& q, const Tensor& k, const Tensor& v);
  int64_t heads() const { return heads_; }

 private:
  int64_t heads_;
  std::shared_ptr<nn::Linear> q_proj_, k_proj_, v_proj_, out_proj_;
};

// Linear layers with ReLU between them (SAM's MLP, keys layers.{i}).
class SamMLP : public nn::Module {
 public:
  SamMLP(int64_t in, int64_t hidden, int64_t out, int64_t num_layers);
  Tensor forward(const Tensor& x) override;

 private:
  std::shared_ptr<nn::ModuleList> layers_;
};

class TwoWayAttentionBlock : public nn::Module {
 public:
  TwoWayAttentionBlock(int64_t dim, int64_t heads, int64_t mlp_dim, bool skip_first_layer_pe, double eps);
  // (queries, keys) -> updated (queries, keys).
  std::pair<Tensor, Tensor> forward(const Tensor& queries, const Tensor& keys, const Tensor& query_pe,
                                    const Tensor& key_pe);
  bool skip_first_layer_pe() const { return skip_first_layer_pe_; }

 private:
  bool skip_first_layer_pe_;
  std::shared_ptr<SamAttention> self_attn_, cross_token_to_image_, cross_image_to_token_;
  std::shared_ptr<nn::LayerNorm> norm1_, norm2_, norm3_, norm4_;
  std::shared_ptr<nn::Module> mlp_;
};

class TwoWayTransformer : public nn::Module {
 public:
  TwoWayTransformer(int64_t depth = 2, int64_t dim = 256, int64_t heads = 8, int64_t mlp_dim = 2048,
                    double eps = 1e-6);
  // image [B, C, H, W], image_pe [B or 1, C, H, W], tokens [B, N, C] -> (tokens, image tokens [B, HW, C]).
  std::pair<Tensor, Tensor> forward(const Tensor& image, const Tensor& image_pe, const Tensor& tokens);

 private:
  std::shared_ptr<nn::ModuleList> layers_;
  std::shared_ptr<SamAttention> final_attn_;
  std::shared_ptr<nn::LayerNorm> norm_final_;
};

class MaskDecoder : public nn::Module {
 public:
  MaskDecoder(int64_t dim = 256, int64_t num_multimask_outputs = 3, int64_t iou_head_depth = 3,
              int64_t iou_head_hidden = 256, double eps = 1e-6);
  // image_embedding [1 or B, 256, 64, 64], image_pe [1, 256, 64, 64], sparse [B, N, 256],
  // dense [B, 256, 64, 64] -> (masks [B, K, 256, 256], iou [B, K]); K = 3 with multimask
  // (masks 1..3), else 1 (mask 0).
  std::pair<Tensor, Tensor> forward(const Tensor& image_embedding, const Tensor& image_pe,
                                    const Tensor& sparse, const Tensor& dense, bool multimask);
  int64_t num_mask_tokens() const { return num_mask_tokens_; }

 private:
  int64_t num_mask_tokens_;
  std::shared_ptr<TwoWayTransformer> transformer_;
  std::shared_ptr<SamEmbedding> iou_token_, mask_tokens_;
  std::shared_ptr<nn::Sequential> output_upscaling_;
  std::shared_ptr<nn::ModuleList> hyper_mlps_;
  std::shared_ptr<SamMLP> iou_head_;
};

// ---- the full model ----

class EfficientViTSam : public Model {
 public:
  EfficientViTSam(std::shared_ptr<Backbone> backbone, const SamNeckConfig& neck, int64_t image_size);
  // Backbone stage features and "output" = image embedding.
  FeatureMap forward_with_features(const Tensor& x) override;
  Tensor image_embedding(const Tensor& x) { return image_encoder->forward(x); }
  // Low-resolution masks [1, K, 256, 256] and IoU predictions [1, K] for one prompt set.
  std::pair<Tensor, Tensor> predict(const Tensor& embedding, const std::vector<SamPoint>& points,
                                    const std::optional<std::array<float, 4>>& box, bool multimask);
  // Encoder input side (512 for L models, 1024 for XL).
  int64_t image_size() const { return image_size_; }

  std::shared_ptr<SamImageEncoder> image_encoder;
  std::shared_ptr<PromptEncoder> prompt_encoder;
  std::shared_ptr<MaskDecoder> mask_decoder;

 private:
  int64_t image_size_;
};

// "l0", "l1", "l2", "xl0", "xl1".
std::shared_ptr<EfficientViTSam> make_efficientvit_sam(const std::string& name);

}  // namespace evit::zoo

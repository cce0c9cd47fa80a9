// The Segment Anything ViT image encoder (ViT-H/L/B): the teacher whose 256×64×64 embeddings
// EfficientViT-SAM's encoders are distilled from (Kirillov et al., "Segment Anything", 2023, and
// its released image_encoder).
//
// patch embedding (16×16 conv with bias) + absolute position embedding [1, S/16, S/16, D];
// `depth` pre-norm blocks (LayerNorm eps 1e-6, multi-head attention with qkv bias and decomposed
// relative position terms, MLP D -> 4D -> D with exact GELU); windowed attention (14×14 windows,
// the token grid zero-padded to a multiple of 14 after norm1, no mask) except in the global
// blocks; neck: 1×1 conv D -> 256 (no bias), LayerNorm2d, 3×3 conv (no bias), LayerNorm2d.
// Parameter and state-dict names are the released checkpoints' (under "image_encoder.").
#pragma once
#include <array>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "nn/container.h"
#include "nn/conv.h"
#include "nn/linear.h"
#include "nn/norm.h"

namespace evit::zoo {

struct SamViTConfig {
  int64_t image_size = 1024, patch_size = 16, embed_dim = 1280, depth = 32, heads = 16;
  int64_t mlp_ratio = 4, out_chans = 256, window_size = 14;
  std::vector<int64_t> global_blocks{7, 15, 23, 31};
};

// "vit_h", "vit_l", "vit_b" (also accepted: "sam-vit-h", ...), and "vit_demo": no released model but
// a two-block, width-32 encoder with the same 1024 input and 256×64×64 output, for the demo.
SamViTConfig sam_vit_config(const std::string& name);

// ---- the functions the blocks are made of (exposed for their gradient checks) ----

// [B, H, W, C] -> windows [B·nH·nW, ws, ws, C], the grid zero-padded at the bottom and right to
// multiples of ws; also returns the padded size {Hp, Wp}.
std::pair<Tensor, std::array<int64_t, 2>> window_partition(const Tensor& x, int64_t ws);
// The inverse: windows -> [B, H, W, C] (the padding cut off).
Tensor window_unpartition(const Tensor& windows, int64_t ws, std::array<int64_t, 2> padded_hw,
                          std::array<int64_t, 2> hw);
// The relative position embeddings of every (query, key) pair along one axis: [q_size, k_size, C]
// from a table [L, C]; the table is first resampled linearly to 2·max(q, k) − 1 rows when it has
// another length (a model run at another input size than it was trained at).
Tensor rel_pos_lookup(const Tensor& rel_pos, int64_t q_size, int64_t k_size);
// attn [B, qh·qw, kh·kw] plus the decomposed terms q·R_h and q·R_w (q [B, qh·qw, C], unscaled).
Tensor add_decomposed_rel_pos(const Tensor& attn, const Tensor& q, const Tensor& rel_pos_h, const Tensor& rel_pos_w,
                              std::array<int64_t, 2> q_hw, std::array<int64_t, 2> k_hw);

// ---- modules ----

class SamViTAttention : public nn::Module {
 public:
  // input_hw: the token grid the relative position tables are sized for.
  SamViTAttention(int64_t dim, int64_t heads, std::array<int64_t, 2> input_hw);
  Tensor forward(const Tensor& x) override;  // [B, H, W, C] -> [B, H, W, C]

  Tensor rel_pos_h, rel_pos_w;

 private:
  int64_t heads_;
  std::shared_ptr<nn::Linear> qkv_, proj_;
};

class SamViTBlock : public nn::Module {
 public:
  // window_size 0: global attention over input_hw.
  SamViTBlock(int64_t dim, int64_t heads, int64_t mlp_ratio, int64_t window_size, std::array<int64_t, 2> input_hw);
  Tensor forward(const Tensor& x) override;  // [B, H, W, C]

 private:
  int64_t window_size_;
  std::shared_ptr<nn::LayerNorm> norm1_, norm2_;
  std::shared_ptr<SamViTAttention> attn_;
  std::shared_ptr<nn::Linear> lin1_, lin2_;
};

class SamViTEncoder : public nn::Module {
 public:
  explicit SamViTEncoder(const SamViTConfig& c);
  // [B, 3, S, S] normalised and padded as data/sam_transforms.h prepares it -> [B, 256, S/16, S/16].
  Tensor forward(const Tensor& x) override;
  const SamViTConfig& config() const { return c_; }

  Tensor pos_embed;

 private:
  SamViTConfig c_;
  std::shared_ptr<nn::Conv2d> patch_proj_;
  std::shared_ptr<nn::ModuleList> blocks_;
  std::shared_ptr<nn::Sequential> neck_;
};

}  // namespace evit::zoo

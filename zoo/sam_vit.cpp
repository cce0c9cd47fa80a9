#include "zoo/sam_vit.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "ops/ops.h"

namespace evit::zoo {

SamViTConfig sam_vit_config(const std::string& name) {
  std::string n = name;
  if (n.rfind("sam-", 0) == 0) n = n.substr(4);
  std::replace(n.begin(), n.end(), '-', '_');
  SamViTConfig c;
  if (n == "vit_h") {
    c.embed_dim = 1280, c.depth = 32, c.heads = 16, c.global_blocks = {7, 15, 23, 31};
  } else if (n == "vit_l") {
    c.embed_dim = 1024, c.depth = 24, c.heads = 16, c.global_blocks = {5, 11, 17, 23};
  } else if (n == "vit_b") {
    c.embed_dim = 768, c.depth = 12, c.heads = 12, c.global_blocks = {2, 5, 8, 11};
  } else if (n == "vit_demo") {
    // Not a released model: the ViT-B layout at width 32 and depth 2, so that the demo and tests
    // can run the teacher side of distillation in seconds on a CPU.
    c.embed_dim = 32, c.depth = 2, c.heads = 2, c.global_blocks = {1};
  } else {
    EVIT_THROW("unknown SAM ViT encoder '", name, "' (known: sam-vit-h, sam-vit-l, sam-vit-b, and sam-vit-demo)");
  }
  return c;
}

std::pair<Tensor, std::array<int64_t, 2>> window_partition(const Tensor& x, int64_t ws) {
  EVIT_CHECK(x.dim() == 4 && ws >= 1, "window_partition: expected [B, H, W, C] and a window size >= 1, got ",
             x.desc(), " and ", ws);
  const int64_t b = x.size(0), h = x.size(1), w = x.size(2), c = x.size(3);
  const int64_t ph = (ws - h % ws) % ws, pw = (ws - w % ws) % ws;
  Tensor p = (ph > 0 || pw > 0) ? pad(x, {0, 0, 0, pw, 0, ph}) : x;
  const int64_t hp = h + ph, wp = w + pw;
  p = reshape(p, {b, hp / ws, ws, wp / ws, ws, c});
  return {reshape(permute(p, {0, 1, 3, 2, 4, 5}), {b * (hp / ws) * (wp / ws), ws, ws, c}), {hp, wp}};
}

Tensor window_unpartition(const Tensor& windows, int64_t ws, std::array<int64_t, 2> padded_hw,
                          std::array<int64_t, 2> hw) {
  const auto [hp, wp] = padded_hw;
  EVIT_CHECK(windows.dim() == 4 && hp % ws == 0 && wp % ws == 0 && hw[0] <= hp && hw[1] <= wp,
             "window_unpartition: windows ", windows.desc(), " do not tile ", hp, "x", wp, " with size ", ws);
  const int64_t per_image = (hp / ws) * (wp / ws), b = windows.size(0) / per_image, c = windows.size(3);
  Tensor x = reshape(windows, {b, hp / ws, wp / ws, ws, ws, c});
  x = reshape(permute(x, {0, 1, 3, 2, 4, 5}), {b, hp, wp, c});
  if (hp > hw[0] || wp > hw[1]) x = slice(slice(x, 1, 0, hw[0]), 2, 0, hw[1]);
  return x;
}

Tensor rel_pos_lookup(const Tensor& rel_pos, int64_t q_size, int64_t k_size) {
  EVIT_CHECK(rel_pos.dim() == 2 && rel_pos.size(0) >= 1, "rel_pos_lookup: expected a table [L, C], got ",
             rel_pos.desc());
  const int64_t length = rel_pos.size(0), rows = 2 * std::max(q_size, k_size) - 1;
  // Row weights of the table for each needed relative distance: the identity, or linear
  // resampling (align_corners false, as torch's interpolate) when the lengths differ.
  std::vector<std::vector<std::pair<int64_t, double>>> row_of(static_cast<size_t>(rows));
  const float scale = static_cast<float>(length) / static_cast<float>(rows);
  for (int64_t d = 0; d < rows; ++d) {
    if (length == rows) {
      row_of[d] = {{d, 1.0}};
      continue;
    }
    float src = std::max(scale * (static_cast<float>(d) + 0.5f) - 0.5f, 0.0f);
    const int64_t i0 = static_cast<int64_t>(src), i1 = i0 + (i0 < length - 1 ? 1 : 0);
    const double l1 = src - static_cast<float>(i0);
    row_of[d] = {{i0, 1.0 - l1}, {i1, l1}};
  }
  // Relative coordinates as the reference computes them (in f32), shifted to be non-negative.
  const float qs = std::max(static_cast<float>(k_size) / static_cast<float>(q_size), 1.0f);
  const float ks = std::max(static_cast<float>(q_size) / static_cast<float>(k_size), 1.0f);
  Tensor pick = zeros({q_size * k_size, length}, TensorOptions(rel_pos.dtype()));
  for (int64_t q = 0; q < q_size; ++q)
    for (int64_t k = 0; k < k_size; ++k) {
      const float rel = static_cast<float>(q) * qs - static_cast<float>(k) * ks + static_cast<float>(k_size - 1) * ks;
      const int64_t d = static_cast<int64_t>(rel);
      for (const auto& [row, weight] : row_of.at(static_cast<size_t>(d))) {
        const int64_t at = (q * k_size + k) * length + row;
        if (rel_pos.dtype() == DType::f64)
          pick.data_ptr<double>()[at] += weight;
        else
          pick.data_ptr<float>()[at] += static_cast<float>(weight);
      }
    }
  // A constant selection matrix times the table: differentiable in the table, on any device.
  return reshape(matmul(pick.to(rel_pos.device()), rel_pos), {q_size, k_size, rel_pos.size(1)});
}

Tensor add_decomposed_rel_pos(const Tensor& attn, const Tensor& q, const Tensor& rel_pos_h, const Tensor& rel_pos_w,
                              std::array<int64_t, 2> q_hw, std::array<int64_t, 2> k_hw) {
  const auto [qh, qw] = q_hw;
  const auto [kh, kw] = k_hw;
  const int64_t b = q.size(0), c = q.size(2);
  EVIT_CHECK(q.dim() == 3 && q.size(1) == qh * qw && attn.dim() == 3 && attn.size(0) == b &&
                 attn.size(1) == qh * qw && attn.size(2) == kh * kw,
             "add_decomposed_rel_pos: attn ", attn.desc(), " and q ", q.desc(), " do not match ", qh, "x", qw,
             " queries and ", kh, "x", kw, " keys");
  const Tensor rh = rel_pos_lookup(rel_pos_h, qh, kh), rw = rel_pos_lookup(rel_pos_w, qw, kw);
  const Tensor r_q = reshape(q, {b, qh, qw, c});
  // rel_h[b, y, x, k] = Σ_c r_q[b, y, x, c] · rh[y, k, c]: a matmul batched over y.
  Tensor rel_h = matmul(reshape(permute(r_q, {1, 0, 2, 3}), {qh, b * qw, c}), transpose(rh, 1, 2));
  rel_h = permute(reshape(rel_h, {qh, b, qw, kh}), {1, 0, 2, 3});
  Tensor rel_w = matmul(reshape(permute(r_q, {2, 0, 1, 3}), {qw, b * qh, c}), transpose(rw, 1, 2));
  rel_w = permute(reshape(rel_w, {qw, b, qh, kw}), {1, 2, 0, 3});
  Tensor a = reshape(attn, {b, qh, qw, kh, kw});
  a = add(add(a, unsqueeze(rel_h, 4)), unsqueeze(rel_w, 3));
  return reshape(a, {b, qh * qw, kh * kw});
}

SamViTAttention::SamViTAttention(int64_t dim, int64_t heads, std::array<int64_t, 2> input_hw)
    : nn::Module("Attention"), heads_(heads) {
  EVIT_CHECK(heads >= 1 && dim % heads == 0, "SamViTAttention: dim ", dim, " is not a multiple of ", heads, " heads");
  qkv_ = register_module("qkv", std::make_shared<nn::Linear>(dim, 3 * dim, true));
  proj_ = register_module("proj", std::make_shared<nn::Linear>(dim, dim, true));
  rel_pos_h = register_parameter("rel_pos_h", zeros({2 * input_hw[0] - 1, dim / heads}));
  rel_pos_w = register_parameter("rel_pos_w", zeros({2 * input_hw[1] - 1, dim / heads}));
}

Tensor SamViTAttention::forward(const Tensor& x) {
  EVIT_CHECK(x.dim() == 4, "SamViTAttention: expected [B, H, W, C], got ", x.desc());
  const int64_t b = x.size(0), h = x.size(1), w = x.size(2), dim = x.size(3), hd = dim / heads_;
  // [B, HW, 3, heads, hd] -> [3, B·heads, HW, hd]
  Tensor qkv = permute(reshape(qkv_->forward(x), {b, h * w, 3, heads_, hd}), {2, 0, 3, 1, 4});
  qkv = reshape(qkv, {3, b * heads_, h * w, hd});
  const Tensor q = select(qkv, 0, 0), k = select(qkv, 0, 1), v = select(qkv, 0, 2);
  const double scale = std::pow(static_cast<double>(hd), -0.5);
  Tensor attn = matmul(mul(q, scale), transpose(k, 1, 2));
  attn = add_decomposed_rel_pos(attn, q, rel_pos_h, rel_pos_w, {h, w}, {h, w});
  attn = softmax(attn, -1);
  Tensor o = reshape(matmul(attn, v), {b, heads_, h, w, hd});
  o = reshape(permute(o, {0, 2, 3, 1, 4}), {b, h, w, dim});
  return proj_->forward(o);
}

SamViTBlock::SamViTBlock(int64_t dim, int64_t heads, int64_t mlp_ratio, int64_t window_size,
                         std::array<int64_t, 2> input_hw)
    : nn::Module("Block"), window_size_(window_size) {
  norm1_ = register_module("norm1", std::make_shared<nn::LayerNorm>(dim, 1e-6));
  attn_ = register_module("attn", std::make_shared<SamViTAttention>(
                                      dim, heads, window_size > 0 ? std::array<int64_t, 2>{window_size, window_size} : input_hw));
  norm2_ = register_module("norm2", std::make_shared<nn::LayerNorm>(dim, 1e-6));
  auto mlp = register_module("mlp", std::make_shared<nn::Module>("MLPBlock"));
  lin1_ = mlp->register_module("lin1", std::make_shared<nn::Linear>(dim, dim * mlp_ratio));
  lin2_ = mlp->register_module("lin2", std::make_shared<nn::Linear>(dim * mlp_ratio, dim));
}

Tensor SamViTBlock::forward(const Tensor& x) {
  Tensor y = norm1_->forward(x);
  if (window_size_ > 0) {
    const std::array<int64_t, 2> hw{x.size(1), x.size(2)};
    auto [windows, padded] = window_partition(y, window_size_);
    y = window_unpartition(attn_->forward(windows), window_size_, padded, hw);
  } else {
    y = attn_->forward(y);
  }
  const Tensor r = add(x, y);
  return add(r, lin2_->forward(gelu(lin1_->forward(norm2_->forward(r)))));
}

SamViTEncoder::SamViTEncoder(const SamViTConfig& c) : nn::Module("ImageEncoderViT"), c_(c) {
  EVIT_CHECK(c.image_size % c.patch_size == 0, "SamViTEncoder: image size ", c.image_size,
             " is not a multiple of the patch size ", c.patch_size);
  const int64_t grid = c.image_size / c.patch_size;
  auto patch_embed = register_module("patch_embed", std::make_shared<nn::Module>("PatchEmbed"));
  patch_proj_ = patch_embed->register_module(
      "proj", std::make_shared<nn::Conv2d>(nn::Conv2dOptions{3, c.embed_dim, c.patch_size, c.patch_size, 0, 1, 1, true}));
  pos_embed = register_parameter("pos_embed", zeros({1, grid, grid, c.embed_dim}));
  blocks_ = register_module("blocks", std::make_shared<nn::ModuleList>());
  for (int64_t i = 0; i < c.depth; ++i) {
    const bool global = std::find(c.global_blocks.begin(), c.global_blocks.end(), i) != c.global_blocks.end();
    blocks_->push_back(std::make_shared<SamViTBlock>(c.embed_dim, c.heads, c.mlp_ratio, global ? 0 : c.window_size,
                                                     std::array<int64_t, 2>{grid, grid}));
  }
  neck_ = register_module("neck", std::make_shared<nn::Sequential>());
  neck_->push_back(std::make_shared<nn::Conv2d>(nn::Conv2dOptions{c.embed_dim, c.out_chans, 1, 1, 0, 1, 1, false}));
  neck_->push_back(std::make_shared<nn::LayerNorm2d>(c.out_chans, 1e-6));
  neck_->push_back(std::make_shared<nn::Conv2d>(nn::Conv2dOptions{c.out_chans, c.out_chans, 3, 1, 1, 1, 1, false}));
  neck_->push_back(std::make_shared<nn::LayerNorm2d>(c.out_chans, 1e-6));
}

Tensor SamViTEncoder::forward(const Tensor& x) {
  EVIT_CHECK(x.dim() == 4 && x.size(1) == 3 && x.size(2) == c_.image_size && x.size(3) == c_.image_size,
             "SamViTEncoder: expected [B, 3, ", c_.image_size, ", ", c_.image_size, "], got ", x.desc());
  Tensor t = add(permute(patch_proj_->forward(x), {0, 2, 3, 1}), pos_embed);
  for (size_t i = 0; i < blocks_->size(); ++i) t = (*blocks_)[i]->forward(t);
  return neck_->forward(permute(t, {0, 3, 1, 2}).contiguous());
}

}  // namespace evit::zoo

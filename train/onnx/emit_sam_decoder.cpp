// The SAM prompt encoder + mask decoder as one ONNX graph, with the interface of the official
// EfficientViT-SAM decoder export (itself Segment Anything's):
//   image_embeddings [1, 256, 64, 64], point_coords [B, N, 2] (pixels of the 1024 prompt frame),
//   point_labels [B, N] (1 foreground, 0 background, 2 / 3 box corners, -1 padding)
//   -> masks [B, 4, 256, 256] (low-resolution logits; 0 is the single-mask output, 1..3 the
//      multimask ones), iou_predictions [B, 4].
// B (prompt sets) and N (points per set) are dynamic. A set without a box ends with one padding
// point, as the predictor builds it. The dense positional encoding of the 64x64 grid and the
// no-mask embedding are constants of the graph.
#include "train/onnx/emit_sam_decoder.h"

#include <cmath>
#include <numbers>

#include "core/error.h"
#include "nn/linear.h"
#include "ops/activation.h"
#include "ops/linalg.h"
#include "ops/pointwise.h"
#include "ops/shape.h"

namespace evit::train {
namespace {

constexpr OnnxType f32 = OnnxType::f32;

OnnxValue add(OnnxEmitter& e, const OnnxValue& a, const OnnxValue& b, const std::string& path) {
  return e.node("Add", {a.name, b.name}, evit::add(a.example, b.example), f32, path);
}

// x [..., in] -> x W^T + b on a 3-D input (Gemm takes 2-D only): MatMul with the transposed
// weight, stored under "<key>.weight_transposed".
OnnxValue linear3d(OnnxEmitter& e, nn::Module& m, const std::string& path, const OnnxValue& x,
                   const Tensor& example = Tensor()) {
  auto& linear = dynamic_cast<nn::Linear&>(m);
  const std::string wt =
      e.graph().add_initializer(path + ".weight_transposed", transpose(linear.weight, 0, 1).contiguous(), f32);
  OnnxValue y = e.node("MatMul", {x.name, wt}, Tensor(), f32, path);
  return e.node("Add", {y.name, e.weight(path + ".bias", linear.bias)},
                example.defined() ? example : linear.forward(x.example), f32, path);
}

// SAM's Attention: projections, heads, softmax(q k^T / sqrt(c)) v, merged heads, out_proj.
OnnxValue attention(OnnxEmitter& e, zoo::SamAttention& a, const std::string& path, const OnnxValue& q,
                    const OnnxValue& k, const OnnxValue& v) {
  const int64_t h = a.heads();
  const int64_t inner = dynamic_cast<nn::Linear&>(*a.child("q_proj")).weight.size(0);
  auto split = [&](const OnnxValue& x) {  // [B, n, inner] -> [B, h, n, inner/h]
    OnnxValue r = e.node("Reshape", {x.name, e.ints({0, 0, h, inner / h})}, Tensor(), f32, path);
    return e.unary("Transpose", r, Tensor(), path, {{"perm", std::vector<int64_t>{0, 2, 1, 3}}});
  };
  OnnxValue qh = split(linear3d(e, *a.child("q_proj"), path + ".q_proj", q));
  OnnxValue kh = split(linear3d(e, *a.child("k_proj"), path + ".k_proj", k));
  OnnxValue vh = split(linear3d(e, *a.child("v_proj"), path + ".v_proj", v));
  OnnxValue kt = e.unary("Transpose", kh, Tensor(), path, {{"perm", std::vector<int64_t>{0, 1, 3, 2}}});
  OnnxValue s = e.node("MatMul", {qh.name, kt.name}, Tensor(), f32, path);
  s = e.node("Mul", {s.name, e.scalar(1.0 / std::sqrt(static_cast<double>(inner / h)), f32)}, Tensor(), f32, path);
  s = e.unary("Softmax", s, Tensor(), path, {{"axis", int64_t{-1}}});
  OnnxValue o = e.node("MatMul", {s.name, vh.name}, Tensor(), f32, path);
  o = e.unary("Transpose", o, Tensor(), path, {{"perm", std::vector<int64_t>{0, 2, 1, 3}}});
  o = e.node("Reshape", {o.name, e.ints({0, 0, inner})}, Tensor(), f32, path);
  return linear3d(e, *a.child("out_proj"), path + ".out_proj", o, a.forward(q.example, k.example, v.example));
}

// One TwoWayAttentionBlock: (queries, keys) -> (queries, keys).
std::pair<OnnxValue, OnnxValue> two_way_block(OnnxEmitter& e, zoo::TwoWayAttentionBlock& block,
                                              const std::string& path, OnnxValue queries, OnnxValue keys,
                                              const OnnxValue& query_pe, const OnnxValue& key_pe) {
  auto attn = [&](const char* name) -> zoo::SamAttention& {
    return dynamic_cast<zoo::SamAttention&>(*block.child(name));
  };
  auto norm = [&](const char* name, const OnnxValue& x) { return e.emit(*block.child(name), path + "." + name, x); };
  if (block.skip_first_layer_pe()) {
    queries = attention(e, attn("self_attn"), path + ".self_attn", queries, queries, queries);
  } else {
    OnnxValue q = add(e, queries, query_pe, path);
    queries = add(e, queries, attention(e, attn("self_attn"), path + ".self_attn", q, q, queries), path);
  }
  queries = norm("norm1", queries);
  OnnxValue q = add(e, queries, query_pe, path), k = add(e, keys, key_pe, path);
  queries = add(e, queries,
                attention(e, attn("cross_attn_token_to_image"), path + ".cross_attn_token_to_image", q, k, keys),
                path);
  queries = norm("norm2", queries);
  auto& mlp = *block.child("mlp");
  OnnxValue hidden = linear3d(e, *mlp.child("lin1"), path + ".mlp.lin1", queries);
  hidden = e.unary("Relu", hidden, relu(hidden.example), path + ".mlp");
  queries = add(e, queries, linear3d(e, *mlp.child("lin2"), path + ".mlp.lin2", hidden), path);
  queries = norm("norm3", queries);
  q = add(e, queries, query_pe, path);
  keys = add(e, keys,
             attention(e, attn("cross_attn_image_to_token"), path + ".cross_attn_image_to_token", k, q, queries),
             path);
  keys = norm("norm4", keys);
  return {queries, keys};
}

// The prompt tokens: the random-Fourier encoding of each point (pe), kept for labels >= 0 and
// replaced by not_a_point_embed for padding, plus point_embeddings[label] for labels 0..3.
OnnxValue embed_points(OnnxEmitter& e, zoo::PromptEncoder& pe_module, const OnnxValue& coords,
                       const OnnxValue& labels, const Tensor& example) {
  const std::string path = "prompt_encoder";
  const double frame = static_cast<double>(pe_module.input_size());
  const Tensor& gaussian = pe_module.pe_layer->gaussian;
  // u = (c + 0.5) / frame; 2u - 1; @ G; · 2π; [sin, cos]
  OnnxValue u = e.node("Add", {coords.name, e.scalar(0.5, f32)}, Tensor(), f32, path);
  u = e.node("Div", {u.name, e.scalar(frame, f32)}, Tensor(), f32, path);
  u = e.node("Mul", {u.name, e.scalar(2.0, f32)}, Tensor(), f32, path);
  u = e.node("Sub", {u.name, e.scalar(1.0, f32)}, Tensor(), f32, path);
  u = e.node("MatMul", {u.name, e.weight("prompt_encoder.pe_layer.positional_encoding_gaussian_matrix", gaussian)},
             Tensor(), f32, path);
  u = e.node("Mul", {u.name, e.scalar(2.0 * std::numbers::pi, f32)}, Tensor(), f32, path);
  OnnxValue sin = e.unary("Sin", u, Tensor(), path), cos = e.unary("Cos", u, Tensor(), path);
  OnnxValue pe = e.node("Concat", {sin.name, cos.name}, Tensor(), f32, path, {{"axis", int64_t{-1}}});
  // Labels as [B, N, 1] integers (Equal on floats needs opset 13; integers work from 11).
  OnnxValue lab = e.node("Reshape", {labels.name, e.ints({0, 0, 1})}, Tensor(), f32, path);
  lab = e.node("Cast", {lab.name}, Tensor(), OnnxType::i64, path, {{"to", int64_t{7}}});
  auto is = [&](int64_t value) {
    OnnxValue eq = e.node("Equal", {lab.name, e.ints({value})}, Tensor(), OnnxType::i64, path);
    return e.node("Cast", {eq.name}, Tensor(), f32, path, {{"to", int64_t{1}}});
  };
  OnnxValue padding = is(-1);
  OnnxValue keep = e.node("Sub", {e.scalar(1.0, f32), padding.name}, Tensor(), f32, path);
  OnnxValue out = e.node("Mul", {pe.name, keep.name}, Tensor(), f32, path);
  auto weight_of = [&](const std::string& key) {
    for (auto& [k, t] : pe_module.named_parameters())
      if ("prompt_encoder." + k == key) return e.weight(key, t);
    EVIT_THROW("ONNX export: the prompt encoder has no parameter '", key, "'");
  };
  OnnxValue term = e.node("Mul", {padding.name, weight_of("prompt_encoder.not_a_point_embed.weight")}, Tensor(), f32, path);
  out = e.node("Add", {out.name, term.name}, Tensor(), f32, path);
  for (int64_t i = 0; i < 4; ++i) {
    const std::string key = "prompt_encoder.point_embeddings." + std::to_string(i) + ".weight";
    term = e.node("Mul", {is(i).name, weight_of(key)}, Tensor(), f32, path);
    out = e.node("Add", {out.name, term.name}, i == 3 ? example : Tensor(), f32, path);
  }
  return out;
}

// [B, ...] -> the runtime shape [B, 1, ..., 1] (rank `rank`), for Expand to broadcast a constant
// of batch 1 to the prompt batch.
std::string batch_broadcast_shape(OnnxEmitter& e, const OnnxValue& batched, int64_t rank) {
  OnnxValue shape = e.unary("Shape", batched, Tensor(), "batch_shape");
  shape.type = OnnxType::i64;
  OnnxValue b = e.node("Slice", {shape.name, e.ints({0}), e.ints({1}), e.ints({0})}, Tensor(), OnnxType::i64,
                       "batch_shape");
  std::vector<int64_t> ones(static_cast<size_t>(rank - 1), 1);
  return e.node("Concat", {b.name, e.ints(ones)}, Tensor(), OnnxType::i64, "batch_shape", {{"axis", int64_t{0}}}).name;
}

// Row `index` of dim 1: [B, T, C] -> [B, C].
OnnxValue token(OnnxEmitter& e, const OnnxValue& hs, int64_t index, const std::string& path) {
  OnnxValue idx{e.graph().add_initializer(e.graph().fresh_name("token_index"),
                                          from_vector(std::vector<int64_t>{index}, Shape{}), OnnxType::i64),
                Tensor(), OnnxType::i64};
  return e.node("Gather", {hs.name, idx.name}, select(hs.example, 1, index), f32, path, {{"axis", int64_t{1}}});
}

}  // namespace

SamDecoderOutputs emit_sam_decoder(zoo::EfficientViTSam& sam, OnnxEmitter& e, const SamDecoderInputs& in) {
  EVIT_CHECK(e.compute_type() == f32, "ONNX export: the SAM decoder graph is written in f32 (--half applies to ",
             "the image encoder)");
  auto& pe_module = *sam.prompt_encoder;
  auto& decoder = *sam.mask_decoder;
  const int64_t grid = pe_module.embedding_size();
  const int64_t b = in.coords.size(0), dim = in.embeddings.size(1);
  OnnxGraph& g = e.graph();
  g.add_input({"image_embeddings", f32, {1, dim, grid, grid}, {}});
  g.add_input({"point_coords", f32, {-1, -1, 2}, {"batch_size", "num_points", ""}});
  g.add_input({"point_labels", f32, {-1, -1}, {"batch_size", "num_points"}});

  // evit's own prompt tokens for the example prompts, set by set (the predictor's path).
  std::vector<Tensor> sparse_rows;
  const auto xy = in.coords.to_vector<float>();
  const auto lab = in.labels.to_vector<float>();
  const int64_t n = in.coords.size(1);
  for (int64_t s = 0; s < b; ++s) {
    std::vector<zoo::SamPoint> points;
    std::optional<std::array<float, 4>> box;
    std::array<float, 4> corners{};
    for (int64_t i = 0; i < n; ++i) {
      const float x = xy[(s * n + i) * 2], y = xy[(s * n + i) * 2 + 1];
      const int label = static_cast<int>(lab[s * n + i]);
      if (label == 2) corners[0] = x, corners[1] = y, box = corners;
      else if (label == 3) corners[2] = x, corners[3] = y, box = corners;
      else if (label != -1) points.push_back({x, y, label});
    }
    sparse_rows.push_back(pe_module.forward(points, box).first);
  }
  const Tensor sparse_example = cat(sparse_rows, 0);
  EVIT_CHECK(sparse_example.size(1) == n, "ONNX export: the example prompts must end with a padding point or a box");

  OnnxValue coords{"point_coords", in.coords, f32}, labels{"point_labels", in.labels, f32};
  OnnxValue sparse = embed_points(e, pe_module, coords, labels, sparse_example);

  // Tokens: [iou_token; mask_tokens] broadcast to the B prompt sets, then the prompt tokens.
  const int64_t t = decoder.num_mask_tokens();
  auto weight = [&](const std::string& name) {
    return dynamic_cast<zoo::SamEmbedding&>(*decoder.child(name)).weight;
  };
  const Tensor out_tokens = unsqueeze(cat({weight("iou_token"), weight("mask_tokens")}, 0), 0);  // [1, 1+t, C]
  OnnxValue fixed{e.weight("mask_decoder.output_tokens", out_tokens), Tensor(), f32};
  fixed = e.node("Expand", {fixed.name, batch_broadcast_shape(e, coords, 3)},
                 expand(out_tokens, {b, -1, -1}), f32, "mask_decoder");
  OnnxValue tokens = e.node("Concat", {fixed.name, sparse.name}, cat({fixed.example, sparse.example}, 1), f32,
                            "mask_decoder", {{"axis", int64_t{1}}});

  // Image side: embedding + the no-mask dense embedding, broadcast to the prompt sets.
  const Tensor no_mask = reshape(dynamic_cast<zoo::SamEmbedding&>(*pe_module.child("no_mask_embed")).weight,
                                 {1, dim, 1, 1});
  OnnxValue src = e.node("Add", {"image_embeddings", e.weight("prompt_encoder.no_mask_embed.weight", no_mask)},
                         evit::add(in.embeddings, no_mask), f32, "mask_decoder");
  src = e.node("Expand", {src.name, batch_broadcast_shape(e, coords, 4)},
               expand(src.example, {b, -1, -1, -1}), f32, "mask_decoder");

  // Transformer over [B, HW, C] image tokens; the dense positional encoding is a constant.
  const std::string tp = "mask_decoder.transformer";
  OnnxValue keys = e.node("Reshape", {src.name, e.ints({0, dim, -1})}, Tensor(), f32, tp);
  keys = e.unary("Transpose", keys, permute(flatten(src.example, 2), {0, 2, 1}), tp,
                 {{"perm", std::vector<int64_t>{0, 2, 1}}});
  const Tensor key_pe_example = permute(flatten(pe_module.dense_pe(), 2), {0, 2, 1}).contiguous();  // [1, HW, C]
  OnnxValue key_pe{g.add_initializer("prompt_encoder.dense_pe", key_pe_example, f32), key_pe_example, f32};
  OnnxValue queries = tokens;
  auto& transformer = *decoder.child("transformer");
  for (auto& [name, layer] : transformer.child("layers")->named_children())
    std::tie(queries, keys) = two_way_block(e, dynamic_cast<zoo::TwoWayAttentionBlock&>(*layer),
                                            tp + ".layers." + name, queries, keys, tokens, key_pe);
  OnnxValue q = add(e, queries, tokens, tp), k = add(e, keys, key_pe, tp);
  queries = add(e, queries,
                attention(e, dynamic_cast<zoo::SamAttention&>(*transformer.child("final_attn_token_to_image")),
                          tp + ".final_attn_token_to_image", q, k, keys),
                tp);
  queries = e.emit(*transformer.child("norm_final_attn"), tp + ".norm_final_attn", queries);

  // Masks: upscaled image tokens times each mask token's hypernetwork output.
  OnnxValue img = e.unary("Transpose", keys, Tensor(), "mask_decoder", {{"perm", std::vector<int64_t>{0, 2, 1}}});
  img = e.node("Reshape", {img.name, e.ints({0, dim, grid, grid})},
               reshape(transpose(keys.example, 1, 2), {b, dim, grid, grid}), f32, "mask_decoder");
  OnnxValue up = e.emit(*decoder.child("output_upscaling"), "mask_decoder.output_upscaling", img);
  const int64_t uc = up.example.size(1), uh = up.example.size(2), uw = up.example.size(3);
  std::vector<std::string> hyper;
  std::vector<Tensor> hyper_examples;
  int64_t i = 0;
  for (auto& [name, mlp] : decoder.child("output_hypernetworks_mlps")->named_children()) {
    OnnxValue h = e.emit(*mlp, "mask_decoder.output_hypernetworks_mlps." + name, token(e, queries, 1 + i, "mask_decoder"));
    h = e.node("Reshape", {h.name, e.ints({0, 1, -1})}, unsqueeze(h.example, 1), f32, "mask_decoder");
    hyper.push_back(h.name);
    hyper_examples.push_back(h.example);
    ++i;
  }
  OnnxValue hyper_in = e.node("Concat", hyper, cat(hyper_examples, 1), f32, "mask_decoder", {{"axis", int64_t{1}}});
  OnnxValue flat_up = e.node("Reshape", {up.name, e.ints({0, uc, -1})}, reshape(up.example, {b, uc, uh * uw}), f32,
                             "mask_decoder");
  OnnxValue masks = e.node("MatMul", {hyper_in.name, flat_up.name}, matmul(hyper_in.example, flat_up.example), f32,
                           "mask_decoder");
  masks = e.node("Reshape", {masks.name, e.ints({0, t, uh, uw})}, reshape(masks.example, {b, t, uh, uw}), f32,
                 "mask_decoder");
  OnnxValue iou = e.emit(*decoder.child("iou_prediction_head"), "mask_decoder.iou_prediction_head",
                         token(e, queries, 0, "mask_decoder"));

  g.rename_value(masks.name, "masks");
  g.rename_value(iou.name, "iou_predictions");
  g.add_output({"masks", f32, {-1, t, uh, uw}, {"batch_size", "", "", ""}});
  g.add_output({"iou_predictions", f32, {-1, t}, {"batch_size", ""}});
  return {masks.example, iou.example, sparse_example};
}

namespace {

// SAM's MLP: Linear layers with ReLU between them.
OnnxValue emit_sam_mlp(nn::Module& m, const std::string& path, const OnnxValue& x, OnnxEmitter& e) {
  auto layers = m.child("layers")->named_children();
  OnnxValue y = x;
  for (size_t i = 0; i < layers.size(); ++i) {
    y = e.emit(*layers[i].second, path + ".layers." + layers[i].first, y);
    if (i + 1 < layers.size()) y = e.unary("Relu", y, relu(y.example), path);
  }
  return y;
}

const OnnxEmitterRegistrar registrars[] = {
    {typeid(zoo::SamMLP), emit_sam_mlp},
};

}  // namespace
}  // namespace evit::train

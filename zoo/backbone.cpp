#include "zoo/backbone.h"

#include "zoo/lite_mla.h"
#include "zoo/local_blocks.h"

namespace evit::zoo {
namespace {
std::shared_ptr<ConvLayer> stem_conv(int64_t out, const NormSpec& norm, const std::string& act) {
  ConvLayerOptions o{3, out, 3, 2};
  o.norm = norm;
  o.act = act;
  return std::make_shared<ConvLayer>(o);
}
}  // namespace

EfficientViTBackbone::EfficientViTBackbone(const BackboneBConfig& c) : Backbone("EfficientViTBackbone") {
  EVIT_CHECK(c.widths.size() == 5 && c.depths.size() == 5, "EfficientViTBackbone: expected 5 widths ",
             "and 5 depths, got ", c.widths.size(), " and ", c.depths.size());
  widths_ = c.widths;
  std::vector<std::shared_ptr<nn::Module>> stem{stem_conv(c.widths[0], c.norm, c.act)};
  for (int64_t i = 0; i < c.depths[0]; ++i)
    stem.push_back(std::make_shared<ResidualBlock>(
        make_local_block("ds", c.widths[0], c.widths[0], 1, 1, c.norm, c.act, false), true));
  input_stem_ = register_module("input_stem", std::make_shared<OpSequential>(stem));

  stages_ = register_module("stages", std::make_shared<nn::ModuleList>());
  int64_t in = c.widths[0];
  for (int s = 1; s <= 2; ++s) {  // MBConv stages
    std::vector<std::shared_ptr<nn::Module>> blocks;
    for (int64_t i = 0; i < c.depths[s]; ++i) {
      int64_t stride = i == 0 ? 2 : 1;
      blocks.push_back(std::make_shared<ResidualBlock>(
          make_local_block("mb", in, c.widths[s], stride, c.expand, c.norm, c.act, false), stride == 1));
      in = c.widths[s];
    }
    stages_->push_back(std::make_shared<OpSequential>(blocks));
  }
  for (int s = 3; s <= 4; ++s) {  // attention stages
    std::vector<std::shared_ptr<nn::Module>> blocks;
    blocks.push_back(std::make_shared<ResidualBlock>(
        make_local_block("mb", in, c.widths[s], 2, c.expand, c.norm, c.act, true), false));
    in = c.widths[s];
    for (int64_t i = 0; i < c.depths[s]; ++i)
      blocks.push_back(std::make_shared<EfficientViTBlock>(in, c.dim, c.expand, std::vector<int64_t>{5},
                                                           c.norm, c.act));
    stages_->push_back(std::make_shared<OpSequential>(blocks));
  }
}

FeatureMap EfficientViTBackbone::forward_features(const Tensor& x) {
  FeatureMap f;
  f["input"] = x;
  Tensor y = input_stem_->forward(x);
  f["stage0"] = y;
  for (size_t i = 0; i < stages_->size(); ++i) {
    y = (*stages_)[i]->forward(y);
    f["stage" + std::to_string(i + 1)] = y;
  }
  f["stage_final"] = y;
  return f;
}

EfficientViTLargeBackbone::EfficientViTLargeBackbone(const BackboneLConfig& c)
    : Backbone("EfficientViTLargeBackbone") {
  const size_t n = c.widths.size();
  EVIT_CHECK(c.depths.size() == n && c.blocks.size() == n && c.expands.size() == n &&
                 c.fewer_norm.size() == n,
             "EfficientViTLargeBackbone: widths, depths, blocks, expands and fewer_norm must have ",
             "the same length");
  widths_ = c.widths;
  stages_ = register_module("stages", std::make_shared<nn::ModuleList>());
  std::vector<std::shared_ptr<nn::Module>> stage0{stem_conv(c.widths[0], c.norm, c.act)};
  for (int64_t i = 0; i < c.depths[0]; ++i)
    stage0.push_back(std::make_shared<ResidualBlock>(
        make_local_block(c.blocks[0], c.widths[0], c.widths[0], 1, c.expands[0], c.norm, c.act,
                         c.fewer_norm[0]),
        true));
  stages_->push_back(std::make_shared<OpSequential>(stage0));
  int64_t in = c.widths[0];
  for (size_t s = 1; s < n; ++s) {
    const std::string& type = c.blocks[s];
    const bool attention = type.rfind("att", 0) == 0;
    std::vector<std::shared_ptr<nn::Module>> blocks;
    // The downsampling block: an MBConv for attention stages, else the stage's own block type,
    // with 4x the stage's expansion.
    blocks.push_back(std::make_shared<ResidualBlock>(
        make_local_block(attention ? "mb" : type, in, c.widths[s], 2, c.expands[s] * 4, c.norm, c.act,
                         c.fewer_norm[s]),
        false));
    in = c.widths[s];
    for (int64_t i = 0; i < c.depths[s]; ++i) {
      if (attention) {
        std::vector<int64_t> scales{type == "att@3" ? 3 : 5};
        blocks.push_back(std::make_shared<EfficientViTBlock>(in, c.qkv_dim, c.expands[s], scales,
                                                             c.norm, c.act));
      } else {
        blocks.push_back(std::make_shared<ResidualBlock>(
            make_local_block(type, in, in, 1, c.expands[s], c.norm, c.act, c.fewer_norm[s]), true));
      }
    }
    stages_->push_back(std::make_shared<OpSequential>(blocks));
  }
}

FeatureMap EfficientViTLargeBackbone::forward_features(const Tensor& x) {
  FeatureMap f;
  f["input"] = x;
  Tensor y = x;
  for (size_t i = 0; i < stages_->size(); ++i) {
    y = (*stages_)[i]->forward(y);
    f["stage" + std::to_string(i)] = y;
  }
  f["stage_final"] = y;
  return f;
}

std::shared_ptr<Backbone> make_backbone(const std::string& name, double eps) {
  if (name[0] == 'b') {
    BackboneBConfig c;
    if (name == "b0") c.widths = {8, 16, 32, 64, 128}, c.depths = {1, 2, 2, 2, 2}, c.dim = 16;
    else if (name == "b1") c.widths = {16, 32, 64, 128, 256}, c.depths = {1, 2, 3, 3, 4}, c.dim = 16;
    else if (name == "b2") c.widths = {24, 48, 96, 192, 384}, c.depths = {1, 3, 4, 4, 6}, c.dim = 32;
    else if (name == "b3") c.widths = {32, 64, 128, 256, 512}, c.depths = {1, 4, 6, 6, 9}, c.dim = 32;
    else EVIT_THROW("unknown backbone '", name, "'");
    if (eps > 0) c.norm.eps = eps;
    return std::make_shared<EfficientViTBackbone>(c);
  }
  BackboneLConfig c;
  if (name == "l0") c.widths = {32, 64, 128, 256, 512}, c.depths = {1, 1, 1, 4, 4};
  else if (name == "l1") c.widths = {32, 64, 128, 256, 512}, c.depths = {1, 1, 1, 6, 6};
  else if (name == "l2") c.widths = {32, 64, 128, 256, 512}, c.depths = {1, 2, 2, 8, 8};
  else if (name == "l3") c.widths = {64, 128, 256, 512, 1024}, c.depths = {1, 2, 2, 8, 8};
  else if (name == "xl0" || name == "xl1") {
    c.widths = {32, 64, 128, 256, 512, 1024};
    c.depths = name == "xl0" ? std::vector<int64_t>{0, 1, 1, 2, 3, 3} : std::vector<int64_t>{1, 2, 2, 4, 6, 6};
    c.blocks = {"res", "fmb", "fmb", "fmb", "att@3", "att@3"};
    c.expands = {1, 4, 4, 4, 4, 6};
    c.fewer_norm = {false, false, false, false, true, true};
  } else {
    EVIT_THROW("unknown backbone '", name, "' (known: b0-b3, l0-l3, xl0, xl1)");
  }
  if (eps > 0) c.norm.eps = eps;
  return std::make_shared<EfficientViTLargeBackbone>(c);
}

}  // namespace evit::zoo

// EfficientViT backbones (docs/models.md): the B series (EfficientViTBackbone: input_stem + 4 stages)
// and the L/XL series (EfficientViTLargeBackbone: stages only). forward_features returns the
// named features "input", "stage0", ..., "stage_final".
#pragma once
#include <map>

#include "zoo/layers.h"

namespace evit::zoo {

using FeatureMap = std::map<std::string, Tensor>;

class Backbone : public nn::Module {
 public:
  using nn::Module::Module;
  virtual FeatureMap forward_features(const Tensor& x) = 0;
  Tensor forward(const Tensor& x) override { return forward_features(x).at("stage_final"); }
  const std::vector<int64_t>& widths() const { return widths_; }

 protected:
  std::vector<int64_t> widths_;
};

struct BackboneBConfig {
  std::vector<int64_t> widths, depths;
  int64_t dim = 16;
  double expand = 4;
  NormSpec norm{"bn2d", 1e-5};
  std::string act = "hswish";
};

class EfficientViTBackbone : public Backbone {
 public:
  explicit EfficientViTBackbone(const BackboneBConfig& c);
  FeatureMap forward_features(const Tensor& x) override;

 private:
  std::shared_ptr<nn::Module> input_stem_;
  std::shared_ptr<nn::ModuleList> stages_;
};

struct BackboneLConfig {
  std::vector<int64_t> widths, depths;
  std::vector<std::string> blocks = {"res", "fmb", "fmb", "mb", "att"};
  std::vector<double> expands = {1, 4, 4, 4, 6};
  std::vector<bool> fewer_norm = {false, false, false, true, true};
  int64_t qkv_dim = 32;
  NormSpec norm{"bn2d", 1e-7};
  std::string act = "gelu";
};

class EfficientViTLargeBackbone : public Backbone {
 public:
  explicit EfficientViTLargeBackbone(const BackboneLConfig& c);
  FeatureMap forward_features(const Tensor& x) override;

 private:
  std::shared_ptr<nn::ModuleList> stages_;
};

// Named configurations: "b0".."b3" (B series), "l0".."l3", "xl0", "xl1" (L/XL series), with the
// family's norm eps (B 1e-5, L 1e-7; pass sam_eps for the SAM variants, 1e-6).
std::shared_ptr<Backbone> make_backbone(const std::string& name, double norm_eps = 0.0);

}  // namespace evit::zoo

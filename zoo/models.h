// Complete models and the registry that builds them by name.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "zoo/heads.h"

namespace evit::zoo {

// A model maps an image batch to its task output; models with a backbone also expose the
// backbone's named stage features.
class Model : public nn::Module {
 public:
  using nn::Module::Module;
  // Output and (where there is a backbone) "stage0", "stage1", ... in one pass.
  virtual FeatureMap forward_with_features(const Tensor& x) = 0;
  Tensor forward(const Tensor& x) override { return forward_with_features(x).at("output"); }
};

class EfficientViTCls : public Model {
 public:
  EfficientViTCls(std::shared_ptr<Backbone> backbone, const ClsHeadConfig& head);
  FeatureMap forward_with_features(const Tensor& x) override;
  std::shared_ptr<Backbone> backbone;
  std::shared_ptr<ClsHead> head;
};

class EfficientViTSeg : public Model {
 public:
  EfficientViTSeg(std::shared_ptr<Backbone> backbone, const SegHeadConfig& head);
  FeatureMap forward_with_features(const Tensor& x) override;
  std::shared_ptr<Backbone> backbone;
  std::shared_ptr<SegHead> head;
};

struct ModelInfo {
  std::string name, task, description;
  // Builds the model; num_classes > 0 replaces the default class count (classification and
  // segmentation heads), 0 keeps it.
  std::function<std::shared_ptr<Model>(int64_t num_classes)> build;
};

// All registered models, in a stable order.
const std::vector<ModelInfo>& model_registry();
// Builds a registered model (PyTorch-default random init); throws listing the known names.
// num_classes > 0 changes the number of classes of a classification or segmentation head.
std::shared_ptr<Model> create_model(const std::string& name, int64_t num_classes = 0);
const ModelInfo& model_info(const std::string& name);

}  // namespace evit::zoo

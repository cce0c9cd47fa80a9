// Task heads (docs/models.md): ClsHead (conv, global pool, Linear+LN, classifier) and SegHead (the
// DAG head: per-feature input ops summed, a middle of residual blocks, output ops).
#pragma once
#include "zoo/backbone.h"

namespace evit::zoo {

struct ClsHeadConfig {
  int64_t in;
  std::vector<int64_t> widths;  // {w0, w1}
  int64_t classes = 1000;
  double dropout = 0.0;
  NormSpec norm{"bn2d", 1e-5};
  std::string act = "hswish";
};

class ClsHead : public OpSequential {
 public:
  explicit ClsHead(const ClsHeadConfig& c);
};

struct SegHeadConfig {
  std::vector<std::string> fids = {"stage4", "stage3", "stage2"};
  std::vector<int64_t> in_channels;
  std::vector<int64_t> strides = {32, 16, 8};
  int64_t head_stride = 8, width, depth;
  double expand;
  std::string middle_op;  // "mbconv" or "fmbconv"
  int64_t final_expand = 0;  // 0 = none
  int64_t classes;
  double dropout = 0.0;
  NormSpec norm{"bn2d", 1e-5};
  std::string act = "hswish";
};

class SegHead : public nn::Module {
 public:
  explicit SegHead(const SegHeadConfig& c);
  // Logits at stride head_stride from the backbone features.
  Tensor forward_features(const FeatureMap& f);
  // The backbone features it reads, in the order of input_ops.
  const std::vector<std::string>& fids() const { return fids_; }

 private:
  std::vector<std::string> fids_;
  std::shared_ptr<nn::ModuleList> input_ops_, output_ops_;
  std::shared_ptr<nn::Module> middle_;
};

}  // namespace evit::zoo

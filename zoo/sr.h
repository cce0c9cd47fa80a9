// EfficientViT-SR: evit's super-resolution model built from EfficientViT blocks (see
// docs/models.md for the design and its reasoning; the paper's SR architecture was never
// released).
//
//   x (LR, RGB in [0,1]) -> stem: 3×3 conv 3->C
//     -> body: n × EfficientViTBlock(C, dim 16, expand e, scales (5,), ln2d, hswish)
//        -> 3×3 conv C->C, + stem output (body residual)
//     -> upsampler: 3×3 conv C->3·r² -> pixel_shuffle(r)
//     + bicubic(x, ×r) (global residual: the network learns only the missing detail)
#pragma once
#include "zoo/models.h"

namespace evit::zoo {

struct SRConfig {
  int64_t scale = 2;   // 2, 3 or 4
  int64_t width = 64;  // C
  int64_t depth = 8;   // EfficientViT blocks
  int64_t dim = 16;    // attention head dim
  double expand = 2;   // MBConv expansion inside each block
};

class EfficientViTSR : public Model {
 public:
  explicit EfficientViTSR(const SRConfig& c);
  FeatureMap forward_with_features(const Tensor& x) override;
  int64_t scale() const { return c_.scale; }

 private:
  SRConfig c_;
  std::shared_ptr<nn::Module> stem_, body_, body_conv_, upsampler_;
};

// The bicubic baseline as a model: MATLAB-compatible bicubic imresize by the scale (what every
// published SR table compares against), clamped to [0, 1]. No parameters.
class BicubicSR : public Model {
 public:
  explicit BicubicSR(int64_t scale);
  FeatureMap forward_with_features(const Tensor& x) override;
  int64_t scale() const { return scale_; }

 private:
  int64_t scale_;
};

// The upscaling factor of a super-resolution model (EfficientViTSR or BicubicSR); 0 for others.
int64_t sr_scale(const Model& model);

}  // namespace evit::zoo

#include "zoo/sr.h"

#include "ops/resize/imresize.h"
#include "nn/conv.h"
#include "ops/pointwise.h"
#include "ops/resize.h"
#include "ops/shape.h"
#include "zoo/lite_mla.h"

namespace evit::zoo {
namespace {
std::shared_ptr<nn::Conv2d> conv3x3(int64_t in, int64_t out) {
  nn::Conv2dOptions o{in, out, 3};
  o.padding = 1;
  return std::make_shared<nn::Conv2d>(o);
}
}  // namespace

EfficientViTSR::EfficientViTSR(const SRConfig& c) : Model("EfficientViTSR"), c_(c) {
  EVIT_CHECK(c.scale >= 2 && c.scale <= 4, "EfficientViTSR: scale must be 2, 3 or 4, got ", c.scale);
  EVIT_CHECK(c.width % c.dim == 0, "EfficientViTSR: width ", c.width, " must be a multiple of dim ", c.dim);
  stem_ = register_module("stem", conv3x3(3, c.width));
  auto body = std::make_shared<nn::Sequential>();
  for (int64_t i = 0; i < c.depth; ++i)
    body->push_back(std::make_shared<EfficientViTBlock>(c.width, c.dim, c.expand, std::vector<int64_t>{5},
                                                        NormSpec{"ln2d", 1e-6}, "hswish"));
  body_ = register_module("body", body);
  body_conv_ = register_module("body_conv", conv3x3(c.width, c.width));
  upsampler_ = register_module("upsampler", conv3x3(c.width, 3 * c.scale * c.scale));
}

FeatureMap EfficientViTSR::forward_with_features(const Tensor& x) {
  EVIT_CHECK(x.dim() == 4 && x.size(1) == 3, "EfficientViTSR: input must be [N,3,H,W], got ", x.desc());
  FeatureMap f;
  Tensor s = stem_->forward(x);
  f["stage0"] = s;
  Tensor b = add(body_conv_->forward(body_->forward(s)), s);
  f["stage1"] = b;
  Tensor up = pixel_shuffle(upsampler_->forward(b), c_.scale);
  Tensor base = interpolate(x, {x.size(2) * c_.scale, x.size(3) * c_.scale}, {}, InterpolateMode::bicubic, false);
  f["output"] = add(up, base);
  return f;
}

BicubicSR::BicubicSR(int64_t scale) : Model("BicubicSR"), scale_(scale) {
  EVIT_CHECK(scale >= 2 && scale <= 4, "BicubicSR: scale must be 2, 3 or 4, got ", scale);
}

FeatureMap BicubicSR::forward_with_features(const Tensor& x) {
  EVIT_CHECK(x.dim() == 4 && x.size(1) == 3, "bicubic: input must be [N,3,H,W], got ", x.desc());
  return {{"output", clamp(imresize(x, static_cast<double>(scale_)), 0.0, 1.0)}};
}

int64_t sr_scale(const Model& model) {
  if (const auto* m = dynamic_cast<const EfficientViTSR*>(&model)) return m->scale();
  if (const auto* m = dynamic_cast<const BicubicSR*>(&model)) return m->scale();
  return 0;
}

}  // namespace evit::zoo

#include "zoo/models.h"

#include <sstream>

#include "zoo/sam.h"
#include "zoo/sr.h"

namespace evit::zoo {

EfficientViTCls::EfficientViTCls(std::shared_ptr<Backbone> bb, const ClsHeadConfig& h)
    : Model("EfficientViTCls") {
  backbone = register_module("backbone", std::move(bb));
  head = register_module("head", std::make_shared<ClsHead>(h));
}

FeatureMap EfficientViTCls::forward_with_features(const Tensor& x) {
  FeatureMap f = backbone->forward_features(x);
  f["output"] = head->forward(f.at("stage_final"));
  return f;
}

EfficientViTSeg::EfficientViTSeg(std::shared_ptr<Backbone> bb, const SegHeadConfig& h)
    : Model("EfficientViTSeg") {
  backbone = register_module("backbone", std::move(bb));
  head = register_module("head", std::make_shared<SegHead>(h));
}

FeatureMap EfficientViTSeg::forward_with_features(const Tensor& x) {
  FeatureMap f = backbone->forward_features(x);
  f["output"] = head->forward_features(f);
  return f;
}

namespace {

struct ClsSpec {
  const char* backbone;
  int64_t in, w0, w1;
};

std::shared_ptr<Model> build_cls(const ClsSpec& s, int64_t classes) {
  bool large = s.backbone[0] == 'l';
  ClsHeadConfig h;
  if (classes > 0) h.classes = classes;
  h.in = s.in;
  h.widths = {s.w0, s.w1};
  h.norm = {"bn2d", large ? 1e-7 : 1e-5};
  h.act = large ? "gelu" : "hswish";
  return std::make_shared<EfficientViTCls>(make_backbone(s.backbone), h);
}

struct SegSpec {
  const char* backbone;
  std::vector<int64_t> in_channels;
  int64_t width, depth;
  double expand;
  const char* middle;
  int64_t final_expand, classes;
};

std::shared_ptr<Model> build_seg(const SegSpec& s, int64_t classes) {
  bool large = s.backbone[0] == 'l';
  SegHeadConfig h;
  h.in_channels = s.in_channels;
  h.width = s.width;
  h.depth = s.depth;
  h.expand = s.expand;
  h.middle_op = s.middle;
  h.final_expand = s.final_expand;
  h.classes = classes > 0 ? classes : s.classes;
  h.norm = {"bn2d", large ? 1e-7 : 1e-5};
  h.act = large ? "gelu" : "hswish";
  return std::make_shared<EfficientViTSeg>(make_backbone(s.backbone), h);
}

std::vector<ModelInfo> make_registry() {
  std::vector<ModelInfo> r;
  const std::vector<std::pair<std::string, ClsSpec>> cls = {
      {"b0", {"b0", 128, 1024, 1280}},  {"b1", {"b1", 256, 1536, 1600}},
      {"b2", {"b2", 384, 2304, 2560}},  {"b3", {"b3", 512, 2304, 2560}},
      {"l1", {"l1", 512, 3072, 3200}},  {"l2", {"l2", 512, 3072, 3200}},
      {"l3", {"l3", 1024, 6144, 6400}},
  };
  for (auto& [n, s] : cls)
    r.push_back({"efficientvit-" + n, "classification", "EfficientViT-" + n + " ImageNet classifier (1000 classes)",
                 [s = s](int64_t c) { return build_cls(s, c); }});
  const std::vector<std::pair<std::string, SegSpec>> seg = {
      {"b0-cityscapes", {"b0", {128, 64, 32}, 32, 1, 4, "mbconv", 4, 19}},
      {"b1-cityscapes", {"b1", {256, 128, 64}, 64, 3, 4, "mbconv", 4, 19}},
      {"b1-ade20k", {"b1", {256, 128, 64}, 64, 3, 4, "mbconv", 0, 150}},
      {"b2-cityscapes", {"b2", {384, 192, 96}, 96, 3, 4, "mbconv", 4, 19}},
      {"b2-ade20k", {"b2", {384, 192, 96}, 96, 3, 4, "mbconv", 0, 150}},
      {"b3-cityscapes", {"b3", {512, 256, 128}, 128, 3, 4, "mbconv", 4, 19}},
      {"b3-ade20k", {"b3", {512, 256, 128}, 128, 3, 4, "mbconv", 0, 150}},
      {"l1-cityscapes", {"l1", {512, 256, 128}, 256, 3, 1, "fmbconv", 0, 19}},
      {"l1-ade20k", {"l1", {512, 256, 128}, 128, 3, 4, "fmbconv", 8, 150}},
      {"l2-cityscapes", {"l2", {512, 256, 128}, 256, 5, 1, "fmbconv", 0, 19}},
      {"l2-ade20k", {"l2", {512, 256, 128}, 128, 3, 4, "fmbconv", 8, 150}},
  };
  for (auto& [n, s] : seg)
    r.push_back({"efficientvit-seg-" + n, "segmentation",
                 "EfficientViT segmentation " + n + " (logits at stride 8)", [s = s](int64_t c) { return build_seg(s, c); }});
  for (const char* v : {"l0", "l1", "l2", "xl0", "xl1"}) {
    std::string n = v;
    r.push_back({"efficientvit-sam-" + n, "sam",
                 "EfficientViT-SAM-" + n + " (image embedding 256x64x64 from a " +
                     (n[0] == 'x' ? "1024" : "512") + "-pixel input; prompt encoder and mask decoder)",
                 [n](int64_t classes) -> std::shared_ptr<Model> {
                   EVIT_CHECK(classes == 0, "SAM models have no classes (got num_classes ", classes, ")");
                   return make_efficientvit_sam(n);
                 }});
  }
  for (int64_t scale : {2, 3, 4})
    for (auto [suffix, width] : {std::pair<const char*, int64_t>{"", 64}, {"-w0.75", 48}}) {
      std::string n = "efficientvit-sr-x" + std::to_string(scale) + suffix;
      r.push_back({n, "super_resolution",
                   "EfficientViT-SR x" + std::to_string(scale) + " (width " + std::to_string(width) + ")",
                   [scale, w = width](int64_t classes) {
                     EVIT_CHECK(classes == 0, "super-resolution models have no classes");
                     SRConfig c;
                     c.scale = scale;
                     c.width = w;
                     return std::make_shared<EfficientViTSR>(c);
                   }});
    }
  for (int64_t scale : {2, 3, 4})
    r.push_back({"bicubic-x" + std::to_string(scale), "super_resolution",
                 "bicubic interpolation baseline (MATLAB imresize), no parameters", [scale](int64_t classes) {
                   EVIT_CHECK(classes == 0, "super-resolution models have no classes");
                   return std::make_shared<BicubicSR>(scale);
                 }});
  return r;
}

}  // namespace

const std::vector<ModelInfo>& model_registry() {
  static const std::vector<ModelInfo> r = make_registry();
  return r;
}

const ModelInfo& model_info(const std::string& name) {
  for (auto& m : model_registry())
    if (m.name == name) return m;
  std::ostringstream known;
  for (auto& m : model_registry()) known << " " << m.name;
  EVIT_THROW("unknown model '", name, "'; known models:", known.str());
}

std::shared_ptr<Model> create_model(const std::string& name, int64_t num_classes) {
  EVIT_CHECK(num_classes >= 0, "create_model: num_classes must be >= 0, got ", num_classes);
  return model_info(name).build(num_classes);
}

}  // namespace evit::zoo

#include "train/onnx/export_onnx.h"

#include <algorithm>

#include "autograd/grad_mode.h"
#include "core/error.h"
#include "core/generator.h"
#include "nn/container.h"
#include "ops/pointwise.h"
#include "ops/shape.h"
#include "train/onnx/emit_sam_decoder.h"
#include "train/onnx/onnx_emitter.h"
#include "train/onnx/onnx_nn.h"
#include "zoo/backbone.h"
#include "zoo/heads.h"
#include "zoo/sam.h"
#include "zoo/sr.h"

namespace evit::train {
namespace {

// The backbone's named features, as forward_features names them: the B series' stem is
// "stage0" and its stages "stage1".."stage4"; the L series' stages are "stage0".."stage4".
std::map<std::string, OnnxValue> emit_backbone(zoo::Backbone& backbone, const std::string& path,
                                               const OnnxValue& x, OnnxEmitter& e) {
  std::map<std::string, OnnxValue> f;
  OnnxValue y = x;
  int64_t next = 0;
  if (dynamic_cast<zoo::EfficientViTBackbone*>(&backbone) != nullptr) {
    y = e.emit(*backbone.child("input_stem"), path + ".input_stem", y);
    f["stage0"] = y;
    next = 1;
  } else {
    EVIT_CHECK(dynamic_cast<zoo::EfficientViTLargeBackbone*>(&backbone) != nullptr, "ONNX export: backbone '",
               path, "' of type ", backbone.type_name(), " has no emitter");
  }
  for (auto& [name, stage] : backbone.child("stages")->named_children()) {
    y = e.emit(*stage, path + ".stages." + name, y);
    f["stage" + std::to_string(next++)] = y;
  }
  f["stage_final"] = y;
  return f;
}

// The DAG heads (segmentation head, SAM neck): per feature an input op, summed, then `middle`
// and the first output op.
OnnxValue emit_dag_head(nn::Module& head, const std::vector<std::string>& fids, const std::string& path,
                        const std::map<std::string, OnnxValue>& f, OnnxEmitter& e) {
  auto input_ops = head.child("input_ops")->named_children();
  EVIT_CHECK(input_ops.size() == fids.size(), "ONNX export: head '", path, "' has ", input_ops.size(),
             " input ops for ", fids.size(), " features");
  OnnxValue sum;
  for (size_t i = 0; i < fids.size(); ++i) {
    auto it = f.find(fids[i]);
    EVIT_CHECK(it != f.end(), "ONNX export: the backbone has no feature '", fids[i], "'");
    OnnxValue y = e.emit(*input_ops[i].second, path + ".input_ops." + input_ops[i].first, it->second);
    sum = sum.name.empty() ? y : e.node("Add", {sum.name, y.name}, add(sum.example, y.example), y.type, path);
  }
  OnnxValue y = e.emit(*head.child("middle"), path + ".middle", sum);
  auto output_ops = head.child("output_ops")->named_children();
  return e.emit(*output_ops.at(0).second, path + ".output_ops." + output_ops.at(0).first, y);
}

// stem -> body -> body_conv (+ stem) -> upsampler -> pixel shuffle (DepthToSpace, CRD order as
// PyTorch's pixel_shuffle) + bicubic(x).
OnnxValue emit_sr(zoo::EfficientViTSR& sr, const OnnxValue& x, OnnxEmitter& e) {
  OnnxValue s = e.emit(*sr.child("stem"), "stem", x);
  OnnxValue b = e.emit(*sr.child("body"), "body", s);
  b = e.emit(*sr.child("body_conv"), "body_conv", b);
  b = e.node("Add", {b.name, s.name}, add(b.example, s.example), b.type, "body_residual");
  OnnxValue up = e.emit(*sr.child("upsampler"), "upsampler", b);
  const int64_t r = sr.scale();
  up = e.unary("DepthToSpace", up, pixel_shuffle(up.example, r), "pixel_shuffle",
               {{"blocksize", r}, {"mode", std::string("CRD")}});
  const Tensor base_example = interpolate(x.example, {x.example.size(2) * r, x.example.size(3) * r}, {},
                                          InterpolateMode::bicubic, false);
  OnnxValue base = emit_onnx_resize(e, "bicubic", x, InterpolateMode::bicubic, false, base_example);
  return e.node("Add", {up.name, base.name}, add(up.example, base.example), up.type, "output_residual");
}

OnnxValue emit_model(zoo::Model& model, const std::string& name, const OnnxValue& x, OnnxEmitter& e) {
  if (auto* cls = dynamic_cast<zoo::EfficientViTCls*>(&model)) {
    auto f = emit_backbone(*cls->backbone, "backbone", x, e);
    return e.emit(*cls->head, "head", f.at("stage_final"));
  }
  if (auto* seg = dynamic_cast<zoo::EfficientViTSeg*>(&model)) {
    auto f = emit_backbone(*seg->backbone, "backbone", x, e);
    return emit_dag_head(*seg->head, seg->head->fids(), "head", f, e);
  }
  if (auto* sr = dynamic_cast<zoo::EfficientViTSR*>(&model)) return emit_sr(*sr, x, e);
  if (auto* sam = dynamic_cast<zoo::EfficientViTSam*>(&model)) {
    // The image encoder: backbone -> neck (features resized to 64x64 and fused) -> LayerNorm2d.
    auto& encoder = *sam->image_encoder;
    auto f = emit_backbone(*encoder.backbone, "image_encoder.backbone", x, e);
    OnnxValue y = emit_dag_head(*encoder.neck, encoder.neck->fids(), "image_encoder.neck", f, e);
    return e.emit(*encoder.norm, "image_encoder.norm", y);
  }
  EVIT_THROW("ONNX export: model '", name, "' (", model.type_name(),
             ") has no ONNX export; exported are the classification, segmentation, EfficientViT-SR and SAM models");
}

// Restores the model's mode when the export ends, however it ends.
class EvalScope {
 public:
  explicit EvalScope(nn::Module& m) : m_(m), was_training_(m.is_training()) { m_.eval(); }
  ~EvalScope() { m_.train(was_training_); }
  EvalScope(const EvalScope&) = delete;
  EvalScope& operator=(const EvalScope&) = delete;

 private:
  nn::Module& m_;
  bool was_training_;
};

}  // namespace

std::pair<int64_t, int64_t> default_onnx_input_size(const std::string& model_name) {
  const auto& info = zoo::model_info(model_name);
  if (info.task == "segmentation") return model_name.ends_with("-ade20k") ? std::pair<int64_t, int64_t>{512, 512}
                                                                          : std::pair<int64_t, int64_t>{512, 1024};
  if (info.task == "super_resolution") return {256, 256};
  if (info.task == "sam") {
    const int64_t side = model_name.find("-xl") != std::string::npos ? 1024 : 512;
    return {side, side};
  }
  return {224, 224};
}

OnnxExportResult export_onnx(zoo::Model& model, const std::string& name, const OnnxExportOptions& options) {
  const auto& info = zoo::model_info(name);
  const bool sam = info.task == "sam";
  // The official exports: opset 11 for classification and segmentation, 17 for SAM.
  const int64_t opset = options.opset != 0 ? options.opset : sam ? kOnnxMaxOpset : kOnnxMinOpset;
  EVIT_CHECK(opset >= kOnnxMinOpset && opset <= kOnnxMaxOpset, "ONNX export of '", name, "': opset ", opset,
             " is not supported (evit writes opsets ", kOnnxMinOpset, " to ", kOnnxMaxOpset, ")");
  auto [height, width] = default_onnx_input_size(name);
  if (options.height != 0 || options.width != 0) height = options.height, width = options.width;
  EVIT_CHECK(options.batch >= 0, "ONNX export of '", name, "': batch must be a positive number or dynamic, got ",
             options.batch);
  EVIT_CHECK(height > 0 && width > 0 && height <= 8192 && width <= 8192, "ONNX export of '", name, "': input size ",
             height, "x", width, " is out of range (1 to 8192 per side)");
  if (sam && !options.sam_decoder) {
    const int64_t side = dynamic_cast<zoo::EfficientViTSam&>(model).image_size();
    EVIT_CHECK(height == side && width == side, "ONNX export of '", name, "': the image encoder takes ", side, "x",
               side, " (the longest side resized to ", side, " and padded square), not ", height, "x", width);
  }
  if (info.task == "classification" || info.task == "segmentation")
    EVIT_CHECK(height % 32 == 0 && width % 32 == 0, "ONNX export of '", name, "': input size ", height, "x", width,
               " must be a multiple of 32 on both sides (the backbone downsamples by 32",
               info.task == "segmentation" ? " and the head adds stride-32 features to stride-8 ones)" : ")");

  NoGradGuard no_grad;
  EvalScope eval(model);
  const OnnxType type = options.half ? OnnxType::f16 : OnnxType::f32;
  OnnxGraph graph(name, opset);
  OnnxEmitter e(graph, type);
  Generator gen(20261204);

  if (options.sam_decoder) {
    auto* sam_model = dynamic_cast<zoo::EfficientViTSam*>(&model);
    EVIT_CHECK(sam_model != nullptr, "ONNX export of '", name, "': the decoder graph is for SAM models");
    // Two prompt sets of three: two clicks and a padding point; a click and a box.
    SamDecoderInputs in;
    in.embeddings = mul(randn({1, 256, 64, 64}, {}, &gen), 0.5);
    in.coords = from_vector(std::vector<float>{300.5f, 200.25f, 600.f, 700.f, 0.f, 0.f,  //
                                               512.f, 400.f, 100.f, 150.f, 800.f, 900.f},
                            {2, 3, 2});
    in.labels = from_vector(std::vector<float>{1, 0, -1, 1, 2, 3}, {2, 3});
    const SamDecoderOutputs out = emit_sam_decoder(*sam_model, e, in);
    OnnxExportResult r;
    r.report = graph.check();
    r.bytes = graph.serialize();
    r.example_inputs = {{"image_embeddings", in.embeddings}, {"point_coords", in.coords}, {"point_labels", in.labels}};
    r.example_outputs = {{"masks", out.masks}, {"iou_predictions", out.iou}};
    r.example_input = in.embeddings;
    r.example_output = out.masks;
    return r;
  }

  const int64_t example_batch = std::max<int64_t>(options.batch, 1);
  // Interface names of the official exports.
  const std::string input_name = sam ? "input_image" : "input", output_name = sam ? "image_embeddings" : "output";
  OnnxValue x{input_name, rand({example_batch, 3, height, width}, {}, &gen), type};
  const int64_t batch_dim = options.batch == 0 ? -1 : options.batch;
  auto dim_params = [&](size_t rank) {
    std::vector<std::string> p(rank);
    if (options.batch == 0) p[0] = "batch";
    return p;
  };
  graph.add_input({input_name, type, {batch_dim, 3, height, width}, dim_params(4)});

  OnnxValue y = emit_model(model, name, x, e);
  if (y.name == x.name) y = e.unary("Identity", x, x.example, output_name);
  graph.rename_value(y.name, output_name);
  std::vector<int64_t> out_dims = y.example.sizes();
  out_dims[0] = batch_dim;
  graph.add_output({output_name, type, out_dims, dim_params(out_dims.size())});

  OnnxExportResult r;
  r.report = graph.check();
  r.bytes = graph.serialize();
  r.example_input = x.example;
  r.example_output = y.example;
  r.example_inputs = {{input_name, x.example}};
  r.example_outputs = {{output_name, y.example}};
  return r;
}

}  // namespace evit::train

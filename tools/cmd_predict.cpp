// `evit predict MODEL --weights W --input IMG --output PREFIX`: segmentation writes
// PREFIX_mask.png (colourised classes) and PREFIX_overlay.png; super-resolution writes
// PREFIX_sr.png and PREFIX_compare.png (bicubic | model, side by side); EfficientViT-SAM takes
// prompts (--box x0,y0,x1,y1 and/or --points x,y[,label] ...) in the image's pixels and writes
// PREFIX_mask.png (the mask with the highest predicted IoU, 0/255) and PREFIX_overlay.png (the
// mask tinted over the image, with the prompts drawn).
#include <cmath>
#include <cstdio>
#include <memory>
#include <sstream>

#include "autograd/grad_mode.h"
#include "data/colorize.h"
#include "data/draw.h"
#include "data/dataset.h"
#include "data/transforms.h"
#include "data/image.h"
#include "ops/resize/imresize.h"
#include "ops/ops.h"
#include "tools/commands.h"
#include "data/eval_transforms.h"
#include "train/evaluator.h"
#include "train/sam_predictor.h"
#include "zoo/models.h"

namespace evit::cli {
namespace {
struct PredictOptions {
  std::string model, weights, input, output, device = "cpu", protocol;
  int64_t classes = 0;
  std::string box;                  // SAM: "x0,y0,x1,y1"
  std::vector<std::string> points;  // SAM: "x,y" or "x,y,label"
  bool single_mask = false;
};

// The comma-separated numbers of a command-line value; `option` names it in errors.
std::vector<double> parse_numbers(const std::string& text, const std::string& option) {
  std::vector<double> v;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    double d = 0;
    try {
      d = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    EVIT_CHECK(used == item.size() && !item.empty() && std::isfinite(d), option, " '", text,
               "': expected comma-separated numbers");
    v.push_back(d);
  }
  return v;
}

train::SamPrompt parse_sam_prompt(const PredictOptions& o) {
  train::SamPrompt prompt;
  if (!o.box.empty()) {
    const auto b = parse_numbers(o.box, "--box");
    EVIT_CHECK(b.size() == 4 && b[2] >= b[0] && b[3] >= b[1], "--box '", o.box,
               "': expected x0,y0,x1,y1 with x1 >= x0 and y1 >= y0 (pixels)");
    prompt.box = std::array<float, 4>{static_cast<float>(b[0]), static_cast<float>(b[1]), static_cast<float>(b[2]),
                                      static_cast<float>(b[3])};
  }
  for (const std::string& p : o.points) {
    const auto v = parse_numbers(p, "--points");
    EVIT_CHECK((v.size() == 2 || v.size() == 3) && (v.size() == 2 || v[2] == 0 || v[2] == 1), "--points '", p,
               "': expected x,y or x,y,label with label 1 (foreground) or 0 (background)");
    prompt.points.push_back({static_cast<float>(v[0]), static_cast<float>(v[1]), v.size() == 3 ? static_cast<int>(v[2]) : 1});
  }
  EVIT_CHECK(prompt.box || !prompt.points.empty(), "predict: a SAM model needs a prompt: --box x0,y0,x1,y1 and/or --points x,y[,label]");
  return prompt;
}

void predict_sam(const PredictOptions& o, const std::shared_ptr<zoo::Model>& model, const train::SamPrompt& prompt) {
  auto sam = std::dynamic_pointer_cast<zoo::EfficientViTSam>(model);
  EVIT_CHECK(sam != nullptr, "predict: ", o.model, " is not an EfficientViT-SAM model");
  const Image image = read_image(o.input);
  train::SamPredictor predictor(sam);
  predictor.set_image(image);
  const train::SamPrediction p = predictor.predict(prompt, !o.single_mask);
  const int64_t best = p.best();
  const std::vector<uint8_t> mask = p.mask(best);
  Image mask_png(image.height, image.width, 1);
  int64_t area = 0;
  for (size_t i = 0; i < mask.size(); ++i) mask_png.data[i] = mask[i] ? 255 : 0, area += mask[i];
  Tensor labels = empty({image.height, image.width}, DType::i64);
  int64_t* l = labels.data_ptr<int64_t>();
  for (size_t i = 0; i < mask.size(); ++i) l[i] = mask[i] ? 0 : 255;  // class 0 tinted, 255 left as is
  Image over = data::overlay(data::load_rgb(o.input), labels, 0.5, 1);
  if (prompt.box) data::draw_box(over, (*prompt.box)[0], (*prompt.box)[1], (*prompt.box)[2], (*prompt.box)[3], {0, 220, 0});
  for (const auto& q : prompt.points) data::draw_point(over, q.x, q.y, q.label ? data::Colour{0, 220, 0} : data::Colour{230, 0, 0});
  encode_png(o.output + "_mask.png", mask_png);
  encode_png(o.output + "_overlay.png", over);
  const auto iou = p.iou.to_vector<float>();
  std::printf("predicted IoU of the %zu mask%s:", iou.size(), iou.size() > 1 ? "s" : "");
  for (float v : iou) std::printf(" %.4f", v);
  std::printf("; kept mask %lld (%lld of %lld pixels)\n", (long long)best, (long long)area, (long long)mask.size());
  std::printf("wrote %s_mask.png and %s_overlay.png (%lldx%lld)\n", o.output.c_str(), o.output.c_str(),
              (long long)image.width, (long long)image.height);
}

}  // namespace

Runner add_predict_command(CLI::App& app) {
  auto o = std::make_shared<PredictOptions>();
  auto* cmd = app.add_subcommand("predict", "Run a segmentation, super-resolution or SAM model on an image");
  cmd->add_option("model", o->model, "Model name (see `evit models`)")->required();
  cmd->add_option("--weights", o->weights, "Model weights (safetensors)")->required();
  cmd->add_option("--input", o->input, "Input image (PNG or JPEG)")->required();
  cmd->add_option("--output", o->output, "Output prefix (PREFIX_mask.png, PREFIX_overlay.png / PREFIX_sr.png, ...)")
      ->required();
  cmd->add_option("--classes", o->classes, "Number of classes the weights were trained with (default: the model's)");
  cmd->add_option("--device", o->device, "Where the model runs: cpu, cuda or cuda:N (default cpu)");
  cmd->add_option("--protocol", o->protocol,
                  "Segmentation input size: cityscapes (1024x2048), ade20k (short side 512) or native; "
                  "default: the evaluation protocol of the model's dataset")
      ->check(CLI::IsMember({"cityscapes", "ade20k", "native"}));
  cmd->add_option("--box", o->box, "SAM: a box prompt x0,y0,x1,y1 in the image's pixels");
  cmd->add_option("--points", o->points, "SAM: point prompts x,y or x,y,label (1 foreground, the default; 0 background)");
  cmd->add_flag("--single-mask", o->single_mask, "SAM: predict one mask instead of three (keeping the best by predicted IoU)");
  return [o] {
    const auto& info = zoo::model_info(o->model);
    // Prompts are checked before the model is built and loaded.
    const train::SamPrompt prompt = info.task == "sam" ? parse_sam_prompt(*o) : train::SamPrompt{};
    auto model = zoo::create_model(o->model, info.task == "super_resolution" ? 0 : o->classes);
    model->load(o->weights, true);
    const Device device(o->device);
    model->to(device);
    model->eval();
    NoGradGuard no_grad;
    if (info.task == "sam") {
      predict_sam(*o, model, prompt);
      return 0;
    }
    EVIT_CHECK(o->box.empty() && o->points.empty(), "predict: --box and --points are prompts for SAM models; ", o->model,
               " is a ", info.task, " model");
    Tensor img = data::load_rgb(o->input);
    if (info.task == "segmentation") {
      // The evaluation protocol of the model's dataset (docs/training.md), as `evit eval` runs it.
      data::Sample s{img, Tensor(), o->input, Tensor()};
      Generator unused(0);
      std::string protocol = o->protocol;
      if (protocol.empty()) protocol = o->model.find("ade20k") != std::string::npos ? "ade20k" : "cityscapes";
      if (protocol == "ade20k") data::ade20k_eval_resize(512)(s, unused);
      else if (protocol == "cityscapes") data::cityscapes_eval_resize(1024)(s, unused);
      data::normalize()(s, unused);  // ImageNet normalisation, as in training
      train::EvalSpec spec;
      spec.task = train::Task::segmentation, spec.num_classes = 1, spec.device = device;
      const int64_t h = img.size(1), w = img.size(2);
      int64_t classes = 0;
      Tensor labels = train::Evaluator(spec).segment(*model, s.input, h, w, &classes);
      encode_png(o->output + "_mask.png", data::colorize(labels, classes));
      encode_png(o->output + "_overlay.png", data::overlay(img, labels, 0.5, classes));
      std::printf("wrote %s_mask.png and %s_overlay.png (%lldx%lld, %lld classes)\n", o->output.c_str(),
                  o->output.c_str(), (long long)w, (long long)h, (long long)classes);
    } else if (info.task == "super_resolution") {
      Tensor sr = clamp(squeeze(model->forward(unsqueeze(img, 0).to(device)).to(kCPU), 0), 0.0, 1.0);
      const double scale = static_cast<double>(sr.size(1)) / img.size(1);
      Tensor bicubic = clamp(imresize(img, scale), 0.0, 1.0);
      encode_png(o->output + "_sr.png", chw_float_to_image(sr));
      encode_png(o->output + "_compare.png",
                 data::side_by_side({chw_float_to_image(bicubic), chw_float_to_image(sr)}));
      std::printf("wrote %s_sr.png (%lldx%lld) and %s_compare.png (bicubic | %s)\n", o->output.c_str(),
                  (long long)sr.size(2), (long long)sr.size(1), o->output.c_str(), o->model.c_str());
    } else {
      EVIT_THROW("predict: ", o->model, " is a ", info.task, " model; predict handles segmentation, super-resolution and sam");
    }
    return 0;
  };
}

}  // namespace evit::cli

// `evit predict MODEL --weights W --input IMG --output PREFIX`: segmentation writes
// PREFIX_mask.png (colourised classes) and PREFIX_overlay.png; super-resolution writes
// PREFIX_sr.png and PREFIX_compare.png (bicubic | model, side by side).
#include <cstdio>
#include <memory>

#include "autograd/grad_mode.h"
#include "data/colorize.h"
#include "data/dataset.h"
#include "data/transforms.h"
#include "data/image.h"
#include "ops/resize/imresize.h"
#include "ops/ops.h"
#include "tools/commands.h"
#include "data/eval_transforms.h"
#include "train/evaluator.h"
#include "zoo/models.h"

namespace evit::cli {
namespace {
struct PredictOptions {
  std::string model, weights, input, output, device = "cpu", protocol;
  int64_t classes = 0;
};

}  // namespace

Runner add_predict_command(CLI::App& app) {
  auto o = std::make_shared<PredictOptions>();
  auto* cmd = app.add_subcommand("predict", "Run a segmentation or super-resolution model on an image");
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
  return [o] {
    const auto& info = zoo::model_info(o->model);
    auto model = zoo::create_model(o->model, info.task == "super_resolution" ? 0 : o->classes);
    model->load(o->weights, true);
    const Device device(o->device);
    model->to(device);
    model->eval();
    NoGradGuard no_grad;
    Tensor img = data::load_rgb(o->input);
    if (info.task == "segmentation") {
      // The evaluation protocol of the model's dataset (docs/training.md), as `evit eval` runs it.
      data::Sample s{img, Tensor(), o->input};
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
      EVIT_THROW("predict: ", o->model, " is a ", info.task, " model; predict handles segmentation and super-resolution");
    }
    return 0;
  };
}

}  // namespace evit::cli

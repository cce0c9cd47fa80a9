#include "train/evaluator.h"

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "autograd/grad_mode.h"
#include "core/dist/tree_reduce.h"
#include "core/error.h"
#include "core/limits.h"
#include "data/eval_transforms.h"
#include "data/transforms.h"
#include "ops/autocast.h"
#include "ops/ops.h"
#include "train/checkpoint.h"
#include "train/metrics.h"
#include "train/progress.h"
#include "train/sam_distill.h"
#include "train/sam_finetune.h"
#include "train/sr_metrics.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace evit::train {
ValidationData validation_data(const RunConfig& cfg) {
  const DataConfig& d = cfg.data;
  const std::string& root = d.root;
  const std::string& ds = d.dataset;
  ValidationData v;
  std::vector<data::Transform> tf;
  if (cfg.task == Task::segmentation) {
    std::shared_ptr<data::SegmentationDataset> va;
    if (ds == "cityscapes" || ds == "synthetic") va = data::cityscapes(root, "val");
    else if (ds == "ade20k") va = data::ade20k(root, "val");
    else EVIT_THROW("config.data.dataset: '", ds, "' is not a segmentation dataset (cityscapes, ade20k, synthetic)");
    v.num_classes = va->num_classes();
    if (ds != "ade20k") v.class_names = data::cityscapes_class_names();
    v.dataset = va;
    // Each benchmark's official protocol decides the model's input size (docs/training.md).
    if (ds == "ade20k") tf.push_back(data::ade20k_eval_resize(d.crop));
    else if (ds == "cityscapes") tf.push_back(data::cityscapes_eval_resize(d.crop));
    tf.push_back(data::normalize(d.mean, d.std));
  } else if (cfg.task == Task::classification) {
    EVIT_CHECK(ds == "imagenet" || ds == "image_folder", "config.data.dataset: '", ds,
               "' is not a classification dataset (imagenet, image_folder)");
    auto va = std::make_shared<data::ImageFolderDataset>(root, "val");
    v.num_classes = static_cast<int64_t>(va->classes().size());
    v.class_names = va->classes();
    v.dataset = va;
    tf = {data::imagenet_eval_crop(d.evaluation_size(), d.crop_ratio), data::normalize(d.mean, d.std)};
  } else if (cfg.task == Task::sam_distill) {
    EVIT_CHECK(!d.embeddings.empty(), "config.data.embeddings: sam_distill needs the teacher-embedding cache folder");
    v.dataset = std::make_shared<SamDistillDataset>(sam_distill_split(d, "val"), d.embeddings, d.crop);
  } else if (cfg.task == Task::sam_finetune) {
    // Scored by its annotation files (sam_box_metrics), so the limit is the dataset's own.
    v.dataset = std::make_shared<SamFinetuneDataset>(sam_distill_split(d, "val"), d.crop, d.masks_per_image, false,
                                                     d.limit);
    return v;
  } else {
    v.dataset = std::make_shared<data::SRDataset>(data::sr_hr_folder(root, "val"), d.scale, sr_lr_folder(d, "val"));
  }
  if (d.limit > 0) v.dataset = std::make_shared<data::Subset>(v.dataset, d.limit);
  v.dataset->set_transforms(tf);
  return v;
}

// LR folder of a split for DIV2K-style LR data, or "" (LR made by imresize).
std::string sr_lr_folder(const DataConfig& d, const std::string& split) {
  const std::string& lr = d.lr_root;
  if (lr.empty()) return "";
  const std::string x = "X" + std::to_string(d.scale);
  const std::string div2k = lr + (split == "train" ? "/DIV2K_train_LR_bicubic/" : "/DIV2K_valid_LR_bicubic/") + x;
  if (fs::is_directory(div2k)) return div2k;
  return lr + "/" + split;
}

int64_t model_classes(const RunConfig& cfg, int64_t dataset_classes) {
  if (!cfg.model.num_classes) return dataset_classes;
  const int64_t want = *cfg.model.num_classes;
  EVIT_CHECK(dataset_classes == 0 || want == dataset_classes, "config.model.num_classes = ", want, " but the dataset has ",
             dataset_classes, " classes");
  return want;
}

EvalSpec eval_spec(const RunConfig& cfg, int64_t num_classes) {
  EvalSpec s;
  s.task = cfg.task;
  s.num_classes = num_classes;
  s.ignore_index = cfg.data.ignore_index;
  s.scale = cfg.data.scale;
  // Checked here, at start-up, rather than by the confusion matrix after all training steps.
  if (cfg.task == Task::segmentation)
    EVIT_CHECK(s.ignore_index < 0 || s.ignore_index >= num_classes, "config.data.ignore_index = ", s.ignore_index,
               " is one of the ", num_classes, " class ids (0..", num_classes - 1,
               "); the ignore label must lie outside them (255 for Cityscapes and ADE20K)");
  try {
    s.device = Device(cfg.train.device);
  } catch (const Error& e) {
    EVIT_THROW("config.train.device: ", e.what());
  }
  if (cfg.train.amp != "off") s.amp = cfg.train.amp == "f16" ? DType::f16 : DType::bf16;
  s.sam_val_masks = cfg.data.val_masks;
  return s;
}

Evaluator::Evaluator(EvalSpec spec) : spec_(std::move(spec)) {
  EVIT_CHECK(!task_has_classes(spec_.task) || spec_.num_classes >= 1,
             "evaluator: a ", task_name(spec_.task),
             " evaluation needs the number of classes");
}

Tensor Evaluator::forward(zoo::Model& model, const Tensor& input) const {
  Tensor x = unsqueeze(input, 0);
  if (spec_.task == Task::segmentation && (x.size(2) % 32 != 0 || x.size(3) % 32 != 0)) {
    // Inputs whose protocol keeps the native size (the synthetic set) are rounded up to a
    // multiple of 32, the stride of the last stage.
    const int64_t h = (x.size(2) + 31) / 32 * 32, w = (x.size(3) + 31) / 32 * 32;
    // A thin strip grows up to 32-fold here: bounded like any image (core/limits.h).
    check_image_pixels(h, w, "evaluation: the " + std::to_string(x.size(2)) + "x" + std::to_string(x.size(3)) +
                                 " input rounded up to a multiple of 32");
    x = interpolate(x, {h, w}, {}, InterpolateMode::bicubic, false);
  }
  std::optional<AutocastGuard> autocast;
  if (spec_.amp) autocast.emplace(*spec_.amp);
  if (x.device() != spec_.device) x = x.to(spec_.device);
  return model.forward(x).to(kCPU);
}

Tensor Evaluator::segment(zoo::Model& model, const Tensor& input, int64_t out_h, int64_t out_w, int64_t* classes) const {
  Tensor logits = forward(model, input);
  if (classes) *classes = logits.size(1);
  if (logits.size(2) != out_h || logits.size(3) != out_w)
    logits = interpolate(logits, {out_h, out_w}, {}, InterpolateMode::bicubic, false);
  return squeeze(argmax(logits, 1), 0);
}

EvalReport Evaluator::run(zoo::Model& model, const data::Dataset& val, bool progress, const std::string& label,
                          dist::Communicator* job) const {
  EVIT_CHECK(val.size() > 0, "evaluation: the validation set is empty (", val.describe(), ")");
  NoGradGuard no_grad;
  model.eval();
  EvalReport r;
  const int ranks = job ? job->size() : 1, rank = job ? job->rank() : 0;
  if (spec_.task == Task::sam_distill) {
    r.metrics = sam_distill_metrics(model, val, spec_.device, spec_.sam_val_masks, job);
    r.samples = val.size();
    return r;
  }
  if (spec_.task == Task::sam_finetune) {
    const auto* set = dynamic_cast<const SamFinetuneDataset*>(&val);
    auto* sam = dynamic_cast<zoo::EfficientViTSam*>(&model);
    EVIT_CHECK(set != nullptr && sam != nullptr,
               "sam_finetune evaluation: needs an EfficientViT-SAM model and SA-1B validation data, got ",
               val.describe());
    r.metrics = sam_box_metrics(*sam, set->entries(), spec_.sam_val_masks, job);
    r.samples = val.size();
    return r;
  }
  // Only the task's own accumulator exists: a 1000-class classifier never meets the
  // segmentation confusion matrix (whose ignore index could be one of its classes).
  std::optional<SegConfusion> conf;
  if (spec_.task == Task::segmentation) conf.emplace(spec_.num_classes, spec_.ignore_index);
  TopKAccuracy topk;
  // Super-resolution: the per-image scores, summed in image order at the end.
  std::vector<double> psnr, ssim;
  if (spec_.task == Task::super_resolution) psnr.assign(static_cast<size_t>(val.size()), 0.0), ssim = psnr;
  std::optional<Progress> bar;
  if (progress && rank == 0) bar.emplace(val.size(), label);
  for (int64_t i = rank; i < val.size(); i += ranks) {
    Generator unused(0);  // evaluation transforms draw nothing
    data::Sample s = val.get(i, unused);
    if (spec_.task == Task::segmentation) {
      conf->update(unsqueeze(segment(model, s.input, s.target.size(0), s.target.size(1)), 0), unsqueeze(s.target, 0));
    } else if (spec_.task == Task::classification) {
      Tensor scores = forward(model, s.input);
      EVIT_CHECK(scores.dim() == 2 && scores.size(1) == spec_.num_classes, "evaluation: the model gives ", scores.desc(),
                 " for ", s.id, " but the data has ", spec_.num_classes, " classes");
      topk.update(scores, unsqueeze(s.target, 0));
    } else {
      check_sr_eval_size(s.target.size(1), s.target.size(2), spec_.scale, s.id);
      Tensor sr = squeeze(forward(model, s.input), 0);
      EVIT_CHECK(sr.sizes() == s.target.sizes(), "evaluation: the model turns ", s.id, " into ", sr.desc(),
                 " but its HR image is ", s.target.desc(), " (is the model's scale ", spec_.scale, "?)");
      SrScore sc = score_sr_rgb(sr, s.target, spec_.scale);
      psnr[static_cast<size_t>(i)] = sc.psnr, ssim[static_cast<size_t>(i)] = sc.ssim;
    }
    if (bar) bar->update(std::min(i + ranks, val.size()));
  }
  if (bar) bar->finish();
  if (ranks > 1) {
    // Each image's score is non-zero on one rank only: the sum over ranks is a gather, exact.
    if (conf) conf->sum_over(*job);
    else if (spec_.task == Task::classification) topk.sum_over(*job);
    else dist::tree_allreduce_sum(*job, std::span<double>(psnr)), dist::tree_allreduce_sum(*job, std::span<double>(ssim));
  }
  double psnr_sum = 0, ssim_sum = 0;
  for (size_t i = 0; i < psnr.size(); ++i) psnr_sum += psnr[i], ssim_sum += ssim[i];
  r.samples = val.size();
  if (conf) {
    r.metrics["val/mIoU"] = conf->miou();
    r.metrics["val/pixel_acc"] = conf->pixel_accuracy();
    r.class_iou = conf->iou();
  } else if (spec_.task == Task::classification) {
    r.metrics["val/top1"] = topk.top1();
    r.metrics["val/top5"] = topk.top5();
  } else {
    r.metrics["val/psnr"] = psnr_sum / static_cast<double>(r.samples);
    r.metrics["val/ssim"] = ssim_sum / static_cast<double>(r.samples);
  }
  return r;
}

std::string EvalReport::table(const std::vector<std::string>& class_names) const {
  std::string out;
  char line[160];
  if (!class_iou.empty()) {
    int64_t scored = 0;
    for (double v : class_iou) scored += !std::isnan(v);
    std::snprintf(line, sizeof line, "per-class IoU (%lld of %zu classes occur in labels or predictions; mIoU is their mean)\n",
                  (long long)scored, class_iou.size());
    out += line;
    for (size_t c = 0; c < class_iou.size(); ++c) {
      const std::string name = c < class_names.size() ? class_names[c] : "class " + std::to_string(c);
      if (std::isnan(class_iou[c])) std::snprintf(line, sizeof line, "  %3zu %-24s      -\n", c, name.c_str());
      else std::snprintf(line, sizeof line, "  %3zu %-24s %6.2f\n", c, name.c_str(), 100 * class_iou[c]);
      out += line;
    }
  }
  for (const auto& [k, v] : metrics) {
    std::snprintf(line, sizeof line, "%s: %.4f\n", k.c_str(), v);
    out += line;
  }
  return out;
}

json EvalReport::to_json() const {
  json j = json::object();
  for (const auto& [k, v] : metrics) j[k] = v;
  j["samples"] = samples;
  if (!class_iou.empty()) {
    json c = json::array();
    for (double v : class_iou) c.push_back(std::isnan(v) ? json(nullptr) : json(v));
    j["class_iou"] = c;
  }
  return j;
}

CheckpointWeights checkpoint_eval_weights(const std::string& requested) {
  EVIT_CHECK(fs::exists(requested) || fs::exists(requested + ".tmp") || fs::exists(requested + ".old"),
             "eval: checkpoint folder '", requested, "' not found (train the run first, or give --weights)");
  const CheckpointLocation where = locate_checkpoint(requested);
  if (!where.note.empty()) std::printf("eval: %s\n", where.note.c_str());
  const std::string& dir = where.dir;
  if (fs::exists(dir + "/eval_model.safetensors"))
    return {dir + "/eval_model.safetensors", "the weights the trainer evaluated (EMA and/or re-estimated BatchNorm statistics)"};
  return {dir + "/model.safetensors", "the trained weights (this run evaluates them as they are)"};
}

}  // namespace evit::train

// Evaluation and inference for every task, in one place: the trainer's evaluations, `evit eval`
// and `evit predict` all go through an Evaluator, so the same weights give the same number
// wherever they are evaluated.
//
//   auto val = validation_data(run_config);       // the validation split only, with the
//                                                 // evaluation protocol of its dataset
//   Evaluator ev(eval_spec(run_config, val.num_classes));
//   EvalReport r = ev.run(model, *val.dataset);   // model in eval mode, no gradients
//
// An evaluation never changes the model's weights or any file: callers decide which weights to
// evaluate (the trainer: the EMA weights with re-estimated BatchNorm statistics when configured;
// `evit eval`: what the checkpoint says it evaluated, or --weights) and what to write.
// The protocols (which pixels go into the model, how outputs are scored) are in docs/training.md.
#pragma once
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/device.h"
#include "core/dist/communicator.h"
#include "data/dataset.h"
#include "train/run_config.h"
#include "zoo/models.h"

namespace evit::train {

using Metrics = std::map<std::string, double>;

struct EvalSpec {
  Task task = Task::classification;
  int64_t num_classes = 0;     // classification and segmentation
  int64_t ignore_index = 255;  // segmentation labels that are not scored
  int64_t scale = 2;           // super-resolution factor (the PSNR/SSIM border)
  Device device = kCPU;        // where the model runs; metrics are computed on the host
  std::optional<DType> amp;    // autocast compute dtype (CUDA), or none
  int64_t sam_val_masks = 0;   // SAM tasks: annotations box-scored per validation image (0: all)
};

struct EvalReport {
  Metrics metrics;                 // val/mIoU, val/pixel_acc | val/top1, val/top5 | val/psnr, val/ssim
  int64_t samples = 0;
  std::vector<double> class_iou;   // segmentation: IoU per class in [0,1], NaN where the union is empty
  // A human-readable summary: the metrics and, for segmentation, the per-class IoU table.
  std::string table(const std::vector<std::string>& class_names = {}) const;
  nlohmann::json to_json() const;
};

class Evaluator {
 public:
  explicit Evaluator(EvalSpec spec);
  const EvalSpec& spec() const { return spec_; }

  // Scores `model` (switched to eval mode; gradients off) on every sample of `val` in order. With
  // `progress`, a progress bar labelled `label` is drawn on stdout.
  // With `job` (the ranks of a data-parallel job, all calling run() together), every evaluation
  // is sharded: rank r scores the samples i ≡ r (mod W) and the ranks add up exact integer counts
  // (top-k hits, the confusion counts) or gather the per-image values — PSNR/SSIM, SAM's embedding
  // MSE, prompt agreements and instance IoUs (core/dist/ordered_gather.h) — and sum them in image
  // order, so every rank gets the single-process numbers bit for bit. Only rank 0 draws the
  // progress bar.
  EvalReport run(zoo::Model& model, const data::Dataset& val, bool progress = false,
                 const std::string& label = "eval", dist::Communicator* job = nullptr) const;

  // The model's raw output for one prepared input [C,H,W] (a batch of one), on the host.
  Tensor forward(zoo::Model& model, const Tensor& input) const;
  // Segmentation: class ids [H,W] at out_h x out_w for a prepared (normalised) image [3,h,w]:
  // logits resized to the label size with bicubic interpolation, then argmax. `classes`, when
  // given, receives the number of classes the model scores.
  Tensor segment(zoo::Model& model, const Tensor& input, int64_t out_h, int64_t out_w,
                 int64_t* classes = nullptr) const;

 private:
  EvalSpec spec_;
};

// The validation split named by a training config, with its dataset's evaluation
// transforms; nothing of the training split is read.
struct ValidationData {
  std::shared_ptr<data::Dataset> dataset;
  int64_t num_classes = 0;               // 0 for super-resolution
  std::vector<std::string> class_names;  // where the dataset names its classes
};
ValidationData validation_data(const RunConfig& cfg);

// Super-resolution: the LR folder of a split for DIV2K-style LR data (data.lr_root), or "" when
// LR images are made from HR by imresize.
std::string sr_lr_folder(const DataConfig& data, const std::string& split);

// The evaluation settings a training config implies.
EvalSpec eval_spec(const RunConfig& cfg, int64_t num_classes);

// The class count a config's model is built with: model.num_classes when set (it must then agree
// with the dataset), else the dataset's.
int64_t model_classes(const RunConfig& cfg, int64_t dataset_classes);

// The checkpoint file `evit eval` evaluates for a run's checkpoint folder, and what it holds:
// eval_model.safetensors (the weights the trainer evaluated: EMA and/or re-estimated BatchNorm
// statistics) when present, else model.safetensors (the trained weights).
struct CheckpointWeights {
  std::string path;
  std::string description;
};
CheckpointWeights checkpoint_eval_weights(const std::string& checkpoint_dir);

}  // namespace evit::train

// The config-driven trainer: classification, segmentation and super-resolution.
//
//   Trainer t(load_config_file("configs/demo_seg.json", training_config_schema()));
//   t.fit();            // trains to the configured length, evaluating and checkpointing
//
// Every run directory (config.output_dir) gets:
//   metrics.jsonl          one JSON object per log or eval event ({"step", "epoch", "loss", "lr"} /
//                          {"step", "val/mIoU", ...})
//   checkpoint/            the latest checkpoint: model.safetensors, optimizer.safetensors,
//                          ema.safetensors, schedule.safetensors, trainer.json (step, epoch,
//                          position in the epoch, RNG state, config copy), written to a temporary
//                          folder that replaces the old one only once complete
//   config.json            the resolved config
// A resumed run (train.resume = a checkpoint folder) continues bitwise exactly where the
// checkpoint left off. A non-finite loss stops training with the step and the values named.
#pragma once
#include <map>
#include <memory>
#include <string>

#include <optional>

#include <nlohmann/json.hpp>

#include "data/dataset.h"
#include "data/loader.h"
#include "optim/adamw.h"
#include "optim/ema.h"
#include "optim/grad_scaler.h"
#include "optim/schedule.h"
#include "optim/sgd.h"
#include "zoo/models.h"

namespace evit::train {

using Metrics = std::map<std::string, double>;

class Trainer {
 public:
  // `config` must be validated with training_config_schema() (defaults filled in).
  explicit Trainer(nlohmann::json config);
  ~Trainer();

  // Trains until the configured number of steps; returns the last evaluation's metrics.
  Metrics fit();
  // Runs `n` optimizer steps (no evaluation or checkpoints): the unit the tests drive.
  void train_steps(int64_t n);
  // Evaluates on the validation split with the EMA weights when EMA is enabled.
  Metrics evaluate();

  void save_checkpoint(const std::string& dir) const;
  void load_checkpoint(const std::string& dir);

  int64_t step() const { return step_; }
  int64_t total_steps() const { return total_steps_; }
  zoo::Model& model() { return *model_; }
  const nlohmann::json& config() const { return cfg_; }
  std::string task() const { return task_; }

 private:
  void build_data();
  void build_optimizer();
  double train_one_step();
  void log(const nlohmann::json& record) const;
  void next_batch(data::Batch& b);
  void reset_bn(int64_t batches);
  Tensor on_device(const Tensor& t) const;

  nlohmann::json cfg_;
  std::string task_, out_dir_;
  std::shared_ptr<zoo::Model> model_;
  std::shared_ptr<data::Dataset> train_set_, val_set_;
  std::unique_ptr<data::DataLoader> loader_;
  std::unique_ptr<optim::AdamW> adamw_;
  std::unique_ptr<optim::SGD> sgd_;
  std::unique_ptr<optim::WarmupCosine> schedule_;
  std::unique_ptr<optim::EMA> ema_;
  std::unique_ptr<optim::GradScaler> scaler_;  // f16 mixed precision only
  std::shared_ptr<zoo::Model> ema_model_;  // MESA's teacher: the model with the EMA weights
  Device device_;          // where the model, batches and optimizer state live
  std::optional<DType> amp_;  // autocast compute dtype (CUDA), or none
  int64_t num_classes_ = 0;
  int64_t step_ = 0, epoch_ = 0, total_steps_ = 0, steps_per_epoch_ = 0;
  bool epoch_started_ = false;
};

// A normalised [3,H,W] image as a segmentation model's input [1,3,H',W']: sides not divisible by
// 32 (the stride of the last stage) are resized up to the next multiple (bicubic), as the ADE20K
// protocol does (spec §4.1). Callers resize the logits back to H x W.
Tensor segmentation_input(const Tensor& image);

// Loss of a model output against the batch target, as the trainer computes it (exposed for tests).
Tensor task_loss(const std::string& task, const Tensor& output, const Tensor& target, double label_smoothing,
                 int64_t ignore_index);

}  // namespace evit::train

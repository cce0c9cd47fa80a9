// The config-driven trainer: classification, segmentation, super-resolution and the two SAM
// training stages (sam_distill, sam_finetune).
//
//   Trainer t(load_config_file("configs/demo_seg.json", training_config_schema()));
//   t.fit();            // trains to the configured length, evaluating and checkpointing
//
// Every run directory (config.output_dir) gets:
//   metrics.jsonl          one JSON object per log or eval event ({"step", "epoch", "loss", "lr"} /
//                          {"step", "val/mIoU", ...})
//   checkpoint/            the latest checkpoint: model.safetensors, optimizer.safetensors,
//                          ema.safetensors, schedule.safetensors, eval_model.safetensors (the
//                          weights evaluate() scores, when EMA or BatchNorm re-estimation makes
//                          them differ from the model's), trainer.json (step, epoch,
//                          position in the epoch, RNG state, config copy), written to a temporary
//                          folder that replaces the old one only once complete
//   config.json            the resolved config
// A resumed run (train.resume = a checkpoint folder) continues bitwise exactly where the
// checkpoint left off. A non-finite loss stops training with the step and the values named.
//
// Under an MPI launcher (`mpirun -n 4 evit train ...`) every rank builds a Trainer on the same
// config; with data.micro_batches > 1 or more than one rank each step runs as fixed micro-batches
// (train/data_parallel.h), so the weights do not depend on the number of ranks. Every rank
// evaluates its share of the validation set (train/evaluator.h); rank 0 alone writes the run
// folder.
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
#include "core/dist/communicator.h"
#include "train/data_parallel.h"
#include "train/evaluator.h"
#include "train/run_config.h"
#include "train/sam_finetune.h"
#include "zoo/models.h"

namespace evit::train {

class Trainer {
 public:
  // `config` must be validated with training_config_schema() (defaults filled in); it is parsed
  // into a RunConfig once.
  // `comm`: the job's ranks (null: dist::world(), MPI's ranks under mpirun, else one process).
  explicit Trainer(const nlohmann::json& config, dist::Communicator* comm = nullptr);
  ~Trainer();

  // Trains until the configured number of steps; returns the last evaluation's metrics.
  Metrics fit();
  // Runs `n` optimizer steps (no evaluation or checkpoints): the unit the tests drive.
  void train_steps(int64_t n);
  // Evaluates evaluation_model() on the validation split (the training state is not touched).
  Metrics evaluate();
  // The weights evaluations score: the model's, or its EMA average when EMA is enabled, with
  // BatchNorm statistics re-estimated on training batches when train.reset_bn_batches > 0.
  // Computed once per step, in a model of its own.
  zoo::Model& evaluation_model();
  // One line saying which weights evaluation_model() holds.
  std::string evaluation_weights_description() const;

  void save_checkpoint(const std::string& dir);
  void load_checkpoint(const std::string& dir);

  int64_t step() const { return step_; }
  int64_t total_steps() const { return total_steps_; }
  zoo::Model& model() { return *model_; }
  const RunConfig& config() const { return rc_; }
  Task task() const { return task_; }

 private:
  // A (micro-)batch after the host-side transforms, on the training device.
  struct PreparedBatch {
    Tensor input, target, aux;
    int64_t micro_batch = 0;  // its global index within the step (keys its random draws)
  };
  void build_data();
  void build_optimizer();
  double train_one_step();
  PreparedBatch prepare(const data::Batch& b, int64_t micro_batch) const;
  Tensor forward_loss(const PreparedBatch& batch);
  [[noreturn]] void throw_diverged(double loss, double lr, const PreparedBatch* culprit);
  bool is_main_rank() const { return comm_->rank() == 0; }
  // Whether steps run as micro-batches (train/data_parallel.h): K > 1 or more than one rank.
  bool steps_in_micro_batches() const { return rc_.data.micro_batches > 1 || comm_->size() > 1; }
  void log(const nlohmann::json& record) const;
  void next_batch(data::Batch& b);
  void reset_bn(zoo::Model& model, int64_t batches);
  Tensor on_device(const Tensor& t) const;
  optim::EMAOptions ema_options() const;
  SamFinetuneOptions sam_finetune_options() const;

  RunConfig rc_;
  dist::Communicator* comm_;
  // comm_ with NCCL carrying CUDA gradients (train.gpu_transport), when the step uses it.
  std::shared_ptr<dist::Communicator> gradient_comm_;
  std::unique_ptr<DataParallelStep> data_parallel_;  // micro-batch steps, when K·W > 1
  Task task_;
  std::string out_dir_;
  std::shared_ptr<zoo::Model> model_;
  std::shared_ptr<data::Dataset> train_set_, val_set_;
  std::unique_ptr<data::DataLoader> loader_;
  std::unique_ptr<optim::Optimizer> optimizer_;  // AdamW or SGD (optimizer.name)
  std::unique_ptr<optim::WarmupCosine> schedule_;
  std::unique_ptr<optim::EMA> ema_;
  std::unique_ptr<optim::GradScaler> scaler_;  // f16 mixed precision only
  std::shared_ptr<zoo::Model> ema_model_;  // MESA's teacher: the model with the EMA weights
  std::shared_ptr<zoo::Model> eval_model_;  // evaluation_model(), valid for step eval_step_
  int64_t eval_step_ = -1;
  std::unique_ptr<Evaluator> evaluator_;
  std::vector<std::string> class_names_;
  Device device_;          // where the model, batches and optimizer state live
  std::optional<DType> amp_;  // autocast compute dtype (CUDA), or none
  int64_t num_classes_ = 0;
  int64_t step_ = 0, epoch_ = 0, total_steps_ = 0, steps_per_epoch_ = 0;
  double loss_sum_ = 0;     // losses since the last log line (their average is logged),
  int64_t loss_count_ = 0;  // saved in checkpoints so a resumed run logs the same average
  bool epoch_started_ = false;
  double data_wait_s_ = 0;  // time train_one_step() waited for the loader since the last log line
};

// Loss of a model output against the batch target, as the trainer computes it (exposed for tests).
Tensor task_loss(Task task, const Tensor& output, const Tensor& target, double label_smoothing, int64_t ignore_index);

}  // namespace evit::train

// A training run's configuration as typed values. The JSON file is validated against
// training_config_schema() (train/config.h), which holds every key's default, and parsed once
// into a RunConfig; the trainer, the evaluator and the commands read these fields, never JSON keys.
//
//   RunConfig rc = parse_run_config(load_config_file(path, training_config_schema(), overrides));
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace evit::train {

enum class Task { classification, segmentation, super_resolution, sam_distill, sam_finetune };
const char* task_name(Task t);   // "classification", ...
Task parse_task(const std::string& name);  // throws naming the value
// The model registry's task of the models a task trains ("sam" for the SAM tasks, else the task's name).
const char* model_task(Task t);
// Whether the task's models have a class count (classification, segmentation).
bool task_has_classes(Task t);

struct ModelConfig {
  std::string name;                    // zoo name
  std::optional<int64_t> num_classes;  // none: the dataset's class count
  std::string pretrained;              // weights to start training from ("" = none)
};

struct DataConfig {
  std::string root, dataset;
  int64_t crop = 0;
  std::optional<int64_t> eval_size;  // classification evaluation size (none: crop)
  double crop_ratio = 0;             // classification evaluation: resize to ceil(size / ratio)
  int64_t batch_size = 0;      // the global batch, over all ranks
  int64_t micro_batches = 1;   // fixed micro-batches per global batch (docs/distributed.md)
  int workers = 0;
  int64_t ignore_index = 0;  // segmentation
  int64_t scale = 0;         // super-resolution factor
  std::string lr_root;       // super-resolution LR images ("" = made from HR)
  std::array<double, 3> mean{}, std{};
  bool drop_last = true;
  std::vector<int64_t> multires_sizes;  // classification multi-resolution training
  int64_t limit = 0;                    // only the first N samples (0: all)
  // sam_distill (docs/sam.md): the teacher-embedding cache, and the teacher that fills it when
  // its weights are given.
  std::string embeddings, teacher, teacher_weights;
  // sam_finetune: masks drawn per training image; SAM tasks: box-scored annotations per validation
  // image (0: all).
  int64_t masks_per_image = 0, val_masks = 0;

  int64_t evaluation_size() const { return eval_size.value_or(crop); }
};

struct OptimConfig {
  std::string name;  // adamw | sgd
  double lr = 0, weight_decay = 0;
  double beta1 = 0, beta2 = 0, eps = 0;  // adamw
  double momentum = 0;                   // sgd
  bool nesterov = false;                 // sgd
  std::vector<std::string> no_decay_keywords;
};

struct ScheduleConfig {
  std::string name;  // cosine | constant
  std::optional<double> warmup_epochs, total_epochs;
  std::optional<int64_t> warmup_steps, total_steps;
  double warmup_lr = 0, min_lr = 0;
};

struct EmaConfig {
  bool enabled = false;
  double decay = 0, warmup_steps = 0;
};

struct TrainLoopConfig {
  std::optional<int64_t> epochs, steps;  // exactly one is set
  int64_t eval_every = 0, checkpoint_every = 0;  // in the unit of the training length
  int64_t log_every = 0;                         // steps
  uint64_t seed = 0;
  std::optional<double> grad_clip;  // none: no clipping
  std::string grad_clip_mode;       // value | norm
  double label_smoothing = 0;
  std::string loss;  // ce | bce
  double drop_path = 0;
  int64_t drop_path_skip = 0;
  double random_erasing = 0;
  std::string rand_augment;
  double mesa_weight = 0, mesa_start = 0;
  int64_t reset_bn_batches = 0;
  bool eval_at_start = false;  // evaluate the starting weights before the first step (logged as step 0)
  double mixup_alpha = 0, cutmix_alpha = 0;
  // sam_finetune: the chance of three masks per prompt (else one) and the loss's sampled points.
  double multimask_prob = 0;
  int64_t mask_points = 0;
  int threads = 0;
  bool library_allreduce = false;  // allreduce = "library": MPI's own sum, not the fixed tree
  std::string gpu_transport;       // auto | nccl | host: how CUDA gradients travel between ranks
  bool overlap_backward = true;    // gradient buckets cross the ranks while backward runs
  double bucket_mb = 16;           // MiB of f32 gradients per bucket sent during backward
  std::string device;  // cpu | cuda | cuda:N
  std::string amp;     // off | f16 | bf16
  std::optional<std::string> resume;
};

struct RunConfig {
  Task task = Task::classification;
  ModelConfig model;
  DataConfig data;
  OptimConfig optimizer;
  ScheduleConfig schedule;
  EmaConfig ema;
  TrainLoopConfig train;
  std::string output_dir;
  nlohmann::json json;  // the validated config it was parsed from (written into run folders)
};

// `validated` must have passed training_config_schema() (defaults filled in).
RunConfig parse_run_config(const nlohmann::json& validated);

}  // namespace evit::train

#include "train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "autograd/grad_mode.h"
#include "core/cuda.h"
#include "core/file_io.h"
#include "core/parallel.h"
#include "train/train_transforms.h"
#include "data/transforms.h"
#include "ops/autocast.h"
#include "ops/ops.h"
#include "optim/clip.h"
#include "train/checkpoint.h"
#include "train/metrics.h"
#include "train/plot.h"
#include "train/progress.h"
#include "train/sam_distill.h"
#include "train/sam_finetune.h"
#include "nn/norm.h"
#include "train/sr_metrics.h"
#include "zoo/layers.h"
#include "zoo/sr.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace evit::train {
Tensor task_loss(Task task, const Tensor& output, const Tensor& target, double label_smoothing, int64_t ignore_index) {
  if (task == Task::classification) {
    if (is_floating(target.dtype())) return cross_entropy(output, target);  // soft (mixup) targets
    return cross_entropy(output, target, Tensor(), -100, Reduction::mean, label_smoothing);
  }
  if (task == Task::segmentation) {
    // Logits come at stride 8: upsample them to the label size, as segmentation training does.
    Tensor up = output;
    if (output.size(2) != target.size(1) || output.size(3) != target.size(2))
      up = interpolate(output, {target.size(1), target.size(2)}, {}, InterpolateMode::bilinear, false);
    return cross_entropy(up, target, Tensor(), ignore_index, Reduction::mean, label_smoothing);
  }
  if (task == Task::sam_distill) return mse_loss(output, target);  // the embedding L2 (docs/sam.md)
  return l1_loss(output, target);
}

Trainer::Trainer(const json& config, dist::Communicator* comm)
    : rc_(parse_run_config(config)), comm_(comm ? comm : &dist::world()), task_(rc_.task), out_dir_(rc_.output_dir) {
  const TrainLoopConfig& t = rc_.train;
  if (t.threads > 0) set_num_threads(t.threads);
  manual_seed(t.seed);  // model init and dropout draw from the default generator
  const std::string& name = rc_.model.name;
  const auto& info = zoo::model_info(name);
  EVIT_CHECK(info.task == model_task(task_), "config.model.name: '", name, "' is a ", info.task, " model but task '",
             task_name(task_), "' trains ", model_task(task_), " models");
  if (task_ == Task::sam_distill) fill_embedding_cache(rc_);  // before the datasets check the cache
  build_data();
  model_ = zoo::create_model(name, num_classes_);
  if (task_ == Task::super_resolution)
    EVIT_CHECK(zoo::sr_scale(*model_) == rc_.data.scale, "config.data.scale = ", rc_.data.scale, " but '", name,
               "' upscales by ", zoo::sr_scale(*model_), ": pick the model of that scale or set data.scale to match");
  evaluator_ = std::make_unique<Evaluator>(eval_spec(rc_, num_classes_));
  if (!rc_.model.pretrained.empty()) model_->load(rc_.model.pretrained, false);
  device_ = evaluator_->spec().device;
  if (device_.is_cuda() && comm_->size() > 1 && t.device == "cuda") {
    // One GPU per rank: "cuda" without an index means the rank's own, cuda:<local rank>.
    const int gpus = cuda::device_count();
    EVIT_CHECK(gpus > 0, "config.train.device = \"cuda\" but no CUDA GPU is visible to ", comm_->describe());
    device_ = Device(DeviceType::cuda, comm_->local_rank() % gpus);
  }
  if (const std::string& a = t.amp; a != "off") {
    EVIT_CHECK(device_.is_cuda(), "config.train.amp = \"", a, "\" needs train.device = \"cuda\" (mixed precision is a CUDA feature)");
    amp_ = a == "f16" ? DType::f16 : DType::bf16;
    // f16's range ends at 65504: small gradients underflow without loss scaling; bf16 has f32's.
    if (*amp_ == DType::f16) scaler_ = std::make_unique<optim::GradScaler>();
  }
  model_->to(device_);  // before the optimizer and EMA, so their state is made on the device
  if (steps_in_micro_batches()) {
    gradient_comm_ = gradient_communicator(*comm_, device_, t.gpu_transport);
    data_parallel_ = std::make_unique<DataParallelStep>(*model_, gradient_comm_ ? *gradient_comm_ : *comm_,
                                                        rc_.data.micro_batches,
                                                        DataParallelOptions{.library_allreduce = rc_.train.library_allreduce,
                                                                            .overlap_backward = rc_.train.overlap_backward,
                                                                            .bucket_elements = bucket_elements(rc_.train.bucket_mb)});
  }
  build_optimizer();
  if (t.resume) load_checkpoint(*t.resume);
  // Every rank starts from rank 0's weights (a pretrained file or checkpoint read differently on
  // one machine must not split the job).
  if (data_parallel_) data_parallel_->broadcast_model();
  if (!is_main_rank()) return;  // rank 0 alone writes the run folder
  fs::create_directories(out_dir_);
  write_file_atomic(out_dir_ + "/config.json", rc_.json.dump(2) + "\n");  // fails now on a read-only folder
  if (t.resume) {
    // Keep the log up to the checkpoint; later entries belong to the interrupted run's future.
    std::vector<std::string> kept;
    std::ifstream in(out_dir_ + "/metrics.jsonl");
    for (std::string line; std::getline(in, line);) {
      json rec = json::parse(line, nullptr, false);
      if (!rec.is_discarded() && rec.value("step", int64_t{0}) <= step_) kept.push_back(line);
    }
    std::string log;
    for (auto& l : kept) log += l + "\n";
    write_file_atomic(out_dir_ + "/metrics.jsonl", log);
  } else {
    write_file_atomic(out_dir_ + "/metrics.jsonl", "");  // a fresh run starts a fresh log
  }
}

Trainer::~Trainer() = default;

void Trainer::build_data() {
  const DataConfig& d = rc_.data;
  const std::string& root = d.root;
  if (task_ == Task::segmentation) {
    if (d.dataset == "ade20k") train_set_ = data::ade20k(root, "train");
    else train_set_ = data::cityscapes(root, "train");
  } else if (task_ == Task::classification) {
    auto folders = std::make_shared<data::ImageFolderDataset>(root, "train");
    folders->set_eight_bit(true);  // crop, flip and RandAugment on 8-bit pixels (train/train_transforms.h)
    train_set_ = folders;
  } else if (task_ == Task::sam_distill) {
    // No augmentation: a flipped or cropped image would need the teacher's embedding of that view.
    train_set_ = std::make_shared<SamDistillDataset>(sam_distill_split(d, "train"), d.embeddings, d.crop);
  } else if (task_ == Task::sam_finetune) {
    // Masks, flips and prompts are drawn per sample and step (train/sam_finetune.h).
    EVIT_CHECK(d.dataset == "sa1b", "config.data.dataset: sam_finetune reads SA-1B folders (\"sa1b\"), got '",
               d.dataset, "'");
    train_set_ = std::make_shared<SamFinetuneDataset>(sam_distill_split(d, "train"), d.crop, d.masks_per_image, true);
  } else {
    train_set_ = std::make_shared<data::SRDataset>(data::sr_hr_folder(root, "train"), d.scale, sr_lr_folder(d, "train"));
  }
  // The validation split and its protocol are the evaluator's (the same as `evit eval`'s).
  const ValidationData val = validation_data(rc_);
  val_set_ = val.dataset;
  class_names_ = val.class_names;
  if (auto* seg = dynamic_cast<data::SegmentationDataset*>(train_set_.get()))
    EVIT_CHECK(seg->num_classes() == val.num_classes, "segmentation data: train and val class counts differ under '", root, "'");
  if (auto* folders = dynamic_cast<data::ImageFolderDataset*>(train_set_.get()))
    EVIT_CHECK(folders->classes() == val.class_names, "classification data: train and val class folders differ under '", root,
               "'");
  num_classes_ = task_has_classes(task_) ? model_classes(rc_, val.num_classes) : 0;
  if (d.limit > 0) train_set_ = std::make_shared<data::Subset>(train_set_, d.limit);
  train_set_->set_transforms(training_transforms(rc_));
  data::LoaderOptions o;
  o.batch_size = d.batch_size;
  o.workers = d.workers;
  o.drop_last = d.drop_last && train_set_->size() >= o.batch_size;
  o.seed = rc_.train.seed;
  if (const int64_t k = d.micro_batches; steps_in_micro_batches()) {
    // Micro-batch steps (train/data_parallel.h): every global batch is whole and splits evenly.
    EVIT_CHECK(o.batch_size % k == 0, "config.data.batch_size = ", o.batch_size, " does not split into data.micro_batches = ",
               k, " equal micro-batches");
    EVIT_CHECK(o.drop_last, "config.data.drop_last must be true when training in micro-batches or on several ranks "
               "(a partial last batch would not split into equal micro-batches); the training set has ",
               train_set_->size(), " samples for batches of ", o.batch_size);
    o.shard = comm_->rank();
    o.shards = comm_->size();
  }
  loader_ = std::make_unique<data::DataLoader>(train_set_, o);
  steps_per_epoch_ = loader_->batches_per_epoch();
}

void Trainer::build_optimizer() {
  const OptimConfig& o = rc_.optimizer;
  const ScheduleConfig& s = rc_.schedule;
  total_steps_ = rc_.train.steps ? *rc_.train.steps : *rc_.train.epochs * steps_per_epoch_;
  auto groups = optim::param_groups_by_name(*model_, o.lr, o.weight_decay, o.no_decay_keywords);
  if (o.name == "adamw") {
    optimizer_ = std::make_unique<optim::AdamW>(groups, optim::AdamWOptions{o.beta1, o.beta2, o.eps});
  } else {
    optim::SGDOptions so;
    so.momentum = o.momentum;
    so.nesterov = o.nesterov;
    optimizer_ = std::make_unique<optim::SGD>(groups, so);
  }
  optim::WarmupCosineOptions w;
  w.base_lr = o.lr;
  if (s.warmup_steps) w.warmup_steps = *s.warmup_steps;
  else if (s.warmup_epochs) w.warmup_steps = std::llround(*s.warmup_epochs * steps_per_epoch_);
  int64_t total = total_steps_;
  if (s.total_steps) total = *s.total_steps;
  else if (s.total_epochs) total = std::llround(*s.total_epochs * steps_per_epoch_);
  w.decay_steps = std::max<int64_t>(1, total - w.warmup_steps);
  w.warmup_lr = s.warmup_lr;
  w.min_lr = s.min_lr;
  if (s.name == "constant") w.min_lr = w.base_lr, w.warmup_steps = 0;
  schedule_ = std::make_unique<optim::WarmupCosine>(w);
  if (rc_.ema.enabled) ema_ = std::make_unique<optim::EMA>(*model_, ema_options());
}

optim::EMAOptions Trainer::ema_options() const { return {rc_.ema.decay, rc_.ema.warmup_steps}; }

SamFinetuneOptions Trainer::sam_finetune_options() const {
  SamFinetuneOptions o;
  o.multimask_prob = rc_.train.multimask_prob;
  o.loss.points = rc_.train.mask_points;
  return o;
}

Tensor Trainer::on_device(const Tensor& t) const {
  if (!t.defined() || t.device() == device_) return t;
  // Page-locked staging lets the copy run asynchronously with the GPU's queue.
  return (device_.is_cuda() ? cuda::pin_memory(t) : t).to(device_);
}

void Trainer::next_batch(data::Batch& b) {
  if (!epoch_started_) {
    loader_->start_epoch(epoch_, 0);
    epoch_started_ = true;
  }
  while (!loader_->next(b)) {
    ++epoch_;
    loader_->start_epoch(epoch_, 0);
  }
}

Trainer::PreparedBatch Trainer::prepare(const data::Batch& b, int64_t micro_batch) const {
  const TrainLoopConfig& t = rc_.train;
  Tensor input = b.input, target = b.target;
  if (const auto& sizes = rc_.data.multires_sizes; task_ == Task::classification && !sizes.empty()) {
    // Multi-resolution training (docs/training.md): one size per step, drawn from a generator seeded
    // by the step so that a resumed run draws the same sizes.
    Generator g = data::sample_generator(t.seed ^ 0x6d756c7469ull, step_, 0);
    const int64_t size = sizes[g.next_u64() % sizes.size()];
    if (input.size(2) != size || input.size(3) != size)
      input = interpolate(input, {size, size}, {}, InterpolateMode::bicubic, false);
  }
  if (task_ == Task::classification && (t.loss == "bce" || t.mixup_alpha > 0 || t.cutmix_alpha > 0)) {
    // Soft targets: smoothed one-hot, then mixup or cutmix (docs/training.md) within the
    // (micro-)batch, with λ and partners keyed by the step and the micro-batch's global index.
    Generator g = data::sample_generator(t.seed ^ 0x6d6978ull, step_, micro_batch);
    auto mixed = data::mix_batch(input, target, num_classes_, t.mixup_alpha, t.cutmix_alpha, t.label_smoothing, g);
    input = mixed.input, target = mixed.soft_target;
  }
  // After the host-side batch transforms.
  return {on_device(input), on_device(target), on_device(b.aux), micro_batch};
}

Tensor Trainer::forward_loss(const PreparedBatch& p) {
  const TrainLoopConfig& t = rc_.train;
  std::optional<AutocastGuard> autocast;
  if (amp_) autocast.emplace(*amp_);
  if (task_ == Task::sam_finetune) {
    // SAM fine-tuning draws its prompts from a generator of the step, so a resumed run draws the same.
    Generator g = data::sample_generator(t.seed ^ 0x73616d66ull, step_, p.micro_batch);
    return sam_finetune_batch_loss(dynamic_cast<zoo::EfficientViTSam&>(*model_), p.input, p.target, p.aux,
                                   sam_finetune_options(), g);
  }
  const Tensor output = model_->forward(p.input);
  Tensor loss = t.loss == "bce" && task_ == Task::classification
                    ? binary_cross_entropy_with_logits(output, p.target)
                    : task_loss(task_, output, p.target, t.label_smoothing, rc_.data.ignore_index);
  if (const double w = t.mesa_weight;
      w > 0 && task_ == Task::classification && static_cast<double>(step_) >= t.mesa_start * total_steps_) {
    // MESA (docs/training.md): distil from the EMA model's sigmoid outputs on the same batch.
    EVIT_CHECK(ema_ != nullptr, "config.train.mesa_weight needs ema.enabled = true");
    if (!ema_model_) {
      ema_model_ = zoo::create_model(rc_.model.name, num_classes_);
      ema_model_->to(device_);
    }
    Tensor soft;
    {
      NoGradGuard no_grad;
      ema_->copy_to(*ema_model_);
      ema_model_->eval();
      soft = sigmoid(ema_model_->forward(p.input));
    }
    loss = add(loss, mul(binary_cross_entropy_with_logits(output, soft), w));
  }
  return loss;  // backward uses the precision each op chose in the forward
}

void Trainer::throw_diverged(double loss, double lr, const PreparedBatch* culprit) {
  // Replay the batch's forward in anomaly mode to name the op where the values broke.
  std::string where = "the loss of a micro-batch on another rank was not finite";
  if (culprit) {
    where = "the forward ops all gave finite outputs; the loss itself is not finite";
    try {
      AnomalyGuard anomaly;
      forward_loss(*culprit);
    } catch (const Error& e) {
      where = e.what();
    }
  }
  EVIT_THROW("training diverged at step ", step_ + 1, " (epoch ", epoch_, "): the loss is ", loss, " with lr ", lr, "; ",
             where, ". Lower optimizer.lr or enable gradient clipping.");
}

double Trainer::train_one_step() {
  const TrainLoopConfig& t = rc_.train;
  data::Batch b;
  const auto wait_start = std::chrono::steady_clock::now();
  next_batch(b);
  data_wait_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - wait_start).count();
  model_->train();
  if (const double p = t.drop_path; p > 0) {
    // Stochastic depth grows with training progress: 0 during warmup, p at the end (docs/training.md).
    const int64_t warm = schedule_->options().warmup_steps;
    const double progress = total_steps_ > warm ? std::max(0.0, double(step_ - warm) / double(total_steps_ - warm)) : 1.0;
    zoo::set_drop_path(*model_, p, t.drop_path_skip, progress);
  }
  const double lr = schedule_->lr();
  optimizer_->set_lr(lr);
  optimizer_->zero_grad();
  double value = 0;
  if (!data_parallel_) {
    const PreparedBatch batch = prepare(b, 0);
    const Tensor loss = forward_loss(batch);
    value = loss.item<double>();
    if (!std::isfinite(value)) throw_diverged(value, lr, &batch);
    (scaler_ ? scaler_->scale(loss) : loss).backward();
  } else {
    // Micro-batches (train/data_parallel.h): this rank's contiguous block of the global batch.
    DataParallelStep& dp = *data_parallel_;
    const int64_t local = dp.local_micro_batches(), size = b.input.size(0) / local;
    std::optional<PreparedBatch> culprit;
    dp.begin_step();
    for (int64_t j = 0; j < local; ++j) {
      const int64_t index = dp.first_micro_batch() + j;
      data::Batch part;
      part.input = slice(b.input, 0, j * size, (j + 1) * size).contiguous();
      part.target = slice(b.target, 0, j * size, (j + 1) * size).contiguous();
      if (b.aux.defined()) part.aux = slice(b.aux, 0, j * size, (j + 1) * size).contiguous();
      // Dropout and drop path draw from the default generator: keyed by the step and the
      // micro-batch, never by how many draws other ranks made before.
      default_generator() = data::sample_generator(t.seed ^ 0x64726f70ull, step_, index);
      PreparedBatch batch = prepare(part, index);
      const Tensor loss = forward_loss(batch);
      const double v = loss.item<double>();
      if (!std::isfinite(v) && !culprit) culprit = batch;
      (scaler_ ? scaler_->scale(loss) : loss).backward();
      dp.end_micro_batch(v);
    }
    value = dp.finish_step();  // the same on every rank, so all ranks stop together on divergence
    if (!std::isfinite(value)) throw_diverged(value, lr, culprit ? &*culprit : nullptr);
  }
  // Clipping sees true gradients: a loss scaler divides its scale out first.
  if (scaler_) scaler_->unscale_(*optimizer_);
  if (t.grad_clip) {
    if (t.grad_clip_mode == "norm") optim::clip_grad_norm(*model_, *t.grad_clip);
    else optim::clip_grad_value(*model_, *t.grad_clip);
  }
  if (scaler_) {
    // Steps with inf/NaN gradients (the scale was too large) are skipped and the scale halves.
    scaler_->step(*optimizer_);
    scaler_->update();
  } else {
    optimizer_->step();
  }
  schedule_->step();
  ++step_;
  if (ema_) ema_->update(*model_, step_);
  return value;
}

void Trainer::train_steps(int64_t n) {
  for (int64_t i = 0; i < n; ++i) train_one_step();
}

void Trainer::log(const json& record) const {
  const std::string path = out_dir_ + "/metrics.jsonl";
  std::ofstream f(path, std::ios::app);
  f << record.dump() << "\n";
  f.flush();
  EVIT_CHECK(f.good(), "cannot append to '", path, "' (disk full or the folder read-only?)");
}

zoo::Model& Trainer::evaluation_model() {
  if (eval_model_ && eval_step_ == step_) return *eval_model_;
  if (!eval_model_) {
    eval_model_ = zoo::create_model(rc_.model.name, num_classes_);
    eval_model_->to(device_);
  }
  NoGradGuard no_grad;
  eval_model_->load_state_dict(model_->state_dict());
  if (ema_) ema_->copy_to(*eval_model_);
  if (rc_.train.reset_bn_batches > 0) reset_bn(*eval_model_, rc_.train.reset_bn_batches);
  eval_model_->eval();
  eval_step_ = step_;
  return *eval_model_;
}

std::string Trainer::evaluation_weights_description() const {
  std::string w = ema_ ? "EMA weights" : "trained weights";
  if (const int64_t n = rc_.train.reset_bn_batches; n > 0)
    w += ", BatchNorm statistics re-estimated on " + std::to_string(n) + " training batches";
  return w;
}

Metrics Trainer::evaluate() { return evaluator_->run(evaluation_model(), *val_set_, false, "eval", comm_).metrics; }

void Trainer::reset_bn(zoo::Model& model, int64_t batches) {
  // Before evaluation, re-estimate every BatchNorm's running statistics on training batches
  // (training augmentation) as the plain average over batches, as the reference recipes do. A
  // momentum of 1/(k+1) for batch k turns the running update into exactly that average.
  std::vector<nn::BatchNorm2d*> bns;
  for (auto& [name, m] : model.named_modules())
    if (auto* bn = dynamic_cast<nn::BatchNorm2d*>(m.get())) bns.push_back(bn);
  std::vector<double> momenta;
  for (auto* bn : bns) {
    momenta.push_back(bn->momentum);
    fill_(bn->running_mean, 0.0);
    fill_(bn->running_var, 1.0);
  }
  zoo::set_drop_path(model, 0.0, 0, 0.0);  // statistics of the full network
  model.train();
  data::DataLoader loader(train_set_, {rc_.data.batch_size, true, true, rc_.data.workers, 2, rc_.train.seed + 1});
  loader.start_epoch(step_);
  data::Batch b;
  for (int64_t k = 0; k < batches; ++k) {
    if (!loader.next(b)) loader.start_epoch(step_ + k + 1), loader.next(b);
    for (auto* bn : bns) bn->momentum = 1.0 / static_cast<double>(k + 1);
    model.forward(on_device(b.input));
  }
  for (size_t i = 0; i < bns.size(); ++i) bns[i]->momentum = momenta[i];
}

Metrics Trainer::fit() {
  const TrainLoopConfig& t = rc_.train;
  const int64_t unit = t.epochs ? steps_per_epoch_ : 1;
  const int64_t eval_every = t.eval_every * unit;
  const int64_t ckpt_every = t.checkpoint_every * unit;
  const int64_t log_every = t.log_every;
  // Every rank trains and evaluates (its share of the validation set); rank 0 alone prints, logs
  // and checkpoints.
  const bool main_rank = is_main_rank();
  if (main_rank) {
    std::printf("training %s on %s: %lld steps (%lld per epoch), %lld parameters\n"
                "evaluating on %s with the %s\n",
                rc_.model.name.c_str(), train_set_->describe().c_str(), (long long)total_steps_,
                (long long)steps_per_epoch_, (long long)model_->num_parameters(), val_set_->describe().c_str(),
                evaluation_weights_description().c_str());
    if (data_parallel_) {
      const dist::Communicator& dp = data_parallel_->communicator();
      const std::string transport =
          device_.is_cuda() && (dp.size() > 1 || gradient_comm_) ? ", CUDA gradients through " + dp.gpu_transport() : "";
      std::printf("data-parallel: %s%s; each global batch of %lld in %lld micro-batches of %lld, %lld per rank; "
                  "gradients in %lld buckets%s\n",
                  dp.describe().c_str(), transport.c_str(), (long long)rc_.data.batch_size, (long long)data_parallel_->micro_batches(),
                  (long long)(rc_.data.batch_size / data_parallel_->micro_batches()),
                  (long long)data_parallel_->local_micro_batches(), (long long)data_parallel_->bucket_count(),
                  data_parallel_->overlaps_backward() ? ", sent to the other ranks while backward runs" : "");
    }
    std::fflush(stdout);
  }
  Metrics last;
  std::optional<Progress> progress;
  auto evaluate_and_log = [&] {
    if (progress) progress->finish();
    last = evaluate();
    if (!main_rank) return;
    json rec = {{"step", step_}, {"epoch", epoch_}};
    std::printf("eval at step %lld:", (long long)step_);
    for (auto& [k, v] : last) rec[k] = v, std::printf("  %s %.4f", k.c_str(), v);
    std::printf("\n");
    std::fflush(stdout);
    log(rec);
  };
  if (t.eval_at_start && step_ == 0) evaluate_and_log();
  if (main_rank) {
    progress.emplace(total_steps_, "train");
    progress->set_done_before(step_);
    progress->update(step_);
  }
  // How long the steps since the last log line waited for the loader (timings stay out of
  // metrics.jsonl, which must not depend on the machine).
  auto window_start = std::chrono::steady_clock::now();
  bool told_about_data = false;
  while (step_ < total_steps_) {
    const double lr = schedule_->lr();
    loss_sum_ += train_one_step();
    ++loss_count_;
    if (step_ % log_every == 0 || step_ == total_steps_) {
      const auto now = std::chrono::steady_clock::now();
      const double window_s = std::chrono::duration<double>(now - window_start).count();
      const double waiting = window_s > 0 ? std::min(1.0, data_wait_s_ / window_s) : 0.0;
      if (main_rank) {
        progress->update(step_, {{"loss", loss_sum_ / loss_count_}, {"lr", lr}, {"data wait", waiting}});
        log({{"step", step_}, {"epoch", epoch_}, {"loss", loss_sum_ / loss_count_}, {"lr", lr}});
        if (waiting > 0.2 && !told_about_data && step_ > log_every) {
          // Not for the first window: the loader's first batches are a cold start.
          progress->finish();
          std::printf("note: the model waited for data %.0f%% of the time in the last %lld steps; more loader threads "
                      "(data.workers, now %d) would keep it busy\n",
                      100 * waiting, (long long)loss_count_, rc_.data.workers);
          told_about_data = true;
        }
      }
      loss_sum_ = 0, loss_count_ = 0, data_wait_s_ = 0;
      window_start = now;
    }
    if (step_ % eval_every == 0 || step_ == total_steps_) evaluate_and_log();
    if (step_ % ckpt_every == 0 || step_ == total_steps_) save_checkpoint(out_dir_ + "/checkpoint");
  }
  if (!main_rank) return last;
  progress->finish();
  try {  // curves are a convenience: a missing plotter must not fail a finished run
    for (auto& png : plot_metrics(out_dir_ + "/metrics.jsonl", out_dir_ + "/curves"))
      std::printf("wrote %s\n", png.c_str());
  } catch (const Error& e) {
    std::printf("note: no curves plotted: %s\n", e.what());
  }
  return last;
}

void Trainer::save_checkpoint(const std::string& dir) {
  if (!is_main_rank()) return;  // every rank holds the same state; one writes it
  CheckpointParts parts{model_.get(), optimizer_.get(), schedule_.get(), ema_.get(), scaler_.get(), nullptr};
  // What evaluate() scores, so `evit eval` on this checkpoint gives the training-time number.
  if (ema_ || rc_.train.reset_bn_batches > 0) parts.eval_model = &evaluation_model();
  RunPosition position;
  position.step = step_;
  position.epoch = epoch_;
  position.batch_in_epoch = epoch_started_ ? loader_->next_batch_index() : 0;
  position.loss_sum = loss_sum_;
  position.loss_count = loss_count_;
  position.rng = default_generator().state();
  position.config = rc_.json;
  write_checkpoint(dir, parts, position);
}

void Trainer::load_checkpoint(const std::string& dir) {
  bool has_ema = false;
  const RunPosition p =
      read_checkpoint(dir, {model_.get(), optimizer_.get(), schedule_.get(), ema_.get(), scaler_.get(), nullptr}, &has_ema);
  // A checkpoint of a run without EMA starts the average from the loaded weights.
  if (ema_ && !has_ema) ema_ = std::make_unique<optim::EMA>(*model_, ema_options());
  step_ = p.step;
  epoch_ = p.epoch;
  loss_sum_ = p.loss_sum;
  loss_count_ = p.loss_count;
  default_generator().set_state(p.rng);
  loader_->start_epoch(epoch_, p.batch_in_epoch);
  epoch_started_ = true;
}

}  // namespace evit::train

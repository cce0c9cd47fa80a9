#include "train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "autograd/grad_mode.h"
#include "core/cuda.h"
#include "core/parallel.h"
#include "data/rand_augment.h"
#include "data/transforms.h"
#include "ops/autocast.h"
#include "ops/ops.h"
#include "optim/clip.h"
#include "train/metrics.h"
#include "train/plot.h"
#include "train/progress.h"
#include "nn/norm.h"
#include "train/sr_metrics.h"
#include "zoo/layers.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace evit::train {
namespace {

// The first `limit` samples of a dataset.
class Subset : public data::Dataset {
 public:
  Subset(std::shared_ptr<data::Dataset> base, int64_t limit) : base_(std::move(base)), n_(std::min(limit, base_->size())) {}
  int64_t size() const override { return n_; }
  data::Sample load(int64_t i) const override { return base_->load(i); }
  std::string describe() const override { return base_->describe() + ", first " + std::to_string(n_); }

 private:
  std::shared_ptr<data::Dataset> base_;
  int64_t n_;
};

// HR folders of a super-resolution dataset: root/{train,val} or DIV2K's names.
std::pair<std::string, std::string> sr_folders(const std::string& root) {
  for (auto [tr, va] : {std::pair<const char*, const char*>{"train", "val"}, {"DIV2K_train_HR", "DIV2K_valid_HR"},
                        {"train/HR", "val/HR"}})
    if (fs::is_directory(root + "/" + tr) && fs::is_directory(root + "/" + va))
      return {root + "/" + tr, root + "/" + va};
  EVIT_THROW("super-resolution data: '", root, "' needs train/ and val/ (or DIV2K_train_HR/ and DIV2K_valid_HR/) ",
             "folders of HR images");
}

}  // namespace

Tensor segmentation_input(const Tensor& image) {
  Tensor x = unsqueeze(image, 0);
  const int64_t h = x.size(2), w = x.size(3);
  if (h % 32 == 0 && w % 32 == 0) return x;
  return interpolate(x, {(h + 31) / 32 * 32, (w + 31) / 32 * 32}, {}, InterpolateMode::bicubic, false);
}

Tensor task_loss(const std::string& task, const Tensor& output, const Tensor& target, double label_smoothing,
                 int64_t ignore_index) {
  if (task == "classification") {
    if (is_floating(target.dtype())) return cross_entropy(output, target);  // soft (mixup) targets
    return cross_entropy(output, target, Tensor(), -100, Reduction::mean, label_smoothing);
  }
  if (task == "segmentation") {
    // Logits come at stride 8: upsample them to the label size, as segmentation training does.
    Tensor up = output;
    if (output.size(2) != target.size(1) || output.size(3) != target.size(2))
      up = interpolate(output, {target.size(1), target.size(2)}, {}, InterpolateMode::bilinear, false);
    return cross_entropy(up, target, Tensor(), ignore_index, Reduction::mean, label_smoothing);
  }
  return l1_loss(output, target);
}

Trainer::Trainer(json config) : cfg_(std::move(config)) {
  task_ = cfg_.at("task").get<std::string>();
  out_dir_ = cfg_.at("output_dir").get<std::string>();
  const json& t = cfg_.at("train");
  if (t.at("threads").get<int>() > 0) set_num_threads(t.at("threads").get<int>());
  manual_seed(t.at("seed").get<uint64_t>());  // model init and dropout draw from the default generator
  build_data();
  const std::string name = cfg_.at("model").at("name").get<std::string>();
  const auto& info = zoo::model_info(name);
  EVIT_CHECK(info.task == task_, "config.model.name: '", name, "' is a ", info.task, " model but task is '", task_, "'");
  model_ = zoo::create_model(name, task_ == "super_resolution" ? 0 : num_classes_);
  if (const std::string w = cfg_.at("model").at("pretrained").get<std::string>(); !w.empty()) model_->load(w, false);
  try {
    device_ = Device(t.at("device").get<std::string>());
  } catch (const Error& e) {
    EVIT_THROW("config.train.device: ", e.what());
  }
  if (const std::string a = t.at("amp").get<std::string>(); a != "off") {
    EVIT_CHECK(device_.is_cuda(), "config.train.amp = \"", a, "\" needs train.device = \"cuda\" (mixed precision is a CUDA feature)");
    amp_ = a == "f16" ? DType::f16 : DType::bf16;
    // f16's range ends at 65504: small gradients underflow without loss scaling; bf16 has f32's.
    if (*amp_ == DType::f16) scaler_ = std::make_unique<optim::GradScaler>();
  }
  model_->to(device_);  // before the optimizer and EMA, so their state is made on the device
  build_optimizer();
  fs::create_directories(out_dir_);
  std::ofstream(out_dir_ + "/config.json") << cfg_.dump(2) << "\n";
  if (!t.at("resume").is_null()) {
    load_checkpoint(t.at("resume").get<std::string>());
    // Keep the log up to the checkpoint; later entries belong to the interrupted run's future.
    std::vector<std::string> kept;
    std::ifstream in(out_dir_ + "/metrics.jsonl");
    for (std::string line; std::getline(in, line);) {
      json rec = json::parse(line, nullptr, false);
      if (!rec.is_discarded() && rec.value("step", int64_t{0}) <= step_) kept.push_back(line);
    }
    std::ofstream out(out_dir_ + "/metrics.jsonl", std::ios::trunc);
    for (auto& l : kept) out << l << "\n";
  } else {
    std::ofstream(out_dir_ + "/metrics.jsonl", std::ios::trunc);  // a fresh run starts a fresh log
  }
}

Trainer::~Trainer() = default;

void Trainer::build_data() {
  const json& d = cfg_.at("data");
  const std::string root = d.at("root").get<std::string>(), ds = d.at("dataset").get<std::string>();
  const int64_t crop = d.at("crop").get<int64_t>();
  std::array<double, 3> mean{}, std{};
  for (int i = 0; i < 3; ++i) mean[i] = d.at("mean")[i].get<double>(), std[i] = d.at("std")[i].get<double>();
  std::vector<data::Transform> train_tf, val_tf;
  if (task_ == "segmentation") {
    std::shared_ptr<data::SegmentationDataset> tr, va;
    if (ds == "cityscapes" || ds == "synthetic") tr = data::cityscapes(root, "train"), va = data::cityscapes(root, "val");
    else if (ds == "ade20k") tr = data::ade20k(root, "train"), va = data::ade20k(root, "val");
    else EVIT_THROW("config.data.dataset: '", ds, "' is not a segmentation dataset (cityscapes, ade20k, synthetic)");
    num_classes_ = tr->num_classes();
    train_set_ = tr, val_set_ = va;
    train_tf = {data::random_scale_crop(0.5, 2.0, crop, crop, d.at("ignore_index").get<int64_t>()),
                data::horizontal_flip(), data::photometric_jitter(0.2, 0.2, 0.2), data::normalize(mean, std)};
    val_tf = {data::normalize(mean, std)};
  } else if (task_ == "classification") {
    EVIT_CHECK(ds == "imagenet" || ds == "image_folder", "config.data.dataset: '", ds,
               "' is not a classification dataset (imagenet, image_folder)");
    auto tr = std::make_shared<data::ImageFolderDataset>(root, "train");
    auto va = std::make_shared<data::ImageFolderDataset>(root, "val");
    EVIT_CHECK(tr->classes() == va->classes(), "classification data: train and val class folders differ under '", root, "'");
    num_classes_ = static_cast<int64_t>(tr->classes().size());
    train_set_ = tr, val_set_ = va;
    const int64_t eval_size = d.at("eval_size").is_null() ? crop : d.at("eval_size").get<int64_t>();
    const double ratio = d.at("crop_ratio").get<double>();
    train_tf = {data::random_resized_crop(crop), data::horizontal_flip()};
    // RandAugment runs on the 8-bit image after crop and flip, before normalisation (timm's order);
    // geometric ops are bicubic and fill with the mean colour, as timm sets them up (spec §6.1).
    if (const auto ra = cfg_.at("train").at("rand_augment").get<std::string>(); !ra.empty()) {
      std::array<uint8_t, 3> fill{};
      for (int i = 0; i < 3; ++i) fill[i] = static_cast<uint8_t>(std::clamp(std::lround(255 * mean[i]), 0L, 255L));
      train_tf.push_back(data::rand_augment(data::parse_rand_augment(ra, "config.train.rand_augment"),
                                            data::augment::Resample::bicubic, fill));
    }
    train_tf.push_back(data::normalize(mean, std));
    if (double p = cfg_.at("train").at("random_erasing").get<double>(); p > 0) train_tf.push_back(data::random_erasing(p));
    val_tf = {data::resize_center_crop(static_cast<int64_t>(std::ceil(eval_size / ratio)), eval_size),
              data::normalize(mean, std)};
  } else {
    const int64_t scale = d.at("scale").get<int64_t>();
    auto [tr_dir, va_dir] = sr_folders(root);
    std::string tr_lr, va_lr;
    if (const std::string lr = d.at("lr_root").get<std::string>(); !lr.empty()) {
      const std::string x = "X" + std::to_string(scale);
      if (fs::is_directory(lr + "/DIV2K_train_LR_bicubic/" + x))
        tr_lr = lr + "/DIV2K_train_LR_bicubic/" + x, va_lr = lr + "/DIV2K_valid_LR_bicubic/" + x;
      else
        tr_lr = lr + "/train", va_lr = lr + "/val";
    }
    train_set_ = std::make_shared<data::SRDataset>(tr_dir, scale, tr_lr);
    val_set_ = std::make_shared<data::SRDataset>(va_dir, scale, va_lr);
    train_tf = {data::sr_patch_crop(crop, scale), data::sr_flip_rotate()};
  }
  if (int64_t limit = d.at("limit").get<int64_t>(); limit > 0) {
    train_set_ = std::make_shared<Subset>(train_set_, limit);
    val_set_ = std::make_shared<Subset>(val_set_, limit);
  }
  train_set_->set_transforms(train_tf);
  val_set_->set_transforms(val_tf);
  data::LoaderOptions o;
  o.batch_size = d.at("batch_size").get<int64_t>();
  o.workers = d.at("workers").get<int>();
  o.drop_last = d.at("drop_last").get<bool>() && train_set_->size() >= o.batch_size;
  o.seed = cfg_.at("train").at("seed").get<uint64_t>();
  loader_ = std::make_unique<data::DataLoader>(train_set_, o);
  steps_per_epoch_ = loader_->batches_per_epoch();
}

void Trainer::build_optimizer() {
  const json& o = cfg_.at("optimizer");
  const json& t = cfg_.at("train");
  const json s = cfg_.value("schedule", json::object());
  total_steps_ = t.contains("steps") ? t.at("steps").get<int64_t>() : t.at("epochs").get<int64_t>() * steps_per_epoch_;
  std::vector<std::string> no_decay = o.at("no_decay_keywords").get<std::vector<std::string>>();
  auto groups = optim::param_groups_by_name(*model_, o.at("lr").get<double>(), o.at("weight_decay").get<double>(), no_decay);
  if (o.at("name") == "adamw") {
    adamw_ = std::make_unique<optim::AdamW>(
        groups, optim::AdamWOptions{o.at("betas")[0].get<double>(), o.at("betas")[1].get<double>(), o.at("eps").get<double>()});
  } else {
    optim::SGDOptions so;
    so.momentum = o.at("momentum").get<double>();
    so.nesterov = o.at("nesterov").get<bool>();
    sgd_ = std::make_unique<optim::SGD>(groups, so);
  }
  optim::WarmupCosineOptions w;
  w.base_lr = o.at("lr").get<double>();
  if (s.contains("warmup_steps")) w.warmup_steps = s.at("warmup_steps").get<int64_t>();
  else if (s.contains("warmup_epochs")) w.warmup_steps = std::llround(s.at("warmup_epochs").get<double>() * steps_per_epoch_);
  int64_t total = total_steps_;
  if (s.contains("total_steps")) total = s.at("total_steps").get<int64_t>();
  else if (s.contains("total_epochs")) total = std::llround(s.at("total_epochs").get<double>() * steps_per_epoch_);
  w.decay_steps = std::max<int64_t>(1, total - w.warmup_steps);
  w.warmup_lr = s.value("warmup_lr", 0.0);
  w.min_lr = s.value("min_lr", 0.0);
  if (s.value("name", std::string("cosine")) == "constant") w.min_lr = w.base_lr, w.warmup_steps = 0;
  schedule_ = std::make_unique<optim::WarmupCosine>(w);
  const json e = cfg_.value("ema", json::object());
  if (e.value("enabled", true))
    ema_ = std::make_unique<optim::EMA>(*model_, optim::EMAOptions{e.value("decay", 0.9998), e.value("warmup_steps", 2000.0)});
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

double Trainer::train_one_step() {
  const json& t = cfg_.at("train");
  data::Batch b;
  next_batch(b);
  model_->train();
  Tensor input = b.input, target = b.target;
  if (const json& sizes = cfg_.at("data").at("multires_sizes"); task_ == "classification" && !sizes.empty()) {
    // Multi-resolution training (spec §6.1): one size per batch, drawn from a generator seeded
    // by the step so that a resumed run draws the same sizes.
    Generator g = data::sample_generator(t.at("seed").get<uint64_t>() ^ 0x6d756c7469ull, step_, 0);
    const int64_t size = sizes[g.next_u64() % sizes.size()].get<int64_t>();
    if (input.size(2) != size || input.size(3) != size)
      input = interpolate(input, {size, size}, {}, InterpolateMode::bicubic, false);
  }
  const bool bce = task_ == "classification" && t.at("loss") == "bce";
  if (task_ == "classification" &&
      (bce || t.at("mixup_alpha").get<double>() > 0 || t.at("cutmix_alpha").get<double>() > 0)) {
    // Soft targets: smoothed one-hot, then mixup or cutmix (spec §6.1).
    Generator g = data::sample_generator(t.at("seed").get<uint64_t>() ^ 0x6d6978ull, step_, 0);
    auto mixed = data::mix_batch(input, target, num_classes_, t.at("mixup_alpha").get<double>(),
                                 t.at("cutmix_alpha").get<double>(), t.at("label_smoothing").get<double>(), g);
    input = mixed.input, target = mixed.soft_target;
  }
  if (const double p = t.at("drop_path").get<double>(); p > 0) {
    // Stochastic depth grows with training progress: 0 during warmup, p at the end (spec §6.1).
    const int64_t warm = schedule_->options().warmup_steps;
    const double progress = total_steps_ > warm ? std::max(0.0, double(step_ - warm) / double(total_steps_ - warm)) : 1.0;
    zoo::set_drop_path(*model_, p, t.at("drop_path_skip").get<int64_t>(), progress);
  }
  const double lr = schedule_->lr();
  if (adamw_) adamw_->set_lr(lr), adamw_->zero_grad();
  else sgd_->set_lr(lr), sgd_->zero_grad();
  input = on_device(input), target = on_device(target);  // after the host-side batch transforms
  std::optional<AutocastGuard> autocast;
  if (amp_) autocast.emplace(*amp_);
  Tensor output = model_->forward(input);
  Tensor loss = bce ? binary_cross_entropy_with_logits(output, target)
                    : task_loss(task_, output, target, t.at("label_smoothing").get<double>(),
                                cfg_.at("data").at("ignore_index").get<int64_t>());
  if (const double w = t.at("mesa_weight").get<double>();
      w > 0 && task_ == "classification" && static_cast<double>(step_) >= t.at("mesa_start").get<double>() * total_steps_) {
    // MESA (spec §6.1): distil from the EMA model's sigmoid outputs on the same batch.
    EVIT_CHECK(ema_ != nullptr, "config.train.mesa_weight needs ema.enabled = true");
    if (!ema_model_) {
      ema_model_ = zoo::create_model(cfg_.at("model").at("name").get<std::string>(), num_classes_);
      ema_model_->to(device_);
    }
    Tensor soft;
    {
      NoGradGuard no_grad;
      ema_->copy_to(*ema_model_);
      ema_model_->eval();
      soft = sigmoid(ema_model_->forward(input));
    }
    loss = add(loss, mul(binary_cross_entropy_with_logits(output, soft), w));
  }
  autocast.reset();  // backward uses the precision each op chose in the forward
  const double value = loss.item<double>();
  if (!std::isfinite(value)) {
    // Replay this batch's forward in anomaly mode to name the op where the values broke.
    std::string where = "the forward ops all gave finite outputs; the loss itself is not finite";
    try {
      AnomalyGuard anomaly;
      task_loss(task_, model_->forward(input), target, t.at("label_smoothing").get<double>(),
                cfg_.at("data").at("ignore_index").get<int64_t>());
    } catch (const Error& e) {
      where = e.what();
    }
    EVIT_THROW("training diverged at step ", step_, " (epoch ", epoch_, "): the loss is ", value, " with lr ", lr,
               "; ", where, ". Lower optimizer.lr or enable gradient clipping.");
  }
  (scaler_ ? scaler_->scale(loss) : loss).backward();
  // Clipping sees true gradients: a loss scaler divides its scale out first.
  if (scaler_) adamw_ ? scaler_->unscale_(*adamw_) : scaler_->unscale_(*sgd_);
  if (!t.at("grad_clip").is_null()) {
    const double c = t.at("grad_clip").get<double>();
    if (t.at("grad_clip_mode") == "norm") optim::clip_grad_norm(*model_, c);
    else optim::clip_grad_value(*model_, c);
  }
  if (scaler_) {
    // Steps with inf/NaN gradients (the scale was too large) are skipped and the scale halves.
    adamw_ ? scaler_->step(*adamw_) : scaler_->step(*sgd_);
    scaler_->update();
  } else if (adamw_) {
    adamw_->step();
  } else {
    sgd_->step();
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
  std::ofstream f(out_dir_ + "/metrics.jsonl", std::ios::app);
  f << record.dump() << "\n";
}

Metrics Trainer::evaluate() {
  // Evaluation must leave the training state untouched: the EMA weights and re-estimated BN
  // statistics are swapped in, and the trained state is put back afterwards.
  const int64_t bn_batches = cfg_.at("train").at("reset_bn_batches").get<int64_t>();
  const bool swap = ema_ || bn_batches > 0;
  TensorMap saved;
  if (swap)
    for (auto& [k, v] : model_->state_dict()) saved[k] = v.clone();
  if (ema_) ema_->copy_to(*model_);
  NoGradGuard no_grad;
  if (bn_batches > 0) reset_bn(bn_batches);
  model_->eval();
  Metrics m;
  const int64_t ignore = cfg_.at("data").at("ignore_index").get<int64_t>();
  SegConfusion conf(std::max<int64_t>(num_classes_, 1), ignore);
  TopKAccuracy topk;
  double psnr_sum = 0, ssim_sum = 0;
  for (int64_t i = 0; i < val_set_->size(); ++i) {
    Generator g(0);
    data::Sample s = val_set_->get(i, g);
    Tensor x = task_ == "segmentation" ? segmentation_input(s.input) : unsqueeze(s.input, 0);
    Tensor out;
    {
      std::optional<AutocastGuard> autocast;
      if (amp_) autocast.emplace(*amp_);
      out = model_->forward(on_device(x)).to(kCPU);  // metrics are computed on the host
    }
    if (task_ == "segmentation") {
      // Spec §4.1: logits resized to the label's size (bicubic), then argmax.
      Tensor up = interpolate(out, {s.target.size(0), s.target.size(1)}, {}, InterpolateMode::bicubic, false);
      conf.update(argmax(up, 1), unsqueeze(s.target, 0));
    } else if (task_ == "classification") {
      topk.update(out, unsqueeze(s.target, 0));
    } else {
      int64_t scale = cfg_.at("data").at("scale").get<int64_t>();
      SrScore sc = score_sr_rgb(squeeze(out, 0), s.target, scale);
      psnr_sum += sc.psnr, ssim_sum += sc.ssim;
    }
  }
  if (task_ == "segmentation") {
    m["val/mIoU"] = conf.miou();
    m["val/pixel_acc"] = conf.pixel_accuracy();
  } else if (task_ == "classification") {
    m["val/top1"] = topk.top1();
    m["val/top5"] = topk.top5();
  } else {
    m["val/psnr"] = psnr_sum / val_set_->size();
    m["val/ssim"] = ssim_sum / val_set_->size();
  }
  if (swap) model_->load_state_dict(saved);
  return m;
}

void Trainer::reset_bn(int64_t batches) {
  // Spec §6.1: before evaluation, re-estimate every BatchNorm's running statistics on training
  // batches (training augmentation) as the plain average over batches. A momentum of 1/(k+1) for
  // batch k turns the running update into exactly that average.
  std::vector<nn::BatchNorm2d*> bns;
  for (auto& [name, m] : model_->named_modules())
    if (auto* bn = dynamic_cast<nn::BatchNorm2d*>(m.get())) bns.push_back(bn);
  std::vector<double> momenta;
  for (auto* bn : bns) {
    momenta.push_back(bn->momentum);
    fill_(bn->running_mean, 0.0);
    fill_(bn->running_var, 1.0);
  }
  zoo::set_drop_path(*model_, 0.0, 0, 0.0);  // statistics of the full network
  model_->train();
  data::DataLoader loader(train_set_, {cfg_.at("data").at("batch_size").get<int64_t>(), true, true,
                                       cfg_.at("data").at("workers").get<int>(), 2, cfg_.at("train").at("seed").get<uint64_t>() + 1});
  loader.start_epoch(step_);
  data::Batch b;
  for (int64_t k = 0; k < batches; ++k) {
    if (!loader.next(b)) loader.start_epoch(step_ + k + 1), loader.next(b);
    for (auto* bn : bns) bn->momentum = 1.0 / static_cast<double>(k + 1);
    model_->forward(on_device(b.input));
  }
  for (size_t i = 0; i < bns.size(); ++i) bns[i]->momentum = momenta[i];
}

Metrics Trainer::fit() {
  const json& t = cfg_.at("train");
  const bool by_epoch = t.contains("epochs");
  const int64_t unit = by_epoch ? steps_per_epoch_ : 1;
  const int64_t eval_every = t.at("eval_every").get<int64_t>() * unit;
  const int64_t ckpt_every = t.at("checkpoint_every").get<int64_t>() * unit;
  const int64_t log_every = t.at("log_every").get<int64_t>();
  std::printf("training %s on %s: %lld steps (%lld per epoch), %lld parameters\n",
              cfg_.at("model").at("name").get<std::string>().c_str(), train_set_->describe().c_str(),
              (long long)total_steps_, (long long)steps_per_epoch_, (long long)model_->num_parameters());
  std::fflush(stdout);
  Progress progress(total_steps_, "train");
  progress.update(step_);
  double loss_sum = 0;
  int64_t loss_n = 0;
  Metrics last;
  while (step_ < total_steps_) {
    const double lr = schedule_->lr();
    loss_sum += train_one_step();
    ++loss_n;
    if (step_ % log_every == 0 || step_ == total_steps_) {
      progress.update(step_, {{"loss", loss_sum / loss_n}, {"lr", lr}});
      log({{"step", step_}, {"epoch", epoch_}, {"loss", loss_sum / loss_n}, {"lr", lr}});
      loss_sum = 0, loss_n = 0;
    }
    if (step_ % eval_every == 0 || step_ == total_steps_) {
      progress.finish();
      last = evaluate();
      json rec = {{"step", step_}, {"epoch", epoch_}};
      std::printf("eval at step %lld:", (long long)step_);
      for (auto& [k, v] : last) rec[k] = v, std::printf("  %s %.4f", k.c_str(), v);
      std::printf("\n");
      std::fflush(stdout);
      log(rec);
    }
    if (step_ % ckpt_every == 0 || step_ == total_steps_) save_checkpoint(out_dir_ + "/checkpoint");
  }
  progress.finish();
  try {  // curves are a convenience: a missing plotter must not fail a finished run
    for (auto& png : plot_metrics(out_dir_ + "/metrics.jsonl", out_dir_ + "/curves"))
      std::printf("wrote %s\n", png.c_str());
  } catch (const Error& e) {
    std::printf("note: no curves plotted: %s\n", e.what());
  }
  return last;
}

void Trainer::save_checkpoint(const std::string& dir) const {
  const std::string tmp = dir + ".tmp", old = dir + ".old";
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  save_safetensors(tmp + "/model.safetensors", model_->state_dict());
  save_safetensors(tmp + "/optimizer.safetensors", adamw_ ? adamw_->state_dict() : sgd_->state_dict());
  save_safetensors(tmp + "/schedule.safetensors", schedule_->state_dict());
  if (ema_) save_safetensors(tmp + "/ema.safetensors", ema_->state_dict());
  if (scaler_) save_safetensors(tmp + "/grad_scaler.safetensors", scaler_->state_dict());
  GeneratorState rng = default_generator().state();
  json meta = {{"step", step_},
               {"epoch", epoch_},
               {"batch_in_epoch", epoch_started_ ? loader_->next_batch_index() : 0},
               {"rng", {{"seed", rng.seed}, {"offset", rng.offset}}},
               {"config", cfg_}};
  write_file_atomic(tmp + "/trainer.json", meta.dump(2));
  // Swap folders so that a crash at any point leaves a complete checkpoint on disk.
  fs::remove_all(old);
  if (fs::exists(dir)) fs::rename(dir, old);
  fs::rename(tmp, dir);
  fs::remove_all(old);
}

void Trainer::load_checkpoint(const std::string& dir) {
  EVIT_CHECK(fs::is_directory(dir), "resume: checkpoint folder '", dir, "' not found");
  json meta;
  try {
    meta = json::parse(read_file(dir + "/trainer.json"));
  } catch (const json::exception& e) {
    EVIT_THROW("resume: '", dir, "/trainer.json' is not valid JSON: ", e.what());
  }
  model_->load(dir + "/model.safetensors", true);
  TensorMap opt = load_safetensors(dir + "/optimizer.safetensors");
  if (adamw_) adamw_->load_state_dict(opt);
  else sgd_->load_state_dict(opt);
  schedule_->load_state_dict(load_safetensors(dir + "/schedule.safetensors"));
  if (ema_) {
    // A checkpoint of a run without EMA starts the average from the loaded weights.
    if (fs::exists(dir + "/ema.safetensors")) ema_->load(dir + "/ema.safetensors");
    else ema_ = std::make_unique<optim::EMA>(*model_, optim::EMAOptions{cfg_.at("ema").value("decay", 0.9998),
                                                                         cfg_.at("ema").value("warmup_steps", 2000.0)});
  }
  if (scaler_ && fs::exists(dir + "/grad_scaler.safetensors"))
    scaler_->load_state_dict(load_safetensors(dir + "/grad_scaler.safetensors"));
  step_ = meta.at("step").get<int64_t>();
  epoch_ = meta.at("epoch").get<int64_t>();
  default_generator().set_state({meta.at("rng").at("seed").get<uint64_t>(), meta.at("rng").at("offset").get<uint64_t>()});
  loader_->start_epoch(epoch_, meta.at("batch_in_epoch").get<int64_t>());
  epoch_started_ = true;
}

}  // namespace evit::train

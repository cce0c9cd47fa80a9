#include "train/run_config.h"

#include "core/error.h"

using json = nlohmann::json;

namespace evit::train {
namespace {

template <class T>
std::optional<T> optional_field(const json& j, const char* key) {
  if (!j.contains(key) || j.at(key).is_null()) return std::nullopt;
  return j.at(key).get<T>();
}

std::array<double, 3> triple(const json& j) { return {j.at(0).get<double>(), j.at(1).get<double>(), j.at(2).get<double>()}; }

}  // namespace

const char* task_name(Task t) {
  switch (t) {
    case Task::classification: return "classification";
    case Task::segmentation: return "segmentation";
    case Task::super_resolution: return "super_resolution";
    case Task::sam_distill: return "sam_distill";
    case Task::sam_finetune: return "sam_finetune";
  }
  return "?";
}

Task parse_task(const std::string& name) {
  for (Task t : {Task::classification, Task::segmentation, Task::super_resolution, Task::sam_distill, Task::sam_finetune})
    if (name == task_name(t)) return t;
  EVIT_THROW("unknown task '", name, "' (classification, segmentation, super_resolution, sam_distill, sam_finetune)");
}

const char* model_task(Task t) {
  return t == Task::sam_distill || t == Task::sam_finetune ? "sam" : task_name(t);
}

bool task_has_classes(Task t) { return t == Task::classification || t == Task::segmentation; }

RunConfig parse_run_config(const json& cfg) {
  RunConfig r;
  try {
    r.task = parse_task(cfg.at("task").get<std::string>());
    const json& m = cfg.at("model");
    r.model = {m.at("name").get<std::string>(), optional_field<int64_t>(m, "num_classes"), m.at("pretrained").get<std::string>()};

    const json& d = cfg.at("data");
    DataConfig& dc = r.data;
    dc.root = d.at("root").get<std::string>();
    dc.dataset = d.at("dataset").get<std::string>();
    dc.crop = d.at("crop").get<int64_t>();
    dc.eval_size = optional_field<int64_t>(d, "eval_size");
    dc.crop_ratio = d.at("crop_ratio").get<double>();
    dc.batch_size = d.at("batch_size").get<int64_t>();
    dc.micro_batches = d.at("micro_batches").get<int64_t>();
    dc.workers = d.at("workers").get<int>();
    dc.ignore_index = d.at("ignore_index").get<int64_t>();
    dc.scale = d.at("scale").get<int64_t>();
    dc.lr_root = d.at("lr_root").get<std::string>();
    dc.mean = triple(d.at("mean"));
    dc.std = triple(d.at("std"));
    dc.drop_last = d.at("drop_last").get<bool>();
    dc.multires_sizes = d.at("multires_sizes").get<std::vector<int64_t>>();
    dc.limit = d.at("limit").get<int64_t>();
    dc.embeddings = d.at("embeddings").get<std::string>();
    dc.teacher = d.at("teacher").get<std::string>();
    dc.teacher_weights = d.at("teacher_weights").get<std::string>();
    dc.masks_per_image = d.at("masks_per_image").get<int64_t>();
    dc.val_masks = d.at("val_masks").get<int64_t>();

    const json& o = cfg.at("optimizer");
    OptimConfig& oc = r.optimizer;
    oc.name = o.at("name").get<std::string>();
    oc.lr = o.at("lr").get<double>();
    oc.weight_decay = o.at("weight_decay").get<double>();
    oc.beta1 = o.at("betas").at(0).get<double>();
    oc.beta2 = o.at("betas").at(1).get<double>();
    oc.eps = o.at("eps").get<double>();
    oc.momentum = o.at("momentum").get<double>();
    oc.nesterov = o.at("nesterov").get<bool>();
    oc.no_decay_keywords = o.at("no_decay_keywords").get<std::vector<std::string>>();

    const json& s = cfg.at("schedule");
    ScheduleConfig& sc = r.schedule;
    sc.name = s.at("name").get<std::string>();
    sc.warmup_epochs = optional_field<double>(s, "warmup_epochs");
    sc.total_epochs = optional_field<double>(s, "total_epochs");
    sc.warmup_steps = optional_field<int64_t>(s, "warmup_steps");
    sc.total_steps = optional_field<int64_t>(s, "total_steps");
    sc.warmup_lr = s.at("warmup_lr").get<double>();
    sc.min_lr = s.at("min_lr").get<double>();

    const json& e = cfg.at("ema");
    r.ema = {e.at("enabled").get<bool>(), e.at("decay").get<double>(), e.at("warmup_steps").get<double>()};

    const json& t = cfg.at("train");
    TrainLoopConfig& tc = r.train;
    tc.epochs = optional_field<int64_t>(t, "epochs");
    tc.steps = optional_field<int64_t>(t, "steps");
    tc.eval_every = t.at("eval_every").get<int64_t>();
    tc.checkpoint_every = t.at("checkpoint_every").get<int64_t>();
    tc.log_every = t.at("log_every").get<int64_t>();
    tc.seed = t.at("seed").get<uint64_t>();
    tc.grad_clip = optional_field<double>(t, "grad_clip");
    tc.grad_clip_mode = t.at("grad_clip_mode").get<std::string>();
    tc.label_smoothing = t.at("label_smoothing").get<double>();
    tc.loss = t.at("loss").get<std::string>();
    tc.drop_path = t.at("drop_path").get<double>();
    tc.drop_path_skip = t.at("drop_path_skip").get<int64_t>();
    tc.random_erasing = t.at("random_erasing").get<double>();
    tc.rand_augment = t.at("rand_augment").get<std::string>();
    tc.mesa_weight = t.at("mesa_weight").get<double>();
    tc.mesa_start = t.at("mesa_start").get<double>();
    tc.reset_bn_batches = t.at("reset_bn_batches").get<int64_t>();
    tc.eval_at_start = t.at("eval_at_start").get<bool>();
    tc.mixup_alpha = t.at("mixup_alpha").get<double>();
    tc.cutmix_alpha = t.at("cutmix_alpha").get<double>();
    tc.multimask_prob = t.at("multimask_prob").get<double>();
    tc.mask_points = t.at("mask_points").get<int64_t>();
    tc.threads = t.at("threads").get<int>();
    tc.library_allreduce = t.at("allreduce").get<std::string>() == "library";
    tc.gpu_transport = t.at("gpu_transport").get<std::string>();
    tc.overlap_backward = t.at("overlap_backward").get<bool>();
    tc.bucket_mb = t.at("bucket_mb").get<double>();
    tc.device = t.at("device").get<std::string>();
    tc.amp = t.at("amp").get<std::string>();
    tc.resume = optional_field<std::string>(t, "resume");

    r.output_dir = cfg.at("output_dir").get<std::string>();
  } catch (const json::exception& e) {
    EVIT_THROW("config: not a validated training config (run it through training_config_schema() first): ", e.what());
  }
  r.json = cfg;
  return r;
}

}  // namespace evit::train

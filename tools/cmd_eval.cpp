// `evit eval`: evaluate a trained model on its validation split (from a config), a
// super-resolution model (including the `bicubic` baseline) on a folder of HR images, or an
// EfficientViT-SAM model with box or click prompts on COCO / LVIS instance annotations.
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <sstream>

#include "autograd/grad_mode.h"
#include "data/dataset.h"
#include "data/image.h"
#include "ops/shape.h"
#include "core/dist/communicator.h"
#include "tools/commands.h"
#include "train/config.h"
#include "train/sr_metrics.h"
#include "train/evaluator.h"
#include "train/progress.h"
#include "train/sam_eval.h"
#include "core/safetensors.h"
#include "zoo/models.h"
#include "zoo/sam.h"
#include "zoo/sr.h"

namespace fs = std::filesystem;

namespace evit::cli {
namespace {
struct EvalOptions {
  std::string config, weights, task, model, data, device, output;
  int64_t scale = 2;
  std::vector<std::string> overrides;
  // SAM
  std::string annotations, prompt = "box", clicks = "1,3,5", detections;
  int64_t max_images = 0;
};

// `--task sam`: DATA is a COCO root (annotations/instances_val2017.json and val2017/) or, with
// --annotations lvis_v1_val.json, the folder holding COCO's train2017/ and val2017/.
int eval_sam(const EvalOptions& o) {
  EVIT_CHECK(!o.model.empty() && !o.data.empty() && !o.weights.empty(),
             "eval: --task sam needs --model, --weights and --data");
  const auto& info = zoo::model_info(o.model);
  EVIT_CHECK(info.task == "sam", "eval: '", o.model, "' is a ", info.task, " model; --task sam needs an EfficientViT-SAM model");
  train::SamEvalOptions opt;
  opt.prompt = o.prompt == "point" ? "points" : o.prompt;
  opt.max_images = o.max_images;
  opt.clicks.clear();
  std::stringstream ss(o.clicks);
  for (std::string item; std::getline(ss, item, ',');) {
    int k = 0;
    try {
      k = std::stoi(item);
    } catch (const std::exception&) {
      EVIT_THROW("eval: --clicks '", o.clicks, "': expected comma-separated click counts such as 1,3,5");
    }
    opt.clicks.push_back(k);
  }
  const std::string annotations =
      o.annotations.empty() ? o.data + "/annotations/instances_val2017.json" : o.annotations;
  const data::InstanceSet set = data::read_instances(annotations);
  const std::string image_root =
      set.format == "lvis" || !fs::is_directory(o.data + "/val2017") ? o.data : o.data + "/val2017";
  auto sam = std::dynamic_pointer_cast<zoo::EfficientViTSam>(zoo::create_model(o.model));
  sam->load(o.weights, true);
  sam->to(Device(o.device.empty() ? "cpu" : o.device));
  sam->eval();
  train::SamPredictor predictor(sam);
  // Under mpirun the ranks share the images out (docs/distributed.md); rank 0 reports.
  dist::Communicator& job = dist::world();
  const bool main_rank = job.rank() == 0;
  if (main_rank) {
    std::printf("evaluating %s with %s prompts\n  weights: %s\n  annotations: %s (%s, %zu images, %zu annotations)\n"
                "  images: %s\n",
                o.model.c_str(), opt.prompt.c_str(), o.weights.c_str(), annotations.c_str(), set.format.c_str(),
                set.images.size(), set.annotations.size(), image_root.c_str());
    if (job.size() > 1) std::printf("  sharded over %d ranks (%s)\n", job.size(), job.describe().c_str());
    std::fflush(stdout);
  }
  std::unique_ptr<train::Progress> bar;
  auto on_progress = [&](int64_t done, int64_t total) {
    if (!bar) bar = std::make_unique<train::Progress>(total, "eval");
    bar->update(done);
  };
  std::function<void(int64_t, int64_t)> progress;  // rank 0 alone draws the bar
  if (main_rank) progress = on_progress;
  if (!o.detections.empty()) {
    // Detector boxes: masks in the COCO results format, scored by COCOeval outside evit.
    EVIT_CHECK(!o.output.empty(), "eval: --detections needs --output for the results file");
    EVIT_CHECK(job.size() == 1, "eval: --detections runs in one process (launch it without mpirun)");
    nlohmann::json dets;
    try {
      dets = nlohmann::json::parse(read_file(o.detections));
    } catch (const nlohmann::json::exception& e) {
      EVIT_THROW("eval: '", o.detections, "' is not valid JSON (", e.what(), ")");
    }
    const nlohmann::json results = train::sam_masks_for_detections(predictor, set, image_root, dets, on_progress);
    if (bar) bar->finish();
    write_file_atomic(o.output, results.dump() + "\n");
    std::printf("wrote %zu detections with masks to %s (COCO results format; score with COCOeval, iouType segm)\n",
                results.size(), o.output.c_str());
    return 0;
  }
  const train::SamEvalResult r =
      train::evaluate_sam(predictor, set, image_root, opt, progress, &job);
  if (bar) bar->finish();
  if (!main_rank) return 0;
  if (r.images_missing > 0)
    std::printf("note: %lld images of the annotation file are not in %s (evaluated the %lld that are)\n",
                (long long)r.images_missing, image_root.c_str(), (long long)r.images);
  std::printf("%s", train::format_sam_table(r).c_str());
  if (!o.output.empty()) {
    nlohmann::json j;
    j["model"] = o.model, j["weights"] = o.weights, j["annotations"] = annotations, j["prompt"] = opt.prompt;
    j["images"] = r.images;
    for (size_t c = 0; c < r.columns.size(); ++c) {
      j["miou"][r.columns[c]] = r.scores[c].miou;
      j["instances"][r.columns[c]] = r.scores[c].count;
    }
    for (const auto& inst : r.instances)
      j["per_instance"].push_back({{"annotation_id", inst.annotation_id}, {"image_id", inst.image_id},
                                   {"area", inst.area}, {"iou", inst.iou}});
    write_file_atomic(o.output, j.dump(1) + "\n");
    std::printf("wrote %s\n", o.output.c_str());
  }
  return 0;
}

int eval_super_resolution(const EvalOptions& o) {
  EVIT_CHECK(!o.model.empty() && !o.data.empty(), "eval: --task super_resolution needs --model and --data");
  std::string dir = fs::is_directory(o.data + "/HR") ? o.data + "/HR" : o.data;
  std::vector<std::string> files = data::list_images(dir);
  EVIT_CHECK(!files.empty(), "eval: no PNG/JPEG images in '", dir, "'");
  // "bicubic" is the published tables' protocol; "bicubic-xS" runs as a model through the same
  // RGB protocol as every trained model, for like-for-like comparisons.
  const bool bicubic = o.model == "bicubic";
  double psnr = 0, ssim = 0;
  if (bicubic) {
    // The classic protocol of the published bicubic tables: Y plane of the modcropped
    // HR image, MATLAB imresize down and up, 8-bit rounding, `scale` border.
    for (auto& f : files) {
      Image hr = read_image(f);
      check_sr_eval_size(hr.height, hr.width, o.scale, f);
      // 16-bit images are scored as 8-bit, as `evit predict` reads them: the protocol is 8-bit.
      if (hr.bit_depth == 16) hr = chw_float_to_image(image_to_chw_float(hr));
      SrScore s = bicubic_baseline_y(hr, o.scale);
      psnr += s.psnr, ssim += s.ssim;
    }
  } else {
    const auto& info = zoo::model_info(o.model);
    EVIT_CHECK(info.task == "super_resolution", "eval: '", o.model, "' is a ", info.task,
               " model; --task super_resolution needs a super-resolution model");
    auto model = zoo::create_model(o.model);
    EVIT_CHECK(zoo::sr_scale(*model) == o.scale, "eval: --scale ", o.scale, " but '", o.model, "' upscales by ",
               zoo::sr_scale(*model), " (give --scale ", zoo::sr_scale(*model), " or the x", o.scale, " model)");
    if (model->num_parameters() > 0) {
      EVIT_CHECK(!o.weights.empty(), "eval: --weights is required for ", o.model);
      model->load(o.weights, true);
    }
    train::EvalSpec spec;
    spec.task = train::Task::super_resolution, spec.scale = o.scale;
    spec.device = Device(o.device.empty() ? "cpu" : o.device);
    const train::Evaluator ev(spec);
    model->to(spec.device);
    data::SRDataset ds(dir, o.scale);
    const train::EvalReport r = ev.run(*model, ds);
    psnr = r.metrics.at("val/psnr") * static_cast<double>(files.size());
    ssim = r.metrics.at("val/ssim") * static_cast<double>(files.size());
  }
  const double n = static_cast<double>(files.size());
  std::printf("model: %s  scale: x%lld  images: %zu (%s)  protocol: %s\nPSNR: %.4f\nSSIM: %.4f\n",
              o.model.c_str(), (long long)o.scale, files.size(), dir.c_str(),
              bicubic ? "Y plane, 8-bit (published bicubic tables)" : "RGB output -> Y, border = scale", psnr / n,
              ssim / n);
  return 0;
}
// A config's run: the validation split only, the weights given (or the run's checkpoint), nothing
// written unless --output says where.
int eval_config(const EvalOptions& o) {
  auto overrides = o.overrides;
  if (!o.device.empty()) overrides.push_back("train.device=" + o.device);
  const train::RunConfig cfg =
      train::parse_run_config(train::load_config_file(o.config, train::training_config_schema(), overrides));
  std::string weights = o.weights, which = "the weights given with --weights";
  if (weights.empty()) {
    const auto ck = train::checkpoint_eval_weights(cfg.output_dir + "/checkpoint");
    weights = ck.path, which = ck.description;
  }
  const train::ValidationData val = train::validation_data(cfg);
  const std::string& name = cfg.model.name;
  const std::string task = train::task_name(cfg.task);
  const auto& info = zoo::model_info(name);
  EVIT_CHECK(info.task == train::model_task(cfg.task), "eval: '", name, "' is a ", info.task,
             " model but the config's task is '", task, "'");
  const int64_t classes = train::task_has_classes(cfg.task) ? train::model_classes(cfg, val.num_classes) : 0;
  // --weights (or the checkpoint) is everything the model gets: model.pretrained is not loaded.
  auto model = zoo::create_model(name, classes);
  if (cfg.task == train::Task::super_resolution)
    EVIT_CHECK(zoo::sr_scale(*model) == cfg.data.scale, "eval: config.data.scale = ", cfg.data.scale, " but '", name,
               "' upscales by ", zoo::sr_scale(*model));
  model->load(weights, true);
  const train::Evaluator ev(train::eval_spec(cfg, classes));
  model->to(ev.spec().device);
  // Under mpirun the ranks share the images out (docs/distributed.md); rank 0 reports.
  dist::Communicator& job = dist::world();
  if (job.rank() == 0) {
    std::printf("evaluating %s\n  weights: %s (%s)\n  data: %s\n", name.c_str(), weights.c_str(), which.c_str(),
                val.dataset->describe().c_str());
    if (job.size() > 1) std::printf("  sharded over %d ranks (%s)\n", job.size(), job.describe().c_str());
    std::fflush(stdout);
  }
  const train::EvalReport r = ev.run(*model, *val.dataset, true, "eval", &job);
  if (job.rank() != 0) return 0;
  std::printf("%s", r.table(val.class_names).c_str());
  if (!o.output.empty()) {
    nlohmann::json j = r.to_json();
    j["model"] = name, j["weights"] = weights, j["data"] = val.dataset->describe();
    write_file_atomic(o.output, j.dump(2) + "\n");
    std::printf("wrote %s\n", o.output.c_str());
  }
  return 0;
}
}  // namespace

Runner add_eval_command(CLI::App& app) {
  auto o = std::make_shared<EvalOptions>();
  auto* cmd = app.add_subcommand("eval", "Evaluate: CONFIG [--weights W], or --task super_resolution --model M --data DIR");
  cmd->add_option("config", o->config, "Training config (evaluates its validation split)");
  cmd->add_option("--weights", o->weights,
                  "Model weights (safetensors); default: the run's checkpoint (the weights its training evaluated)");
  cmd->add_option("--task", o->task, "super_resolution or sam (without a config)");
  cmd->add_option("--model", o->model, "Model name; 'bicubic' for the bicubic baseline");
  cmd->add_option("--data", o->data,
                  "Folder of HR images (or a folder with HR/); sam: the COCO root (annotations/, val2017/)");
  cmd->add_option("--annotations", o->annotations,
                  "sam: instance annotations (default DATA/annotations/instances_val2017.json; LVIS v1 too)");
  cmd->add_option("--prompt", o->prompt, "sam: box or points (default box)")
      ->check(CLI::IsMember({"box", "points", "point"}));
  cmd->add_option("--clicks", o->clicks, "sam with points: report the mIoU after these click counts (default 1,3,5)");
  cmd->add_option("--max-images", o->max_images, "sam: evaluate only the first N images found");
  cmd->add_option("--detections", o->detections,
                  "sam: detector boxes (COCO results JSON); writes them with masks to --output instead of scoring");
  cmd->add_option("--scale", o->scale, "Super-resolution factor")->check(CLI::Range(2, 4));
  cmd->add_option("--set", o->overrides, "Override a config value (repeatable)");
  cmd->add_option("--device", o->device, "Where the model runs: cpu, cuda or cuda:N (default cpu)");
  cmd->add_option("--output", o->output, "Also write the metrics (and per-class IoU) to this JSON file");
  return [o] {
    if (o->config.empty()) {
      EVIT_CHECK(o->task == "super_resolution" || o->task == "sam",
                 "eval: give a config file, or --task super_resolution|sam with --model and --data");
      if (o->task == "sam") return eval_sam(*o);
      return eval_super_resolution(*o);
    }
    return eval_config(*o);
  };
}

}  // namespace evit::cli

// Evaluation is read-only and one: `evit eval` and `evit predict` leave a run folder byte for
// byte as they found it, `evit eval` on a run's checkpoint prints the number its training
// printed, and a 1000-class classification recipe trains, evaluates and checkpoints.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "core/safetensors.h"
#include "data/image.h"
#include "data/synthetic.h"
#include "support/test_util.h"
#include "train/config.h"
#include "train/evaluator.h"
#include "train/trainer.h"

namespace fs = std::filesystem;
using namespace evit;
using json = nlohmann::json;

namespace {

// Every file under `dir` (recursively) with its bytes.
std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) files[fs::relative(e.path(), dir).string()] = read_file(e.path().string());
  return files;
}

// The value printed after "key: " in `text`.
double printed(const std::string& text, const std::string& key) {
  const size_t at = text.rfind(key + ": ");
  REQUIRE(at != std::string::npos);
  return std::stod(text.substr(at + key.size() + 2));
}

}  // namespace

TEST_CASE("evit eval and evit predict never write into a run, and eval prints the training-time metric", "[evaluator]") {
  const fs::path root = fs::temp_directory_path() / "evit_eval_readonly";
  fs::remove_all(root);
  data::write_synthetic_cityscapes((root / "data").string(), 6, 2, 64, 96, 5);
  json c = {{"task", "segmentation"},
            {"model", {{"name", "efficientvit-seg-b0-cityscapes"}}},
            {"data", {{"root", (root / "data").string()}, {"dataset", "synthetic"}, {"crop", 64}, {"batch_size", 2}, {"workers", 1}}},
            {"optimizer", {{"lr", 2e-3}, {"weight_decay", 0.01}}},
            {"ema", {{"enabled", true}, {"decay", 0.9}, {"warmup_steps", 0}}},
            {"train", {{"steps", 4}, {"eval_every", 4}, {"checkpoint_every", 4}, {"log_every", 2}, {"reset_bn_batches", 2}}},
            {"output_dir", (root / "run").string()}};
  const std::string config_path = (root / "config.json").string();
  std::ofstream(config_path) << c.dump(2);
  train::Metrics trained;
  {
    train::Trainer t(train::load_config_file(config_path, train::training_config_schema()));
    trained = t.fit();
  }
  REQUIRE(fs::exists(root / "run" / "checkpoint" / "eval_model.safetensors"));
  const auto before = snapshot(root / "run");
  REQUIRE(before.count("metrics.jsonl"));
  REQUIRE(before.count("config.json"));
  REQUIRE(before.at("metrics.jsonl").size() > 0);

  auto [rc, out] = test::run_evit("eval " + config_path);
  INFO(out);
  REQUIRE(rc == 0);
  REQUIRE_THAT(out, Catch::Contains("eval_model.safetensors"));
  REQUIRE_THAT(out, Catch::Contains("per-class IoU"));
  // The same weights and the same evaluator: the number training printed, to its 4 decimals.
  REQUIRE(std::abs(printed(out, "val/mIoU") - trained.at("val/mIoU")) < 1e-4);
  REQUIRE(std::abs(printed(out, "val/pixel_acc") - trained.at("val/pixel_acc")) < 1e-4);

  std::string frame;
  for (auto& e : fs::recursive_directory_iterator(root / "data" / "leftImg8bit" / "val"))
    if (e.is_regular_file()) frame = e.path().string();
  auto [rc2, out2] = test::run_evit("predict efficientvit-seg-b0-cityscapes --weights " + (root / "run/checkpoint/model.safetensors").string() +
                              " --protocol native --input " + frame + " --output " + (root / "pred").string());
  INFO(out2);
  REQUIRE(rc2 == 0);
  REQUIRE(fs::exists(root / "pred_mask.png"));

  // --output is the only way eval writes, and it writes where it is told.
  auto [rc3, out3] = test::run_evit("eval " + config_path + " --output " + (root / "eval.json").string());
  REQUIRE(rc3 == 0);
  json written = json::parse(read_file((root / "eval.json").string()));
  REQUIRE(std::abs(written.at("val/mIoU").get<double>() - trained.at("val/mIoU")) < 1e-9);

  const auto after = snapshot(root / "run");
  REQUIRE(after.size() == before.size());
  for (const auto& [name, bytes] : before) {
    INFO(name);
    REQUIRE(after.count(name));
    REQUIRE(after.at(name) == bytes);
  }
  fs::remove_all(root);
}

TEST_CASE("evit eval --weights needs neither the pretrained backbone nor a training split", "[evaluator]") {
  const fs::path root = fs::temp_directory_path() / "evit_eval_weights_only";
  fs::remove_all(root);
  data::write_synthetic_cityscapes((root / "data").string(), 1, 2, 64, 96, 6);
  fs::remove_all(root / "data" / "leftImg8bit" / "train");
  fs::remove_all(root / "data" / "gtFine" / "train");
  auto model = zoo::create_model("efficientvit-seg-b0-cityscapes");
  save_safetensors((root / "w.safetensors").string(), model->state_dict());
  json c = {{"task", "segmentation"},
            {"model", {{"name", "efficientvit-seg-b0-cityscapes"}, {"pretrained", (root / "missing.safetensors").string()}}},
            {"data", {{"root", (root / "data").string()}, {"dataset", "synthetic"}}},
            {"optimizer", {{"lr", 1e-3}}},
            {"train", {{"steps", 1}}},
            {"output_dir", (root / "run").string()}};
  std::ofstream((root / "config.json").string()) << c.dump(2);
  auto [rc, out] = test::run_evit("eval " + (root / "config.json").string() + " --weights " + (root / "w.safetensors").string());
  INFO(out);
  REQUIRE(rc == 0);
  REQUIRE_THAT(out, Catch::Contains("val/mIoU"));
  REQUIRE_FALSE(fs::exists(root / "run"));
  // Without --weights and without a trained run, the error names the missing checkpoint.
  auto [rc2, out2] = test::run_evit("eval " + (root / "config.json").string());
  REQUIRE(rc2 != 0);
  REQUIRE_THAT(out2, Catch::Contains("checkpoint"));
  fs::remove_all(root);
}

TEST_CASE("an ImageNet recipe with 1000 classes trains, evaluates and checkpoints", "[evaluator][trainer]") {
  const fs::path root = fs::temp_directory_path() / "evit_imagenet1000";
  fs::remove_all(root);
  Generator g(21);
  for (const char* split : {"train", "val"})
    for (int c = 0; c < 1000; ++c) {
      char wnid[16];
      std::snprintf(wnid, sizeof wnid, "n%08d", c);
      fs::create_directories(root / "data" / split / wnid);
      Image img(20, 24, 3);
      for (auto& v : img.data) v = static_cast<uint8_t>(g.next_u64() % 256);
      encode_png((root / "data" / split / wnid / "a.png").string(), img);
    }
  // The real recipe, shrunk: B0, 32-pixel crops, 2 steps of 8 images, a short BN re-estimation.
  json c = json::parse(read_file(std::string(EVIT_GOLDEN_DIR) + "/../../configs/imagenet_b1.json"));
  c["model"]["name"] = "efficientvit-b0";
  c["data"]["root"] = (root / "data").string();
  c["data"]["crop"] = 32;
  c["data"]["batch_size"] = 8;
  c["data"]["workers"] = 1;
  c["data"]["multires_sizes"] = json::array({24, 32});
  c["train"].erase("epochs");
  c["train"]["steps"] = 2;
  c["train"]["eval_every"] = 2;
  c["train"]["checkpoint_every"] = 2;
  c["train"]["reset_bn_batches"] = 2;
  c["schedule"] = {{"warmup_steps", 1}};
  c["output_dir"] = (root / "run").string();
  train::Trainer t(train::load_config_text(c.dump(), "imagenet_b1 (shrunk)", train::training_config_schema()));
  const train::Metrics m = t.fit();
  REQUIRE(m.count("val/top1"));
  REQUIRE(m.at("val/top1") >= 0);
  REQUIRE(m.at("val/top5") >= m.at("val/top1"));
  REQUIRE(fs::exists(root / "run" / "checkpoint" / "model.safetensors"));
  REQUIRE(fs::exists(root / "run" / "checkpoint" / "eval_model.safetensors"));
  const TensorMap w = load_safetensors((root / "run" / "checkpoint" / "model.safetensors").string());
  REQUIRE(w.at("head.op_list.3.linear.weight").size(0) == 1000);
  fs::remove_all(root);
}

// The trainer: exact resume, checkpoints, divergence detection, evaluation and config errors.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "autograd/grad_mode.h"
#include "core/cuda.h"

#include "data/image.h"
#include "ops/autocast.h"
#include "ops/ops.h"
#include "tests/support/resume_check.h"
#include "tests/support/test_util.h"
#include "train/config.h"
#include "train/trainer.h"

using namespace evit;
namespace fs = std::filesystem;

namespace {
// A small Cityscapes-layout dataset with a learnable pattern: the top half is sky (23), the
// bottom road (7), with noise in the image.
std::string tiny_cityscapes(const std::string& name, int64_t h = 40, int64_t w = 48) {
  fs::path root = fs::temp_directory_path() / name;
  fs::remove_all(root);
  Generator g(3);
  for (const char* split : {"train", "val"}) {
    fs::create_directories(root / "leftImg8bit" / split / "x");
    fs::create_directories(root / "gtFine" / split / "x");
    for (int i = 0; i < (std::string(split) == "train" ? 6 : 2); ++i) {
      Image img(h, w, 3), lab(h, w, 1);
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) {
          bool sky = y < h / 2;
          lab.data[y * w + x] = sky ? 23 : 7;
          for (int c = 0; c < 3; ++c)
            img.data[(y * w + x) * 3 + c] = static_cast<uint8_t>((sky ? 180 + 30 * c : 60) + g.next_u64() % 40);
        }
      std::string stem = "x_00000" + std::to_string(i) + "_000019";
      encode_png((root / "leftImg8bit" / split / "x" / (stem + "_leftImg8bit.png")).string(), img);
      encode_png((root / "gtFine" / split / "x" / (stem + "_gtFine_labelIds.png")).string(), lab);
    }
  }
  return root.string();
}

nlohmann::json seg_config(const std::string& data, const std::string& out, int64_t steps) {
  nlohmann::json c = {
      {"task", "segmentation"},
      {"model", {{"name", "efficientvit-seg-b0-cityscapes"}}},
      {"data", {{"root", data}, {"dataset", "cityscapes"}, {"crop", 32}, {"batch_size", 2}, {"workers", 2}}},
      {"optimizer", {{"name", "adamw"}, {"lr", 2e-3}, {"weight_decay", 0.01}}},
      {"schedule", {{"warmup_steps", 2}}},
      {"ema", {{"enabled", true}, {"decay", 0.9}, {"warmup_steps", 0}}},
      {"train", {{"steps", steps}, {"log_every", 2}, {"eval_every", 100}, {"checkpoint_every", 100}, {"seed", 1}}},
      {"output_dir", out}};
  return train::load_config_text(c.dump(), "test config", train::training_config_schema());
}
}  // namespace

TEST_CASE("training N steps, stopping and resuming N more equals 2N steps bitwise", "[trainer]") {
  std::string data = tiny_cityscapes("evit_trainer_data");
  std::string out = (fs::temp_directory_path() / "evit_trainer_run").string();
  fs::remove_all(out);
  const int64_t n = 4;  // crosses an epoch boundary (3 batches per epoch)
  test::require_resume_bitwise([&](const std::string& o, int64_t steps) { return seg_config(data, o, steps); }, out, n);
  // The checkpoint folder holds every piece and no temporary leftovers.
  for (const char* f : {"model.safetensors", "optimizer.safetensors", "schedule.safetensors", "ema.safetensors", "trainer.json"})
    REQUIRE(fs::exists(out + "/b/checkpoint/" + std::string(f)));
  REQUIRE_FALSE(fs::exists(out + "/b/checkpoint.tmp"));
}

TEST_CASE("fit learns an easy segmentation and logs metrics", "[trainer]") {
  std::string data = tiny_cityscapes("evit_trainer_data2");
  std::string out = (fs::temp_directory_path() / "evit_trainer_fit").string();
  fs::remove_all(out);
  auto cfg = seg_config(data, out, 60);
  cfg["optimizer"]["lr"] = 1e-2;
  cfg["train"]["eval_every"] = 60;
  train::Trainer t(cfg);
  train::Metrics m = t.fit();
  INFO("mIoU " << m["val/mIoU"]);
  REQUIRE(m.count("val/mIoU") == 1);
  REQUIRE(m["val/mIoU"] > 60.0);  // two classes split by a horizontal line
  REQUIRE(fs::exists(out + "/metrics.jsonl"));
  REQUIRE(fs::exists(out + "/checkpoint/model.safetensors"));
  REQUIRE(fs::exists(out + "/config.json"));
}

TEST_CASE("a diverging run stops naming the step", "[trainer]") {
  std::string data = tiny_cityscapes("evit_trainer_data3");
  auto cfg = seg_config(data, (fs::temp_directory_path() / "evit_trainer_nan").string(), 5);
  cfg["optimizer"]["lr"] = 1e30;
  cfg["train"]["grad_clip"] = nullptr;
  train::Trainer t(cfg);
  REQUIRE_THROWS_WITH(t.train_steps(5), Catch::Contains("training diverged at step"));
}

TEST_CASE("trainer configuration errors name the key", "[trainer]") {
  std::string data = tiny_cityscapes("evit_trainer_data4");
  auto cfg = seg_config(data, (fs::temp_directory_path() / "evit_trainer_err").string(), 5);
  cfg["model"]["name"] = "efficientvit-b0";
  REQUIRE_THROWS_WITH(train::Trainer(cfg), Catch::Contains("config.model.name") && Catch::Contains("classification model"));
  cfg = seg_config(data, (fs::temp_directory_path() / "evit_trainer_err").string(), 5);
  cfg["data"]["dataset"] = "mnist";
  REQUIRE_THROWS_WITH(train::Trainer(cfg), Catch::Contains("config.data.dataset: 'mnist'"));
  cfg = seg_config("/nonexistent/data", (fs::temp_directory_path() / "evit_trainer_err").string(), 5);
  REQUIRE_THROWS_WITH(train::Trainer(cfg), Catch::Contains("/nonexistent/data/leftImg8bit/train"));
  cfg = seg_config(data, (fs::temp_directory_path() / "evit_trainer_err").string(), 5);
  cfg["train"]["resume"] = "/nonexistent/ckpt";
  REQUIRE_THROWS_WITH(train::Trainer(cfg), Catch::Contains("/nonexistent/ckpt"));
  cfg = seg_config(data, (fs::temp_directory_path() / "evit_trainer_err").string(), 5);
  cfg["train"]["device"] = "gpu";
  REQUIRE_THROWS_WITH(train::Trainer(cfg), Catch::Contains("config.train.device") && Catch::Contains("gpu"));
  cfg = seg_config(data, (fs::temp_directory_path() / "evit_trainer_err").string(), 5);
  cfg["train"]["amp"] = "f16";
  REQUIRE_THROWS_WITH(train::Trainer(cfg), Catch::Contains("config.train.amp") && Catch::Contains("cuda"));
}

TEST_CASE("a CUDA training run matches the CPU run step for step", "[.][cuda][cuda_trainer]") {
  if (!cuda::is_available()) FAIL("no CUDA GPU is visible: [cuda] tests need one");
  // Images and crops large enough that every BatchNorm normalises over tens of values: with
  // 32-pixel crops of 2 images the last stage normalises 2 values per channel, and a 1e-7
  // relative change of the initial weights already moves the weights after 4 steps by 30% of
  // their distance travelled, so no two backends could agree.
  std::string data = tiny_cityscapes("evit_trainer_data_cuda", 128, 160);
  auto cpu_cfg = seg_config(data, (fs::temp_directory_path() / "evit_trainer_cpu").string(), 4);
  cpu_cfg["data"]["crop"] = 128;
  cpu_cfg["data"]["batch_size"] = 4;
  auto gpu_cfg = cpu_cfg;
  gpu_cfg["output_dir"] = (fs::temp_directory_path() / "evit_trainer_gpu").string();
  gpu_cfg["train"]["device"] = "cuda";
  train::Trainer a(cpu_cfg), b(gpu_cfg);
  std::vector<Tensor> initial;
  for (auto& [k, p] : a.model().named_parameters()) initial.push_back(p.detach().clone());
  a.train_steps(4);
  b.train_steps(4);
  // The runs may differ by the rounding noise of reductions (amplified by AdamW and BatchNorm:
  // on the CPU, that 1e-7 change of the initial weights gives 0.8% of the distance travelled
  // here); a wrong kernel, batch or optimizer step gives differences of the order of the
  // distance itself.
  double diff2 = 0, moved2 = 0;
  const auto pa = a.model().named_parameters(), pb = b.model().named_parameters();
  REQUIRE(pa.size() == pb.size());
  for (size_t i = 0; i < pa.size(); ++i) {
    INFO(pa[i].first);
    REQUIRE(pb[i].second.device().is_cuda());
    const Tensor v = pa[i].second.detach();
    const Tensor d = sub(pb[i].second.detach().to(kCPU), v), m = sub(v, initial[i]);
    diff2 += sum(mul(d, d)).item<double>();
    moved2 += sum(mul(m, m)).item<double>();
  }
  INFO("CPU and CUDA weights differ by " << std::sqrt(diff2) << " after moving " << std::sqrt(moved2));
  REQUIRE(moved2 > 0);
  REQUIRE(std::sqrt(diff2) <= 0.1 * std::sqrt(moved2));
  // Checkpoints of a CUDA run are ordinary files that load anywhere.
  b.save_checkpoint((fs::temp_directory_path() / "evit_trainer_gpu_ckpt").string());
  auto amp_cfg = gpu_cfg;
  amp_cfg["train"]["amp"] = "bf16";
  train::Trainer c(amp_cfg);
  c.train_steps(2);
  REQUIRE(std::isfinite(c.evaluate().at("val/mIoU")));
}

TEST_CASE("a diverging run names the forward op where values broke", "[trainer]") {
  std::string data = tiny_cityscapes("evit_trainer_data5");
  auto cfg = seg_config(data, (fs::temp_directory_path() / "evit_trainer_nan2").string(), 5);
  train::Trainer t(cfg);
  {  // poison one weight: the first conv turns finite images into NaN
    NoGradGuard g;
    Tensor w = t.model().named_parameters()[0].second;
    fill_(w, std::numeric_limits<double>::quiet_NaN());
  }
  // Steps count from 1, as in the log: the first step is step 1.
  REQUIRE_THROWS_WITH(t.train_steps(1), Catch::Contains("training diverged at step 1 ") &&
                                            Catch::Contains("anomaly: the forward of"));
}

TEST_CASE("classification trains with the reference loss (BCE on mixed soft targets)", "[trainer]") {
  fs::path root = fs::temp_directory_path() / "evit_trainer_cls";
  fs::remove_all(root);
  Generator g(8);
  for (const char* split : {"train", "val"})
    for (int c = 0; c < 2; ++c) {
      fs::path dir = root / split / (c ? "n002" : "n001");
      fs::create_directories(dir);
      for (int i = 0; i < 4; ++i) {
        Image img(40, 40, 3);
        for (auto& v : img.data) v = static_cast<uint8_t>((c ? 200 : 40) + g.next_u64() % 40);
        encode_png((dir / ("img" + std::to_string(i) + ".png")).string(), img);
      }
    }
  // The whole set in each batch: at 32 px B0's last stage is 1x1, and with batches of 4 its
  // BatchNorm statistics came from 4 numbers, which left the eval-mode accuracy to rounding.
  nlohmann::json c = {
      {"task", "classification"},
      {"model", {{"name", "efficientvit-b0"}}},
      {"data", {{"root", root.string()}, {"dataset", "imagenet"}, {"crop", 32}, {"batch_size", 8}, {"workers", 1},
                {"multires_sizes", {32, 40}}}},
      {"optimizer", {{"lr", 5e-3}, {"weight_decay", 0.0}}},
      {"ema", {{"enabled", false}}},
      {"train", {{"steps", 80}, {"loss", "bce"}, {"label_smoothing", 0.1}, {"mixup_alpha", 0.2}, {"cutmix_alpha", 0.2},
                 {"drop_path", 0.05}, {"eval_every", 80},
                 {"log_every", 4}}},
      {"output_dir", (fs::temp_directory_path() / "evit_trainer_cls_run").string()}};
  train::Trainer t(train::load_config_text(c.dump(), "cls config", train::training_config_schema()));
  REQUIRE(t.model().state_dict().at("head.op_list.3.linear.weight").size(0) == 2);  // classes from the folders
  train::Metrics m = t.fit();
  REQUIRE(m.count("val/top1") == 1);
  {
    // Resumed with BN re-estimation before evaluation: evaluating leaves the trained state untouched.
    auto c2 = c;
    c2["train"]["reset_bn_batches"] = 4;
    c2["train"]["random_erasing"] = 0.5;  // the re-estimation batches use the training transforms
    c2["train"]["rand_augment"] = "rand-n2-m9-mstd1.0-inc1";
    c2["train"]["mesa_weight"] = 1.0;
    c2["ema"] = {{"enabled", true}, {"decay", 0.9}, {"warmup_steps", 0}};
    c2["train"]["resume"] = c["output_dir"].get<std::string>() + "/checkpoint";
    c2["output_dir"] = (fs::temp_directory_path() / "evit_trainer_cls_run2").string();
    train::Trainer r(train::load_config_text(c2.dump(), "cls config", train::training_config_schema()));
    REQUIRE(r.step() == 80);
    r.train_steps(1);  // a MESA step (progress past mesa_start) runs
    auto before = r.model().state_dict();
    train::Metrics m2 = r.evaluate();
    REQUIRE(m2.count("val/top1") == 1);
    for (auto& [k, v] : r.model().state_dict()) {
      INFO(k);
      REQUIRE(test::bitwise_equal(v, before.at(k)));
    }
  }
  INFO(m["val/top1"]);
  REQUIRE(m["val/top1"] == 100.0);  // dark vs bright images: separable
  auto bad = c;
  bad["train"]["rand_augment"] = "rand-n2-q5";
  REQUIRE_THROWS_WITH(train::Trainer(train::load_config_text(bad.dump(), "cls config", train::training_config_schema())),
                      Catch::Contains("config.train.rand_augment") && Catch::Contains("'q5'"));
}

TEST_CASE("eval_at_start scores the starting weights and logs them as step 0", "[trainer]") {
  std::string data = tiny_cityscapes("evit_trainer_data3");
  std::string out = (fs::temp_directory_path() / "evit_trainer_eval0").string();
  fs::remove_all(out);
  auto cfg = seg_config(data, out, 2);
  cfg["train"]["eval_at_start"] = true;
  cfg["train"]["eval_every"] = 2;
  train::Trainer t(cfg);
  t.fit();
  std::ifstream log(out + "/metrics.jsonl");
  std::vector<int64_t> eval_steps;
  for (std::string line; std::getline(log, line);) {
    const auto rec = nlohmann::json::parse(line);
    if (rec.contains("val/mIoU")) eval_steps.push_back(rec.at("step").get<int64_t>());
  }
  CHECK(eval_steps == std::vector<int64_t>{0, 2});
}


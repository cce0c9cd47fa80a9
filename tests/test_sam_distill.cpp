// Task sam_distill: the student encoder learns the teacher's embeddings (50 steps lower the
// held-out MSE), resume is bitwise exact, and the data errors name what is missing.
#include <catch2/catch.hpp>

#include <filesystem>

#include "core/error.h"
#include "data/image.h"
#include "support/resume_check.h"
#include "support/sa1b_data.h"
#include "support/sam_distill_data.h"
#include "support/test_util.h"
#include "train/config.h"
#include "train/trainer.h"

using namespace evit;
namespace fs = std::filesystem;

namespace {

nlohmann::json distill_config(const std::string& data, const std::string& out, int64_t steps) {
  nlohmann::json c = {
      {"task", "sam_distill"},
      {"model", {{"name", "efficientvit-sam-l0"}}},
      {"data", {{"root", data}, {"dataset", "images"}, {"crop", 128}, {"batch_size", 1}, {"workers", 1},
                {"embeddings", data + "/cache"}}},
      {"optimizer", {{"name", "adamw"}, {"lr", 1e-3}, {"weight_decay", 0.1}}},
      {"schedule", {{"name", "constant"}}},
      {"ema", {{"enabled", false}}},
      {"train", {{"steps", steps}, {"log_every", 10}, {"eval_every", 1000}, {"checkpoint_every", 1000}, {"seed", 3},
                 {"grad_clip", 2.0}}},
      {"output_dir", out}};
  return train::load_config_text(c.dump(), "test config", train::training_config_schema());
}

}  // namespace

TEST_CASE("50 sam_distill steps lower the held-out embedding MSE", "[sam][trainer]") {
  const std::string data = test::distill_data("evit_distill_data");
  const std::string out = (fs::temp_directory_path() / "evit_distill_fit").string();
  fs::remove_all(out);
  train::Trainer t(distill_config(data, out, 50));
  const train::Metrics before = t.evaluate();
  REQUIRE(before.count("val/embed_mse") == 1);
  REQUIRE(before.count("val/agreement_mIoU") == 1);
  REQUIRE(before.count("val/box_mIoU") == 1);
  t.train_steps(50);
  const train::Metrics after = t.evaluate();
  INFO("embed MSE " << before.at("val/embed_mse") << " -> " << after.at("val/embed_mse") << ", agreement "
                    << before.at("val/agreement_mIoU") << " -> " << after.at("val/agreement_mIoU"));
  CHECK(after.at("val/embed_mse") < 0.8 * before.at("val/embed_mse"));
  CHECK((after.at("val/agreement_mIoU") >= 0 && after.at("val/agreement_mIoU") <= 100));
  CHECK((after.at("val/box_mIoU") >= 0 && after.at("val/box_mIoU") <= 100));
}

TEST_CASE("sam_distill resumes bitwise", "[sam][trainer]") {
  const std::string data = test::distill_data("evit_distill_data");
  const std::string out = (fs::temp_directory_path() / "evit_distill_resume").string();
  const int64_t n = 3;  // crosses an epoch boundary (4 images, batch 1)
  test::require_resume_bitwise([&](const std::string& o, int64_t steps) { return distill_config(data, o, steps); }, out,
                               n);
}

TEST_CASE("sam_distill names missing embeddings and wrong models", "[sam][trainer]") {
  const std::string data = test::distill_data("evit_distill_data");
  const fs::path broken = fs::temp_directory_path() / "evit_distill_missing";
  fs::remove_all(broken);
  fs::create_directories(broken);
  fs::copy(data, broken.string(), fs::copy_options::recursive);
  fs::remove(broken / "cache" / "train_2.safetensors");
  const std::string out = (fs::temp_directory_path() / "evit_distill_err").string();
  CHECK_THROWS_WITH(train::Trainer(distill_config(broken.string(), out, 2)),
                    Catch::Contains("1 of the 4 images") && Catch::Contains("train_2.safetensors") &&
                        Catch::Contains("evit embed"));
  auto cfg = distill_config(data, out, 2);
  cfg["data"]["embeddings"] = "";
  CHECK_THROWS_WITH(train::Trainer(cfg), Catch::Contains("config.data.embeddings"));
  cfg = distill_config(data, out, 2);
  cfg["model"]["name"] = "efficientvit-b0";
  CHECK_THROWS_WITH(train::Trainer(cfg), Catch::Contains("trains sam models"));
}

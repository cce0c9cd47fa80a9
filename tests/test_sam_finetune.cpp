// Task sam_finetune (stage 2 of EfficientViT-SAM): what the dataset draws (masks, flips, boxes in
// the prompt frame), the batch loss reaching every part of the model, evaluation by box mIoU, and
// bitwise resume.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <set>

#include <unistd.h>

#include "autograd/grad_mode.h"
#include "core/error.h"
#include "data/image.h"
#include "ops/ops.h"
#include "support/resume_check.h"
#include "support/sa1b_data.h"
#include "support/test_util.h"
#include "train/config.h"
#include "train/sam_finetune.h"
#include "train/trainer.h"
#include "zoo/models.h"

using namespace evit;
namespace fs = std::filesystem;

namespace {

// ROOT/train (two images) and ROOT/val (one), written once per process into a folder of its own.
std::string finetune_data() {
  const fs::path root = fs::temp_directory_path() / ("evit_finetune_data." + std::to_string(::getpid()));
  if (fs::exists(root / "val" / "sa_3.json")) return root.string();
  fs::remove_all(root);
  fs::create_directories(root / "train");
  fs::create_directories(root / "val");
  test::write_sa1b_scene((root / "train").string(), 1);
  test::write_sa1b_scene((root / "train").string(), 2);
  test::write_sa1b_scene((root / "val").string(), 3);
  return root.string();
}

nlohmann::json finetune_config(const std::string& data, const std::string& out, int64_t steps) {
  nlohmann::json c = {
      {"task", "sam_finetune"},
      {"model", {{"name", "efficientvit-sam-l0"}}},
      {"data", {{"root", data}, {"dataset", "sa1b"}, {"crop", 64}, {"batch_size", 1}, {"workers", 1},
                {"masks_per_image", 3}, {"val_masks", 3}}},
      {"optimizer", {{"name", "adamw"}, {"lr", 1e-4}, {"weight_decay", 0.1}}},
      {"schedule", {{"name", "cosine"}}},
      {"ema", {{"enabled", false}}},
      {"train", {{"steps", steps}, {"log_every", 10}, {"eval_every", 1000}, {"checkpoint_every", 1000}, {"seed", 4},
                 {"grad_clip", 2.0}, {"mask_points", 256}}},
      {"output_dir", out}};
  return train::load_config_text(c.dump(), "test config", train::training_config_schema());
}

}  // namespace

TEST_CASE("sam_finetune samples draw masks, flips and prompt-frame boxes", "[sam][data]") {
  const std::string data = finetune_data();
  const int64_t S = 64;
  train::SamFinetuneDataset set(data + "/train", S, 5, true);
  REQUIRE(set.size() == 2);
  int flipped = 0, unflipped = 0;
  for (int64_t epoch = 0; epoch < 6; ++epoch) {
    Generator g = data::sample_generator(1, epoch, 0);
    const data::Sample s = set.get(0, g);
    REQUIRE(s.input.sizes() == Shape{3, S, S});
    REQUIRE(s.target.sizes() == Shape{5, S, S});
    REQUIRE(s.aux.sizes() == Shape{5, 4});
    // The 48x64 image becomes 48x64 * (64/64): rows 48..63 are padding, empty in every mask.
    const float* t = s.target.data_ptr<float>();
    const float* b = s.aux.data_ptr<float>();
    std::set<std::vector<float>> distinct;
    for (int64_t m = 0; m < 5; ++m) {
      int64_t x0 = S, x1 = -1, y0 = S, y1 = -1, outside_unit = 0;
      for (int64_t y = 0; y < S; ++y)
        for (int64_t x = 0; x < S; ++x) {
          const float v = t[(m * S + y) * S + x];
          outside_unit += v < 0 || v > 1;
          if (v > 0.5f) x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
        }
      REQUIRE(outside_unit == 0);
      REQUIRE(y1 < 48);
      // The box (prompt frame: 1024/64 = 16 per input pixel) encloses the mask's pixels.
      INFO("mask " << m << " pixels x " << x0 << ".." << x1 << ", y " << y0 << ".." << y1 << "; box " << b[m * 4] << ", "
                   << b[m * 4 + 1] << ", " << b[m * 4 + 2] << ", " << b[m * 4 + 3]);
      CHECK(std::abs(b[m * 4 + 0] - 16.f * x0) <= 16.f);
      CHECK(std::abs(b[m * 4 + 2] - 16.f * (x1 + 1)) <= 16.f);
      CHECK(std::abs(b[m * 4 + 1] - 16.f * y0) <= 16.f);
      CHECK(std::abs(b[m * 4 + 3] - 16.f * (y1 + 1)) <= 16.f);
      distinct.insert({b[m * 4], b[m * 4 + 1], b[m * 4 + 2], b[m * 4 + 3]});
    }
    CHECK(distinct.size() == 3);  // 5 masks of 3 annotations: each one at least once
    // The bar (3 rows high) spans x 10..63, so its box starts at 160; flipped, at 0.
    for (int64_t m = 0; m < 5; ++m)
      if (b[m * 4 + 3] - b[m * 4 + 1] < 100) (b[m * 4] < 80 ? flipped : unflipped) += 1;
    Generator again = data::sample_generator(1, epoch, 0);
    REQUIRE(test::bitwise_equal(set.get(0, again).target, s.target));
  }
  CHECK(flipped > 0);
  CHECK(unflipped > 0);
  CHECK_THROWS_WITH(train::SamFinetuneDataset(data + "/missing", S, 5, true), Catch::Contains("missing"));
}

TEST_CASE("the sam_finetune batch loss reaches the encoder, prompt encoder and decoder", "[sam][trainer]") {
  const std::string data = finetune_data();
  train::SamFinetuneDataset set(data + "/train", 64, 3, false);
  Generator g0 = data::sample_generator(2, 0, 0), g1 = data::sample_generator(2, 0, 1);
  const data::Batch b = data::collate({set.get(0, g0), set.get(1, g1)});
  auto model = std::dynamic_pointer_cast<zoo::EfficientViTSam>(zoo::create_model("efficientvit-sam-l0", 0));
  REQUIRE(model);
  model->train();
  train::SamFinetuneOptions o;
  o.loss.points = 128;
  o.box_prob = 0.0;        // points prompts: the positive-point embedding must get a gradient
  o.multimask_prob = 1.0;  // three masks
  Generator g(9);
  const Tensor loss = train::sam_finetune_batch_loss(*model, b.input, b.target, b.aux, o, g);
  REQUIRE(loss.dim() == 0);
  const double v = loss.item<double>();
  CHECK(std::isfinite(v));
  CHECK(v > 0);
  loss.backward();
  int64_t with_grad = 0, encoder = 0, decoder = 0, points = 0;
  for (auto& [name, p] : model->named_parameters()) {
    if (!p.grad().defined() || sum(abs(p.grad())).item<double>() == 0) continue;
    ++with_grad;
    encoder += name.rfind("image_encoder.", 0) == 0;
    decoder += name.rfind("mask_decoder.", 0) == 0;
    points += name == "prompt_encoder.point_embeddings.1.weight";
  }
  CHECK(encoder > 0);
  CHECK(decoder > 0);
  CHECK(points == 1);
  // A wrong batch is named.
  CHECK_THROWS_WITH(train::sam_finetune_batch_loss(*model, b.input, b.target, slice(b.aux, 1, 0, 2), o, g),
                    Catch::Contains("boxes [B, M, 4]"));
}

TEST_CASE("sam_finetune trains, evaluates by box mIoU and resumes bitwise", "[sam][trainer]") {
  const std::string data = finetune_data();
  const std::string out = (fs::temp_directory_path() / "evit_finetune_resume").string();
  {
    fs::remove_all(out + "/eval");
    train::Trainer t(finetune_config(data, out + "/eval", 1));
    const train::Metrics m = t.evaluate();
    REQUIRE(m.count("val/box_mIoU") == 1);
    CHECK((m.at("val/box_mIoU") >= 0 && m.at("val/box_mIoU") <= 100));
  }
  test::require_resume_bitwise([&](const std::string& o, int64_t steps) { return finetune_config(data, o, steps); },
                               out, 2);
}

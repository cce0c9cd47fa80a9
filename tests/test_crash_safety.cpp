// Checkpoints survive any kill: a training process that checkpoints every step is killed at each
// stage of a checkpoint write (through the EVIT_TEST_CHECKPOINT_KILL hook, which stops it there
// with SIGKILL) and at arbitrary moments; after every kill, `--resume` finds a complete, finite
// checkpoint and the run ends with the weights and the log of an uninterrupted run, bit for bit.
// Also: a non-finite state is never committed over a finite checkpoint.
#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "core/safetensors.h"
#include "data/synthetic.h"
#include "nn/norm.h"
#include "ops/pointwise.h"
#include "optim/adamw.h"
#include "support/test_util.h"
#include "train/checkpoint.h"
#include "zoo/models.h"

namespace fs = std::filesystem;
using namespace evit;
using json = nlohmann::json;

namespace {

// A small segmentation run: 6 steps, a checkpoint after each, a log line every 4 (so resumes
// land in the middle of a logging window), EMA on (its shadow is part of every checkpoint).
std::string write_config(const fs::path& root, const std::string& run) {
  json c = {{"task", "segmentation"},
            {"model", {{"name", "efficientvit-seg-b0-cityscapes"}}},
            {"data", {{"root", (root / "data").string()}, {"dataset", "synthetic"}, {"crop", 32}, {"batch_size", 2}, {"workers", 0}}},
            {"optimizer", {{"lr", 2e-3}, {"weight_decay", 0.01}}},
            {"ema", {{"enabled", true}, {"decay", 0.9}, {"warmup_steps", 0}}},
            {"train", {{"steps", 6}, {"eval_every", 100}, {"checkpoint_every", 1}, {"log_every", 4}, {"threads", 1}}},
            {"output_dir", (root / run).string()}};
  const std::string path = (root / (run + ".json")).string();
  std::ofstream(path) << c.dump(2);
  return path;
}

// The final model weights and the training log (without evaluation lines' wall-clock fields:
// there are none; the log holds steps, losses, learning rates and metrics only).
struct Outcome {
  std::string model, ema, log;
};
Outcome outcome(const fs::path& run) {
  return {read_file((run / "checkpoint" / "model.safetensors").string()),
          read_file((run / "checkpoint" / "ema.safetensors").string()), read_file((run / "metrics.jsonl").string())};
}

// Every floating tensor of every safetensors file in `dir` is finite.
bool all_finite_in(const fs::path& dir) {
  for (auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() != ".safetensors") continue;
    for (auto& [name, t] : load_safetensors(e.path().string())) {
      if (!is_floating(t.dtype())) continue;
      const Tensor c = t.to(DType::f64).contiguous();
      for (int64_t i = 0; i < c.numel(); ++i)
        if (!std::isfinite(c.data_ptr<double>()[i])) return false;
    }
  }
  return true;
}

}  // namespace

TEST_CASE("a run killed anywhere in a checkpoint write resumes from a complete checkpoint to the same weights",
          "[crash_safety]") {
  const fs::path root = fs::temp_directory_path() / "evit_crash_safety";
  fs::remove_all(root);
  data::write_synthetic_cityscapes((root / "data").string(), 4, 1, 32, 48, 3);
  const auto started = std::chrono::steady_clock::now();
  auto [rc, out] = test::run_evit("train " + write_config(root, "reference"));
  const double run_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  INFO(out);
  REQUIRE(rc == 0);
  const Outcome reference = outcome(root / "reference");

  for (const char* stage : train::kCheckpointKillStages) {
    for (int nth : {2, 5}) {
      const std::string hook = std::string(stage) + "@" + std::to_string(nth);
      INFO("killed at " << hook);
      const std::string run = std::string("killed_") + stage + std::to_string(nth);
      const std::string config = write_config(root, run);
      auto [killed_rc, killed_out] = test::run_evit("train " + config, "EVIT_TEST_CHECKPOINT_KILL=" + hook);
      INFO(killed_out);
      REQUIRE(killed_rc != 0);  // the hook killed it

      // Whatever the kill left, the newest complete checkpoint is found and is finite: the one
      // before the interrupted write, or the interrupted one once its folder was complete.
      const train::CheckpointLocation found = train::locate_checkpoint((root / run / "checkpoint").string());
      REQUIRE(all_finite_in(found.dir));
      REQUIRE(found.step == (std::string(stage) == "files" ? nth - 1 : nth));

      auto [resumed_rc, resumed_out] =
          test::run_evit("train " + config + " --resume " + (root / run / "checkpoint").string());
      INFO(resumed_out);
      REQUIRE(resumed_rc == 0);
      if (found.dir != (root / run / "checkpoint").string()) REQUIRE_THAT(resumed_out, Catch::Contains("mid-swap"));
      const Outcome resumed = outcome(root / run);
      REQUIRE(resumed.model == reference.model);
      REQUIRE(resumed.ema == reference.ema);
      REQUIRE(resumed.log == reference.log);
      REQUIRE_FALSE(fs::exists(root / run / "checkpoint.tmp"));
      REQUIRE_FALSE(fs::exists(root / run / "checkpoint.old"));
    }
  }

  // Kills at moments nobody chose: fractions of the uninterrupted run's time (the process's own
  // timing decides where in the training or in a checkpoint write they land).
  for (double fraction : {0.35, 0.6, 0.85}) {
    const std::string seconds = std::to_string(fraction * run_seconds);
    INFO("killed after " << seconds << " s");
    const std::string run = "timed_" + std::to_string(static_cast<int>(fraction * 100));
    const std::string config = write_config(root, run);
    test::run_evit("train " + config, "timeout -s KILL " + seconds);
    std::string resume;
    try {
      const train::CheckpointLocation found = train::locate_checkpoint((root / run / "checkpoint").string());
      REQUIRE(all_finite_in(found.dir));
      resume = " --resume " + (root / run / "checkpoint").string();
    } catch (const Error&) {
      // Killed before the first checkpoint was complete: the run starts again.
    }
    auto [resumed_rc, resumed_out] = test::run_evit("train " + config + resume);
    INFO(resumed_out);
    REQUIRE(resumed_rc == 0);
    const Outcome resumed = outcome(root / run);
    REQUIRE(resumed.model == reference.model);
    REQUIRE(resumed.log == reference.log);
  }
  fs::remove_all(root);
}

TEST_CASE("a non-finite state is never checkpointed, and the last finite checkpoint stays", "[crash_safety]") {
  const fs::path dir = fs::temp_directory_path() / "evit_nonfinite_checkpoint" / "checkpoint";
  fs::remove_all(dir.parent_path());
  auto model = zoo::create_model("efficientvit-seg-b0-cityscapes");
  optim::AdamW optimizer({{model->named_parameters(), 1e-3, 0.0}});
  optim::WarmupCosine schedule({1e-3, 0, 10, 0.0, 0.0});
  train::RunPosition at;
  at.step = 1;
  train::write_checkpoint(dir.string(), {model.get(), &optimizer, &schedule}, at);
  const std::string good = read_file((dir / "model.safetensors").string());

  // An overflowed BatchNorm running variance, as a diverging run produces before its loss does.
  nn::BatchNorm2d* bn = nullptr;
  std::string bn_name;
  for (auto& [name, m] : model->named_modules())
    if (auto* b = dynamic_cast<nn::BatchNorm2d*>(m.get()); b && !bn) bn = b, bn_name = name;
  REQUIRE(bn != nullptr);
  fill_(bn->running_var, std::numeric_limits<double>::infinity());
  at.step = 2;
  try {
    train::write_checkpoint(dir.string(), {model.get(), &optimizer, &schedule}, at);
    FAIL("a checkpoint with inf was written");
  } catch (const Error& e) {
    const std::string msg = e.what();
    INFO(msg);
    REQUIRE_THAT(msg, Catch::Contains(bn_name + ".running_var"));
    REQUIRE_THAT(msg, Catch::Contains("non-finite"));
  }
  REQUIRE(read_file((dir / "model.safetensors").string()) == good);
  REQUIRE(train::locate_checkpoint(dir.string()).step == 1);
  REQUIRE_FALSE(fs::exists(dir.string() + ".tmp"));
  fs::remove_all(dir.parent_path());
}

TEST_CASE("a crash before the first checkpoint is complete leaves nothing to resume, and says so", "[crash_safety]") {
  const fs::path dir = fs::temp_directory_path() / "evit_no_complete_checkpoint" / "checkpoint";
  fs::remove_all(dir.parent_path());
  fs::create_directories(dir.string() + ".tmp");
  std::ofstream(dir.string() + ".tmp/model.safetensors") << "partial";
  try {
    train::locate_checkpoint(dir.string());
    FAIL("an incomplete checkpoint was accepted");
  } catch (const Error& e) {
    REQUIRE_THAT(std::string(e.what()), Catch::Contains("no complete checkpoint"));
  }
  fs::remove_all(dir.parent_path());
}

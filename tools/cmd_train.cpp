// `evit train CONFIG [--resume DIR] [--device cuda] [--amp f16] [--set key=value ...]`: config-driven training.
#include <cstdio>
#include <memory>

#include "core/dist/communicator.h"
#include "tools/commands.h"
#include "train/config.h"
#include "train/trainer.h"

namespace evit::cli {
namespace {
struct TrainOptions {
  std::string config, resume, device, amp;
  std::vector<std::string> overrides;
  bool print_schema = false;
};
}  // namespace

Runner add_train_command(CLI::App& app) {
  auto o = std::make_shared<TrainOptions>();
  auto* cmd = app.add_subcommand("train", "Train a model from a JSON config (see configs/)");
  cmd->add_option("config", o->config, "Config file");
  cmd->add_option("--resume", o->resume, "Checkpoint folder to resume from (e.g. RUN/checkpoint)");
  cmd->add_option("--set", o->overrides, "Override a config value: --set optimizer.lr=0.001 (repeatable)");
  cmd->add_option("--device", o->device, "Where to train: cpu, cuda or cuda:N (same as --set train.device=...)");
  cmd->add_option("--amp", o->amp, "CUDA mixed precision: off, f16 or bf16 (same as --set train.amp=...)");
  cmd->add_flag("--schema", o->print_schema, "Print every config key with its type and default, then exit");
  return [o] {
    if (o->print_schema) {
      std::printf("%s", train::describe_schema(train::training_config_schema()).c_str());
      return 0;
    }
    EVIT_CHECK(!o->config.empty(), "train: a config file is required (see configs/, or --schema)");
    auto overrides = o->overrides;
    if (!o->resume.empty()) overrides.push_back("train.resume=" + o->resume);
    if (!o->device.empty()) overrides.push_back("train.device=" + o->device);
    if (!o->amp.empty()) overrides.push_back("train.amp=" + o->amp);
    auto cfg = train::load_config_file(o->config, train::training_config_schema(), overrides);
    train::Trainer trainer(cfg);
    train::Metrics m = trainer.fit();
    if (dist::world().rank() != 0) return 0;  // rank 0 reports for the job
    std::printf("done: %lld steps; run folder %s\n", (long long)trainer.step(),
                trainer.config().output_dir.c_str());
    for (auto& [k, v] : m) std::printf("%s: %.4f\n", k.c_str(), v);
    return 0;
  };
}

}  // namespace evit::cli

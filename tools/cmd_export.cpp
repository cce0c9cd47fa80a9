// `evit export MODEL --weights W --output OUT.safetensors [--fold-bn]`: deployment weights.
#include <cstdio>
#include <memory>

#include "core/safetensors.h"
#include "tools/commands.h"
#include "train/export.h"
#include "zoo/models.h"

namespace evit::cli {
namespace {
struct ExportOptions {
  std::string model, weights, output;
  bool fold_bn = true;
  int64_t classes = 0;
};
}  // namespace

Runner add_export_command(CLI::App& app) {
  auto o = std::make_shared<ExportOptions>();
  auto* cmd = app.add_subcommand("export", "Write deployment weights (BatchNorm folded into the convolutions)");
  cmd->add_option("model", o->model, "Model name (see `evit models`)")->required();
  cmd->add_option("--weights", o->weights, "Trained weights (safetensors), e.g. RUN/checkpoint/model.safetensors")->required();
  cmd->add_option("--output", o->output, "Output safetensors file")->required();
  cmd->add_option("--fold-bn", o->fold_bn, "Fold BatchNorm into the preceding convolution (default true)");
  cmd->add_option("--classes", o->classes, "Number of classes the weights were trained with");
  return [o] {
    const auto& info = zoo::model_info(o->model);
    auto model = zoo::create_model(o->model, info.task == "super_resolution" ? 0 : o->classes);
    model->load(o->weights, true);
    model->eval();
    TensorMap out = o->fold_bn ? train::export_folded(*model) : model->state_dict();
    save_safetensors(o->output, out, {{"model", o->model}, {"bn_folded", o->fold_bn ? "true" : "false"}});
    std::printf("wrote %s: %zu tensors (%zu before folding)\n", o->output.c_str(), out.size(),
                model->state_dict().size());
    return 0;
  };
}

}  // namespace evit::cli

// `evit forward MODEL --weights W --input X --output Y`: runs a registry model in eval mode on
// the tensor named "input" of X and writes "output" and the backbone stage features to Y — the
// check users run when porting weights.
#include <cstdio>
#include <memory>

#include "autograd/grad_mode.h"
#include "core/safetensors.h"
#include "tools/commands.h"
#include "zoo/models.h"

namespace evit::cli {
namespace {
struct ForwardOptions {
  std::string model, weights, input, output;
};
}  // namespace

Runner add_forward_command(CLI::App& app) {
  auto o = std::make_shared<ForwardOptions>();
  auto* cmd = app.add_subcommand("forward", "Run a model on a tensor from a safetensors file");
  cmd->add_option("model", o->model, "Model name (see `evit models`)")->required();
  cmd->add_option("--weights", o->weights, "state_dict in safetensors (strictly loaded)")->required();
  cmd->add_option("--input", o->input, "safetensors file holding a tensor named 'input'")->required();
  cmd->add_option("--output", o->output, "safetensors file to write 'output' and 'stageN' into")->required();
  return [o] {
    auto model = zoo::create_model(o->model);
    model->load(o->weights, /*strict=*/true);
    model->eval();
    TensorMap in = load_safetensors(o->input);
    auto it = in.find("input");
    EVIT_CHECK(it != in.end(), o->input, ": no tensor named 'input' (found ", in.size(), " others)");
    Tensor x = it->second.to(DType::f32);
    EVIT_CHECK(x.dim() == 4 && x.size(1) == 3, o->input, ": 'input' must be [N,3,H,W], got ", x.desc());
    NoGradGuard no_grad;
    zoo::FeatureMap f = model->forward_with_features(x);
    TensorMap out;
    for (auto& [name, t] : f)
      if (name == "output" || (name.rfind("stage", 0) == 0 && name != "stage_final")) out[name] = t;
    save_safetensors(o->output, out);
    std::printf("wrote %s: output %s", o->output.c_str(), shape_str(f.at("output").sizes()).c_str());
    for (auto& [name, t] : out)
      if (name != "output") std::printf(", %s %s", name.c_str(), shape_str(t.sizes()).c_str());
    std::printf("\n");
    return 0;
  };
}

}  // namespace evit::cli

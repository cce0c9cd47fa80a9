// `evit info MODEL [--input HxW]`: parameters, MACs and a per-module table.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <stdexcept>

#include "core/limits.h"
#include "tools/commands.h"
#include "zoo/profile.h"

namespace evit::cli {
namespace {
struct InfoOptions {
  std::string model;
  std::string input = "224x224";
  int depth = 2;
};

Shape parse_hw(const std::string& s) {
  const auto [h, w] = parse_size_option("--input", s, false);
  return {1, 3, h, w};
}
}  // namespace

Runner add_info_command(CLI::App& app) {
  auto o = std::make_shared<InfoOptions>();
  auto* cmd = app.add_subcommand("info", "Parameters, MACs and layers of a registered model");
  cmd->add_option("model", o->model, "Model name (see `evit models`)")->required();
  cmd->add_option("--input", o->input, "Input height x width")->capture_default_str();
  cmd->add_option("--depth", o->depth, "Module tree depth of the layer table")->capture_default_str();
  return [o] {
    auto model = zoo::create_model(o->model);
    Shape in = parse_hw(o->input);
    zoo::ModelProfile p = zoo::profile_model(*model, in);
    std::printf("model: %s\ninput: %s\nparameters: %lld\nMACs: %lld (%.3f G)\n\n", o->model.c_str(),
                shape_str(in).c_str(), static_cast<long long>(p.params), static_cast<long long>(p.macs),
                p.macs / 1e9);
    std::printf("%-60s %-22s %12s\n", "module", "type", "parameters");
    for (auto& [name, m] : model->named_modules()) {
      int depth = name.empty() ? 0 : 1 + static_cast<int>(std::count(name.begin(), name.end(), '.'));
      if (depth > o->depth) continue;
      std::printf("%-60s %-22s %12lld\n", name.empty() ? "(model)" : name.c_str(), m->type_name().c_str(),
                  static_cast<long long>(m->num_parameters()));
    }
    return 0;
  };
}

}  // namespace evit::cli

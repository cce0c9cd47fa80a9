// `evit models`: the registry.
#include <cstdio>

#include "tools/commands.h"
#include "zoo/models.h"

namespace evit::cli {

Runner add_models_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("models", "List the registered models");
  (void)cmd;
  return [] {
    for (auto& m : zoo::model_registry())
      std::printf("%-34s %-17s %s\n", m.name.c_str(), m.task.c_str(), m.description.c_str());
    return 0;
  };
}

}  // namespace evit::cli

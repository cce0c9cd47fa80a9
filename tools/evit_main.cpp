// evit: the command-line front end: train, eval, predict, export, models, info, forward.
#include <iostream>
#include <map>

#include "core/dist/communicator.h"
#include "core/error.h"
#include "tools/commands.h"

namespace {
// Reports an error; in a job of several ranks it stops them all, so that none waits forever for a
// message from this one.
int fail(const char* what) {
  evit::dist::Communicator* job = evit::dist::world_if_started();
  if (job && job->size() > 1) {
    std::cerr << "error on " << job->describe() << ": " << what << "\nstopping every rank of the job" << std::endl;
    job->abort(1);
  }
  std::cerr << "error: " << what << "\n";
  return 1;
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"evit: EfficientViT training, evaluation and export without Python"};
  app.require_subcommand(1);
  std::map<CLI::App*, evit::cli::Runner> runners;
  for (auto add : {evit::cli::add_train_command, evit::cli::add_eval_command, evit::cli::add_predict_command,
                   evit::cli::add_export_command, evit::cli::add_models_command,
                   evit::cli::add_info_command, evit::cli::add_forward_command,
                   evit::cli::add_demo_data_command, evit::cli::add_embed_command}) {
    size_t before = app.get_subcommands({}).size();
    evit::cli::Runner r = add(app);
    runners[app.get_subcommands({}).at(before)] = r;
  }
  CLI11_PARSE(app, argc, argv);
  try {
    for (auto& [sub, run] : runners)
      if (sub->parsed()) return run();
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  return 0;
}

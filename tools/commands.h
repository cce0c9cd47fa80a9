// Subcommands of the `evit` program. Each registers its options on the CLI11 app and returns the
// function that runs it.
#pragma once
#include <functional>

#include <CLI/CLI.hpp>

namespace evit::cli {

using Runner = std::function<int()>;

Runner add_models_command(CLI::App& app);
Runner add_info_command(CLI::App& app);
Runner add_forward_command(CLI::App& app);
Runner add_train_command(CLI::App& app);
Runner add_eval_command(CLI::App& app);
Runner add_predict_command(CLI::App& app);
Runner add_export_command(CLI::App& app);
Runner add_demo_data_command(CLI::App& app);
Runner add_embed_command(CLI::App& app);

}  // namespace evit::cli

// Subcommands of the `evit` program. Each registers its options on the CLI11 app and returns the
// function that runs it.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <utility>

#include <CLI/CLI.hpp>

namespace evit::cli {

using Runner = std::function<int()>;

// An image size option: "HxW", or also "S" (S x S) when allow_square; positive and within the
// image limits. Errors name the option and the text.
std::pair<int64_t, int64_t> parse_size_option(const std::string& option, const std::string& text, bool allow_square);

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

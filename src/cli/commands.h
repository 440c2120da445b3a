// Subcommands of the `moe` binary: each registers its options on the CLI11 app and returns a
// callback that runs it and yields the process exit status.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

namespace moe::cli {

using CommandRunner = std::function<int()>;

// Each returns the runner for its subcommand, bound to options parsed into its own state.
CommandRunner add_run_command(CLI::App& app);
CommandRunner add_inspect_command(CLI::App& app);
CommandRunner add_gen_command(CLI::App& app);
CommandRunner add_tokenize_command(CLI::App& app);
CommandRunner add_detokenize_command(CLI::App& app);
CommandRunner add_train_command(CLI::App& app);
CommandRunner add_train_tokenizer_command(CLI::App& app);
CommandRunner add_bench_command(CLI::App& app);
CommandRunner add_experts_command(CLI::App& app);
CommandRunner add_quantize_command(CLI::App& app);
CommandRunner add_quant_error_command(CLI::App& app);
CommandRunner add_serve_command(CLI::App& app);

// Prints "moe: error: <message>" to stderr and returns the failure exit status.
int report_error(const std::string& message);

// Returns the thread count for -t: the given one, or the number of physical cores.
int resolve_threads(int requested);

}  // namespace moe::cli

// `moe`: run, inspect and generate MoE models. Generated text goes to stdout; everything else
// (progress, timings, errors) to stderr, so scripts can pipe the text.
#include <cstdio>
#include <map>
#include <string>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "core/cpu_features.h"

namespace moe::cli {

int report_error(const std::string& message) {
  std::fprintf(stderr, "moe: error: %s\n", message.c_str());
  return 1;
}

int resolve_threads(int requested) { return requested > 0 ? requested : physical_core_count(); }

}  // namespace moe::cli

int main(int argc, char** argv) {
  CLI::App app{"moe.cpp: Mixture-of-Experts language models on CPU"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "moe.cpp 0.1.0");
  std::map<CLI::App*, moe::cli::CommandRunner> runners;
  auto add = [&](moe::cli::CommandRunner (*adder)(CLI::App&)) {
    const size_t before = app.get_subcommands({}).size();
    moe::cli::CommandRunner runner = adder(app);
    runners[app.get_subcommands({})[before]] = std::move(runner);
  };
  add(moe::cli::add_run_command);
  add(moe::cli::add_inspect_command);
  add(moe::cli::add_gen_command);
  add(moe::cli::add_tokenize_command);
  add(moe::cli::add_detokenize_command);
  add(moe::cli::add_train_command);
  add(moe::cli::add_train_tokenizer_command);
  add(moe::cli::add_bench_command);
  add(moe::cli::add_experts_command);
  add(moe::cli::add_quantize_command);
  add(moe::cli::add_quant_error_command);
  add(moe::cli::add_serve_command);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  for (auto& [sub, runner] : runners) {
    if (sub->parsed()) return runner();
  }
  return moe::cli::report_error("no subcommand given");
}

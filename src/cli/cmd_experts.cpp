// `moe experts`: runs a model over a text and reports which experts each layer's router
// picks: a per-layer utilisation table on stdout and, with --svg, a heat map.
#include <fmt/format.h>

#include <fstream>
#include <iterator>
#include <string>

#include "cli/commands.h"
#include "core/thread_pool.h"
#include "model/context.h"
#include "model/model.h"
#include "model/routing_stats.h"
#include "runtime/routing_report.h"
#include "tokenizer/vocab.h"

namespace moe::cli {

namespace {

struct ExpertsOptions {
  std::string model_path;
  std::string prompt;
  std::string text_file;
  std::string svg_path;
  int64_t window = 256;
  int64_t max_tokens = 16384;
  int threads = 0;
};

Result<std::string> read_text(const ExpertsOptions& o) {
  if (o.text_file.empty()) return o.prompt;
  std::ifstream in(o.text_file, std::ios::binary);
  if (!in) return make_error("cannot read '{}'", o.text_file);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

Status write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary);
  out << content;
  if (!out) return make_error("cannot write '{}'", path);
  return ok_status();
}

int run_experts(const ExpertsOptions& o) {
  auto text = read_text(o);
  if (!text.ok()) return report_error(text.error().message);
  auto model = model::Model::load(o.model_path);
  if (!model.ok()) return report_error(model.error().message);
  const model::HParams& hp = (*model)->hparams();
  if (!hp.moe.is_moe()) return report_error("the model has no routed experts");
  auto vocab = tokenizer::load_vocab((*model)->file());
  if (!vocab.ok()) return report_error(vocab.error().message);
  std::vector<int32_t> tokens = tokenizer::tokenize(*vocab, *text, false, false);
  if (tokens.empty()) return report_error("the text has no tokens");
  if (static_cast<int64_t>(tokens.size()) > o.max_tokens) tokens.resize(static_cast<size_t>(o.max_tokens));
  ThreadPool pool(resolve_threads(o.threads));
  model::ContextParams params;
  params.n_ctx = o.window;
  auto ctx = model::InferenceContext::create(**model, params, pool);
  if (!ctx.ok()) return report_error(ctx.error().message);
  model::RoutingStats stats(hp.n_layer, hp.moe.n_expert);
  (*ctx)->set_routing_stats(&stats);
  // Independent windows of the context size, so long texts fit.
  for (size_t begin = 0; begin < tokens.size(); begin += static_cast<size_t>(o.window)) {
    (*ctx)->reset();
    const size_t end = std::min(tokens.size(), begin + static_cast<size_t>(o.window));
    if (Status s = (*ctx)->eval(std::span<const int32_t>(tokens.data() + begin, end - begin)); !s.ok()) {
      return report_error(s.error().message);
    }
  }
  fmt::print("{} tokens, {} experts per layer, top-{}\n{}", tokens.size(), hp.moe.n_expert, hp.moe.n_expert_used,
             runtime::routing_table(stats));
  if (!o.svg_path.empty()) {
    const std::string title = fmt::format("Expert utilisation: {} ({} tokens)", hp.name.empty() ? hp.arch : hp.name,
                                          tokens.size());
    if (Status s = write_file(o.svg_path, runtime::routing_heatmap_svg(stats, title)); !s.ok()) {
      return report_error(s.error().message);
    }
  }
  return 0;
}

}  // namespace

CommandRunner add_experts_command(CLI::App& app) {
  auto o = std::make_shared<ExpertsOptions>();
  CLI::App* sub = app.add_subcommand("experts", "Report which experts each layer picks over a text");
  sub->add_option("-m,--model", o->model_path, "GGUF model file")->required();
  sub->add_option("-p,--prompt", o->prompt, "Text");
  sub->add_option("-f,--file", o->text_file, "Read the text from a file");
  sub->add_option("--svg", o->svg_path, "Write a heat map (layers x experts) as SVG");
  sub->add_option("-c,--ctx-size", o->window, "Tokens per independent window")->capture_default_str();
  sub->add_option("--max-tokens", o->max_tokens, "Use at most this many tokens of the text")->capture_default_str();
  sub->add_option("-t,--threads", o->threads, "Threads (default: physical cores)");
  return [o] { return run_experts(*o); };
}

}  // namespace moe::cli

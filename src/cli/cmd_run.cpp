// `moe run`: prompt in, generated text streamed to stdout, timings to stderr. Options follow
// llama.cpp's names so existing scripts work.
#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>

#include "cli/commands.h"
#include "cli/kernel_options.h"
#include "cli/store_options.h"
#include "core/log.h"
#include "core/thread_pool.h"
#include "model/context.h"
#include "model/model.h"
#include "runtime/chat.h"
#include "runtime/generate.h"
#include "tokenizer/vocab.h"

namespace moe::cli {

namespace {

struct RunOptions {
  std::string model_path;
  std::string prompt;
  std::string prompt_file;
  std::string logits_out;
  std::string cache_type = "f16";
  int64_t n_predict = 128;
  int64_t n_ctx = 4096;
  int64_t n_batch = 512;
  int threads = 0;
  bool ignore_eos = false;
  bool echo = false;
  bool no_bos = false;
  bool print_ids = false;
  bool chat = false;
  std::string system_prompt;
  runtime::SamplerParams sampling;
  StoreCliOptions store;
  bool print_stats = false;
  KernelOptions kernels;  // --amx, --exact
};

Result<std::string> read_prompt(const RunOptions& o) {
  if (!o.prompt_file.empty()) {
    std::ifstream in(o.prompt_file, std::ios::binary);
    if (!in) return make_error("cannot read prompt file '{}'", o.prompt_file);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  return o.prompt;
}

Status write_logits(const std::string& path, std::span<const float> logits) {
  // Raw little-endian float32, n_vocab values (x86 is little-endian).
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return make_error("cannot open '{}' for writing", path);
  const size_t written = std::fwrite(logits.data(), sizeof(float), logits.size(), f);
  const bool closed = std::fclose(f) == 0;
  if (written != logits.size() || !closed) return make_error("short write to '{}'", path);
  return ok_status();
}

void print_timings(const runtime::GenerateStats& stats) {
  auto rate = [](int64_t n, double s) { return s > 0 ? static_cast<double>(n) / s : 0.0; };
  fmt::print(stderr, "\nprompt: {} tokens in {:.1f} ms ({:.2f} tokens/s)\n", stats.n_prompt,
             stats.prompt_seconds * 1e3, rate(stats.n_prompt, stats.prompt_seconds));
  fmt::print(stderr, "generation: {} tokens in {:.1f} ms ({:.2f} tokens/s), stopped by {}\n", stats.n_generated,
             stats.generate_seconds * 1e3, rate(stats.n_generated, stats.generate_seconds), stats.stop_reason);
}

// Interactive chat: each line on stdin is a user turn; replies stream to stdout. The KV cache
// keeps the conversation's common prefix between turns, so only new tokens are evaluated.
int run_chat(const RunOptions& o, const model::Model& model, const tokenizer::Vocab& vocab,
             model::InferenceContext& ctx) {
  auto session = runtime::ChatSession::create(model.file(), vocab);
  if (!session.ok()) return report_error(session.error().message);
  if (session->used_fallback_template()) MOE_LOG_WARN("moe: the model has no chat template; using ChatML");
  if (!o.system_prompt.empty()) session->add_message("system", o.system_prompt);
  runtime::GenerateParams params;
  params.n_predict = o.n_predict;
  params.sampling = o.sampling;
  std::vector<int32_t> evaluated;
  std::string line;
  for (;;) {
    std::fputs("\n> ", stderr);
    if (!std::getline(std::cin, line) || line == "/exit") break;
    if (line.empty()) continue;
    session->add_message("user", line);
    auto tokens = session->prompt_tokens();
    if (!tokens.ok()) return report_error(tokens.error().message);
    // Reuse the cached prefix; at least one token must be evaluated to get fresh logits.
    const size_t keep = std::min(runtime::common_prefix(evaluated, *tokens), tokens->size() - 1);
    ctx.truncate(static_cast<int64_t>(keep));
    std::string reply;
    auto on_text = [&](const std::string& piece) {
      reply += piece;
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
      return true;
    };
    const std::span<const int32_t> suffix(tokens->data() + keep, tokens->size() - keep);
    auto stats = runtime::generate(ctx, vocab, suffix, params, on_text);
    if (!stats.ok()) return report_error(stats.error().message);
    evaluated.assign(tokens->begin(), tokens->end());
    if (!stats->tokens.empty()) evaluated.insert(evaluated.end(), stats->tokens.begin(), stats->tokens.end() - 1);
    session->add_message("assistant", reply);
    std::fputc('\n', stdout);
  }
  return 0;
}

int run(const RunOptions& o) {
  auto prompt_text = read_prompt(o);
  if (!prompt_text.ok()) return report_error(prompt_text.error().message);
  if (o.cache_type != "f16" && o.cache_type != "f32") {
    return report_error(fmt::format("unsupported cache type '{}' (f16 or f32)", o.cache_type));
  }
  auto model = model::Model::load(o.model_path);
  if (!model.ok()) return report_error(model.error().message);
  auto vocab = tokenizer::load_vocab((*model)->file());
  if (!vocab.ok()) return report_error(vocab.error().message);
  if (vocab->size() != (*model)->hparams().n_vocab) {
    return report_error(fmt::format("vocabulary has {} tokens but the model expects {}", vocab->size(),
                                    (*model)->hparams().n_vocab));
  }
  std::vector<int32_t> prompt = tokenizer::tokenize(*vocab, *prompt_text, /*add_special=*/!o.no_bos,
                                                    /*parse_special=*/false);
  ThreadPool pool(resolve_threads(o.threads));
  model::ContextParams cparams;
  cparams.n_ctx = o.n_ctx;
  cparams.n_ubatch = o.n_batch;
  cparams.kv_type = o.cache_type == "f32" ? model::KvType::kF32 : model::KvType::kF16;
  auto ctx = model::InferenceContext::create(**model, cparams, pool);
  if (!ctx.ok()) return report_error(ctx.error().message);
  auto store = make_store(**model, o.store, (*ctx)->kv_cache().bytes(), o.n_batch, o.n_ctx);
  if (!store.ok()) return report_error(store.error().message);
  (*ctx)->set_expert_source(store->get());
  if (o.chat) return run_chat(o, **model, *vocab, **ctx);
  MOE_LOG_INFO("moe: {} ({}), {} prompt tokens, {} threads", o.model_path, (*model)->hparams().arch, prompt.size(),
               pool.size());

  if (o.echo) {
    std::fwrite(prompt_text->data(), 1, prompt_text->size(), stdout);
    std::fflush(stdout);
  }
  runtime::GenerateParams params;
  params.n_predict = o.n_predict;
  params.ignore_eos = o.ignore_eos;
  params.sampling = o.sampling;
  Status logits_status;
  auto on_logits = [&](std::span<const float> logits) {
    if (!o.logits_out.empty()) logits_status = write_logits(o.logits_out, logits);
  };
  auto on_text = [](const std::string& piece) {
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
    return true;
  };
  auto stats = runtime::generate(**ctx, *vocab, prompt, params, on_text, on_logits);
  if (!stats.ok()) return report_error(stats.error().message);
  if (!logits_status.ok()) return report_error(logits_status.error().message);
  if (o.print_ids) {
    std::string ids;
    for (int32_t t : prompt) ids += fmt::format("{} ", t);
    fmt::print(stderr, "\nprompt ids: {}\n", ids);
    ids.clear();
    for (int32_t t : stats->tokens) ids += fmt::format("{} ", t);
    fmt::print(stderr, "generated ids: {}\n", ids);
  }
  print_timings(*stats);
  if (o.print_stats) print_store_stats(store->get());
  return 0;
}

}  // namespace

CommandRunner add_run_command(CLI::App& app) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* sub = app.add_subcommand("run", "Generate text from a prompt");
  sub->add_option("-m,--model", o->model_path, "GGUF model file")->required();
  sub->add_option("-p,--prompt", o->prompt, "Prompt text");
  sub->add_option("-f,--file", o->prompt_file, "Read the prompt from a file");
  sub->add_option("-n,--n-predict", o->n_predict, "Tokens to generate (-1: until EOS)")->capture_default_str();
  sub->add_option("-t,--threads", o->threads, "Threads (default: physical cores)");
  sub->add_option("-c,--ctx-size", o->n_ctx, "Context size")->capture_default_str();
  sub->add_option("-b,--batch-size", o->n_batch, "Prompt tokens per forward pass")->capture_default_str();
  sub->add_option("--temp", o->sampling.temperature, "Temperature (0: greedy)")->capture_default_str();
  sub->add_option("--top-k", o->sampling.top_k, "Top-k (0: off)")->capture_default_str();
  sub->add_option("--top-p", o->sampling.top_p, "Top-p (1: off)")->capture_default_str();
  sub->add_option("--min-p", o->sampling.min_p, "Min-p (0: off)")->capture_default_str();
  sub->add_option("--repeat-penalty", o->sampling.repeat_penalty, "Repetition penalty (1: off)")
      ->capture_default_str();
  sub->add_option("--repeat-last-n", o->sampling.repeat_last_n, "Tokens the penalty looks back on")
      ->capture_default_str();
  sub->add_option("--seed", o->sampling.seed, "Sampling seed")->capture_default_str();
  sub->add_option("--logits-out", o->logits_out, "Write the last prompt position's logits (raw f32 LE)");
  sub->add_option("--cache-type-k,--ctk", o->cache_type, "KV cache type (keys and values): f16 or f32")->capture_default_str();
  sub->add_flag("--ignore-eos", o->ignore_eos, "Keep generating past end-of-sequence tokens");
  sub->add_flag("--echo", o->echo, "Print the prompt before the generated text");
  sub->add_flag("--no-bos", o->no_bos, "Do not add the BOS token");
  sub->add_flag("--print-ids", o->print_ids, "Print prompt and generated token ids to stderr");
  sub->add_flag("--chat,-i,--interactive", o->chat, "Interactive chat with the model's chat template (stdin)");
  sub->add_option("--system", o->system_prompt, "System message for --chat");
  add_store_stats_flag(*sub, o->print_stats);
  add_store_options(*sub, o->store);
  add_kernel_options(*sub, o->kernels);
  return [o] {
    apply_kernel_options(o->kernels);
    return run(*o);
  };
}

}  // namespace moe::cli

#include "runtime/generate.h"

#include <chrono>

namespace moe::runtime {

namespace {
double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}
}  // namespace

Result<GenerateStats> generate(model::InferenceContext& ctx, const tokenizer::Vocab& vocab,
                               std::span<const int32_t> prompt, const GenerateParams& params,
                               const TextSink& on_text, const LogitsSink& on_prompt_logits) {
  if (prompt.empty()) return make_error("the prompt is empty (no tokens to evaluate)");
  GenerateStats stats;
  stats.n_prompt = static_cast<int64_t>(prompt.size());
  const auto prompt_start = std::chrono::steady_clock::now();
  MOE_TRY(ctx.eval(prompt));
  stats.prompt_seconds = seconds_since(prompt_start);
  if (on_prompt_logits) on_prompt_logits(ctx.logits());

  Sampler sampler(params.sampling);
  for (int32_t token : prompt) sampler.accept(token);
  tokenizer::Detokenizer detokenizer(vocab);
  const auto gen_start = std::chrono::steady_clock::now();
  stats.stop_reason = "length";
  for (int64_t i = 0; params.n_predict < 0 || i < params.n_predict; ++i) {
    const int32_t token = sampler.sample(ctx.logits());
    sampler.accept(token);
    ++stats.n_generated;
    stats.tokens.push_back(token);
    if (!params.ignore_eos && vocab.is_eog(token)) {
      stats.stop_reason = "eos";
      break;
    }
    const std::string piece = detokenizer.push(token);
    if (!piece.empty() && !on_text(piece)) {
      stats.stop_reason = "stop";
      break;
    }
    const bool last = params.n_predict >= 0 && i + 1 == params.n_predict;
    if (last) break;
    if (ctx.n_past() >= ctx.n_ctx()) {
      stats.stop_reason = "context";
      break;
    }
    const int32_t next[1] = {token};
    MOE_TRY(ctx.eval(next));
  }
  if (const std::string tail = detokenizer.flush(); !tail.empty()) on_text(tail);
  stats.generate_seconds = seconds_since(gen_start);
  return stats;
}

}  // namespace moe::runtime

// The generation loop shared by `moe run` and later the server: evaluate the prompt, then
// sample, stream and evaluate one token at a time until n_predict, EOS or a stop request.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "core/result.h"
#include "model/context.h"
#include "runtime/sampler.h"
#include "tokenizer/vocab.h"

namespace moe::runtime {

struct GenerateParams {
  int64_t n_predict = 128;  // < 0: until EOS or the context is full
  bool ignore_eos = false;
  SamplerParams sampling;
};

struct GenerateStats {
  int64_t n_prompt = 0;
  double prompt_seconds = 0.0;
  int64_t n_generated = 0;
  double generate_seconds = 0.0;
  std::string stop_reason;  // "length", "eos", "context", "stop"
  std::vector<int32_t> tokens;  // the generated token ids
};

// Called with each newly completed piece of text (never a partial UTF-8 sequence). Return false
// to stop generating.
using TextSink = std::function<bool(const std::string& piece)>;

// Called once after the prompt is evaluated, with the last prompt position's logits.
using LogitsSink = std::function<void(std::span<const float> logits)>;

// Runs prompt + generation in `ctx` (which must be empty or hold a prefix of the prompt's
// history: generation continues at ctx.n_past()).
Result<GenerateStats> generate(model::InferenceContext& ctx, const tokenizer::Vocab& vocab,
                               std::span<const int32_t> prompt, const GenerateParams& params,
                               const TextSink& on_text, const LogitsSink& on_prompt_logits = {});

}  // namespace moe::runtime

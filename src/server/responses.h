// The OpenAI response shapes: completion and chat completion objects, their streamed chunks,
// usage and log-probabilities.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/scheduler.h"
#include "tokenizer/vocab.h"

namespace moe::server {

// What every object of one response shares.
struct ResponseHeader {
  bool chat = false;
  std::string id;  // "chatcmpl-..." or "cmpl-..."
  int64_t created = 0;
  std::string model;
};

// Returns a header with a fresh random id and the current time.
ResponseHeader make_response_header(bool chat, const std::string& model);

// Returns compact JSON text. Invalid UTF-8 (a model can emit stray bytes) becomes U+FFFD rather
// than an exception.
std::string dump_json(const nlohmann::json& value);

nlohmann::json usage_json(int64_t n_prompt, int64_t n_completion);

// Returns the "logprobs" object of a choice: chat's {"content": [...]} or the completions
// {"tokens", "token_logprobs", "top_logprobs", "text_offset"} (offsets from `text_offset`).
nlohmann::json logprobs_json(const ResponseHeader& header, const tokenizer::Vocab& vocab,
                             const std::vector<TokenLogprobs>& tokens, int64_t text_offset);

// One streamed chunk: text (or the assistant role for chat's first chunk) and/or a finish
// reason; `logprobs` may be null.
nlohmann::json chunk_json(const ResponseHeader& header, int index, const std::string* text, bool with_role,
                          const nlohmann::json& logprobs, const std::string& finish_reason, bool include_usage);

// The final chunk of a stream with stream_options.include_usage: no choices, the usage.
nlohmann::json usage_chunk_json(const ResponseHeader& header, int64_t n_prompt, int64_t n_completion);

// One finished choice of a non-streamed response.
struct FinishedChoice {
  std::string text;
  std::vector<TokenLogprobs> logprobs;
  std::string finish_reason;
};

nlohmann::json completion_json(const ResponseHeader& header, const std::vector<FinishedChoice>& choices,
                               bool with_logprobs, const tokenizer::Vocab& vocab, int64_t n_prompt,
                               int64_t n_completion);

// "stop" and "length" pass through; "cancelled" (server shutting down) is reported as "length",
// the closest OpenAI value for output cut short.
std::string openai_finish_reason(const std::string& reason);

}  // namespace moe::server

// Parsing and validation of OpenAI completion and chat completion requests. Every field is
// type- and range-checked; a bad one gives a 400 naming it. Unknown fields are ignored, as the
// OpenAI API does for forward compatibility.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/sampler.h"
#include "server/api_error.h"

namespace moe::server {

struct ChatMessage {
  std::string role;
  std::string content;
};

struct CompletionRequest {
  bool chat = false;
  std::string model;
  std::vector<ChatMessage> messages;    // chat
  std::string prompt;                   // completions, as text
  std::vector<int32_t> prompt_tokens;   // completions, given as token ids
  bool prompt_is_tokens = false;
  int64_t max_tokens = -1;              // < 0: until EOS or the end of the context
  bool stream = false;
  bool include_usage = false;           // stream_options.include_usage
  std::vector<std::string> stop;
  int n = 1;
  bool logprobs = false;
  int top_logprobs = 0;                 // alternatives per token when logprobs
  bool seed_given = false;
  bool ignore_eos = false;              // llama-server's extra field: generate past end-of-sequence
  std::vector<std::pair<int32_t, float>> logit_bias;  // token id -> added to its logit (-100 bans it)
  runtime::SamplerParams sampling;
};

// Limits the server applies while parsing.
struct RequestLimits {
  int max_n = 8;             // choices per request
  int max_stop = 16;         // stop strings
  int max_top_logprobs = 20;
};

// Parses `body` (already valid JSON) into `out`; returns the error for the first bad field.
std::optional<ApiError> parse_completion_request(const nlohmann::json& body, bool chat, const RequestLimits& limits,
                                                 CompletionRequest& out);

// Parses the raw request body: a 400 naming the position when it is not JSON or not an object.
std::optional<ApiError> parse_json_body(const std::string& text, nlohmann::json& out);

}  // namespace moe::server

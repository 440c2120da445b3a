#include "server/request.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>
#include <limits>

namespace moe::server {

namespace {

using json = nlohmann::json;
using MaybeError = std::optional<ApiError>;

const char* type_name(const json& value) {
  switch (value.type()) {
    case json::value_t::string: return "a string";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "an integer";
    case json::value_t::number_float: return "a number";
    case json::value_t::array: return "an array";
    case json::value_t::object: return "an object";
    case json::value_t::null: return "null";
    default: return "an unsupported value";
  }
}

ApiError wrong_type(const std::string& name, const char* expected, const json& value) {
  return invalid_field(name, fmt::format("'{}' must be {}, got {}", name, expected, type_name(value)));
}

// Returns the field, or null when it is absent or JSON null (OpenAI treats both as "not set").
const json* find_field(const json& body, const char* name) {
  const auto it = body.find(name);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

MaybeError read_bool(const json& body, const char* name, bool& out) {
  const json* v = find_field(body, name);
  if (v == nullptr) return std::nullopt;
  if (!v->is_boolean()) return wrong_type(name, "a boolean", *v);
  out = v->get<bool>();
  return std::nullopt;
}

MaybeError read_int(const json& body, const char* name, int64_t lo, int64_t hi, int64_t& out) {
  const json* v = find_field(body, name);
  if (v == nullptr) return std::nullopt;
  if (!v->is_number_integer()) return wrong_type(name, "an integer", *v);
  // Unsigned values above int64's range and signed ones outside [lo, hi] are both out of range.
  const bool fits = v->is_number_unsigned() ? v->get<uint64_t>() <= static_cast<uint64_t>(hi) : true;
  const int64_t value = fits ? v->get<int64_t>() : hi;
  if (!fits || value < lo || value > hi) {
    return invalid_field(name, fmt::format("'{}' must be between {} and {}, got {}", name, lo, hi, v->dump()));
  }
  out = value;
  return std::nullopt;
}

MaybeError read_number(const json& body, const char* name, double lo, double hi, float& out) {
  const json* v = find_field(body, name);
  if (v == nullptr) return std::nullopt;
  if (!v->is_number()) return wrong_type(name, "a number", *v);
  const double value = v->get<double>();
  if (!std::isfinite(value) || value < lo || value > hi) {
    return invalid_field(name, fmt::format("'{}' must be between {} and {}, got {}", name, lo, hi, v->dump()));
  }
  out = static_cast<float>(value);
  return std::nullopt;
}

// "content": a string, an array of {"type": "text", "text": ...} parts, or null (assistant turns
// that only called tools).
MaybeError read_content(const json& message, const std::string& where, ChatMessage& out) {
  const std::string name = where + ".content";
  const auto it = message.find("content");
  if (it == message.end() || it->is_null()) {
    if (out.role == "assistant") return std::nullopt;
    return invalid_field(name, fmt::format("'{}' is required", name));
  }
  if (it->is_string()) {
    out.content = it->get<std::string>();
    return std::nullopt;
  }
  if (!it->is_array()) return wrong_type(name, "a string or an array of content parts", *it);
  for (size_t i = 0; i < it->size(); ++i) {
    const json& part = (*it)[i];
    const std::string part_name = fmt::format("{}[{}]", name, i);
    if (!part.is_object()) return wrong_type(part_name, "an object", part);
    const auto type = part.find("type");
    if (type == part.end() || !type->is_string() || *type != "text") {
      return invalid_field(part_name + ".type", fmt::format("'{}.type' must be \"text\" (only text is supported)", part_name));
    }
    const auto text = part.find("text");
    if (text == part.end() || !text->is_string()) {
      return invalid_field(part_name + ".text", fmt::format("'{}.text' must be a string", part_name));
    }
    out.content += text->get<std::string>();
  }
  return std::nullopt;
}

MaybeError read_messages(const json& body, CompletionRequest& out) {
  const json* v = find_field(body, "messages");
  if (v == nullptr) return invalid_field("messages", "'messages' is required");
  if (!v->is_array()) return wrong_type("messages", "an array", *v);
  if (v->empty()) return invalid_field("messages", "'messages' must not be empty");
  for (size_t i = 0; i < v->size(); ++i) {
    const json& m = (*v)[i];
    const std::string where = fmt::format("messages[{}]", i);
    if (!m.is_object()) return wrong_type(where, "an object", m);
    const auto role = m.find("role");
    if (role == m.end() || !role->is_string()) {
      return invalid_field(where + ".role", fmt::format("'{}.role' must be a string", where));
    }
    ChatMessage message;
    message.role = role->get<std::string>();
    if (message.role != "system" && message.role != "user" && message.role != "assistant" &&
        message.role != "developer" && message.role != "tool") {
      return invalid_field(where + ".role",
                           fmt::format("'{}.role' must be one of system, developer, user, assistant, tool; got '{}'",
                                       where, message.role));
    }
    if (auto error = read_content(m, where, message)) return error;
    out.messages.push_back(std::move(message));
  }
  return std::nullopt;
}

// "prompt": a string, an array holding one string, or an array of token ids.
MaybeError read_prompt(const json& body, CompletionRequest& out) {
  const json* v = find_field(body, "prompt");
  if (v == nullptr) return invalid_field("prompt", "'prompt' is required");
  if (v->is_string()) {
    out.prompt = v->get<std::string>();
    return std::nullopt;
  }
  if (!v->is_array()) return wrong_type("prompt", "a string or an array", *v);
  if (v->size() == 1 && (*v)[0].is_string()) {
    out.prompt = (*v)[0].get<std::string>();
    return std::nullopt;
  }
  if (v->empty()) return invalid_field("prompt", "'prompt' must not be empty");
  for (const json& t : *v) {
    if (!t.is_number_integer()) {
      return invalid_field("prompt", "'prompt' must be a string, one string in an array, or an array of token ids");
    }
    const int64_t id = t.is_number_unsigned() && t.get<uint64_t>() > INT32_MAX ? -1 : t.get<int64_t>();
    if (id < 0 || id > INT32_MAX) return invalid_field("prompt", fmt::format("'prompt' token id {} is out of range", t.dump()));
    out.prompt_tokens.push_back(static_cast<int32_t>(id));
  }
  out.prompt_is_tokens = true;
  return std::nullopt;
}

MaybeError read_stop(const json& body, const RequestLimits& limits, CompletionRequest& out) {
  const json* v = find_field(body, "stop");
  if (v == nullptr) return std::nullopt;
  if (v->is_string()) {
    if (!v->get<std::string>().empty()) out.stop.push_back(v->get<std::string>());
    return std::nullopt;
  }
  if (!v->is_array()) return wrong_type("stop", "a string or an array of strings", *v);
  if (static_cast<int>(v->size()) > limits.max_stop) {
    return invalid_field("stop", fmt::format("'stop' may hold at most {} strings", limits.max_stop));
  }
  for (const json& s : *v) {
    if (!s.is_string()) return invalid_field("stop", "'stop' must be a string or an array of strings");
    if (!s.get<std::string>().empty()) out.stop.push_back(s.get<std::string>());
  }
  return std::nullopt;
}

// "logit_bias": {"token id": bias in [-100, 100]}. Ids are checked against the vocabulary later.
MaybeError read_logit_bias(const json& body, CompletionRequest& out) {
  const json* v = find_field(body, "logit_bias");
  if (v == nullptr) return std::nullopt;
  if (!v->is_object()) return wrong_type("logit_bias", "an object", *v);
  for (const auto& [key, bias] : v->items()) {
    char* end = nullptr;
    const long id = std::strtol(key.c_str(), &end, 10);
    if (key.empty() || *end != '\0' || id < 0 || id > INT32_MAX) {
      return invalid_field("logit_bias", fmt::format("'logit_bias' keys must be token ids, got '{}'", key));
    }
    if (!bias.is_number() || bias.get<double>() < -100.0 || bias.get<double>() > 100.0) {
      return invalid_field("logit_bias", fmt::format("'logit_bias' values must be numbers in [-100, 100], got {}",
                                                     bias.dump()));
    }
    out.logit_bias.emplace_back(static_cast<int32_t>(id), bias.get<float>());
  }
  return std::nullopt;
}

MaybeError read_streaming(const json& body, CompletionRequest& out) {
  if (auto e = read_bool(body, "stream", out.stream)) return e;
  const json* options = find_field(body, "stream_options");
  if (options == nullptr) return std::nullopt;
  if (!options->is_object()) return wrong_type("stream_options", "an object", *options);
  const auto usage = options->find("include_usage");
  if (usage != options->end() && !usage->is_null()) {
    if (!usage->is_boolean()) return wrong_type("stream_options.include_usage", "a boolean", *usage);
    out.include_usage = usage->get<bool>();
  }
  return std::nullopt;
}

MaybeError read_lengths(const json& body, const RequestLimits& limits, CompletionRequest& out) {
  constexpr int64_t kMaxTokens = int64_t{1} << 24;
  for (const char* name : {"max_tokens", "max_completion_tokens"}) {
    if (auto e = read_int(body, name, 1, kMaxTokens, out.max_tokens)) return e;
  }
  int64_t n = 1;
  if (auto e = read_int(body, "n", 1, limits.max_n, n)) return e;
  out.n = static_cast<int>(n);
  return std::nullopt;
}

MaybeError read_logprobs(const json& body, bool chat, const RequestLimits& limits, CompletionRequest& out) {
  int64_t top = 0;
  if (chat) {
    if (auto e = read_bool(body, "logprobs", out.logprobs)) return e;
    if (auto e = read_int(body, "top_logprobs", 0, limits.max_top_logprobs, top)) return e;
    if (find_field(body, "top_logprobs") != nullptr && !out.logprobs) {
      return invalid_field("top_logprobs", "'top_logprobs' requires 'logprobs' to be true");
    }
  } else {
    // Completions: "logprobs" is the number of alternatives (0..5), absent for none.
    if (auto e = read_int(body, "logprobs", 0, 5, top)) return e;
    out.logprobs = find_field(body, "logprobs") != nullptr;
  }
  out.top_logprobs = static_cast<int>(top);
  return std::nullopt;
}

MaybeError read_sampling(const json& body, CompletionRequest& out) {
  runtime::SamplerParams& s = out.sampling;
  // OpenAI's defaults for its fields; llama-server's for the extra ones (top_k, min_p).
  s.temperature = 1.0f;
  s.top_p = 1.0f;
  s.top_k = 40;
  s.min_p = 0.05f;
  s.repeat_penalty = 1.0f;
  if (auto e = read_number(body, "temperature", 0.0, 2.0, s.temperature)) return e;
  if (auto e = read_number(body, "top_p", 0.0, 1.0, s.top_p)) return e;
  if (auto e = read_number(body, "presence_penalty", -2.0, 2.0, s.presence_penalty)) return e;
  if (auto e = read_number(body, "frequency_penalty", -2.0, 2.0, s.frequency_penalty)) return e;
  if (auto e = read_number(body, "min_p", 0.0, 1.0, s.min_p)) return e;
  if (auto e = read_number(body, "repetition_penalty", 0.01, 10.0, s.repeat_penalty)) return e;
  int64_t top_k = s.top_k;
  if (auto e = read_int(body, "top_k", 0, std::numeric_limits<int32_t>::max(), top_k)) return e;
  s.top_k = static_cast<int32_t>(top_k);
  int64_t seed = 0;
  if (auto e = read_int(body, "seed", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(), seed)) {
    return e;
  }
  out.seed_given = find_field(body, "seed") != nullptr;
  // The sampler's seed is 32 bits: fold the high half in so large seeds still differ.
  s.seed = static_cast<uint32_t>(static_cast<uint64_t>(seed) ^ (static_cast<uint64_t>(seed) >> 32));
  return std::nullopt;
}

}  // namespace

std::optional<ApiError> parse_json_body(const std::string& text, nlohmann::json& out) {
  try {
    out = json::parse(text);
  } catch (const json::parse_error& e) {
    return ApiError{400, fmt::format("the request body is not valid JSON: {}", e.what()), "invalid_request_error", "",
                    "invalid_json"};
  }
  if (!out.is_object()) return ApiError{400, "the request body must be a JSON object", "invalid_request_error", "", ""};
  return std::nullopt;
}

std::optional<ApiError> parse_completion_request(const nlohmann::json& body, bool chat, const RequestLimits& limits,
                                                 CompletionRequest& out) {
  out = CompletionRequest{};
  out.chat = chat;
  if (const json* model = find_field(body, "model")) {
    if (!model->is_string()) return wrong_type("model", "a string", *model);
    out.model = model->get<std::string>();
  }
  if (auto e = chat ? read_messages(body, out) : read_prompt(body, out)) return e;
  if (auto e = read_lengths(body, limits, out)) return e;
  if (auto e = read_streaming(body, out)) return e;
  if (auto e = read_bool(body, "ignore_eos", out.ignore_eos)) return e;
  if (auto e = read_logit_bias(body, out)) return e;
  if (auto e = read_stop(body, limits, out)) return e;
  if (auto e = read_logprobs(body, chat, limits, out)) return e;
  if (auto e = read_sampling(body, out)) return e;
  return std::nullopt;
}

}  // namespace moe::server

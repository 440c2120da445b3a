#include "server/responses.h"

#include <fmt/format.h>

#include <chrono>
#include <random>

#include "tokenizer/tokenizer.h"

namespace moe::server {

namespace {

using json = nlohmann::json;

std::string random_hex(int n) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string out;
  for (int i = 0; i < n; ++i) out += "0123456789abcdef"[rng() % 16];
  return out;
}

json bytes_json(const std::string& text) {
  json bytes = json::array();
  for (unsigned char c : text) bytes.push_back(static_cast<int>(c));
  return bytes;
}

// Returns `text` if it is valid UTF-8, else one U+FFFD.
std::string utf8_or_replacement(const std::string& text) {
  try {
    (void)json(text).dump();
    return text;
  } catch (const json::type_error&) {
    return "\xEF\xBF\xBD";
  }
}

// Token text for log-probability listings; a token that is part of a UTF-8 character is not
// valid UTF-8 alone, so it is given as \uFFFD there (its raw bytes are in "bytes").
std::string token_text(const tokenizer::Vocab& vocab, int32_t id) {
  const std::string piece = tokenizer::token_to_piece(vocab, id, /*render_special=*/true);
  return utf8_or_replacement(piece);
}

json chat_logprobs(const tokenizer::Vocab& vocab, const std::vector<TokenLogprobs>& tokens) {
  json content = json::array();
  for (const TokenLogprobs& t : tokens) {
    json top = json::array();
    for (const runtime::TokenLogprob& alt : t.top) {
      top.push_back({{"token", token_text(vocab, alt.id)},
                     {"logprob", alt.logprob},
                     {"bytes", bytes_json(tokenizer::token_to_piece(vocab, alt.id, true))}});
    }
    content.push_back({{"token", token_text(vocab, t.token)},
                       {"logprob", t.logprob},
                       {"bytes", bytes_json(tokenizer::token_to_piece(vocab, t.token, true))},
                       {"top_logprobs", top}});
  }
  return {{"content", content}};
}

json completion_logprobs(const tokenizer::Vocab& vocab, const std::vector<TokenLogprobs>& tokens, int64_t offset) {
  json texts = json::array(), logprobs = json::array(), tops = json::array(), offsets = json::array();
  for (const TokenLogprobs& t : tokens) {
    const std::string text = token_text(vocab, t.token);
    texts.push_back(text);
    logprobs.push_back(t.logprob);
    json top = json::object();
    for (const runtime::TokenLogprob& alt : t.top) top[token_text(vocab, alt.id)] = alt.logprob;
    tops.push_back(top);
    offsets.push_back(offset);
    offset += static_cast<int64_t>(tokenizer::token_to_piece(vocab, t.token, false).size());
  }
  return {{"tokens", texts}, {"token_logprobs", logprobs}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

}  // namespace

ResponseHeader make_response_header(bool chat, const std::string& model) {
  ResponseHeader h;
  h.chat = chat;
  h.id = (chat ? "chatcmpl-" : "cmpl-") + random_hex(24);
  h.created = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  h.model = model;
  return h;
}

std::string dump_json(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }

json usage_json(int64_t n_prompt, int64_t n_completion) {
  return {{"prompt_tokens", n_prompt}, {"completion_tokens", n_completion}, {"total_tokens", n_prompt + n_completion}};
}

json logprobs_json(const ResponseHeader& header, const tokenizer::Vocab& vocab, const std::vector<TokenLogprobs>& tokens,
                   int64_t text_offset) {
  return header.chat ? chat_logprobs(vocab, tokens) : completion_logprobs(vocab, tokens, text_offset);
}

std::string openai_finish_reason(const std::string& reason) { return reason == "stop" ? "stop" : "length"; }

json chunk_json(const ResponseHeader& header, int index, const std::string* text, bool with_role, const json& logprobs,
                const std::string& finish_reason, bool include_usage) {
  json choice = {{"index", index}};
  if (header.chat) {
    json delta = json::object();
    if (with_role) delta["role"] = "assistant";
    if (text != nullptr) delta["content"] = *text;
    choice["delta"] = delta;
  } else {
    choice["text"] = text != nullptr ? *text : "";
  }
  choice["logprobs"] = logprobs;
  choice["finish_reason"] = finish_reason.empty() ? json(nullptr) : json(finish_reason);
  json chunk = {{"id", header.id},
                {"object", header.chat ? "chat.completion.chunk" : "text_completion"},
                {"created", header.created},
                {"model", header.model},
                {"system_fingerprint", "moe.cpp"},
                {"choices", json::array({choice})}};
  if (include_usage) chunk["usage"] = nullptr;
  return chunk;
}

json usage_chunk_json(const ResponseHeader& header, int64_t n_prompt, int64_t n_completion) {
  return {{"id", header.id},
          {"object", header.chat ? "chat.completion.chunk" : "text_completion"},
          {"created", header.created},
          {"model", header.model},
          {"system_fingerprint", "moe.cpp"},
          {"choices", json::array()},
          {"usage", usage_json(n_prompt, n_completion)}};
}

json completion_json(const ResponseHeader& header, const std::vector<FinishedChoice>& choices, bool with_logprobs,
                     const tokenizer::Vocab& vocab, int64_t n_prompt, int64_t n_completion) {
  json list = json::array();
  for (size_t i = 0; i < choices.size(); ++i) {
    const FinishedChoice& c = choices[i];
    json choice = {{"index", i}};
    if (header.chat) {
      choice["message"] = {{"role", "assistant"}, {"content", c.text}};
    } else {
      choice["text"] = c.text;
    }
    choice["logprobs"] = with_logprobs ? logprobs_json(header, vocab, c.logprobs, 0) : json(nullptr);
    choice["finish_reason"] = openai_finish_reason(c.finish_reason);
    list.push_back(choice);
  }
  return {{"id", header.id},
          {"object", header.chat ? "chat.completion" : "text_completion"},
          {"created", header.created},
          {"model", header.model},
          {"system_fingerprint", "moe.cpp"},
          {"choices", list},
          {"usage", usage_json(n_prompt, n_completion)}};
}

}  // namespace moe::server

// A chat conversation rendered with the model's chat template (tokenizer.chat_template), turned
// into prompt tokens turn by turn. Shared by `moe run --chat` and the server.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "formats/gguf.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/vocab.h"

namespace moe::runtime {

class ChatSession {
 public:
  // Reads the template from the model's metadata; a model without one gets ChatML (with
  // `used_fallback_template()` true so callers can warn).
  static Result<ChatSession> create(const formats::GgufFile& file, const tokenizer::Vocab& vocab);

  void add_message(const std::string& role, const std::string& content);
  // Returns the whole conversation rendered with the generation prompt, tokenized with special
  // tokens recognised (BOS added only if the template did not write it).
  Result<std::vector<int32_t>> prompt_tokens() const;
  bool used_fallback_template() const { return fallback_; }
  const nlohmann::ordered_json& messages() const { return messages_; }

 private:
  ChatSession(tokenizer::ChatTemplate tmpl, const tokenizer::Vocab& vocab, bool fallback)
      : template_(std::move(tmpl)), vocab_(&vocab), fallback_(fallback) {}

  tokenizer::ChatTemplate template_;
  const tokenizer::Vocab* vocab_;
  bool fallback_;
  nlohmann::ordered_json messages_ = nlohmann::ordered_json::array();
};

// Returns how many leading tokens two sequences share (the reusable KV-cache prefix).
size_t common_prefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b);

}  // namespace moe::runtime

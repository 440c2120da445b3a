#include "runtime/chat.h"

#include <algorithm>

namespace moe::runtime {

namespace {

// ChatML, the format most instruction-tuned models use; for models without a template.
constexpr const char* kChatMlTemplate =
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

std::string token_text_or_empty(const tokenizer::Vocab& vocab, int32_t id) {
  return vocab.is_valid(id) ? vocab.token_text(id) : std::string();
}

}  // namespace

Result<ChatSession> ChatSession::create(const formats::GgufFile& file, const tokenizer::Vocab& vocab) {
  MOE_ASSIGN_OR_RETURN(auto source, file.get_string_opt("tokenizer.chat_template"));
  const bool fallback = !source.has_value();
  auto parsed = tokenizer::ChatTemplate::parse(fallback ? std::string(kChatMlTemplate) : *source);
  if (!parsed.ok()) return make_error("the model's chat template cannot be used: {}", parsed.error().message);
  return ChatSession(std::move(parsed).value(), vocab, fallback);
}

void ChatSession::add_message(const std::string& role, const std::string& content) {
  messages_.push_back({{"role", role}, {"content", content}});
}

Result<std::vector<int32_t>> ChatSession::prompt_tokens() const {
  tokenizer::ChatTemplateInputs inputs;
  inputs.messages = messages_;
  inputs.add_generation_prompt = true;
  inputs.bos_token = token_text_or_empty(*vocab_, vocab_->bos());
  inputs.eos_token = token_text_or_empty(*vocab_, vocab_->eos());
  MOE_ASSIGN_OR_RETURN(std::string prompt, template_.render(inputs));
  const bool template_wrote_bos = !inputs.bos_token.empty() && prompt.rfind(inputs.bos_token, 0) == 0;
  return tokenizer::tokenize(*vocab_, prompt, /*add_special=*/!template_wrote_bos, /*parse_special=*/true);
}

size_t common_prefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  const size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

}  // namespace moe::runtime

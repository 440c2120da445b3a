// Chat templates: renders a conversation into a prompt with the model's Jinja2 chat template
// (tokenizer.chat_template), passing the variables Hugging Face's apply_chat_template passes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "tokenizer/jinja/template.h"

namespace moe::tokenizer {

struct ChatTemplateInputs {
  // OpenAI-style messages: [{"role", "content", "tool_calls", "name", "tool_call_id",
  // "reasoning_content", ...}], passed to the template as they are. ordered_json keeps key
  // order, which tojson output depends on (parse requests with nlohmann::ordered_json).
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  // Tool schemas (a list), or null for none; the template sees None then, as with HF.
  nlohmann::ordered_json tools;
  bool add_generation_prompt = false;
  std::string bos_token;
  std::string eos_token;
  // More template variables (enable_thinking, documents, reasoning_effort, ...); they override
  // the ones above on a name clash.
  nlohmann::ordered_json extra_context = nlohmann::ordered_json::object();
  // The time strftime_now() reports, in seconds since the epoch (UTC); absent: now, local time.
  std::optional<int64_t> now_unix_seconds;
};

// Returns the variables a template sees for `inputs` (messages, tools, documents,
// add_generation_prompt, bos_token, eos_token, then extra_context).
nlohmann::ordered_json build_chat_template_context(const ChatTemplateInputs& inputs);

// A parsed chat template, for rendering many conversations with one parse.
class ChatTemplate {
 public:
  // Returns the parsed template or an error naming the line and construct.
  static Result<ChatTemplate> parse(const std::string& template_source);
  // Returns the prompt, or the error the template raised (raise_exception messages included).
  Result<std::string> render(const ChatTemplateInputs& inputs) const;

 private:
  explicit ChatTemplate(jinja::Template tmpl) : template_(std::move(tmpl)) {}
  jinja::Template template_;
};

// Returns the prompt for `inputs` rendered with `template_source` (parse plus render).
Result<std::string> render_chat_template(const std::string& template_source, const ChatTemplateInputs& inputs);

}  // namespace moe::tokenizer

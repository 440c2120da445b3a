#include "tokenizer/chat_template.h"

namespace moe::tokenizer {

nlohmann::ordered_json build_chat_template_context(const ChatTemplateInputs& inputs) {
  nlohmann::ordered_json context = nlohmann::ordered_json::object();
  context["messages"] = inputs.messages;
  context["tools"] = inputs.tools;
  context["documents"] = nullptr;
  context["add_generation_prompt"] = inputs.add_generation_prompt;
  context["bos_token"] = inputs.bos_token;
  context["eos_token"] = inputs.eos_token;
  if (inputs.extra_context.is_object()) {
    for (const auto& [key, value] : inputs.extra_context.items()) context[key] = value;
  }
  return context;
}

Result<ChatTemplate> ChatTemplate::parse(const std::string& template_source) {
  MOE_ASSIGN_OR_RETURN(jinja::Template tmpl, jinja::Template::parse(template_source));
  return ChatTemplate(std::move(tmpl));
}

Result<std::string> ChatTemplate::render(const ChatTemplateInputs& inputs) const {
  jinja::RenderOptions options;
  options.now_unix_seconds = inputs.now_unix_seconds;
  return template_.render(build_chat_template_context(inputs), options);
}

Result<std::string> render_chat_template(const std::string& template_source, const ChatTemplateInputs& inputs) {
  MOE_ASSIGN_OR_RETURN(ChatTemplate tmpl, ChatTemplate::parse(template_source));
  return tmpl.render(inputs);
}

}  // namespace moe::tokenizer

// A Jinja2-subset template engine for the chat templates models ship in GGUF metadata
// (tokenizer.chat_template). It behaves like Hugging Face's environment:
// ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, loopcontrols) with HF's
// tojson, raise_exception and strftime_now. Unsupported constructs fail with an error naming
// the construct and line rather than rendering something different.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/evaluator.h"

namespace moe::tokenizer::jinja {

class Template {
 public:
  // Returns the parsed template, or an error "template line N: ..." for syntax errors and
  // unsupported constructs.
  static Result<Template> parse(const std::string& source);

  // Returns the template rendered with the variables of `context` (a JSON object; key order is
  // kept, as Python dicts keep it), or the error a Jinja2 render would raise, including
  // raise_exception("...") messages.
  Result<std::string> render(const nlohmann::ordered_json& context, const RenderOptions& options = {}) const;

 private:
  explicit Template(std::shared_ptr<const Body> body) : body_(std::move(body)) {}
  std::shared_ptr<const Body> body_;
};

}  // namespace moe::tokenizer::jinja

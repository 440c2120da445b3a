#include "tokenizer/jinja/template.h"

#include "tokenizer/jinja/lexer.h"
#include "tokenizer/jinja/parser.h"

namespace moe::tokenizer::jinja {
namespace {

Error to_error(const TemplateError& e) {
  if (e.line() > 0) return make_error("template line {}: {}", e.line(), e.what());
  return make_error("template: {}", e.what());
}

}  // namespace

Result<Template> Template::parse(const std::string& source) {
  try {
    auto body = std::make_shared<Body>(parse_template(tokenize(source, LexerOptions{})));
    return Template(std::move(body));
  } catch (const TemplateError& e) {
    return to_error(e);
  } catch (const std::exception& e) {
    // Allocation failures and the like: still an error result, never an escaping exception.
    return make_error("template: {}", e.what());
  }
}

Result<std::string> Template::render(const nlohmann::ordered_json& context, const RenderOptions& options) const {
  try {
    return render_body(*body_, context, options);
  } catch (const TemplateError& e) {
    return to_error(e);
  } catch (const std::exception& e) {
    return make_error("template: {}", e.what());
  }
}

}  // namespace moe::tokenizer::jinja

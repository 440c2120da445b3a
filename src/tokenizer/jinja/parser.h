// Parser: tokens to a syntax tree, following jinja2/parser.py's grammar and precedence so
// expressions group the way Jinja2 groups them.
#pragma once

#include <vector>

#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/lexer.h"

namespace moe::tokenizer::jinja {

// Returns the statements of a whole template; throws TemplateError naming the construct and
// line for syntax errors and for constructs this engine does not support (extends, include,
// import, block, recursive loops, ...).
Body parse_template(const std::vector<Token>& tokens);

}  // namespace moe::tokenizer::jinja

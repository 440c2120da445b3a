// Lexer: splits a template into text and tag tokens with Jinja2's whitespace rules
// (`{%- -%}`, `{%+`, trim_blocks, lstrip_blocks, one trailing newline dropped) and lexes the
// expressions inside tags. Mirrors jinja2/lexer.py so whitespace renders byte-identically.
#pragma once

#include <string>
#include <vector>

namespace moe::tokenizer::jinja {

enum class TokenKind {
  kText,
  kBlockBegin,  // {%
  kBlockEnd,    // %}
  kVarBegin,    // {{
  kVarEnd,      // }}
  kName,
  kString,  // value already unescaped
  kInteger,
  kFloat,
  kOperator,
  kEof,
};

struct Token {
  TokenKind kind;
  std::string value;
  int line;
};

struct LexerOptions {
  bool trim_blocks = true;
  bool lstrip_blocks = true;
};

// Returns the tokens of `source`; throws TemplateError on malformed tags (unclosed comment,
// unbalanced brackets, unexpected characters).
std::vector<Token> tokenize(const std::string& source, const LexerOptions& options);

}  // namespace moe::tokenizer::jinja

#include "tokenizer/jinja/lexer.h"

#include <algorithm>
#include <cctype>
#include <cstring>

#include "tokenizer/jinja/value.h"

#include "tokenizer/utf8.h"

namespace moe::tokenizer::jinja {
namespace {

// Python's str.isspace() for the ASCII range; Jinja2's `\s` also matches Unicode spaces, which
// templates do not put next to tags.
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_name_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool is_name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Jinja2 normalises \r\n and \r to \n and drops one trailing newline (keep_trailing_newline=False).
std::string normalize_newlines(const std::string& source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// Decodes `count` hex digits at s[i..]; returns false if they are not all hex.
bool parse_hex(const std::string& s, size_t i, size_t count, uint32_t& out) {
  if (i + count > s.size()) return false;
  out = 0;
  for (size_t k = 0; k < count; ++k) {
    char c = s[i + k];
    int d = is_digit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
    if (d < 0) return false;
    out = out * 16 + static_cast<uint32_t>(d);
  }
  return true;
}

// Python's "unicode-escape" decoding of a string literal body, which is what Jinja2 applies.
std::string unescape(const std::string& body, int line) {
  std::string out;
  for (size_t i = 0; i < body.size(); ++i) {
    if (body[i] != '\\' || i + 1 >= body.size()) {
      out += body[i];
      continue;
    }
    char c = body[++i];
    uint32_t cp = 0;
    switch (c) {
      case '\n': break;
      case '\\': out += '\\'; break;
      case '\'': out += '\''; break;
      case '"': out += '"'; break;
      case 'a': out += '\a'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'v': out += '\v'; break;
      case 'x':
      case 'u':
      case 'U': {
        size_t count = c == 'x' ? 2 : (c == 'u' ? 4 : 8);
        if (!parse_hex(body, i + 1, count, cp) || cp > 0x10FFFF) {
          throw TemplateError("invalid \\" + std::string(1, c) + " escape in string literal", line);
        }
        append_utf8(out, cp);
        i += count;
        break;
      }
      default:
        if (c >= '0' && c <= '7') {
          size_t k = 0;
          while (k < 3 && i + k < body.size() && body[i + k] >= '0' && body[i + k] <= '7') cp = cp * 8 + (body[i + k++] - '0');
          append_utf8(out, cp);
          i += k - 1;
        } else {
          out += '\\';
          out += c;
        }
    }
  }
  return out;
}

class Lexer {
 public:
  Lexer(std::string source, const LexerOptions& options) : src_(std::move(source)), options_(options) {}

  std::vector<Token> run() {
    while (pos_ < src_.size()) lex_root();
    tokens_.push_back({TokenKind::kEof, "", line_});
    return std::move(tokens_);
  }

 private:
  bool starts_with(const char* s, size_t at) const { return src_.compare(at, std::strlen(s), s) == 0; }

  void emit(TokenKind kind, std::string value, int line) { tokens_.push_back({kind, std::move(value), line}); }

  void advance_to(size_t new_pos) {
    line_ += static_cast<int>(std::count(src_.begin() + pos_, src_.begin() + new_pos, '\n'));
    pos_ = new_pos;
  }

  // Applies `{%-` / lstrip_blocks to the text that precedes a tag (OptionalLStrip in Jinja2).
  std::string strip_before_tag(std::string text, char sign, bool is_variable) const {
    if (sign == '-') {
      size_t end = text.size();
      while (end > 0 && is_space(text[end - 1])) --end;
      return text.substr(0, end);
    }
    if (sign == '+' || !options_.lstrip_blocks || is_variable) return text;
    size_t line_start = text.rfind('\n');
    line_start = line_start == std::string::npos ? 0 : line_start + 1;
    if (line_start == 0 && !line_starting_) return text;
    if (line_start == text.size()) return text;
    for (size_t i = line_start; i < text.size(); ++i) {
      if (!is_space(text[i])) return text;
    }
    return text.substr(0, line_start);
  }

  // Matches the end of a block tag at pos_: `+%}`, `-%}` plus whitespace, or `%}` plus one
  // newline under trim_blocks. Returns false if there is none.
  bool match_tag_end(const char* close) {
    size_t n = std::strlen(close);
    bool is_block = close[0] != '}';
    size_t p = pos_;
    if (src_[p] == '+' && is_block && starts_with(close, p + 1)) {
      advance_to(p + 1 + n);
    } else if (src_[p] == '-' && starts_with(close, p + 1)) {
      p += 1 + n;
      while (p < src_.size() && is_space(src_[p])) ++p;
      advance_to(p);
    } else if (starts_with(close, p)) {
      p += n;
      if (is_block && options_.trim_blocks && p < src_.size() && src_[p] == '\n') ++p;
      advance_to(p);
    } else {
      return false;
    }
    line_starting_ = src_[pos_ - 1] == '\n';
    return true;
  }

  void lex_root();
  bool lex_raw(size_t tag_pos, const std::string& text);
  void lex_comment();
  void lex_expression(bool is_block);
  void lex_expression_token(std::vector<char>& balance);
  void lex_number();
  void lex_string();

  std::string src_;
  LexerOptions options_;
  size_t pos_ = 0;
  int line_ = 1;
  bool line_starting_ = true;
  std::vector<Token> tokens_;
};

void Lexer::lex_root() {
  size_t tag = pos_;
  while (true) {
    tag = src_.find('{', tag);
    if (tag == std::string::npos || tag + 1 >= src_.size()) {
      if (pos_ < src_.size()) emit(TokenKind::kText, src_.substr(pos_), line_);
      advance_to(src_.size());
      return;
    }
    char c = src_[tag + 1];
    if (c == '%' || c == '{' || c == '#') break;
    ++tag;
  }
  std::string text = src_.substr(pos_, tag - pos_);
  char opener = src_[tag + 1];
  char sign = tag + 2 < src_.size() && (src_[tag + 2] == '-' || src_[tag + 2] == '+') ? src_[tag + 2] : 0;
  if (opener == '%' && lex_raw(tag, text)) return;
  text = strip_before_tag(std::move(text), sign, opener == '{');
  int text_line = line_;
  advance_to(tag);
  if (!text.empty()) emit(TokenKind::kText, std::move(text), text_line);
  advance_to(tag + 2 + (sign ? 1 : 0));
  line_starting_ = false;
  if (opener == '#') {
    lex_comment();
  } else {
    lex_expression(opener == '%');
  }
}

// `{% raw %}...{% endraw %}`: the body is text. Returns false if the tag at `tag_pos` is not raw.
bool Lexer::lex_raw(size_t tag_pos, const std::string& text) {
  size_t p = tag_pos + 2;
  char sign = p < src_.size() && (src_[p] == '-' || src_[p] == '+') ? src_[p++] : 0;
  while (p < src_.size() && is_space(src_[p])) ++p;
  if (!starts_with("raw", p) || (p + 3 < src_.size() && is_name_char(src_[p + 3]))) return false;
  p += 3;
  while (p < src_.size() && is_space(src_[p])) ++p;
  // Jinja2 applies no trim_blocks after `{% raw %}`, only `-%}`.
  if (starts_with("-%}", p)) {
    p += 3;
    while (p < src_.size() && is_space(src_[p])) ++p;
  } else if (starts_with("%}", p)) {
    p += 2;
  } else {
    return false;
  }
  std::string before = strip_before_tag(text, sign, false);
  int text_line = line_;
  if (!before.empty()) emit(TokenKind::kText, before, text_line);
  advance_to(p);
  // Find `{%[-+]?\s*endraw\s*(+%}|-%}|%})`.
  for (size_t q = src_.find("{%", pos_); q != std::string::npos; q = src_.find("{%", q + 1)) {
    size_t r = q + 2;
    char end_sign = r < src_.size() && (src_[r] == '-' || src_[r] == '+') ? src_[r++] : 0;
    while (r < src_.size() && is_space(src_[r])) ++r;
    if (!starts_with("endraw", r)) continue;
    r += 6;
    while (r < src_.size() && is_space(src_[r])) ++r;
    if (!starts_with("%}", r) && !starts_with("-%}", r) && !starts_with("+%}", r)) continue;
    std::string body = strip_before_tag(src_.substr(pos_, q - pos_), end_sign, false);
    int body_line = line_;
    advance_to(r);
    if (!body.empty()) emit(TokenKind::kText, std::move(body), body_line);
    match_tag_end("%}");
    return true;
  }
  throw TemplateError("Missing end of raw directive", line_);
}

void Lexer::lex_comment() {
  for (size_t p = pos_; p < src_.size(); ++p) {
    bool end = starts_with("#}", p) || ((src_[p] == '-' || src_[p] == '+') && starts_with("#}", p + 1));
    if (!end) continue;
    advance_to(p);
    if (src_[p] == '+') {
      advance_to(p + 3);
      line_starting_ = src_[pos_ - 1] == '\n';
    } else {
      match_tag_end("#}");
    }
    return;
  }
  throw TemplateError("Missing end of comment tag", line_);
}

void Lexer::lex_expression(bool is_block) {
  emit(is_block ? TokenKind::kBlockBegin : TokenKind::kVarBegin, "", line_);
  std::vector<char> balance;
  while (true) {
    while (pos_ < src_.size() && is_space(src_[pos_])) advance_to(pos_ + 1);
    if (pos_ >= src_.size()) throw TemplateError("unexpected end of template, tag was not closed", line_);
    if (balance.empty()) {
      int line = line_;
      if (match_tag_end(is_block ? "%}" : "}}")) {
        emit(is_block ? TokenKind::kBlockEnd : TokenKind::kVarEnd, "", line);
        return;
      }
    }
    lex_expression_token(balance);
  }
}

void Lexer::lex_expression_token(std::vector<char>& balance) {
  char c = src_[pos_];
  if (is_digit(c)) return lex_number();
  if (is_name_start(c)) {
    size_t end = pos_;
    while (end < src_.size() && is_name_char(src_[end])) ++end;
    emit(TokenKind::kName, src_.substr(pos_, end - pos_), line_);
    advance_to(end);
    return;
  }
  if (c == '\'' || c == '"') return lex_string();
  static const char* const kOperators[] = {"//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[",
                                           "]",  "(",  ")",  "{",  "}",  "=",  ">", "<", ".", ":", "|", ",", ";"};
  for (const char* op : kOperators) {
    if (!starts_with(op, pos_)) continue;
    std::string value = op;
    if (value == "(" || value == "[" || value == "{") {
      balance.push_back(value == "(" ? ')' : (value == "[" ? ']' : '}'));
    } else if (value == ")" || value == "]" || value == "}") {
      if (balance.empty()) throw TemplateError("unexpected '" + value + "'", line_);
      if (balance.back() != value[0]) {
        throw TemplateError("unexpected '" + value + "', expected '" + std::string(1, balance.back()) + "'", line_);
      }
      balance.pop_back();
    }
    emit(TokenKind::kOperator, value, line_);
    advance_to(pos_ + value.size());
    return;
  }
  throw TemplateError("unexpected char '" + std::string(1, c) + "'", line_);
}

void Lexer::lex_number() {
  size_t p = pos_;
  // 0x / 0o / 0b integers (underscores allowed between digits, as in Jinja2).
  if (src_[p] == '0' && p + 2 < src_.size() && std::strchr("xXoObB", src_[p + 1]) && std::isxdigit(static_cast<unsigned char>(src_[p + 2]))) {
    size_t q = p + 2;
    while (q < src_.size() && (std::isxdigit(static_cast<unsigned char>(src_[q])) || src_[q] == '_')) ++q;
    std::string text;
    for (size_t i = p; i < q; ++i) {
      if (src_[i] != '_') text += src_[i];
    }
    emit(TokenKind::kInteger, text, line_);
    advance_to(q);
    return;
  }
  auto digits = [&](size_t& q) {
    size_t start = q;
    while (q < src_.size() && (is_digit(src_[q]) || (src_[q] == '_' && q + 1 < src_.size() && is_digit(src_[q + 1])))) ++q;
    return q > start;
  };
  digits(p);
  bool is_float = false;
  // Jinja2's float rule does not apply right after a '.', so `x.0.1` is attribute access.
  bool after_dot = pos_ > 0 && src_[pos_ - 1] == '.';
  if (!after_dot && p + 1 < src_.size() && src_[p] == '.' && is_digit(src_[p + 1])) {
    ++p;
    digits(p);
    is_float = true;
  }
  if (!after_dot && p < src_.size() && (src_[p] == 'e' || src_[p] == 'E')) {
    size_t q = p + 1;
    if (q < src_.size() && (src_[q] == '+' || src_[q] == '-')) ++q;
    if (digits(q)) {
      p = q;
      is_float = true;
    }
  }
  std::string text;
  for (size_t i = pos_; i < p; ++i) {
    if (src_[i] != '_') text += src_[i];
  }
  emit(is_float ? TokenKind::kFloat : TokenKind::kInteger, text, line_);
  advance_to(p);
}

void Lexer::lex_string() {
  char quote = src_[pos_];
  size_t p = pos_ + 1;
  while (p < src_.size() && src_[p] != quote) p += src_[p] == '\\' ? 2 : 1;
  if (p >= src_.size()) throw TemplateError("unterminated string literal", line_);
  int line = line_;
  emit(TokenKind::kString, unescape(src_.substr(pos_ + 1, p - pos_ - 1), line), line);
  advance_to(p + 1);
}

}  // namespace

std::vector<Token> tokenize(const std::string& source, const LexerOptions& options) {
  return Lexer(normalize_newlines(source), options).run();
}

}  // namespace moe::tokenizer::jinja

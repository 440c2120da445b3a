// Internal to the parser: the Parser class shared by parser.cpp (statements) and
// parser_expressions.cpp (expressions). Not part of the engine's interface.
#pragma once

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/lexer.h"

namespace moe::tokenizer::jinja::parser_detail {

// Nesting beyond this is a hostile template; refusing it keeps recursion off the stack limit.
inline constexpr int kMaxDepth = 200;

inline ExprPtr make_expr(ExprKind kind, int line) {
  auto e = std::make_unique<Expr>();
  e->kind = kind;
  e->line = line;
  return e;
}

inline StmtPtr make_stmt(StmtKind kind, int line) {
  auto s = std::make_unique<Stmt>();
  s->kind = kind;
  s->line = line;
  return s;
}

class Parser {
 public:
  explicit Parser(const std::vector<Token>& tokens) : toks_(tokens) {}

  Body parse() {
    Body body = parse_body({});
    if (!hard_unknowns_.empty()) throw TemplateError(hard_unknowns_.front().first, hard_unknowns_.front().second);
    return body;
  }

 private:
  // Tracks nesting depth for the lifetime of a recursive call.
  struct DepthGuard {
    explicit DepthGuard(Parser& p) : parser(p) {
      if (++parser.depth_ > kMaxDepth) throw TemplateError("template nesting too deep", parser.cur().line);
    }
    ~DepthGuard() { --parser.depth_; }
    Parser& parser;
  };

  const Token& cur() const { return toks_[pos_]; }
  const Token& peek(size_t ahead = 1) const { return toks_[std::min(pos_ + ahead, toks_.size() - 1)]; }
  void next() {
    if (pos_ + 1 < toks_.size()) ++pos_;
  }
  bool is_op(const char* op) const { return cur().kind == TokenKind::kOperator && cur().value == op; }
  bool is_name(const char* name) const { return cur().kind == TokenKind::kName && cur().value == name; }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }
  bool skip_name(const char* name) {
    if (!is_name(name)) return false;
    next();
    return true;
  }
  std::string describe(const Token& t) const {
    switch (t.kind) {
      case TokenKind::kEof: return "end of template";
      case TokenKind::kBlockEnd: return "end of statement block";
      case TokenKind::kVarEnd: return "end of print statement";
      case TokenKind::kString: return "string";
      default: return "'" + t.value + "'";
    }
  }
  [[noreturn]] void fail(const std::string& message) const { throw TemplateError(message, cur().line); }
  void expect_op(const char* op) {
    if (!skip_op(op)) fail(std::string("expected '") + op + "', got " + describe(cur()));
  }
  std::string expect_name() {
    if (cur().kind != TokenKind::kName) fail("expected name, got " + describe(cur()));
    std::string v = cur().value;
    next();
    return v;
  }
  void expect_block_end() {
    if (cur().kind != TokenKind::kBlockEnd) fail("expected end of statement block, got " + describe(cur()));
    next();
  }

  Body parse_body(const std::vector<std::string>& end_tags);
  StmtPtr parse_statement();
  StmtPtr parse_if();
  StmtPtr parse_for();
  StmtPtr parse_set();
  StmtPtr parse_macro();
  StmtPtr parse_call_block();
  StmtPtr parse_filter_block();
  StmtPtr parse_with();
  void parse_signature(std::vector<MacroParam>& params);
  Body parse_hard_body(const std::vector<std::string>& end_tags);

  ExprPtr parse_tuple(bool with_condexpr = true, bool simplified = false, bool explicit_parens = false,
                      const char* extra_end = nullptr);
  ExprPtr parse_expression(bool with_condexpr = true);
  ExprPtr parse_condexpr();
  ExprPtr parse_or();
  ExprPtr parse_and();
  ExprPtr parse_not();
  ExprPtr parse_compare();
  ExprPtr parse_math1();
  ExprPtr parse_concat();
  ExprPtr parse_math2();
  ExprPtr parse_pow();
  ExprPtr parse_unary(bool with_filter = true);
  ExprPtr parse_primary();
  ExprPtr parse_list();
  ExprPtr parse_dict();
  ExprPtr parse_postfix(ExprPtr node);
  ExprPtr parse_filter_expr(ExprPtr node);
  ExprPtr parse_subscript(ExprPtr node);
  ExprPtr parse_subscribed();
  void parse_call_args(Expr& call);
  ExprPtr parse_filter(ExprPtr node, bool start_inline);
  ExprPtr parse_test(ExprPtr node);
  ExprPtr parse_assign_target(bool with_namespace, const char* extra_end);
  std::string parse_dotted_name();
  void note_unknown(Expr& node, const std::string& what);

  const std::vector<Token>& toks_;
  size_t pos_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
  // > 0 inside if-statements and conditional expressions, where Jinja2 defers unknown
  // filters and tests to runtime (jinja2 compiler's soft frames).
  int soft_depth_ = 0;
  std::vector<std::pair<std::string, int>> hard_unknowns_;
};

}  // namespace moe::tokenizer::jinja::parser_detail

#include "tokenizer/jinja/parser.h"

#include "tokenizer/jinja/parser_impl.h"

namespace moe::tokenizer::jinja {
namespace parser_detail {

Body Parser::parse_body(const std::vector<std::string>& end_tags) {
  DepthGuard guard(*this);
  Body body;
  while (true) {
    const Token& t = cur();
    if (t.kind == TokenKind::kEof) {
      if (end_tags.empty()) return body;
      std::string wanted;
      for (const auto& tag : end_tags) wanted += (wanted.empty() ? "" : " or ") + tag;
      fail("unexpected end of template; looking for the tag " + wanted);
    }
    if (t.kind == TokenKind::kText) {
      auto s = make_stmt(StmtKind::kText, t.line);
      s->text = t.value;
      body.push_back(std::move(s));
      next();
    } else if (t.kind == TokenKind::kVarBegin) {
      next();
      auto s = make_stmt(StmtKind::kOutput, t.line);
      s->expr = parse_tuple();
      if (cur().kind != TokenKind::kVarEnd) fail("expected end of print statement, got " + describe(cur()));
      next();
      body.push_back(std::move(s));
    } else if (t.kind == TokenKind::kBlockBegin) {
      const Token& tag = peek();
      if (tag.kind == TokenKind::kName) {
        for (const auto& end : end_tags) {
          if (tag.value == end) {
            next();  // leave the tag name for the caller
            return body;
          }
        }
      }
      next();
      body.push_back(parse_statement());
    } else {
      fail("unexpected " + describe(t));
    }
  }
}

// A body that Jinja2 compiles in a new (non-soft) frame: loops, macros, blocks.
Body Parser::parse_hard_body(const std::vector<std::string>& end_tags) {
  int saved = soft_depth_;
  soft_depth_ = 0;
  Body body = parse_body(end_tags);
  soft_depth_ = saved;
  return body;
}

StmtPtr Parser::parse_statement() {
  const Token& t = cur();
  if (t.kind != TokenKind::kName) fail("tag name expected, got " + describe(t));
  const std::string tag = t.value;
  int line = t.line;
  if (tag == "if") return parse_if();
  if (tag == "for") return parse_for();
  if (tag == "set") return parse_set();
  if (tag == "macro") return parse_macro();
  if (tag == "call") return parse_call_block();
  if (tag == "filter") return parse_filter_block();
  if (tag == "with") return parse_with();
  if (tag == "print") {
    next();
    auto s = make_stmt(StmtKind::kOutput, line);
    s->expr = parse_tuple();
    expect_block_end();
    return s;
  }
  if (tag == "break" || tag == "continue") {
    if (loop_depth_ == 0) fail("'" + tag + "' outside of a loop");
    next();
    expect_block_end();
    return make_stmt(tag == "break" ? StmtKind::kBreak : StmtKind::kContinue, line);
  }
  if (tag == "generation") {
    next();
    expect_block_end();
    auto s = make_stmt(StmtKind::kGeneration, line);
    s->body = parse_hard_body({"endgeneration"});
    next();
    expect_block_end();
    return s;
  }
  static const char* const kUnsupported[] = {"extends", "block", "include", "import", "from", "autoescape"};
  for (const char* name : kUnsupported) {
    if (tag == name) fail("unsupported construct: {% " + tag + " %} (templates must be self-contained)");
  }
  fail("encountered unknown tag '" + tag + "'");
}

StmtPtr Parser::parse_if() {
  auto s = make_stmt(StmtKind::kIf, cur().line);
  next();
  ++soft_depth_;
  while (true) {
    IfBranch branch;
    branch.condition = parse_tuple(false);
    expect_block_end();
    branch.body = parse_body({"elif", "else", "endif"});
    s->branches.push_back(std::move(branch));
    std::string tag = cur().value;
    next();
    if (tag == "elif") continue;
    if (tag == "else") {
      expect_block_end();
      s->else_body = parse_body({"endif"});
      next();
    }
    break;
  }
  --soft_depth_;
  expect_block_end();
  return s;
}

StmtPtr Parser::parse_for() {
  auto s = make_stmt(StmtKind::kFor, cur().line);
  next();
  int saved = soft_depth_;
  soft_depth_ = 0;
  s->target = parse_assign_target(false, "in");
  if (!skip_name("in")) fail("expected 'in' in for loop, got " + describe(cur()));
  s->expr = parse_tuple(false, false, false, "recursive");
  if (skip_name("if")) s->condition = parse_expression();
  if (is_name("recursive")) fail("unsupported construct: recursive for loop");
  expect_block_end();
  ++loop_depth_;
  s->body = parse_body({"endfor", "else"});
  --loop_depth_;
  if (cur().value == "else") {
    next();
    expect_block_end();
    s->else_body = parse_body({"endfor"});
  }
  next();
  expect_block_end();
  soft_depth_ = saved;
  return s;
}

StmtPtr Parser::parse_set() {
  int line = cur().line;
  next();
  ExprPtr target = parse_assign_target(true, nullptr);
  if (skip_op("=")) {
    auto s = make_stmt(StmtKind::kSet, line);
    s->target = std::move(target);
    s->expr = parse_tuple();
    expect_block_end();
    return s;
  }
  auto s = make_stmt(StmtKind::kSetBlock, line);
  s->target = std::move(target);
  if (is_op("|")) s->expr = parse_filter(make_expr(ExprKind::kLiteral, line), false);
  expect_block_end();
  s->body = parse_hard_body({"endset"});
  next();
  expect_block_end();
  return s;
}

void Parser::parse_signature(std::vector<MacroParam>& params) {
  expect_op("(");
  while (!is_op(")")) {
    if (!params.empty()) expect_op(",");
    if (is_op(")")) break;
    MacroParam param;
    param.name = expect_name();
    if (skip_op("=")) param.default_value = parse_expression();
    params.push_back(std::move(param));
  }
  next();
}

StmtPtr Parser::parse_macro() {
  auto s = make_stmt(StmtKind::kMacro, cur().line);
  next();
  s->text = expect_name();
  parse_signature(s->params);
  expect_block_end();
  int saved_loops = loop_depth_;
  loop_depth_ = 0;
  s->body = parse_hard_body({"endmacro"});
  loop_depth_ = saved_loops;
  next();
  if (cur().kind == TokenKind::kName && cur().value == s->text) next();
  expect_block_end();
  return s;
}

StmtPtr Parser::parse_call_block() {
  auto s = make_stmt(StmtKind::kCallBlock, cur().line);
  next();
  if (is_op("(")) parse_signature(s->params);
  s->expr = parse_expression();
  if (s->expr->kind != ExprKind::kCall) fail("expected call in {% call %} block");
  expect_block_end();
  int saved_loops = loop_depth_;
  loop_depth_ = 0;
  s->body = parse_hard_body({"endcall"});
  loop_depth_ = saved_loops;
  next();
  expect_block_end();
  return s;
}

StmtPtr Parser::parse_filter_block() {
  auto s = make_stmt(StmtKind::kFilterBlock, cur().line);
  next();
  s->expr = parse_filter(make_expr(ExprKind::kLiteral, s->line), true);
  expect_block_end();
  s->body = parse_hard_body({"endfilter"});
  next();
  expect_block_end();
  return s;
}

StmtPtr Parser::parse_with() {
  auto s = make_stmt(StmtKind::kWith, cur().line);
  next();
  while (cur().kind != TokenKind::kBlockEnd) {
    if (!s->assignments.empty()) expect_op(",");
    ExprPtr target = parse_assign_target(false, nullptr);
    expect_op("=");
    s->assignments.emplace_back(std::move(target), parse_expression());
  }
  expect_block_end();
  s->body = parse_hard_body({"endwith"});
  next();
  expect_block_end();
  return s;
}

ExprPtr Parser::parse_assign_target(bool with_namespace, const char* extra_end) {
  int line = cur().line;
  if (with_namespace && cur().kind == TokenKind::kName && peek().kind == TokenKind::kOperator && peek().value == ".") {
    auto node = make_expr(ExprKind::kGetAttr, line);
    auto ns = make_expr(ExprKind::kName, line);
    ns->name = expect_name();
    next();
    node->name = expect_name();
    node->args.push_back(std::move(ns));
    return node;
  }
  ExprPtr target = parse_tuple(true, true, false, extra_end);
  auto assignable = [](const Expr& e) { return e.kind == ExprKind::kName; };
  bool ok = assignable(*target);
  if (target->kind == ExprKind::kTuple) {
    ok = true;
    for (const auto& item : target->args) ok = ok && assignable(*item);
  }
  if (!ok) throw TemplateError("can't assign to this expression", line);
  return target;
}

}  // namespace parser_detail

Body parse_template(const std::vector<Token>& tokens) { return parser_detail::Parser(tokens).parse(); }

}  // namespace moe::tokenizer::jinja

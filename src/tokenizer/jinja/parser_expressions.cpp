// Expression grammar, following jinja2/parser.py's precedence: conditional, or, and, not,
// comparisons, + -, ~, * / // %, **, unary, then postfix (attribute, subscript, call) and
// filters/tests.
#include <charconv>
#include <cstdlib>

#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/parser_impl.h"

namespace moe::tokenizer::jinja::parser_detail {

ExprPtr Parser::parse_tuple(bool with_condexpr, bool simplified, bool explicit_parens, const char* extra_end) {
  int line = cur().line;
  std::vector<ExprPtr> args;
  bool is_tuple = false;
  while (true) {
    if (!args.empty()) expect_op(",");
    const Token& t = cur();
    bool at_end = t.kind == TokenKind::kBlockEnd || t.kind == TokenKind::kVarEnd || t.kind == TokenKind::kEof ||
                  is_op(")") || (extra_end && t.kind == TokenKind::kName && t.value == extra_end);
    if (at_end) break;
    if (simplified) {
      args.push_back(parse_primary());
    } else {
      args.push_back(parse_expression(with_condexpr));
    }
    if (is_op(",")) {
      is_tuple = true;
    } else {
      break;
    }
  }
  if (!is_tuple) {
    if (!args.empty()) return std::move(args[0]);
    if (!explicit_parens) fail("expected an expression, got " + describe(cur()));
  }
  auto node = make_expr(ExprKind::kTuple, line);
  node->args = std::move(args);
  return node;
}

ExprPtr Parser::parse_expression(bool with_condexpr) {
  DepthGuard guard(*this);
  return with_condexpr ? parse_condexpr() : parse_or();
}

ExprPtr Parser::parse_condexpr() {
  size_t mark = hard_unknowns_.size();
  ExprPtr expr = parse_or();
  while (is_name("if")) {
    int line = cur().line;
    next();
    ++soft_depth_;
    auto node = make_expr(ExprKind::kCondition, line);
    node->args.push_back(parse_or());
    node->args.push_back(std::move(expr));
    node->args.push_back(skip_name("else") ? parse_condexpr() : nullptr);
    --soft_depth_;
    // Jinja2 compiles a whole conditional expression in a soft frame.
    hard_unknowns_.resize(std::min(hard_unknowns_.size(), mark));
    expr = std::move(node);
  }
  return expr;
}

ExprPtr Parser::parse_or() {
  ExprPtr left = parse_and();
  while (is_name("or")) {
    auto node = make_expr(ExprKind::kOr, cur().line);
    next();
    node->args.push_back(std::move(left));
    node->args.push_back(parse_and());
    left = std::move(node);
  }
  return left;
}

ExprPtr Parser::parse_and() {
  ExprPtr left = parse_not();
  while (is_name("and")) {
    auto node = make_expr(ExprKind::kAnd, cur().line);
    next();
    node->args.push_back(std::move(left));
    node->args.push_back(parse_not());
    left = std::move(node);
  }
  return left;
}

ExprPtr Parser::parse_not() {
  if (is_name("not")) {
    DepthGuard guard(*this);
    auto node = make_expr(ExprKind::kNot, cur().line);
    next();
    node->args.push_back(parse_not());
    return node;
  }
  return parse_compare();
}

ExprPtr Parser::parse_compare() {
  int line = cur().line;
  ExprPtr first = parse_math1();
  std::vector<std::string> ops;
  std::vector<ExprPtr> operands;
  while (true) {
    static const char* const kCompareOps[] = {"==", "!=", "<", "<=", ">", ">="};
    std::string op;
    for (const char* candidate : kCompareOps) {
      if (is_op(candidate)) op = candidate;
    }
    if (!op.empty()) {
      next();
    } else if (is_name("in")) {
      next();
      op = "in";
    } else if (is_name("not") && peek().kind == TokenKind::kName && peek().value == "in") {
      next();
      next();
      op = "not in";
    } else {
      break;
    }
    ops.push_back(op);
    operands.push_back(parse_math1());
  }
  if (ops.empty()) return first;
  auto node = make_expr(ExprKind::kCompare, line);
  node->args.push_back(std::move(first));
  for (auto& operand : operands) node->args.push_back(std::move(operand));
  node->ops = std::move(ops);
  return node;
}

ExprPtr Parser::parse_math1() {
  ExprPtr left = parse_concat();
  while (is_op("+") || is_op("-")) {
    auto node = make_expr(ExprKind::kBinary, cur().line);
    node->name = cur().value;
    next();
    node->args.push_back(std::move(left));
    node->args.push_back(parse_concat());
    left = std::move(node);
  }
  return left;
}

ExprPtr Parser::parse_concat() {
  ExprPtr left = parse_math2();
  while (is_op("~")) {
    auto node = make_expr(ExprKind::kBinary, cur().line);
    node->name = "~";
    next();
    node->args.push_back(std::move(left));
    node->args.push_back(parse_math2());
    left = std::move(node);
  }
  return left;
}

ExprPtr Parser::parse_math2() {
  ExprPtr left = parse_pow();
  while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
    auto node = make_expr(ExprKind::kBinary, cur().line);
    node->name = cur().value;
    next();
    node->args.push_back(std::move(left));
    node->args.push_back(parse_pow());
    left = std::move(node);
  }
  return left;
}

ExprPtr Parser::parse_pow() {
  ExprPtr left = parse_unary();
  while (is_op("**")) {
    auto node = make_expr(ExprKind::kBinary, cur().line);
    node->name = "**";
    next();
    node->args.push_back(std::move(left));
    node->args.push_back(parse_unary());
    left = std::move(node);
  }
  return left;
}

ExprPtr Parser::parse_unary(bool with_filter) {
  DepthGuard guard(*this);
  ExprPtr node;
  if (is_op("-") || is_op("+")) {
    node = make_expr(is_op("-") ? ExprKind::kNegate : ExprKind::kPlus, cur().line);
    next();
    node->args.push_back(parse_unary(false));
  } else {
    node = parse_primary();
  }
  node = parse_postfix(std::move(node));
  if (with_filter) node = parse_filter_expr(std::move(node));
  return node;
}

ExprPtr Parser::parse_primary() {
  DepthGuard guard(*this);
  const Token& t = cur();
  auto node = make_expr(ExprKind::kLiteral, t.line);
  switch (t.kind) {
    case TokenKind::kName:
      if (t.value == "true" || t.value == "True") {
        node->literal = Value(true);
      } else if (t.value == "false" || t.value == "False") {
        node->literal = Value(false);
      } else if (t.value == "none" || t.value == "None") {
        node->literal = Value::none();
      } else {
        node->kind = ExprKind::kName;
        node->name = t.value;
      }
      next();
      return node;
    case TokenKind::kString: {
      std::string s;
      while (cur().kind == TokenKind::kString) {
        s += cur().value;
        next();
      }
      node->literal = Value(std::move(s));
      return node;
    }
    case TokenKind::kInteger: {
      int64_t value = 0;
      int base = 10;
      std::string digits = t.value;
      if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X')) base = 16;
      if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'o' || digits[1] == 'O')) base = 8;
      if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'b' || digits[1] == 'B')) base = 2;
      if (base != 10) digits = digits.substr(2);
      auto res = std::from_chars(digits.data(), digits.data() + digits.size(), value, base);
      if (res.ec != std::errc() || res.ptr != digits.data() + digits.size()) fail("integer literal out of range");
      node->literal = Value(value);
      next();
      return node;
    }
    case TokenKind::kFloat:
      node->literal = Value(std::strtod(t.value.c_str(), nullptr));
      next();
      return node;
    default: break;
  }
  if (skip_op("(")) {
    ExprPtr inner = parse_tuple(true, false, true);
    expect_op(")");
    return inner;
  }
  if (is_op("[")) return parse_list();
  if (is_op("{")) return parse_dict();
  fail("unexpected " + describe(t));
}

ExprPtr Parser::parse_list() {
  auto node = make_expr(ExprKind::kList, cur().line);
  expect_op("[");
  while (!is_op("]")) {
    if (!node->args.empty()) expect_op(",");
    if (is_op("]")) break;
    node->args.push_back(parse_expression());
  }
  expect_op("]");
  return node;
}

ExprPtr Parser::parse_dict() {
  auto node = make_expr(ExprKind::kDict, cur().line);
  expect_op("{");
  while (!is_op("}")) {
    if (!node->args.empty()) expect_op(",");
    if (is_op("}")) break;
    node->args.push_back(parse_expression());
    expect_op(":");
    node->args.push_back(parse_expression());
  }
  expect_op("}");
  return node;
}

ExprPtr Parser::parse_postfix(ExprPtr node) {
  while (true) {
    if (is_op(".") || is_op("[")) {
      node = parse_subscript(std::move(node));
    } else if (is_op("(")) {
      auto call = make_expr(ExprKind::kCall, cur().line);
      call->args.push_back(std::move(node));
      parse_call_args(*call);
      node = std::move(call);
    } else {
      return node;
    }
  }
}

ExprPtr Parser::parse_filter_expr(ExprPtr node) {
  while (true) {
    if (is_op("|")) {
      node = parse_filter(std::move(node), false);
    } else if (is_name("is")) {
      node = parse_test(std::move(node));
    } else if (is_op("(")) {
      auto call = make_expr(ExprKind::kCall, cur().line);
      call->args.push_back(std::move(node));
      parse_call_args(*call);
      node = std::move(call);
    } else {
      return node;
    }
  }
}

ExprPtr Parser::parse_subscript(ExprPtr node) {
  DepthGuard guard(*this);
  int line = cur().line;
  if (skip_op(".")) {
    if (cur().kind == TokenKind::kName) {
      auto attr = make_expr(ExprKind::kGetAttr, line);
      attr->name = cur().value;
      attr->args.push_back(std::move(node));
      next();
      return attr;
    }
    if (cur().kind != TokenKind::kInteger) fail("expected name or number after '.'");
    auto item = make_expr(ExprKind::kGetItem, line);
    item->args.push_back(std::move(node));
    item->args.push_back(parse_primary());
    return item;
  }
  expect_op("[");
  std::vector<ExprPtr> args;
  while (!is_op("]")) {
    if (!args.empty()) {
      expect_op(",");
      if (is_op("]")) break;
    }
    args.push_back(parse_subscribed());
  }
  expect_op("]");
  if (args.empty()) fail("expected subscript expression");
  auto item = make_expr(ExprKind::kGetItem, line);
  item->args.push_back(std::move(node));
  if (args.size() == 1) {
    item->args.push_back(std::move(args[0]));
  } else {
    auto tuple = make_expr(ExprKind::kTuple, line);
    tuple->args = std::move(args);
    item->args.push_back(std::move(tuple));
  }
  return item;
}

ExprPtr Parser::parse_subscribed() {
  int line = cur().line;
  auto slice = make_expr(ExprKind::kSlice, line);
  if (is_op(":")) {
    next();
    slice->args.push_back(nullptr);
  } else {
    ExprPtr start = parse_expression();
    if (!skip_op(":")) return start;
    slice->args.push_back(std::move(start));
  }
  auto optional_expr = [&]() -> ExprPtr {
    if (is_op("]") || is_op(",") || is_op(":")) return nullptr;
    return parse_expression();
  };
  slice->args.push_back(optional_expr());
  if (skip_op(":")) {
    slice->args.push_back(optional_expr());
  } else {
    slice->args.push_back(nullptr);
  }
  return slice;
}

void Parser::parse_call_args(Expr& call) {
  expect_op("(");
  bool first = true;
  while (!is_op(")")) {
    if (!first) {
      expect_op(",");
      if (is_op(")")) break;
    }
    first = false;
    if (is_op("*") || is_op("**")) fail("unsupported construct: *args/**kwargs in a call");
    if (cur().kind == TokenKind::kName && peek().kind == TokenKind::kOperator && peek().value == "=") {
      std::string key = cur().value;
      next();
      next();
      call.kwargs.emplace_back(key, parse_expression());
    } else {
      if (!call.kwargs.empty()) fail("invalid syntax for function call expression");
      call.args.push_back(parse_expression());
    }
  }
  next();
}

std::string Parser::parse_dotted_name() {
  std::string name = expect_name();
  while (is_op(".")) {
    next();
    name += "." + expect_name();
  }
  return name;
}

void Parser::note_unknown(Expr& node, const std::string& what) {
  node.unknown = true;
  std::string message = "No " + what + " named '" + node.name + "'.";
  if (soft_depth_ == 0) hard_unknowns_.emplace_back(message, node.line);
}

ExprPtr Parser::parse_filter(ExprPtr node, bool start_inline) {
  while (is_op("|") || start_inline) {
    if (!start_inline) next();
    start_inline = false;
    auto filter = make_expr(ExprKind::kFilter, cur().line);
    filter->name = parse_dotted_name();
    filter->args.push_back(std::move(node));
    if (is_op("(")) parse_call_args(*filter);
    if (!has_filter(filter->name)) note_unknown(*filter, "filter");
    node = std::move(filter);
  }
  return node;
}

ExprPtr Parser::parse_test(ExprPtr node) {
  auto test = make_expr(ExprKind::kTest, cur().line);
  next();  // 'is'
  test->negated = skip_name("not");
  test->name = parse_dotted_name();
  test->args.push_back(std::move(node));
  const Token& t = cur();
  bool bare_arg = (t.kind == TokenKind::kName && t.value != "else" && t.value != "or" && t.value != "and") ||
                  t.kind == TokenKind::kString || t.kind == TokenKind::kInteger || t.kind == TokenKind::kFloat ||
                  is_op("[") || is_op("{");
  if (is_op("(")) {
    parse_call_args(*test);
  } else if (bare_arg) {
    if (is_name("is")) fail("you cannot chain multiple tests with is");
    test->args.push_back(parse_postfix(parse_primary()));
  }
  if (!has_test(test->name)) note_unknown(*test, "test");
  return test;
}

}  // namespace moe::tokenizer::jinja::parser_detail

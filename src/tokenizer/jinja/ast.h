// The syntax tree the parser builds and the evaluator walks. One node type per family
// (expressions, statements) with a kind tag keeps the tree plain data.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja/value.h"

namespace moe::tokenizer::jinja {

enum class ExprKind {
  kLiteral,    // literal
  kName,       // name
  kList,       // args
  kTuple,      // args
  kDict,       // args as key, value, key, value ...
  kGetAttr,    // args[0].name
  kGetItem,    // args[0][args[1]]
  kSlice,      // args: start, stop, step (null when omitted)
  kCall,       // args[0](args[1..], kwargs)
  kFilter,     // args[0] | name(args[1..], kwargs)
  kTest,       // args[0] is [not] name(args[1..], kwargs)
  kNot,        // not args[0]
  kNegate,     // -args[0]
  kPlus,       // +args[0]
  kBinary,     // args[0] name args[1]; name in + - * / // % ** ~
  kCompare,    // args[0] ops[0] args[1] ops[1] args[2] ...
  kAnd,        // args[0] and args[1]
  kOr,         // args[0] or args[1]
  kCondition,  // args[1] if args[0] else args[2] (args[2] null when omitted)
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  ExprKind kind;
  int line = 0;
  std::string name;
  Value literal;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::string> ops;
  bool negated = false;
  // A filter or test the engine does not know, inside an if: Jinja2 fails only if evaluated.
  bool unknown = false;
};

enum class StmtKind {
  kText,        // text
  kOutput,      // {{ expr }}
  kIf,          // branches
  kFor,         // target in expr [if condition]: body [else_body]
  kSet,         // target = expr
  kSetBlock,    // target (| filter) = rendered body
  kMacro,       // name(params) body
  kCallBlock,   // call(params) expr: body
  kFilterBlock, // expr applies filters to the rendered body (args[0] is a placeholder)
  kBreak,
  kContinue,
  kWith,        // targets/values, body
  kGeneration,  // Hugging Face's {% generation %}: renders its body
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct IfBranch {
  ExprPtr condition;
  Body body;
};

struct MacroParam {
  std::string name;
  ExprPtr default_value;  // null when required
};

struct Stmt {
  StmtKind kind;
  int line = 0;
  std::string text;              // text, macro name
  ExprPtr target;                // for/set target
  ExprPtr expr;                  // output, for iterable, set value, call expr, filter chain
  ExprPtr condition;             // for filter
  std::vector<IfBranch> branches;
  Body body;
  Body else_body;
  std::vector<MacroParam> params;
  std::vector<std::pair<ExprPtr, ExprPtr>> assignments;  // with
};

}  // namespace moe::tokenizer::jinja

#include "tokenizer/jinja/evaluator.h"

#include <ctime>
#include <unordered_map>

#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/operators.h"

namespace moe::tokenizer::jinja {
namespace {

// Python's default recursion limit stops runaway macro recursion; we stop earlier, well
// before the C++ stack would.
constexpr int kMaxCallDepth = 100;
// Output beyond this is a runaway template (e.g. a huge range), not a prompt.
constexpr size_t kMaxOutputBytes = size_t{256} << 20;

class Scope;
using ScopePtr = std::shared_ptr<Scope>;

class Scope {
 public:
  explicit Scope(ScopePtr parent) : parent_(std::move(parent)) {}

  // Returns the variable visible under `name`, or nullptr.
  const Value* find(const std::string& name) const {
    for (const Scope* s = this; s; s = s->parent_.get()) {
      auto it = s->vars_.find(name);
      if (it != s->vars_.end()) return &it->second;
    }
    return nullptr;
  }
  void set(const std::string& name, Value value) { vars_[name] = std::move(value); }

 private:
  ScopePtr parent_;
  std::unordered_map<std::string, Value> vars_;
};

enum class Flow { kNormal, kBreak, kContinue };

class Evaluator {
 public:
  explicit Evaluator(const RenderOptions& options) : options_(options) {}

  std::string render(const Body& body, const nlohmann::ordered_json& context) {
    auto root = std::make_shared<Scope>(nullptr);
    install_globals(*root);
    if (context.is_object()) {
      for (const auto& [key, value] : context.items()) root->set(key, Value::from_json(value));
    }
    std::string out;
    exec_body(body, root, out);
    return out;
  }

 private:
  void install_globals(Scope& scope);
  Flow exec_body(const Body& body, const ScopePtr& scope, std::string& out);
  Flow exec(const Stmt& stmt, const ScopePtr& scope, std::string& out);
  Flow exec_if(const Stmt& stmt, const ScopePtr& scope, std::string& out);
  void exec_for(const Stmt& stmt, const ScopePtr& scope, std::string& out);
  void exec_call_block(const Stmt& stmt, const ScopePtr& scope, std::string& out);
  void assign(const Expr& target, const Value& value, const ScopePtr& scope);
  Value make_macro(const Stmt& def, const ScopePtr& closure);
  Value call_macro(const Stmt& def, const ScopePtr& closure, CallArgs& args);
  Value make_loop(const ValueList& items, size_t index);

  Value eval(const Expr& expr, const ScopePtr& scope);
  Value eval_node(const Expr& expr, const ScopePtr& scope);
  Value eval_subscript(const Expr& expr, const ScopePtr& scope);
  Value eval_compare(const Expr& expr, const ScopePtr& scope);
  CallArgs eval_args(const Expr& expr, size_t first, const ScopePtr& scope);
  Value eval_filter_chain(const Expr& expr, const Value& input, const ScopePtr& scope);
  Value strftime_now(CallArgs& args) const;

  const RenderOptions& options_;
  int call_depth_ = 0;
  // Macros hold their defining scope weakly (the scope holds the macro); these keep those
  // scopes alive until the render ends.
  std::vector<ScopePtr> macro_scopes_;
};

// Joins a TemplateError with the line of the node it passed through, keeping the innermost.
template <typename Fn>
auto with_line(int line, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (TemplateError& e) {
    if (e.line() == 0) e.set_line(line);
    throw;
  }
}

Value make_namespace(CallArgs& args) {
  Value ns = Value::make_namespace();
  for (const auto& arg : args.positional) {
    if (arg.is_dict()) {
      for (const auto& [k, v] : arg.dict_data().entries) ns.dict_data().set(k, v);
    } else {
      for (const auto& pair : iterate(arg)) {
        ValueList kv = iterate(pair);
        if (kv.size() != 2) throw TemplateError("ValueError: dictionary update sequence element has wrong length");
        ns.dict_data().set(kv[0], kv[1]);
      }
    }
  }
  for (const auto& [k, v] : args.keyword) ns.dict_data().set(Value(k), v);
  return ns;
}

Value make_range(CallArgs& args) {
  const auto& p = args.positional;
  if (p.empty() || p.size() > 3) throw TemplateError("TypeError: range expected 1 to 3 arguments");
  int64_t start = 0, stop = 0, step = 1;
  if (p.size() == 1) {
    stop = int_arg(p[0], "range");
  } else {
    start = int_arg(p[0], "range");
    stop = int_arg(p[1], "range");
    if (p.size() == 3) step = int_arg(p[2], "range");
  }
  if (step == 0) throw TemplateError("ValueError: range() arg 3 must not be zero");
  ValueList out;
  // Jinja2's sandbox caps ranges at 100000 items (MAX_RANGE).
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
    if (out.size() >= 100000) throw TemplateError("OverflowError: Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
    out.push_back(Value(i));
  }
  return Value::list(std::move(out));
}

void Evaluator::install_globals(Scope& scope) {
  scope.set("range", Value::callable("range", make_range));
  scope.set("namespace", Value::callable("namespace", make_namespace));
  scope.set("dict", Value::callable("dict", [](CallArgs& args) {
    Value ns = make_namespace(args);
    Value d = Value::dict();
    d.dict_data().entries = ns.dict_data().entries;
    return d;
  }));
  scope.set("raise_exception", Value::callable("raise_exception", [](CallArgs& args) -> Value {
    Value message = take_arg(args, 0, "message", Value(""));
    throw TemplateError("raise_exception: " + message.str());
  }));
  scope.set("strftime_now", Value::callable("strftime_now", [this](CallArgs& args) { return strftime_now(args); }));
  for (const char* name : {"cycler", "joiner", "lipsum"}) {
    std::string n = name;
    scope.set(n, Value::callable(n, [n](CallArgs&) -> Value { throw TemplateError("unsupported construct: " + n + "()"); }));
  }
}

Value Evaluator::strftime_now(CallArgs& args) const {
  Value format = take_arg(args, 0, "format");
  if (!format.is_string()) throw TemplateError("TypeError: strftime_now() needs a format string");
  std::tm tm{};
  if (options_.now_unix_seconds) {
    std::time_t t = static_cast<std::time_t>(*options_.now_unix_seconds);
    gmtime_r(&t, &tm);
  } else {
    std::time_t t = std::time(nullptr);
    localtime_r(&t, &tm);
  }
  char buf[512];
  size_t n = std::strftime(buf, sizeof(buf), format.as_string().c_str(), &tm);
  return Value(std::string(buf, n));
}

Flow Evaluator::exec_body(const Body& body, const ScopePtr& scope, std::string& out) {
  for (const auto& stmt : body) {
    Flow flow = exec(*stmt, scope, out);
    if (flow != Flow::kNormal) return flow;
  }
  return Flow::kNormal;
}

Flow Evaluator::exec(const Stmt& stmt, const ScopePtr& scope, std::string& out) {
  if (out.size() > kMaxOutputBytes) throw TemplateError("rendered output exceeds 256 MiB", stmt.line);
  return with_line(stmt.line, [&]() -> Flow {
    switch (stmt.kind) {
      case StmtKind::kText: out += stmt.text; break;
      case StmtKind::kOutput: out += eval(*stmt.expr, scope).str(); break;
      case StmtKind::kIf: return exec_if(stmt, scope, out);
      case StmtKind::kFor: exec_for(stmt, scope, out); break;
      case StmtKind::kSet: assign(*stmt.target, eval(*stmt.expr, scope), scope); break;
      case StmtKind::kSetBlock: {
        std::string body;
        exec_body(stmt.body, std::make_shared<Scope>(scope), body);
        Value value(body);
        if (stmt.expr) value = eval_filter_chain(*stmt.expr, value, scope);
        assign(*stmt.target, value, scope);
        break;
      }
      case StmtKind::kMacro: scope->set(stmt.text, make_macro(stmt, scope)); break;
      case StmtKind::kCallBlock: exec_call_block(stmt, scope, out); break;
      case StmtKind::kFilterBlock: {
        std::string body;
        exec_body(stmt.body, std::make_shared<Scope>(scope), body);
        out += eval_filter_chain(*stmt.expr, Value(body), scope).str();
        break;
      }
      case StmtKind::kBreak: return Flow::kBreak;
      case StmtKind::kContinue: return Flow::kContinue;
      case StmtKind::kWith: {
        auto inner = std::make_shared<Scope>(scope);
        for (const auto& [target, value] : stmt.assignments) assign(*target, eval(*value, scope), inner);
        return exec_body(stmt.body, inner, out);
      }
      case StmtKind::kGeneration: return exec_body(stmt.body, scope, out);
    }
    return Flow::kNormal;
  });
}

Flow Evaluator::exec_if(const Stmt& stmt, const ScopePtr& scope, std::string& out) {
  for (const auto& branch : stmt.branches) {
    if (eval(*branch.condition, scope).truthy()) return exec_body(branch.body, scope, out);
  }
  return exec_body(stmt.else_body, scope, out);
}

Value Evaluator::make_loop(const ValueList& items, size_t index) {
  Value loop = Value::dict();
  DictData& d = loop.dict_data();
  auto n = static_cast<int64_t>(items.size());
  auto i = static_cast<int64_t>(index);
  d.set(Value("index"), Value(i + 1));
  d.set(Value("index0"), Value(i));
  d.set(Value("revindex"), Value(n - i));
  d.set(Value("revindex0"), Value(n - i - 1));
  d.set(Value("first"), Value(i == 0));
  d.set(Value("last"), Value(i == n - 1));
  d.set(Value("length"), Value(n));
  d.set(Value("depth"), Value(1));
  d.set(Value("depth0"), Value(0));
  if (i > 0) d.set(Value("previtem"), items[index - 1]);
  if (i + 1 < n) d.set(Value("nextitem"), items[index + 1]);
  d.set(Value("cycle"), Value::callable("cycle", [i](CallArgs& args) -> Value {
    if (args.positional.empty()) throw TemplateError("TypeError: no items for cycling given");
    return args.positional[static_cast<size_t>(i) % args.positional.size()];
  }));
  return loop;
}

void Evaluator::exec_for(const Stmt& stmt, const ScopePtr& scope, std::string& out) {
  ValueList all = iterate(eval(*stmt.expr, scope));
  ValueList items;
  if (stmt.condition) {
    for (const auto& item : all) {
      auto probe = std::make_shared<Scope>(scope);
      assign(*stmt.target, item, probe);
      if (eval(*stmt.condition, probe).truthy()) items.push_back(item);
    }
  } else {
    items = std::move(all);
  }
  for (size_t i = 0; i < items.size(); ++i) {
    // A fresh scope per iteration: Jinja2 does not carry `set` values between iterations.
    auto inner = std::make_shared<Scope>(scope);
    assign(*stmt.target, items[i], inner);
    inner->set("loop", make_loop(items, i));
    if (exec_body(stmt.body, inner, out) == Flow::kBreak) break;
  }
  if (items.empty()) exec_body(stmt.else_body, scope, out);
}

void Evaluator::exec_call_block(const Stmt& stmt, const ScopePtr& scope, std::string& out) {
  // The caller is an anonymous macro over the block body, passed as the `caller` keyword.
  Value caller = make_macro(stmt, scope);
  const Expr& call = *stmt.expr;
  Value callee = eval(*call.args[0], scope);
  CallArgs args = eval_args(call, 1, scope);
  args.keyword.emplace_back("caller", caller);
  if (!callee.is_callable()) throw TemplateError("TypeError: '" + callee.type_name() + "' object is not callable");
  out += callee.as_callable().fn(args).str();
}

void Evaluator::assign(const Expr& target, const Value& value, const ScopePtr& scope) {
  if (target.kind == ExprKind::kName) {
    scope->set(target.name, value);
    return;
  }
  if (target.kind == ExprKind::kTuple) {
    ValueList items = iterate(value);
    if (items.size() != target.args.size()) {
      throw TemplateError("ValueError: expected " + std::to_string(target.args.size()) + " values to unpack, got " +
                          std::to_string(items.size()));
    }
    for (size_t i = 0; i < items.size(); ++i) assign(*target.args[i], items[i], scope);
    return;
  }
  // `{% set ns.attr = value %}`
  const Value* ns = scope->find(target.args[0]->name);
  if (!ns || !ns->is_namespace()) throw TemplateError("cannot assign attribute on non-namespace object");
  ns->dict_data().set(Value(target.name), value);
}

Value Evaluator::make_macro(const Stmt& def, const ScopePtr& closure) {
  macro_scopes_.push_back(closure);
  std::weak_ptr<Scope> weak = closure;
  return Value::callable(def.text, [this, &def, weak](CallArgs& args) {
    ScopePtr scope = weak.lock();
    if (!scope) throw TemplateError("macro '" + def.text + "' called after its scope ended");
    return call_macro(def, scope, args);
  });
}

Value Evaluator::call_macro(const Stmt& def, const ScopePtr& closure, CallArgs& args) {
  if (call_depth_ >= kMaxCallDepth) throw TemplateError("RecursionError: maximum macro call depth exceeded");
  ++call_depth_;
  struct DepthRestore {
    int& depth;
    ~DepthRestore() { --depth; }
  } restore{call_depth_};
  auto scope = std::make_shared<Scope>(closure);
  std::vector<bool> bound(def.params.size(), false);
  for (size_t i = 0; i < def.params.size() && i < args.positional.size(); ++i) {
    scope->set(def.params[i].name, args.positional[i]);
    bound[i] = true;
  }
  ValueList varargs;
  for (size_t i = def.params.size(); i < args.positional.size(); ++i) varargs.push_back(args.positional[i]);
  Value kwargs = Value::dict();
  for (const auto& [key, value] : args.keyword) {
    size_t i = 0;
    while (i < def.params.size() && def.params[i].name != key) ++i;
    if (i < def.params.size()) {
      if (bound[i]) throw TemplateError("TypeError: macro '" + def.text + "' got multiple values for argument '" + key + "'");
      scope->set(key, value);
      bound[i] = true;
    } else if (key == "caller") {
      scope->set("caller", value);
    } else {
      kwargs.dict_data().set(Value(key), value);
    }
  }
  for (size_t i = 0; i < def.params.size(); ++i) {
    if (bound[i]) continue;
    const auto& param = def.params[i];
    scope->set(param.name, param.default_value ? eval(*param.default_value, scope)
                                               : Value::undefined("parameter '" + param.name + "' was not provided"));
  }
  scope->set("varargs", Value::tuple(std::move(varargs)));
  scope->set("kwargs", kwargs);
  std::string out;
  exec_body(def.body, scope, out);
  return Value(out);
}

Value Evaluator::eval(const Expr& expr, const ScopePtr& scope) {
  return with_line(expr.line, [&] { return eval_node(expr, scope); });
}

CallArgs Evaluator::eval_args(const Expr& expr, size_t first, const ScopePtr& scope) {
  CallArgs args;
  for (size_t i = first; i < expr.args.size(); ++i) args.positional.push_back(eval(*expr.args[i], scope));
  for (const auto& [key, value] : expr.kwargs) args.keyword.emplace_back(key, eval(*value, scope));
  return args;
}

Value Evaluator::eval_filter_chain(const Expr& expr, const Value& input, const ScopePtr& scope) {
  if (expr.kind != ExprKind::kFilter) return input;
  Value base = eval_filter_chain(*expr.args[0], input, scope);
  if (expr.unknown) throw TemplateError("No filter named '" + expr.name + "'.", expr.line);
  CallArgs args = eval_args(expr, 1, scope);
  return with_line(expr.line, [&] { return apply_filter(expr.name, base, args); });
}

Value Evaluator::eval_subscript(const Expr& expr, const ScopePtr& scope) {
  Value object = eval(*expr.args[0], scope);
  const Expr& key = *expr.args[1];
  if (key.kind != ExprKind::kSlice) return get_item(object, eval(key, scope));
  auto bound = [&](const ExprPtr& e) -> std::optional<int64_t> {
    if (!e) return std::nullopt;
    Value v = eval(*e, scope);
    if (v.is_none()) return std::nullopt;
    return int_arg(v, "slice index");
  };
  std::optional<int64_t> start = bound(key.args[0]), stop = bound(key.args[1]), step = bound(key.args[2]);
  if (object.is_undefined()) object.fail_undefined();
  return slice_value(object, start, stop, step);
}

Value Evaluator::eval_compare(const Expr& expr, const ScopePtr& scope) {
  Value left = eval(*expr.args[0], scope);
  for (size_t i = 0; i < expr.ops.size(); ++i) {
    Value right = eval(*expr.args[i + 1], scope);
    const std::string& op = expr.ops[i];
    bool result;
    if (op == "==") {
      result = values_equal(left, right);
    } else if (op == "!=") {
      result = !values_equal(left, right);
    } else if (op == "in") {
      result = contains(right, left);
    } else if (op == "not in") {
      result = !contains(right, left);
    } else {
      int c = compare_values(left, right);
      result = op == "<" ? c < 0 : op == "<=" ? c <= 0 : op == ">" ? c > 0 : c >= 0;
    }
    if (!result) return Value(false);
    left = std::move(right);
  }
  return Value(true);
}

Value Evaluator::eval_node(const Expr& expr, const ScopePtr& scope) {
  switch (expr.kind) {
    case ExprKind::kLiteral: return expr.literal;
    case ExprKind::kName: {
      const Value* v = scope->find(expr.name);
      return v ? *v : Value::undefined("'" + expr.name + "' is undefined");
    }
    case ExprKind::kList:
    case ExprKind::kTuple: {
      ValueList items;
      for (const auto& item : expr.args) items.push_back(eval(*item, scope));
      return expr.kind == ExprKind::kList ? Value::list(std::move(items)) : Value::tuple(std::move(items));
    }
    case ExprKind::kDict: {
      Value d = Value::dict();
      for (size_t i = 0; i + 1 < expr.args.size(); i += 2) d.dict_data().set(eval(*expr.args[i], scope), eval(*expr.args[i + 1], scope));
      return d;
    }
    case ExprKind::kGetAttr: return get_attribute(eval(*expr.args[0], scope), expr.name);
    case ExprKind::kGetItem: return eval_subscript(expr, scope);
    case ExprKind::kSlice: throw TemplateError("slice outside of a subscript");
    case ExprKind::kCall: {
      Value callee = eval(*expr.args[0], scope);
      CallArgs args = eval_args(expr, 1, scope);
      if (callee.is_undefined()) callee.fail_undefined();
      if (!callee.is_callable()) throw TemplateError("TypeError: '" + callee.type_name() + "' object is not callable");
      return callee.as_callable().fn(args);
    }
    case ExprKind::kFilter: {
      Value input = eval(*expr.args[0], scope);
      if (expr.unknown) throw TemplateError("No filter named '" + expr.name + "'.");
      CallArgs args = eval_args(expr, 1, scope);
      return apply_filter(expr.name, input, args);
    }
    case ExprKind::kTest: {
      Value input = eval(*expr.args[0], scope);
      if (expr.unknown) throw TemplateError("No test named '" + expr.name + "'.");
      CallArgs args = eval_args(expr, 1, scope);
      return Value(apply_test(expr.name, input, args) != expr.negated);
    }
    case ExprKind::kNot: return Value(!eval(*expr.args[0], scope).truthy());
    case ExprKind::kNegate: return negate(eval(*expr.args[0], scope));
    case ExprKind::kPlus: {
      Value v = eval(*expr.args[0], scope);
      if (!v.is_number()) throw TemplateError("TypeError: bad operand type for unary +: '" + v.type_name() + "'");
      return v.is_bool() ? Value(v.as_int()) : v;
    }
    case ExprKind::kBinary: {
      Value left = eval(*expr.args[0], scope);
      return binary_op(expr.name, left, eval(*expr.args[1], scope));
    }
    case ExprKind::kCompare: return eval_compare(expr, scope);
    case ExprKind::kAnd: {
      Value left = eval(*expr.args[0], scope);
      return left.truthy() ? eval(*expr.args[1], scope) : left;
    }
    case ExprKind::kOr: {
      Value left = eval(*expr.args[0], scope);
      return left.truthy() ? left : eval(*expr.args[1], scope);
    }
    case ExprKind::kCondition: {
      if (eval(*expr.args[0], scope).truthy()) return eval(*expr.args[1], scope);
      if (expr.args[2]) return eval(*expr.args[2], scope);
      return Value::undefined("the inline if-expression evaluated to false and no else section was defined");
    }
  }
  return Value();
}

}  // namespace

std::string render_body(const Body& body, const nlohmann::ordered_json& context, const RenderOptions& options) {
  return Evaluator(options).render(body, context);
}

}  // namespace moe::tokenizer::jinja

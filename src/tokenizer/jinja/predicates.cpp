// Jinja2's built-in tests (`x is defined`, `x is string`, ...), with Python's type semantics
// (bool is a number but not an integer; strings, lists and dicts are sequences).
#include <cstring>

#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/operators.h"
#include "tokenizer/jinja/strings.h"

namespace moe::tokenizer::jinja {
namespace {

const char* const kTestNames[] = {"boolean",  "callable", "defined", "divisibleby", "eq",      "equalto", "escaped",
                                  "even",     "false",    "filter",  "float",       "ge",      "gt",      "greaterthan",
                                  "in",       "integer",  "iterable", "le",         "lessthan", "lower",  "lt",
                                  "mapping",  "ne",       "none",    "number",      "odd",     "sameas",  "sequence",
                                  "string",   "test",     "true",    "undefined",   "upper",   "==",      "!=",
                                  "<",        "<=",       ">",       ">="};

int64_t integer_operand(const Value& v, const char* test) {
  if (!v.is_int() && !v.is_bool()) {
    if (v.is_undefined()) v.fail_undefined();
    throw TemplateError(std::string("TypeError: test '") + test + "' needs an integer, got " + v.type_name());
  }
  return v.as_int();
}

bool is_cased_as(const std::string& s, bool upper) {
  bool any_cased = false;
  for (char c : s) {
    if (c >= 'a' && c <= 'z') {
      if (upper) return false;
      any_cased = true;
    } else if (c >= 'A' && c <= 'Z') {
      if (!upper) return false;
      any_cased = true;
    }
  }
  return any_cased;
}

bool same_as(const Value& a, const Value& b) {
  if (a.identity() || b.identity()) return a.identity() == b.identity();
  if (a.kind() != b.kind()) return false;
  // Python caches small ints and interns None/True/False, so `is` behaves like ==.
  return values_equal(a, b);
}

bool compare_test(const std::string& name, const Value& input, const Value& other) {
  if (name == "eq" || name == "equalto" || name == "==") return values_equal(input, other);
  if (name == "ne" || name == "!=") return !values_equal(input, other);
  int c = compare_values(input, other);
  if (name == "lt" || name == "lessthan" || name == "<") return c < 0;
  if (name == "le" || name == "<=") return c <= 0;
  if (name == "gt" || name == "greaterthan" || name == ">") return c > 0;
  return c >= 0;  // ge, >=
}

}  // namespace

bool has_test(const std::string& name) {
  for (const char* n : kTestNames) {
    if (name == n) return true;
  }
  return false;
}

bool apply_test(const std::string& name, const Value& input, CallArgs& args) {
  if (name == "defined") return !input.is_undefined();
  if (name == "undefined") return input.is_undefined();
  if (name == "none") return input.is_none();
  if (name == "boolean") return input.is_bool();
  if (name == "true") return input.is_bool() && input.as_bool();
  if (name == "false") return input.is_bool() && !input.as_bool();
  if (name == "integer") return input.is_int();
  if (name == "float") return input.is_float();
  if (name == "number") return input.is_number();
  if (name == "string") return input.is_string();
  if (name == "mapping") return input.is_dict();
  // Undefined defines __iter__, __len__ and __getitem__, so it passes both.
  if (name == "iterable") {
    return input.is_string() || input.is_list() || input.is_dict() || input.is_undefined() || input.is_generator();
  }
  if (name == "sequence") return input.is_string() || input.is_list() || input.is_dict() || input.is_undefined();
  if (name == "callable") return input.is_callable();
  if (name == "escaped") return false;
  if (name == "lower" || name == "upper") return input.is_string() && is_cased_as(input.as_string(), name == "upper");
  if (name == "odd") return integer_operand(input, "odd") % 2 != 0;
  if (name == "even") return integer_operand(input, "even") % 2 == 0;
  if (name == "divisibleby") {
    int64_t d = integer_operand(take_arg(args, 0, "num"), "divisibleby");
    if (d == 0) throw TemplateError("ZeroDivisionError: integer division or modulo by zero");
    return integer_operand(input, "divisibleby") % d == 0;
  }
  if (name == "in") return contains(take_arg(args, 0, "seq"), input);
  if (name == "sameas") return same_as(input, take_arg(args, 0, "other"));
  if (name == "filter") return input.is_string() && has_filter(input.as_string());
  if (name == "test") return input.is_string() && has_test(input.as_string());
  if (has_test(name)) return compare_test(name, input, take_arg(args, 0, "other"));
  throw TemplateError("No test named '" + name + "'.");
}

}  // namespace moe::tokenizer::jinja

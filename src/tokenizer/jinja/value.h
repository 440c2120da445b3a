// Value: the runtime value of the Jinja2 engine, modelled on the Python objects Jinja2 templates
// see (str, int, float, bool, None, list, tuple, dict, Undefined, callables, namespace), because
// chat templates are written against Python semantics: truthiness, int vs float arithmetic,
// repr-style printing of containers and insertion-ordered dicts.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace moe::tokenizer::jinja {

// Thrown inside the engine (lexer, parser, evaluator) and turned into a Result at the public
// boundary (template.h); never escapes the library. `line` is the template line, 0 if unknown.
class TemplateError : public std::runtime_error {
 public:
  TemplateError(const std::string& message, int line = 0) : std::runtime_error(message), line_(line) {}
  int line() const { return line_; }
  void set_line(int line) { line_ = line; }

 private:
  int line_;
};

// kGenerator models the lazy iterators Jinja2 filters return (map, select, reverse, ...): they
// iterate once, are always truthy, and have no len() or JSON form.
enum class ValueKind { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kTuple, kDict, kNamespace, kCallable, kGenerator };

class Value;
using ValueList = std::vector<Value>;

// Arguments of a call: positional then keyword, in source order.
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

using NativeFunction = std::function<Value(CallArgs&)>;

struct Callable {
  std::string name;
  NativeFunction fn;
};

struct DictData;

class Value {
 public:
  // Default-constructed values are Undefined (Jinja2's default Undefined).
  Value() = default;
  Value(bool b) : kind_(ValueKind::kBool), int_(b ? 1 : 0) {}                    // NOLINT
  Value(int64_t i) : kind_(ValueKind::kInt), int_(i) {}                         // NOLINT
  Value(int i) : kind_(ValueKind::kInt), int_(i) {}                             // NOLINT
  Value(double f) : kind_(ValueKind::kFloat), float_(f) {}                      // NOLINT
  Value(std::string s) : kind_(ValueKind::kString), str_(std::move(s)) {}       // NOLINT
  Value(const char* s) : kind_(ValueKind::kString), str_(s) {}                  // NOLINT

  // Returns an Undefined that remembers why it is undefined, for the error raised when it is
  // used strictly ("'x' is undefined"). `unsafe` marks the sandbox's refusal of an attribute.
  static Value undefined(std::string hint, bool unsafe = false);
  // Returns a markupsafe.Markup string (from |safe or |escape): adding a plain str to it
  // HTML-escapes the plain side, as Python's Markup.__add__ does.
  static Value markup(std::string s);
  static Value none();
  static Value list(ValueList items = {});
  static Value tuple(ValueList items);
  static Value dict();
  // Returns a single-use iterator over `items`; `type_name` is Python's ("generator", ...).
  static Value generator(ValueList items, std::string type_name = "generator");
  static Value make_namespace();
  static Value callable(std::string name, NativeFunction fn);
  // Returns the Value for a JSON document (objects keep their key order).
  static Value from_json(const nlohmann::ordered_json& json);

  ValueKind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == ValueKind::kUndefined; }
  bool is_none() const { return kind_ == ValueKind::kNone; }
  bool is_bool() const { return kind_ == ValueKind::kBool; }
  bool is_int() const { return kind_ == ValueKind::kInt; }
  bool is_float() const { return kind_ == ValueKind::kFloat; }
  // Python's numbers.Number: bool counts, as in Jinja2's `is number`.
  bool is_number() const { return is_int() || is_float() || is_bool(); }
  bool is_string() const { return kind_ == ValueKind::kString; }
  bool is_markup() const { return markup_; }
  // Lists and tuples (Python sequences other than str).
  bool is_list() const { return kind_ == ValueKind::kList || kind_ == ValueKind::kTuple; }
  bool is_dict() const { return kind_ == ValueKind::kDict; }
  bool is_namespace() const { return kind_ == ValueKind::kNamespace; }
  bool is_callable() const { return kind_ == ValueKind::kCallable; }
  bool is_generator() const { return kind_ == ValueKind::kGenerator; }

  bool as_bool() const { return int_ != 0; }
  int64_t as_int() const { return int_; }  // also for bool
  double as_float() const { return is_float() ? float_ : static_cast<double>(int_); }
  const std::string& as_string() const { return str_; }
  ValueList& items() const { return *list_; }
  DictData& dict_data() const { return *dict_; }
  const Callable& as_callable() const { return *callable_; }
  const std::string& undefined_hint() const { return str_; }
  bool undefined_unsafe() const { return int_ != 0; }

  // Python truthiness.
  bool truthy() const;
  // Python str(): strings as they are, everything else as repr().
  std::string str() const;
  // Python repr() (lists print as ['a', 'b'], None as None, floats as 1.0).
  std::string repr() const;
  // Python's type name, for error messages ("dict object has no attribute ...").
  std::string type_name() const;
  // Identity for reference types (Jinja2's `sameas`).
  const void* identity() const;

  // Raises the UndefinedError this value stands for; call when an Undefined is used strictly.
  [[noreturn]] void fail_undefined() const;

 private:
  ValueKind kind_ = ValueKind::kUndefined;
  bool markup_ = false;
  int64_t int_ = 0;
  double float_ = 0;
  std::string str_;
  std::shared_ptr<ValueList> list_;
  std::shared_ptr<DictData> dict_;
  std::shared_ptr<Callable> callable_;
};

// An insertion-ordered dict. Lookups are linear: template dicts hold a handful of keys.
struct DictData {
  std::vector<std::pair<Value, Value>> entries;

  // Returns the value stored under `key`, or nullptr.
  Value* find(const Value& key);
  void set(const Value& key, Value value);
  bool erase(const Value& key);
};

// Python ==.
bool values_equal(const Value& a, const Value& b);
// Python <: returns negative, zero or positive; raises for unorderable types.
int compare_values(const Value& a, const Value& b);
// Returns Python's repr() of a float ("1.0", "1e+16", "0.0001").
std::string format_float(double value);
// Returns Python's repr() of a str ('it\'s' style quoting rules).
std::string repr_string(const std::string& s);
// Returns markupsafe.escape(s) text: & < > " ' as HTML entities.
std::string html_escape(const std::string& s);

}  // namespace moe::tokenizer::jinja

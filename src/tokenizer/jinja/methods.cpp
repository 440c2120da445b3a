// Attribute lookup and the Python methods of str, dict and list that chat templates call,
// under ImmutableSandboxedEnvironment's rules (mutating dict/list methods are refused).
#include <algorithm>
#include <optional>

#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/operators.h"
#include "tokenizer/jinja/strings.h"

namespace moe::tokenizer::jinja {
namespace {

std::string require_string(const Value& v, const char* method) {
  if (!v.is_string()) {
    if (v.is_undefined()) v.fail_undefined();
    throw TemplateError(std::string("TypeError: ") + method + "() argument must be str, not " + v.type_name());
  }
  return v.as_string();
}

std::optional<std::string> optional_string(const Value& v, const char* method) {
  if (v.is_undefined() || v.is_none()) return std::nullopt;
  return require_string(v, method);
}

// startswith/endswith accept a str or a tuple of str.
bool affix_matches(const std::string& s, const Value& affix, bool prefix, const char* method) {
  ValueList options = affix.kind() == ValueKind::kTuple ? affix.items() : ValueList{affix};
  for (const auto& option : options) {
    std::string a = require_string(option, method);
    if (a.size() > s.size()) continue;
    if (prefix ? s.compare(0, a.size(), a) == 0 : s.compare(s.size() - a.size(), a.size(), a) == 0) return true;
  }
  return false;
}

Value string_list(const std::vector<std::string>& parts) {
  ValueList out;
  for (const auto& p : parts) out.push_back(Value(p));
  return Value::list(std::move(out));
}

Value call_string_method(const std::string& s, const std::string& name, CallArgs& args) {
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    auto chars = optional_string(take_arg(args, 0, "chars"), name.c_str());
    return Value(py_strip(s, chars, name != "rstrip", name != "lstrip"));
  }
  if (name == "split" || name == "rsplit") {
    auto sep = optional_string(take_arg(args, 0, "sep"), name.c_str());
    if (sep && sep->empty()) throw TemplateError("ValueError: empty separator");
    int64_t maxsplit = int_arg(take_arg(args, 1, "maxsplit", Value(-1)), "maxsplit");
    return string_list(py_split(s, sep, maxsplit, name == "rsplit"));
  }
  if (name == "startswith" || name == "endswith") {
    return Value(affix_matches(s, take_arg(args, 0, "prefix"), name == "startswith", name.c_str()));
  }
  if (name == "replace") {
    int64_t count = int_arg(take_arg(args, 2, "count", Value(-1)), "count");
    return Value(py_replace(s, require_string(take_arg(args, 0, "old"), "replace"),
                            require_string(take_arg(args, 1, "new"), "replace"), count));
  }
  if (name == "upper") return Value(py_upper(s));
  if (name == "lower") return Value(py_lower(s));
  if (name == "title") return Value(py_title(s));
  if (name == "capitalize") return Value(py_capitalize(s));
  if (name == "find" || name == "rfind") return Value(py_find(s, require_string(take_arg(args, 0, "sub"), "find"), name == "rfind"));
  if (name == "count") return Value(py_count(s, require_string(take_arg(args, 0, "sub"), "count")));
  if (name == "join") {
    std::string out;
    ValueList items = iterate(take_arg(args, 0, "iterable"));
    for (size_t i = 0; i < items.size(); ++i) {
      if (i) out += s;
      out += require_string(items[i], "join");
    }
    return Value(out);
  }
  if (name == "removeprefix" || name == "removesuffix") {
    std::string a = require_string(take_arg(args, 0, "affix"), name.c_str());
    if (name == "removeprefix" && s.compare(0, a.size(), a) == 0) return Value(s.substr(a.size()));
    if (name == "removesuffix" && !a.empty() && s.size() >= a.size() && s.compare(s.size() - a.size(), a.size(), a) == 0) {
      return Value(s.substr(0, s.size() - a.size()));
    }
    return Value(s);
  }
  if (name == "splitlines") {
    std::vector<std::string> lines = py_split(s, std::string("\n"), -1, false);
    if (!lines.empty() && lines.back().empty()) lines.pop_back();
    return string_list(lines);
  }
  auto all_of = [&](auto pred) {
    std::u32string text = utf8_decode(s);
    return Value(!text.empty() && std::all_of(text.begin(), text.end(), pred));
  };
  if (name == "isspace") return all_of([](char32_t c) { return is_python_space(c); });
  if (name == "isdigit") return all_of([](char32_t c) { return c >= '0' && c <= '9'; });
  if (name == "isalpha") return all_of([](char32_t c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; });
  if (name == "isalnum") {
    return all_of([](char32_t c) { return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z'); });
  }
  throw TemplateError("unsupported construct: str." + name + "()");
}

Value call_dict_method(const Value& d, const std::string& name, CallArgs& args) {
  DictData& data = d.dict_data();
  if (name == "items") {
    ValueList out;
    for (const auto& [k, v] : data.entries) out.push_back(Value::tuple({k, v}));
    return Value::list(std::move(out));
  }
  if (name == "keys" || name == "values") {
    ValueList out;
    for (const auto& [k, v] : data.entries) out.push_back(name == "keys" ? k : v);
    return Value::list(std::move(out));
  }
  if (name == "get") {
    Value* found = data.find(take_arg(args, 0, "key"));
    return found ? *found : take_arg(args, 1, "default", Value::none());
  }
  if (name == "copy") {
    Value copy = Value::dict();
    copy.dict_data().entries = data.entries;
    return copy;
  }
  throw TemplateError("unsupported construct: dict." + name + "()");
}

Value call_list_method(const Value& list, const std::string& name, CallArgs& args) {
  ValueList& items = list.items();
  if (name == "pop") {
    // list.pop is not on the sandbox's list of mutating methods, so Jinja2 allows it.
    int64_t index = int_arg(take_arg(args, 0, "index", Value(-1)), "index");
    if (items.empty()) throw TemplateError("IndexError: pop from empty list");
    if (index < 0) index += static_cast<int64_t>(items.size());
    if (index < 0 || index >= static_cast<int64_t>(items.size())) throw TemplateError("IndexError: pop index out of range");
    Value out = items[index];
    items.erase(items.begin() + index);
    return out;
  }
  if (name == "index" || name == "count") {
    Value needle = take_arg(args, 0, "value");
    int64_t n = 0;
    for (size_t i = 0; i < items.size(); ++i) {
      if (!values_equal(items[i], needle)) continue;
      if (name == "index") return Value(static_cast<int64_t>(i));
      ++n;
    }
    if (name == "index") throw TemplateError("ValueError: " + needle.repr() + " is not in list");
    return Value(n);
  }
  if (name == "copy") return Value::list(items);
  throw TemplateError("unsupported construct: list." + name + "()");
}

bool is_one_of(const std::string& name, std::initializer_list<const char*> names) {
  for (const char* n : names) {
    if (name == n) return true;
  }
  return false;
}

std::string attribute_hint(const Value& object, const std::string& name) {
  return "'" + object.type_name() + " object' has no attribute '" + name + "'";
}

}  // namespace

Value get_method(const Value& object, const std::string& name) {
  if (object.is_string() &&
      is_one_of(name, {"strip", "lstrip", "rstrip", "split", "rsplit", "startswith", "endswith", "replace", "upper",
                       "lower", "title", "capitalize", "find", "rfind", "count", "join", "removeprefix", "removesuffix",
                       "splitlines", "isspace", "isdigit", "isalpha", "isalnum"})) {
    std::string s = object.as_string();
    return Value::callable("str." + name, [s, name](CallArgs& args) { return call_string_method(s, name, args); });
  }
  bool is_list = object.kind() == ValueKind::kList;
  if ((object.is_dict() && is_one_of(name, {"clear", "pop", "popitem", "setdefault", "update"})) ||
      (is_list && is_one_of(name, {"append", "reverse", "insert", "sort", "extend", "remove"}))) {
    return Value::undefined("access to attribute '" + name + "' of '" + object.type_name() + "' object is unsafe.", true);
  }
  if (object.is_dict() && is_one_of(name, {"items", "keys", "values", "get", "copy"})) {
    return Value::callable("dict." + name, [object, name](CallArgs& args) { return call_dict_method(object, name, args); });
  }
  if ((object.is_list() && is_one_of(name, {"index", "count"})) || (is_list && is_one_of(name, {"pop", "copy"}))) {
    return Value::callable("list." + name, [object, name](CallArgs& args) { return call_list_method(object, name, args); });
  }
  return Value::undefined(attribute_hint(object, name));
}

Value get_attribute(const Value& object, const std::string& name) {
  if (object.is_undefined()) object.fail_undefined();
  if (object.is_namespace()) {
    Value* found = object.dict_data().find(Value(name));
    return found ? *found : Value::undefined(attribute_hint(object, name));
  }
  Value method = get_method(object, name);
  if (!method.is_undefined() || method.undefined_unsafe()) return method;
  if (object.is_dict()) {
    Value* found = object.dict_data().find(Value(name));
    if (found) return *found;
  }
  return Value::undefined(attribute_hint(object, name));
}

Value get_item(const Value& object, const Value& key) {
  if (object.is_undefined()) object.fail_undefined();
  if (object.is_dict()) {
    if (Value* found = object.dict_data().find(key)) return *found;
  } else if ((object.is_list() || object.is_string()) && (key.is_int() || key.is_bool())) {
    int64_t length = length_of(object);
    int64_t index = key.as_int() < 0 ? key.as_int() + length : key.as_int();
    if (index >= 0 && index < length) {
      if (object.is_list()) return object.items()[index];
      return slice_value(object, index, index + 1, 1);
    }
    return Value::undefined("'" + object.type_name() + " object' has no element " + key.repr());
  }
  if (key.is_string()) {
    if (object.is_namespace()) return get_attribute(object, key.as_string());
    Value method = get_method(object, key.as_string());
    if (!method.is_undefined() || method.undefined_unsafe()) return method;
    return Value::undefined(attribute_hint(object, key.as_string()));
  }
  return Value::undefined("'" + object.type_name() + " object' has no element " + key.repr());
}

}  // namespace moe::tokenizer::jinja

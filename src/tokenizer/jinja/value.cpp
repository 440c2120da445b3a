#include "tokenizer/jinja/value.h"

#include <charconv>
#include <cmath>
#include <cstdio>

namespace moe::tokenizer::jinja {

Value Value::undefined(std::string hint, bool unsafe) {
  Value v;
  v.str_ = std::move(hint);
  v.int_ = unsafe ? 1 : 0;
  return v;
}

Value Value::markup(std::string s) {
  Value v(std::move(s));
  v.markup_ = true;
  return v;
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

Value Value::none() {
  Value v;
  v.kind_ = ValueKind::kNone;
  return v;
}

Value Value::list(ValueList items) {
  Value v;
  v.kind_ = ValueKind::kList;
  v.list_ = std::make_shared<ValueList>(std::move(items));
  return v;
}

Value Value::tuple(ValueList items) {
  Value v = list(std::move(items));
  v.kind_ = ValueKind::kTuple;
  return v;
}

Value Value::generator(ValueList items, std::string type_name) {
  Value v = list(std::move(items));
  v.kind_ = ValueKind::kGenerator;
  v.str_ = std::move(type_name);
  return v;
}

Value Value::dict() {
  Value v;
  v.kind_ = ValueKind::kDict;
  v.dict_ = std::make_shared<DictData>();
  return v;
}

Value Value::make_namespace() {
  Value v = dict();
  v.kind_ = ValueKind::kNamespace;
  return v;
}

Value Value::callable(std::string name, NativeFunction fn) {
  Value v;
  v.kind_ = ValueKind::kCallable;
  v.callable_ = std::make_shared<Callable>(Callable{std::move(name), std::move(fn)});
  return v;
}

Value Value::from_json(const nlohmann::ordered_json& json) {
  switch (json.type()) {
    case nlohmann::json::value_t::null: return none();
    case nlohmann::json::value_t::boolean: return Value(json.get<bool>());
    case nlohmann::json::value_t::number_integer: return Value(json.get<int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
      // Python ints are unbounded; ours are 64-bit, so huge unsigned values become floats.
      uint64_t u = json.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return Value(static_cast<double>(u));
      return Value(static_cast<int64_t>(u));
    }
    case nlohmann::json::value_t::number_float: return Value(json.get<double>());
    case nlohmann::json::value_t::string: return Value(json.get<std::string>());
    case nlohmann::json::value_t::array: {
      ValueList items;
      items.reserve(json.size());
      for (const auto& item : json) items.push_back(from_json(item));
      return list(std::move(items));
    }
    case nlohmann::json::value_t::object: {
      Value d = dict();
      for (const auto& [key, item] : json.items()) d.dict_data().entries.emplace_back(Value(key), from_json(item));
      return d;
    }
    default: return none();
  }
}

bool Value::truthy() const {
  switch (kind_) {
    case ValueKind::kUndefined:
    case ValueKind::kNone: return false;
    case ValueKind::kBool:
    case ValueKind::kInt: return int_ != 0;
    case ValueKind::kFloat: return float_ != 0.0;
    case ValueKind::kString: return !str_.empty();
    case ValueKind::kList:
    case ValueKind::kTuple: return !list_->empty();
    case ValueKind::kDict: return !dict_->entries.empty();
    case ValueKind::kNamespace:
    case ValueKind::kCallable:
    case ValueKind::kGenerator: return true;
  }
  return false;
}

std::string Value::str() const {
  if (kind_ == ValueKind::kString) return str_;
  if (kind_ == ValueKind::kUndefined) return "";
  return repr();
}

namespace {

std::string repr_sequence(const ValueList& items, const char* open, const char* close, bool tuple) {
  std::string out = open;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ", ";
    out += items[i].repr();
  }
  if (tuple && items.size() == 1) out += ",";
  out += close;
  return out;
}

std::string repr_dict(const DictData& data) {
  std::string out = "{";
  for (size_t i = 0; i < data.entries.size(); ++i) {
    if (i) out += ", ";
    out += data.entries[i].first.repr() + ": " + data.entries[i].second.repr();
  }
  return out + "}";
}

}  // namespace

std::string Value::repr() const {
  switch (kind_) {
    case ValueKind::kUndefined: return "Undefined";
    case ValueKind::kNone: return "None";
    case ValueKind::kBool: return int_ ? "True" : "False";
    case ValueKind::kInt: return std::to_string(int_);
    case ValueKind::kFloat: return format_float(float_);
    case ValueKind::kString: return repr_string(str_);
    case ValueKind::kList: return repr_sequence(*list_, "[", "]", false);
    case ValueKind::kTuple: return repr_sequence(*list_, "(", ")", true);
    case ValueKind::kDict: return repr_dict(*dict_);
    case ValueKind::kNamespace: return "<Namespace " + repr_dict(*dict_) + ">";
    case ValueKind::kCallable: return "<function " + callable_->name + ">";
    case ValueKind::kGenerator: return "<" + str_ + " object>";
  }
  return "";
}

std::string Value::type_name() const {
  switch (kind_) {
    case ValueKind::kUndefined: return "Undefined";
    case ValueKind::kNone: return "NoneType";
    case ValueKind::kBool: return "bool";
    case ValueKind::kInt: return "int";
    case ValueKind::kFloat: return "float";
    case ValueKind::kString: return "str";
    case ValueKind::kList: return "list";
    case ValueKind::kTuple: return "tuple";
    case ValueKind::kDict: return "dict";
    case ValueKind::kNamespace: return "Namespace";
    case ValueKind::kCallable: return "function";
    case ValueKind::kGenerator: return str_;
  }
  return "object";
}

const void* Value::identity() const {
  if (list_) return list_.get();
  if (dict_) return dict_.get();
  if (callable_) return callable_.get();
  return nullptr;
}

void Value::fail_undefined() const {
  if (undefined_unsafe()) throw TemplateError("SecurityError: " + str_);
  throw TemplateError("UndefinedError: " + (str_.empty() ? std::string("value is undefined") : str_));
}

Value* DictData::find(const Value& key) {
  for (auto& entry : entries) {
    if (values_equal(entry.first, key)) return &entry.second;
  }
  return nullptr;
}

void DictData::set(const Value& key, Value value) {
  if (Value* existing = find(key)) {
    *existing = std::move(value);
    return;
  }
  entries.emplace_back(key, std::move(value));
}

bool DictData::erase(const Value& key) {
  for (auto it = entries.begin(); it != entries.end(); ++it) {
    if (values_equal(it->first, key)) {
      entries.erase(it);
      return true;
    }
  }
  return false;
}

namespace {

bool dicts_equal(DictData& a, DictData& b) {
  if (a.entries.size() != b.entries.size()) return false;
  for (auto& [key, value] : a.entries) {
    Value* other = b.find(key);
    if (!other || !values_equal(value, *other)) return false;
  }
  return true;
}

}  // namespace

bool values_equal(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_float() == b.as_float();
    return a.as_int() == b.as_int();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case ValueKind::kUndefined:
    case ValueKind::kNone: return true;
    case ValueKind::kString: return a.as_string() == b.as_string();
    case ValueKind::kList:
    case ValueKind::kTuple: {
      const ValueList& x = a.items();
      const ValueList& y = b.items();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i) {
        if (!values_equal(x[i], y[i])) return false;
      }
      return true;
    }
    case ValueKind::kDict:
    case ValueKind::kNamespace: return dicts_equal(a.dict_data(), b.dict_data());
    default: return a.identity() == b.identity();
  }
}

int compare_values(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) {
      double x = a.as_float(), y = b.as_float();
      return x < y ? -1 : (x > y ? 1 : 0);
    }
    return a.as_int() < b.as_int() ? -1 : (a.as_int() > b.as_int() ? 1 : 0);
  }
  // UTF-8 byte order equals code point order, which is how Python orders str.
  if (a.is_string() && b.is_string()) return a.as_string().compare(b.as_string());
  if (a.kind() == b.kind() && a.is_list()) {
    const ValueList& x = a.items();
    const ValueList& y = b.items();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (!values_equal(x[i], y[i])) return compare_values(x[i], y[i]);
    }
    return x.size() < y.size() ? -1 : (x.size() > y.size() ? 1 : 0);
  }
  if (a.is_undefined()) a.fail_undefined();
  if (b.is_undefined()) b.fail_undefined();
  throw TemplateError("TypeError: '<' not supported between instances of '" + a.type_name() + "' and '" +
                      b.type_name() + "'");
}

std::string format_float(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value < 0 ? "-inf" : "inf";
  // Shortest round-trip digits, then laid out the way Python's float.__repr__ does: fixed
  // notation for exponents in [-4, 16), scientific otherwise.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  std::string sign;
  if (sci[0] == '-') {
    sign = "-";
    sci.erase(0, 1);
  }
  size_t e_pos = sci.find('e');
  std::string mantissa = sci.substr(0, e_pos);
  int exponent = std::stoi(sci.substr(e_pos + 1));
  std::string digits;
  for (char c : mantissa) {
    if (c != '.') digits += c;
  }
  if (exponent >= -4 && exponent < 16) {
    std::string out;
    if (exponent >= 0) {
      if (digits.size() <= static_cast<size_t>(exponent) + 1) digits.append(exponent + 1 - digits.size(), '0');
      out = digits.substr(0, exponent + 1) + ".";
      std::string frac = digits.substr(exponent + 1);
      out += frac.empty() ? "0" : frac;
    } else {
      out = "0." + std::string(-exponent - 1, '0') + digits;
    }
    return sign + out;
  }
  std::string out = digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  char exp_buf[16];
  std::snprintf(exp_buf, sizeof(exp_buf), "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
  return sign + out + exp_buf;
}

std::string repr_string(const std::string& s) {
  bool has_single = s.find('\'') != std::string::npos;
  bool has_double = s.find('"') != std::string::npos;
  char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, quote);
  for (unsigned char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == static_cast<unsigned char>(quote)) {
      out += '\\';
      out += quote;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += quote;
  return out;
}

}  // namespace moe::tokenizer::jinja

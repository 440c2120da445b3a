#include "tokenizer/jinja/operators.h"

#include <cmath>

#include "tokenizer/jinja/strings.h"

namespace moe::tokenizer::jinja {
namespace {

[[noreturn]] void unsupported_operands(const std::string& op, const Value& a, const Value& b) {
  if (a.is_undefined()) a.fail_undefined();
  if (b.is_undefined()) b.fail_undefined();
  throw TemplateError("TypeError: unsupported operand type(s) for " + op + ": '" + a.type_name() + "' and '" +
                      b.type_name() + "'");
}

void check_overflow(bool overflow) {
  if (overflow) throw TemplateError("OverflowError: integer result exceeds 64 bits");
}

Value repeat(const Value& seq, int64_t times) {
  if (seq.is_string()) {
    std::string out;
    for (int64_t i = 0; i < times && out.size() < (1u << 26); ++i) out += seq.as_string();
    return Value(out);
  }
  ValueList out;
  for (int64_t i = 0; i < times && out.size() < (1u << 24); ++i) {
    out.insert(out.end(), seq.items().begin(), seq.items().end());
  }
  return seq.kind() == ValueKind::kTuple ? Value::tuple(std::move(out)) : Value::list(std::move(out));
}

Value arithmetic(const std::string& op, const Value& a, const Value& b) {
  bool ints = !a.is_float() && !b.is_float();
  int64_t x = a.as_int(), y = b.as_int(), r = 0;
  double fx = a.as_float(), fy = b.as_float();
  if (op == "+" || op == "-" || op == "*") {
    if (!ints) return Value(op == "+" ? fx + fy : op == "-" ? fx - fy : fx * fy);
    check_overflow(op == "+"   ? __builtin_add_overflow(x, y, &r)
                   : op == "-" ? __builtin_sub_overflow(x, y, &r)
                               : __builtin_mul_overflow(x, y, &r));
    return Value(r);
  }
  if (op == "/") {
    if (fy == 0) throw TemplateError("ZeroDivisionError: division by zero");
    return Value(fx / fy);
  }
  if (op == "//" || op == "%") {
    if (fy == 0) throw TemplateError("ZeroDivisionError: integer division or modulo by zero");
    if (ints) {
      int64_t q = x / y, m = x % y;
      if (m != 0 && ((m < 0) != (y < 0))) {
        --q;
        m += y;
      }
      return op == "//" ? Value(q) : Value(m);
    }
    double m = std::fmod(fx, fy);
    if (m != 0 && ((m < 0) != (fy < 0))) m += fy;
    return op == "//" ? Value(std::floor((fx - m) / fy + 0.5)) : Value(m);
  }
  // "**": ints stay ints for non-negative exponents, as in Python.
  if (ints && y >= 0) {
    int64_t result = 1;
    for (int64_t i = 0; i < y; ++i) check_overflow(__builtin_mul_overflow(result, x, &result));
    return Value(result);
  }
  return Value(std::pow(fx, fy));
}

// Python's "%" string formatting for the %s/%d/%r/%% conversions templates use.
Value format_percent(const std::string& format, const Value& args) {
  ValueList values = args.kind() == ValueKind::kTuple ? args.items() : ValueList{args};
  std::string out;
  size_t next = 0;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%') {
      out += format[i];
      continue;
    }
    if (++i >= format.size()) throw TemplateError("ValueError: incomplete format");
    char conv = format[i];
    if (conv == '%') {
      out += '%';
      continue;
    }
    if (next >= values.size()) throw TemplateError("TypeError: not enough arguments for format string");
    const Value& v = values[next++];
    if (conv == 's') {
      out += v.str();
    } else if (conv == 'r') {
      out += v.repr();
    } else if (conv == 'd' || conv == 'i') {
      if (!v.is_number()) throw TemplateError("TypeError: %d format: a real number is required");
      out += std::to_string(v.is_float() ? static_cast<int64_t>(v.as_float()) : v.as_int());
    } else {
      throw TemplateError(std::string("unsupported construct: '%") + conv + "' string formatting");
    }
  }
  if (next < values.size()) throw TemplateError("TypeError: not all arguments converted during string formatting");
  return Value(out);
}

}  // namespace

Value binary_op(const std::string& op, const Value& a, const Value& b) {
  if (op == "~") {
    if (a.is_undefined() && a.undefined_unsafe()) a.fail_undefined();
    return Value(a.str() + b.str());
  }
  if (a.is_number() && b.is_number()) return arithmetic(op, a, b);
  if (op == "+" && (a.is_markup() || b.is_markup())) {
    // Markup + x escapes x (Markup.__add__/__radd__); `~` stays plain because Jinja2 joins
    // with str_join when autoescape is off.
    auto side = [](const Value& v) { return v.is_markup() ? v.as_string() : html_escape(v.str()); };
    if (a.is_string() && b.is_string()) return Value::markup(side(a) + side(b));
  }
  if (op == "+" && a.is_string() && b.is_string()) return Value(a.as_string() + b.as_string());
  if (op == "+" && a.is_list() && a.kind() == b.kind()) {
    ValueList out = a.items();
    out.insert(out.end(), b.items().begin(), b.items().end());
    return a.kind() == ValueKind::kTuple ? Value::tuple(std::move(out)) : Value::list(std::move(out));
  }
  if (op == "*" && (a.is_string() || a.is_list()) && (b.is_int() || b.is_bool())) return repeat(a, b.as_int());
  if (op == "*" && (b.is_string() || b.is_list()) && (a.is_int() || a.is_bool())) return repeat(b, a.as_int());
  if (op == "%" && a.is_string()) return format_percent(a.as_string(), b);
  unsupported_operands(op, a, b);
}

Value negate(const Value& a) {
  if (a.is_float()) return Value(-a.as_float());
  if (a.is_number()) return Value(-a.as_int());
  if (a.is_undefined()) a.fail_undefined();
  throw TemplateError("TypeError: bad operand type for unary -: '" + a.type_name() + "'");
}

bool contains(const Value& haystack, const Value& needle) {
  if (haystack.is_string()) {
    if (!needle.is_string()) {
      if (needle.is_undefined()) needle.fail_undefined();
      throw TemplateError("TypeError: 'in <string>' requires string as left operand, not " + needle.type_name());
    }
    return haystack.as_string().find(needle.as_string()) != std::string::npos;
  }
  if (haystack.is_list()) {
    for (const auto& item : haystack.items()) {
      if (values_equal(item, needle)) return true;
    }
    return false;
  }
  if (haystack.is_dict()) return haystack.dict_data().find(needle) != nullptr;
  if (haystack.is_generator()) {
    for (const auto& item : iterate(haystack)) {
      if (values_equal(item, needle)) return true;
    }
    return false;
  }
  if (haystack.is_undefined()) {
    if (haystack.undefined_unsafe()) haystack.fail_undefined();
    return false;
  }
  throw TemplateError("TypeError: argument of type '" + haystack.type_name() + "' is not iterable");
}

namespace {

// Python's slice.indices(): clamps start/stop for the given length and step.
void slice_indices(int64_t length, std::optional<int64_t> start, std::optional<int64_t> stop, int64_t step,
                   int64_t& begin, int64_t& end) {
  auto adjust = [&](std::optional<int64_t> v, int64_t fallback) {
    if (!v) return fallback;
    int64_t x = *v;
    if (x < 0) {
      x += length;
      if (x < 0) x = step < 0 ? -1 : 0;
    } else if (x >= length) {
      x = step < 0 ? length - 1 : length;
    }
    return x;
  };
  begin = adjust(start, step < 0 ? length - 1 : 0);
  end = adjust(stop, step < 0 ? -1 : length);
}

}  // namespace

Value slice_value(const Value& value, std::optional<int64_t> start, std::optional<int64_t> stop,
                  std::optional<int64_t> step) {
  int64_t s = step.value_or(1);
  if (s == 0) throw TemplateError("ValueError: slice step cannot be zero");
  std::u32string text;
  int64_t length = 0;
  if (value.is_string()) {
    text = utf8_decode(value.as_string());
    length = static_cast<int64_t>(text.size());
  } else if (value.is_list()) {
    length = static_cast<int64_t>(value.items().size());
  } else {
    if (value.is_undefined()) value.fail_undefined();
    throw TemplateError("TypeError: '" + value.type_name() + "' object is not subscriptable");
  }
  int64_t begin = 0, end = 0;
  slice_indices(length, start, stop, s, begin, end);
  std::u32string text_out;
  ValueList list_out;
  for (int64_t i = begin; s > 0 ? i < end : i > end; i += s) {
    if (value.is_string()) {
      text_out += text[i];
    } else {
      list_out.push_back(value.items()[i]);
    }
  }
  if (value.is_string()) return Value(utf8_encode(text_out));
  return value.kind() == ValueKind::kTuple ? Value::tuple(std::move(list_out)) : Value::list(std::move(list_out));
}

ValueList iterate(const Value& value) {
  if (value.is_list()) return value.items();
  if (value.is_generator()) {
    // Iterators are exhausted by one pass, as in Python.
    ValueList items = std::move(value.items());
    value.items().clear();
    return items;
  }
  if (value.is_dict()) {
    ValueList keys;
    for (const auto& entry : value.dict_data().entries) keys.push_back(entry.first);
    return keys;
  }
  if (value.is_string()) {
    ValueList chars;
    for (char32_t c : utf8_decode(value.as_string())) chars.push_back(Value(utf8_encode(std::u32string(1, c))));
    return chars;
  }
  if (value.is_undefined()) {
    if (value.undefined_unsafe()) value.fail_undefined();
    return {};
  }
  throw TemplateError("TypeError: '" + value.type_name() + "' object is not iterable");
}

int64_t length_of(const Value& value) {
  if (value.is_string()) return static_cast<int64_t>(utf8_length(value.as_string()));
  if (value.is_list()) return static_cast<int64_t>(value.items().size());
  if (value.is_dict()) return static_cast<int64_t>(value.dict_data().entries.size());
  if (value.is_undefined()) return 0;
  throw TemplateError("TypeError: object of type '" + value.type_name() + "' has no len()");
}

}  // namespace moe::tokenizer::jinja

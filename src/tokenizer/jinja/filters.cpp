// Jinja2's built-in filters as chat templates use them, plus Hugging Face's tojson override.
// Each follows jinja2/filters.py, including its quirks (indent's trailing-newline handling,
// dictsort's case folding, round's int passthrough).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/operators.h"
#include "tokenizer/jinja/strings.h"

namespace moe::tokenizer::jinja {
namespace {

using FilterFn = Value (*)(const Value&, CallArgs&);

// Returns attribute or item `path` ("a.b", "0") of `item` like jinja2's make_attrgetter.
Value lookup_path(const Value& item, const Value& path) {
  if (!path.is_string()) return get_item(item, path);
  Value current = item;
  for (const auto& part : py_split(path.as_string(), std::string("."), -1, false)) {
    bool numeric = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    current = get_item(current, numeric ? Value(static_cast<int64_t>(std::stoll(part))) : Value(part));
  }
  return current;
}

// Python's str() of filter input as jinja2's soft_str: Undefined becomes ''.
std::string soft_str(const Value& v) {
  if (v.is_undefined() && v.undefined_unsafe()) v.fail_undefined();
  return v.str();
}

// Sort key for sort/dictsort/unique/min/max: strings fold case unless case_sensitive.
Value sort_key(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.is_string()) return Value(py_lower(v.as_string()));
  return v;
}

Value f_default(const Value& in, CallArgs& a) {
  Value fallback = take_arg(a, 0, "default_value", Value(""));
  bool boolean = take_arg(a, 1, "boolean", Value(false)).truthy();
  if (in.is_undefined() || (boolean && !in.truthy())) return fallback;
  return in;
}

Value f_length(const Value& in, CallArgs&) { return Value(length_of(in)); }

Value f_first(const Value& in, CallArgs&) {
  ValueList items = iterate(in);
  return items.empty() ? Value::undefined("No first item, sequence was empty.") : items.front();
}

Value f_last(const Value& in, CallArgs&) {
  if (in.is_generator()) throw TemplateError("TypeError: '" + in.type_name() + "' object is not reversible");
  ValueList items = iterate(in);
  return items.empty() ? Value::undefined("No last item, sequence was empty.") : items.back();
}

Value f_join(const Value& in, CallArgs& a) {
  std::string sep = soft_str(take_arg(a, 0, "d", Value("")));
  Value attribute = take_arg(a, 1, "attribute");
  std::string out;
  ValueList items = iterate(in);
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += sep;
    out += soft_str(attribute.is_undefined() ? items[i] : lookup_path(items[i], attribute));
  }
  return Value(out);
}

// Markup's str methods return Markup, so string filters keep the input's markup-ness.
Value same_flavour(const Value& in, std::string s) { return in.is_markup() ? Value::markup(std::move(s)) : Value(std::move(s)); }

Value f_upper(const Value& in, CallArgs&) { return same_flavour(in, py_upper(soft_str(in))); }
Value f_lower(const Value& in, CallArgs&) { return same_flavour(in, py_lower(soft_str(in))); }
Value f_capitalize(const Value& in, CallArgs&) { return same_flavour(in, py_capitalize(soft_str(in))); }

// Jinja2's title filter upper-cases the first letter after spaces, dashes and brackets.
Value f_title(const Value& in, CallArgs&) {
  std::string s = soft_str(in), out;
  bool word_start = true;
  for (char c : s) {
    bool separator = is_python_space(static_cast<unsigned char>(c)) || std::strchr("-({[<", c) != nullptr;
    if (separator) {
      out += c;
      word_start = true;
      continue;
    }
    out += word_start ? py_upper(std::string(1, c)) : py_lower(std::string(1, c));
    word_start = false;
  }
  return Value(out);
}

Value f_trim(const Value& in, CallArgs& a) {
  Value chars = take_arg(a, 0, "chars");
  std::optional<std::string> set;
  if (!chars.is_undefined() && !chars.is_none()) set = soft_str(chars);
  return same_flavour(in, py_strip(soft_str(in), set, true, true));
}

Value f_string(const Value& in, CallArgs&) { return same_flavour(in, soft_str(in)); }
Value f_safe(const Value& in, CallArgs&) { return Value::markup(soft_str(in)); }
Value f_escape(const Value& in, CallArgs&) { return in.is_markup() ? in : Value::markup(html_escape(soft_str(in))); }
Value f_forceescape(const Value& in, CallArgs&) { return Value::markup(html_escape(soft_str(in))); }

Value f_replace(const Value& in, CallArgs& a) {
  Value count = take_arg(a, 2, "count");
  int64_t n = count.is_undefined() || count.is_none() ? -1 : int_arg(count, "count");
  std::string old_text = soft_str(take_arg(a, 0, "old")), new_text = soft_str(take_arg(a, 1, "new"));
  if (!in.is_markup()) return Value(py_replace(soft_str(in), old_text, new_text, n));
  // Markup.replace escapes its arguments.
  return Value::markup(py_replace(in.as_string(), html_escape(old_text), html_escape(new_text), n));
}

// Python int(str): optional sign, digits with single underscores, surrounding whitespace.
std::optional<int64_t> parse_int(const std::string& text, int base) {
  std::string s = py_strip(text, std::nullopt, true, true), digits;
  for (char c : s) {
    if (c != '_') digits += c;
  }
  if (digits.empty()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(digits.c_str(), &end, base);
  if (errno != 0 || *end != '\0' || std::isspace(static_cast<unsigned char>(digits[0]))) return std::nullopt;
  return static_cast<int64_t>(v);
}

std::optional<double> parse_float(const std::string& text) {
  std::string s = py_strip(text, std::nullopt, true, true);
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (*end != '\0') return std::nullopt;
  return v;
}

Value f_int(const Value& in, CallArgs& a) {
  Value fallback = take_arg(a, 0, "default", Value(0));
  int base = static_cast<int>(int_arg(take_arg(a, 1, "base", Value(10)), "base"));
  if (in.is_int() || in.is_bool()) return Value(in.as_int());
  if (in.is_float()) return std::isfinite(in.as_float()) ? Value(static_cast<int64_t>(in.as_float())) : fallback;
  if (in.is_string()) {
    if (auto v = parse_int(in.as_string(), base)) return Value(*v);
    if (auto f = parse_float(in.as_string()); f && std::isfinite(*f)) return Value(static_cast<int64_t>(*f));
  }
  return fallback;
}

Value f_float(const Value& in, CallArgs& a) {
  Value fallback = take_arg(a, 0, "default", Value(0.0));
  if (in.is_number()) return Value(in.as_float());
  if (in.is_string()) {
    if (auto f = parse_float(in.as_string())) return Value(*f);
  }
  return fallback;
}

Value f_list(const Value& in, CallArgs&) { return Value::list(iterate(in)); }

Value f_items(const Value& in, CallArgs&) {
  if (in.is_undefined()) return Value::list();
  if (!in.is_dict()) throw TemplateError("TypeError: Can only get item pairs from a mapping.");
  ValueList out;
  for (const auto& [k, v] : in.dict_data().entries) out.push_back(Value::tuple({k, v}));
  return Value::generator(std::move(out));
}

Value f_dictsort(const Value& in, CallArgs& a) {
  bool case_sensitive = take_arg(a, 0, "case_sensitive", Value(false)).truthy();
  Value by = take_arg(a, 1, "by", Value("key"));
  bool reverse = take_arg(a, 2, "reverse", Value(false)).truthy();
  if (!in.is_dict()) throw TemplateError("TypeError: dictsort needs a mapping");
  size_t pos = by.is_string() && by.as_string() == "value" ? 1 : 0;
  if (by.is_string() && by.as_string() != "key" && by.as_string() != "value") {
    throw TemplateError("FilterArgumentError: You can only sort by either \"key\" or \"value\"");
  }
  auto entries = in.dict_data().entries;
  std::stable_sort(entries.begin(), entries.end(), [&](const auto& x, const auto& y) {
    const Value& kx = pos ? x.second : x.first;
    const Value& ky = pos ? y.second : y.first;
    int c = compare_values(sort_key(kx, case_sensitive), sort_key(ky, case_sensitive));
    return reverse ? c > 0 : c < 0;
  });
  ValueList out;
  for (const auto& [k, v] : entries) out.push_back(Value::tuple({k, v}));
  return Value::list(std::move(out));
}

// Shared by select/reject/selectattr/rejectattr: keeps items whose (attribute) value passes
// the named test (or truthiness) == `keep`.
Value select_common(const Value& in, CallArgs& a, bool with_attribute, bool keep) {
  size_t next = 0;
  Value attribute;
  if (with_attribute) attribute = a.positional.size() > next ? a.positional[next++] : Value();
  std::string test = a.positional.size() > next ? soft_str(a.positional[next++]) : "";
  CallArgs test_args;
  test_args.positional.assign(a.positional.begin() + static_cast<std::ptrdiff_t>(next), a.positional.end());
  ValueList out;
  // jinja2's select_or_reject skips falsy input (None included) entirely.
  ValueList items = in.truthy() ? iterate(in) : ValueList{};
  for (const auto& item : items) {
    Value subject = with_attribute ? lookup_path(item, attribute) : item;
    CallArgs call_args = test_args;
    bool passed = test.empty() ? subject.truthy() : apply_test(test, subject, call_args);
    if (passed == keep) out.push_back(item);
  }
  return Value::generator(std::move(out));
}

Value f_select(const Value& in, CallArgs& a) { return select_common(in, a, false, true); }
Value f_reject(const Value& in, CallArgs& a) { return select_common(in, a, false, false); }
Value f_selectattr(const Value& in, CallArgs& a) { return select_common(in, a, true, true); }
Value f_rejectattr(const Value& in, CallArgs& a) { return select_common(in, a, true, false); }

Value f_map(const Value& in, CallArgs& a) {
  ValueList out;
  if (!in.truthy()) return Value::generator({});  // jinja2's do_map skips falsy input
  Value attribute = take_arg(a, 99, "attribute");
  if (!attribute.is_undefined()) {
    Value fallback = take_arg(a, 99, "default");
    for (const auto& item : iterate(in)) {
      Value v = lookup_path(item, attribute);
      out.push_back(v.is_undefined() && !fallback.is_undefined() ? fallback : v);
    }
    return Value::generator(std::move(out));
  }
  if (a.positional.empty()) throw TemplateError("FilterArgumentError: map requires a filter argument");
  std::string filter = soft_str(a.positional[0]);
  CallArgs rest;
  rest.positional.assign(a.positional.begin() + 1, a.positional.end());
  rest.keyword = a.keyword;
  for (const auto& item : iterate(in)) {
    CallArgs call_args = rest;
    out.push_back(apply_filter(filter, item, call_args));
  }
  return Value::generator(std::move(out));
}

Value f_unique(const Value& in, CallArgs& a) {
  bool case_sensitive = take_arg(a, 0, "case_sensitive", Value(false)).truthy();
  Value attribute = take_arg(a, 1, "attribute");
  ValueList out, seen;
  for (const auto& item : iterate(in)) {
    Value key = sort_key(attribute.is_undefined() ? item : lookup_path(item, attribute), case_sensitive);
    if (std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return values_equal(s, key); })) continue;
    seen.push_back(key);
    out.push_back(item);
  }
  return Value::generator(std::move(out));
}

Value f_sort(const Value& in, CallArgs& a) {
  bool reverse = take_arg(a, 0, "reverse", Value(false)).truthy();
  bool case_sensitive = take_arg(a, 1, "case_sensitive", Value(false)).truthy();
  Value attribute = take_arg(a, 2, "attribute");
  ValueList items = iterate(in);
  std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
    Value kx = sort_key(attribute.is_undefined() ? x : lookup_path(x, attribute), case_sensitive);
    Value ky = sort_key(attribute.is_undefined() ? y : lookup_path(y, attribute), case_sensitive);
    int c = compare_values(kx, ky);
    return reverse ? c > 0 : c < 0;
  });
  return Value::list(std::move(items));
}

Value min_max(const Value& in, CallArgs& a, bool want_max) {
  bool case_sensitive = take_arg(a, 0, "case_sensitive", Value(false)).truthy();
  Value attribute = take_arg(a, 1, "attribute");
  ValueList items = iterate(in);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  size_t best = 0;
  auto key = [&](const Value& v) { return sort_key(attribute.is_undefined() ? v : lookup_path(v, attribute), case_sensitive); };
  for (size_t i = 1; i < items.size(); ++i) {
    int c = compare_values(key(items[i]), key(items[best]));
    if (want_max ? c > 0 : c < 0) best = i;
  }
  return items[best];
}

Value f_min(const Value& in, CallArgs& a) { return min_max(in, a, false); }
Value f_max(const Value& in, CallArgs& a) { return min_max(in, a, true); }

Value f_sum(const Value& in, CallArgs& a) {
  Value attribute = take_arg(a, 0, "attribute");
  Value total = take_arg(a, 1, "start", Value(0));
  for (const auto& item : iterate(in)) total = binary_op("+", total, attribute.is_undefined() ? item : lookup_path(item, attribute));
  return total;
}

Value f_reverse(const Value& in, CallArgs&) {
  if (in.is_string()) return slice_value(in, std::nullopt, std::nullopt, -1);
  ValueList items = iterate(in);
  std::reverse(items.begin(), items.end());
  // reversed() of a list is an iterator; of a generator, Python raises TypeError and jinja2
  // falls back to a reversed list.
  if (in.is_generator()) return Value::list(std::move(items));
  return Value::generator(std::move(items), in.is_dict() ? "dict_reversekeyiterator" : "list_reverseiterator");
}

Value f_abs(const Value& in, CallArgs&) {
  if (in.is_float()) return Value(std::fabs(in.as_float()));
  if (in.is_number()) return Value(in.as_int() < 0 ? -in.as_int() : in.as_int());
  if (in.is_undefined()) in.fail_undefined();
  throw TemplateError("TypeError: bad operand type for abs(): '" + in.type_name() + "'");
}

Value f_round(const Value& in, CallArgs& a) {
  int64_t precision = int_arg(take_arg(a, 0, "precision", Value(0)), "precision");
  std::string method = soft_str(take_arg(a, 1, "method", Value("common")));
  if (!in.is_number()) throw TemplateError("TypeError: round needs a number, got " + in.type_name());
  double scale = std::pow(10.0, static_cast<double>(precision));
  if (method == "ceil") return Value(std::ceil(in.as_float() * scale) / scale);
  if (method == "floor") return Value(std::floor(in.as_float() * scale) / scale);
  if (method != "common") throw TemplateError("FilterArgumentError: method must be common, ceil or floor");
  // Python's round(int, n) keeps the int; round(float, n) rounds the exact binary value half-even,
  // which is what printf's correctly rounded %.*f does too.
  if (!in.is_float()) return Value(in.as_int());
  if (precision < 0 || precision > 300) return Value(std::round(in.as_float() * scale) / scale);
  char buf[400];
  std::snprintf(buf, sizeof(buf), "%.*f", static_cast<int>(precision), in.as_float());
  return Value(std::strtod(buf, nullptr));
}

// Python str.splitlines() boundaries.
std::vector<std::string> split_lines(const std::string& s) {
  std::u32string text = utf8_decode(s);
  std::vector<std::string> lines;
  std::u32string line;
  for (size_t i = 0; i < text.size(); ++i) {
    char32_t c = text[i];
    bool boundary = c == '\n' || c == '\r' || c == 0x0b || c == 0x0c || (c >= 0x1c && c <= 0x1e) || c == 0x85 ||
                    c == 0x2028 || c == 0x2029;
    if (!boundary) {
      line += c;
      continue;
    }
    if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
    lines.push_back(utf8_encode(line));
    line.clear();
  }
  if (!line.empty()) lines.push_back(utf8_encode(line));
  return lines;
}

Value f_indent(const Value& in, CallArgs& a) {
  Value width = take_arg(a, 0, "width", Value(4));
  bool first = take_arg(a, 1, "first", Value(false)).truthy();
  bool blank = take_arg(a, 2, "blank", Value(false)).truthy();
  std::string indention = width.is_string() ? width.as_string() : std::string(std::max<int64_t>(0, int_arg(width, "width")), ' ');
  std::vector<std::string> lines = split_lines(soft_str(in) + "\n");
  std::string rv;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i) rv += "\n";
    if (i && (blank || !lines[i].empty())) rv += indention;
    rv += lines[i];
  }
  return Value(first ? indention + rv : rv);
}

Value f_wordcount(const Value& in, CallArgs&) {
  int64_t n = 0;
  bool in_word = false;
  for (char c : soft_str(in)) {
    bool word = std::isalnum(static_cast<unsigned char>(c)) || c == '_' || (static_cast<unsigned char>(c) >= 0x80);
    if (word && !in_word) ++n;
    in_word = word;
  }
  return Value(n);
}

Value f_center(const Value& in, CallArgs& a) {
  std::string s = soft_str(in);
  int64_t width = int_arg(take_arg(a, 0, "width", Value(80)), "width");
  int64_t len = static_cast<int64_t>(utf8_length(s));
  if (width <= len) return Value(s);
  int64_t total = width - len;
  // CPython's centering puts the extra space on the left when width is odd.
  int64_t left = total / 2 + (total & width & 1);
  return Value(std::string(left, ' ') + s + std::string(total - left, ' '));
}

Value f_batch(const Value& in, CallArgs& a) {
  int64_t size = int_arg(take_arg(a, 0, "linecount"), "linecount");
  if (size <= 0) throw TemplateError("ValueError: batch size must be positive");
  Value fill = take_arg(a, 1, "fill_with");
  ValueList out, current;
  for (const auto& item : iterate(in)) {
    current.push_back(item);
    if (static_cast<int64_t>(current.size()) == size) {
      out.push_back(Value::list(std::move(current)));
      current.clear();
    }
  }
  if (!current.empty()) {
    while (!fill.is_undefined() && static_cast<int64_t>(current.size()) < size) current.push_back(fill);
    out.push_back(Value::list(std::move(current)));
  }
  return Value::generator(std::move(out));
}

Value f_format(const Value& in, CallArgs& a) {
  if (!a.keyword.empty()) throw TemplateError("unsupported construct: format filter with keyword arguments");
  Value args = a.positional.size() == 1 ? Value::tuple({a.positional[0]}) : Value::tuple(a.positional);
  return binary_op("%", Value(soft_str(in)), args);
}

Value f_attr(const Value& in, CallArgs& a) {
  std::string name = soft_str(take_arg(a, 0, "name"));
  if (in.is_namespace()) return get_attribute(in, name);
  return get_method(in, name);
}

Value f_tojson(const Value& in, CallArgs& a) {
  JsonOptions options;
  Value indent = take_arg(a, 1, "indent", Value::none());
  Value separators = take_arg(a, 2, "separators", Value::none());
  options.ensure_ascii = take_arg(a, 0, "ensure_ascii", Value(false)).truthy();
  options.sort_keys = take_arg(a, 3, "sort_keys", Value(false)).truthy();
  // Hugging Face's filter is tojson(x, ensure_ascii=False, indent=None, separators=None,
  // sort_keys=False), but its first positional after x is ensure_ascii; templates pass indent
  // by keyword, and `tojson(2)`-style calls are rare enough to leave to Python's order.
  if (indent.is_string()) {
    options.indent_is_string = true;
    options.indent_string = indent.as_string();
  } else if (!indent.is_none()) {
    options.indent = static_cast<int>(std::max<int64_t>(0, int_arg(indent, "indent")));
  }
  bool indented = options.indent_is_string || options.indent >= 0;
  options.item_separator = indented ? "," : ", ";
  if (separators.is_list() && separators.items().size() == 2) {
    options.item_separator = soft_str(separators.items()[0]);
    options.key_separator = soft_str(separators.items()[1]);
  }
  return Value(json_dumps(in, options));
}

struct FilterEntry {
  const char* name;
  FilterFn fn;  // null: a Jinja2 filter this engine does not implement
};

const FilterEntry kFilters[] = {
    {"abs", f_abs},         {"attr", f_attr},         {"batch", f_batch},       {"capitalize", f_capitalize},
    {"center", f_center},   {"count", f_length},      {"d", f_default},         {"default", f_default},
    {"dictsort", f_dictsort}, {"e", f_escape},        {"escape", f_escape},     {"filesizeformat", nullptr},
    {"first", f_first},     {"float", f_float},       {"forceescape", f_forceescape}, {"format", f_format},
    {"groupby", nullptr},   {"indent", f_indent},     {"int", f_int},           {"items", f_items},
    {"join", f_join},       {"last", f_last},         {"length", f_length},     {"list", f_list},
    {"lower", f_lower},     {"map", f_map},           {"max", f_max},           {"min", f_min},
    {"pprint", nullptr},    {"random", nullptr},      {"reject", f_reject},     {"rejectattr", f_rejectattr},
    {"replace", f_replace}, {"reverse", f_reverse},   {"round", f_round},       {"safe", f_safe},
    {"select", f_select},   {"selectattr", f_selectattr}, {"slice", nullptr},   {"sort", f_sort},
    {"string", f_string},   {"striptags", nullptr},   {"sum", f_sum},           {"title", f_title},
    {"tojson", f_tojson},   {"trim", f_trim},         {"truncate", nullptr},    {"unique", f_unique},
    {"upper", f_upper},     {"urlencode", nullptr},   {"urlize", nullptr},      {"wordcount", f_wordcount},
    {"wordwrap", nullptr},  {"xmlattr", nullptr},
};

const FilterEntry* find_filter(const std::string& name) {
  for (const auto& entry : kFilters) {
    if (name == entry.name) return &entry;
  }
  return nullptr;
}

}  // namespace

Value take_arg(CallArgs& args, size_t index, const char* name, Value fallback) {
  for (const auto& [key, value] : args.keyword) {
    if (key == name) return value;
  }
  if (index < args.positional.size()) return args.positional[index];
  return fallback;
}

int64_t int_arg(const Value& value, const char* what) {
  if (value.is_int() || value.is_bool()) return value.as_int();
  if (value.is_undefined()) value.fail_undefined();
  throw TemplateError(std::string("TypeError: '") + what + "' must be an integer, got " + value.type_name());
}

bool has_filter(const std::string& name) { return find_filter(name) != nullptr; }

Value apply_filter(const std::string& name, const Value& input, CallArgs& args) {
  const FilterEntry* entry = find_filter(name);
  if (!entry) throw TemplateError("No filter named '" + name + "'.");
  if (!entry->fn) throw TemplateError("unsupported construct: filter '" + name + "'");
  return entry->fn(input, args);
}

}  // namespace moe::tokenizer::jinja

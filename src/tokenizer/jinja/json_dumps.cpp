// Python's json.dumps, byte for byte, because Hugging Face's tojson filter is json.dumps and
// tool schemas reach the prompt through it.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/strings.h"

namespace moe::tokenizer::jinja {
namespace {

void append_escaped(std::string& out, const std::string& s, bool ensure_ascii) {
  out += '"';
  char buf[16];
  for (char32_t c : utf8_decode(s)) {
    switch (c) {
      case '"': out += "\\\""; continue;
      case '\\': out += "\\\\"; continue;
      case '\n': out += "\\n"; continue;
      case '\r': out += "\\r"; continue;
      case '\t': out += "\\t"; continue;
      case '\b': out += "\\b"; continue;
      case '\f': out += "\\f"; continue;
      default: break;
    }
    if (c < 0x20 || (ensure_ascii && c >= 0x7f)) {
      if (c >= 0x10000) {
        char32_t v = c - 0x10000;
        std::snprintf(buf, sizeof(buf), "\\u%04x\\u%04x", static_cast<unsigned>(0xD800 | (v >> 10)),
                      static_cast<unsigned>(0xDC00 | (v & 0x3FF)));
      } else {
        std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(c));
      }
      out += buf;
    } else {
      out += utf8_encode(std::u32string(1, c));
    }
  }
  out += '"';
}

std::string float_json(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v < 0 ? "-Infinity" : "Infinity";
  return format_float(v);
}

class JsonWriter {
 public:
  explicit JsonWriter(const JsonOptions& options) : options_(options) {}

  void write(const Value& v, int level, std::string& out) {
    if (level > 512) throw TemplateError("ValueError: Circular reference detected");
    switch (v.kind()) {
      case ValueKind::kNone: out += "null"; return;
      case ValueKind::kBool: out += v.as_bool() ? "true" : "false"; return;
      case ValueKind::kInt: out += std::to_string(v.as_int()); return;
      case ValueKind::kFloat: out += float_json(v.as_float()); return;
      case ValueKind::kString: append_escaped(out, v.as_string(), options_.ensure_ascii); return;
      case ValueKind::kList:
      case ValueKind::kTuple: write_list(v.items(), level, out); return;
      case ValueKind::kDict: write_dict(v.dict_data(), level, out); return;
      default:
        throw TemplateError("TypeError: Object of type " + v.type_name() + " is not JSON serializable");
    }
  }

 private:
  bool indented() const { return options_.indent_is_string || options_.indent >= 0; }

  std::string newline_indent(int level) const {
    std::string unit = options_.indent_is_string ? options_.indent_string : std::string(std::max(options_.indent, 0), ' ');
    std::string out = "\n";
    for (int i = 0; i < level; ++i) out += unit;
    return out;
  }

  void write_list(const ValueList& items, int level, std::string& out) {
    if (items.empty()) {
      out += "[]";
      return;
    }
    out += '[';
    std::string inner = indented() ? newline_indent(level + 1) : "";
    out += inner;
    for (size_t i = 0; i < items.size(); ++i) {
      if (i) out += options_.item_separator + inner;
      write(items[i], level + 1, out);
    }
    if (indented()) out += newline_indent(level);
    out += ']';
  }

  static std::string key_string(const Value& key) {
    switch (key.kind()) {
      case ValueKind::kString: return key.as_string();
      case ValueKind::kBool: return key.as_bool() ? "true" : "false";
      case ValueKind::kNone: return "null";
      case ValueKind::kInt: return std::to_string(key.as_int());
      case ValueKind::kFloat: return float_json(key.as_float());
      default:
        throw TemplateError("TypeError: keys must be str, int, float, bool or None, not " + key.type_name());
    }
  }

  void write_dict(const DictData& dict, int level, std::string& out) {
    if (dict.entries.empty()) {
      out += "{}";
      return;
    }
    std::vector<const std::pair<Value, Value>*> entries;
    for (const auto& entry : dict.entries) entries.push_back(&entry);
    if (options_.sort_keys) {
      std::stable_sort(entries.begin(), entries.end(),
                       [](const auto* a, const auto* b) { return compare_values(a->first, b->first) < 0; });
    }
    out += '{';
    std::string inner = indented() ? newline_indent(level + 1) : "";
    out += inner;
    for (size_t i = 0; i < entries.size(); ++i) {
      if (i) out += options_.item_separator + inner;
      append_escaped(out, key_string(entries[i]->first), options_.ensure_ascii);
      out += options_.key_separator;
      write(entries[i]->second, level + 1, out);
    }
    if (indented()) out += newline_indent(level);
    out += '}';
  }

  const JsonOptions& options_;
};

}  // namespace

std::string json_dumps(const Value& value, const JsonOptions& options) {
  std::string out;
  JsonWriter(options).write(value, 0, out);
  return out;
}

}  // namespace moe::tokenizer::jinja

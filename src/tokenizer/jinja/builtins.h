// The built-in filters, tests, attribute lookup and methods of Python objects that templates
// use, with Jinja2's ImmutableSandboxedEnvironment semantics.
#pragma once

#include <string>

#include "tokenizer/jinja/value.h"

namespace moe::tokenizer::jinja {

// Returns whether Jinja2's default environment (plus Hugging Face's overrides) has the filter.
bool has_filter(const std::string& name);
bool has_test(const std::string& name);

// Returns filter(input, *args, **kwargs); throws TemplateError on bad arguments.
Value apply_filter(const std::string& name, const Value& input, CallArgs& args);
// Returns the outcome of test(input, *args).
bool apply_test(const std::string& name, const Value& input, CallArgs& args);

// Returns `object.name` with Jinja2's sandboxed getattr: Python attributes and methods first,
// then items; Undefined when neither exists, an "unsafe" Undefined for mutating methods.
Value get_attribute(const Value& object, const std::string& name);
// Returns `object[key]`: items first, then attributes (sandbox getitem).
Value get_item(const Value& object, const Value& key);
// Returns the bound method `object.name`, or Undefined if the type has no such method.
Value get_method(const Value& object, const std::string& name);

// Returns Python's json.dumps(value, ...) as Hugging Face's tojson filter calls it.
struct JsonOptions {
  int indent = -1;  // < 0: no newlines
  std::string indent_string;  // used when the indent argument is a string
  bool indent_is_string = false;
  std::string item_separator = ", ";
  std::string key_separator = ": ";
  bool ensure_ascii = false;
  bool sort_keys = false;
};
std::string json_dumps(const Value& value, const JsonOptions& options);

// Returns an integer argument or throws naming the filter.
int64_t int_arg(const Value& value, const char* what);

// Takes the argument at `index` or named `name` from args, or `fallback`.
Value take_arg(CallArgs& args, size_t index, const char* name, Value fallback = Value());

}  // namespace moe::tokenizer::jinja

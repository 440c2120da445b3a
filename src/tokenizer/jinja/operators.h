// Python operators on Values: arithmetic with int/float promotion, string and list
// concatenation and repetition, `in`, subscripts, slices and iteration.
#pragma once

#include <optional>
#include <string>

#include "tokenizer/jinja/value.h"

namespace moe::tokenizer::jinja {

// Returns `a op b` for op in + - * / // % ** ~; throws TemplateError (TypeError,
// ZeroDivisionError, UndefinedError) like Python would.
Value binary_op(const std::string& op, const Value& a, const Value& b);
// Returns -a.
Value negate(const Value& a);
// Returns `needle in haystack`.
bool contains(const Value& haystack, const Value& needle);
// Returns haystack[start:stop:step] for strings, lists and tuples.
Value slice_value(const Value& value, std::optional<int64_t> start, std::optional<int64_t> stop,
                  std::optional<int64_t> step);
// Returns the items iteration yields: list items, dict keys, string characters; Undefined
// iterates as empty.
ValueList iterate(const Value& value);
// Returns len(value).
int64_t length_of(const Value& value);

}  // namespace moe::tokenizer::jinja

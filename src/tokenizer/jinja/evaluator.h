// Evaluator: renders a parsed template against a context, with Jinja2's scoping (loop bodies
// and macros get their own scope per run; if-blocks do not), loop controls, macros, call and
// filter blocks, and the globals chat templates call.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "tokenizer/jinja/ast.h"

namespace moe::tokenizer::jinja {

struct RenderOptions {
  // The time strftime_now() formats, in seconds since the epoch (formatted as UTC). Absent:
  // the current local time, as Hugging Face's datetime.now() would give.
  std::optional<int64_t> now_unix_seconds;
};

// Returns the rendered text; throws TemplateError (with the template line where known).
std::string render_body(const Body& body, const nlohmann::ordered_json& context, const RenderOptions& options);

}  // namespace moe::tokenizer::jinja

// Python str semantics over UTF-8: Python indexes, slices and strips by code point, so these
// helpers decode to code points where byte offsets would give different answers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace moe::tokenizer::jinja {

// Returns the code points of `s` (invalid bytes map to U+FFFD, one per byte).
std::u32string utf8_decode(const std::string& s);
std::string utf8_encode(const std::u32string& s);
// Returns the number of code points (Python len(str)).
size_t utf8_length(const std::string& s);

// Python str.isspace() for one code point.
bool is_python_space(char32_t c);

// str.strip/lstrip/rstrip; `chars` absent means whitespace.
std::string py_strip(const std::string& s, const std::optional<std::string>& chars, bool left, bool right);
// str.split / str.rsplit; `sep` absent splits on whitespace runs.
std::vector<std::string> py_split(const std::string& s, const std::optional<std::string>& sep, int64_t maxsplit,
                                  bool from_right);
// str.replace with an optional count (< 0 means all).
std::string py_replace(const std::string& s, const std::string& old_text, const std::string& new_text, int64_t count);
// str.count (non-overlapping).
int64_t py_count(const std::string& s, const std::string& sub);
// str.find / str.rfind, returning a code point index or -1.
int64_t py_find(const std::string& s, const std::string& sub, bool from_right);
// ASCII-range case mapping (non-ASCII letters are left unchanged; see docs/CHAT_TEMPLATES.md).
std::string py_upper(const std::string& s);
std::string py_lower(const std::string& s);
// str.title(): first letter of every run of letters upper-cased, the rest lower-cased.
std::string py_title(const std::string& s);
// str.capitalize().
std::string py_capitalize(const std::string& s);

}  // namespace moe::tokenizer::jinja

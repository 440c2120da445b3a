#include "tokenizer/jinja/strings.h"

#include "tokenizer/utf8.h"

namespace moe::tokenizer::jinja {

std::u32string utf8_decode(const std::string& s) {
  std::u32string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    int len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (len == 0 || i + len > s.size()) {
      out += U'\uFFFD';
      ++i;
      continue;
    }
    char32_t cp = len == 1 ? c : (c & (0xFF >> (len + 1)));
    bool valid = true;
    for (int k = 1; k < len; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) valid = false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (!valid) {
      out += U'\uFFFD';
      ++i;
      continue;
    }
    out += cp;
    i += len;
  }
  return out;
}

std::string utf8_encode(const std::u32string& s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t cp : s) append_utf8(out, static_cast<uint32_t>(cp));
  return out;
}

size_t utf8_length(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

bool is_python_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

std::string py_strip(const std::string& s, const std::optional<std::string>& chars, bool left, bool right) {
  std::u32string text = utf8_decode(s);
  std::u32string set = chars ? utf8_decode(*chars) : std::u32string();
  auto strip_char = [&](char32_t c) { return chars ? set.find(c) != std::u32string::npos : is_python_space(c); };
  size_t begin = 0, end = text.size();
  if (left) {
    while (begin < end && strip_char(text[begin])) ++begin;
  }
  if (right) {
    while (end > begin && strip_char(text[end - 1])) --end;
  }
  return utf8_encode(text.substr(begin, end - begin));
}

namespace {

std::vector<std::string> split_whitespace(const std::string& s, int64_t maxsplit, bool from_right) {
  std::u32string text = utf8_decode(s);
  std::vector<std::u32string> parts;
  if (!from_right) {
    size_t i = 0;
    while (true) {
      while (i < text.size() && is_python_space(text[i])) ++i;
      if (i >= text.size()) break;
      if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) {
        parts.push_back(text.substr(i));  // the remainder keeps its trailing whitespace
        break;
      }
      size_t j = i;
      while (j < text.size() && !is_python_space(text[j])) ++j;
      parts.push_back(text.substr(i, j - i));
      i = j;
    }
  } else {
    size_t i = text.size();
    while (true) {
      while (i > 0 && is_python_space(text[i - 1])) --i;
      if (i == 0) break;
      if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) {
        parts.insert(parts.begin(), text.substr(0, i));  // the remainder keeps leading whitespace
        break;
      }
      size_t j = i;
      while (j > 0 && !is_python_space(text[j - 1])) --j;
      parts.insert(parts.begin(), text.substr(j, i - j));
      i = j;
    }
  }
  std::vector<std::string> out;
  for (const auto& p : parts) out.push_back(utf8_encode(p));
  return out;
}

}  // namespace

std::vector<std::string> py_split(const std::string& s, const std::optional<std::string>& sep, int64_t maxsplit,
                                  bool from_right) {
  if (!sep) return split_whitespace(s, maxsplit, from_right);
  std::vector<std::string> out;
  const std::string& d = *sep;
  if (!from_right) {
    size_t start = 0;
    while (maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit) {
      size_t at = s.find(d, start);
      if (at == std::string::npos) break;
      out.push_back(s.substr(start, at - start));
      start = at + d.size();
    }
    out.push_back(s.substr(start));
    return out;
  }
  size_t end = s.size();
  std::vector<std::string> reversed;
  while (maxsplit < 0 || static_cast<int64_t>(reversed.size()) < maxsplit) {
    if (end < d.size()) break;
    size_t at = s.rfind(d, end - d.size());
    if (at == std::string::npos) break;
    reversed.push_back(s.substr(at + d.size(), end - at - d.size()));
    end = at;
  }
  reversed.push_back(s.substr(0, end));
  return {reversed.rbegin(), reversed.rend()};
}

std::string py_replace(const std::string& s, const std::string& old_text, const std::string& new_text, int64_t count) {
  std::string out;
  if (old_text.empty()) {
    // Python inserts `new` before every code point and at the end.
    std::u32string text = utf8_decode(s);
    int64_t done = 0;
    for (char32_t c : text) {
      if (count < 0 || done < count) {
        out += new_text;
        ++done;
      }
      out += utf8_encode(std::u32string(1, c));
    }
    if (count < 0 || done < count) out += new_text;
    return out;
  }
  size_t start = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    size_t at = s.find(old_text, start);
    if (at == std::string::npos) break;
    out.append(s, start, at - start);
    out += new_text;
    start = at + old_text.size();
    ++done;
  }
  out.append(s, start, std::string::npos);
  return out;
}

int64_t py_count(const std::string& s, const std::string& sub) {
  if (sub.empty()) return static_cast<int64_t>(utf8_length(s)) + 1;
  int64_t n = 0;
  for (size_t at = s.find(sub); at != std::string::npos; at = s.find(sub, at + sub.size())) ++n;
  return n;
}

int64_t py_find(const std::string& s, const std::string& sub, bool from_right) {
  size_t at = from_right ? s.rfind(sub) : s.find(sub);
  if (at == std::string::npos) return -1;
  return static_cast<int64_t>(utf8_length(s.substr(0, at)));
}

std::string py_upper(const std::string& s) {
  std::string out = s;
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

std::string py_lower(const std::string& s) {
  std::string out = s;
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string py_title(const std::string& s) {
  std::string out = s;
  bool previous_cased = false;
  for (char& c : out) {
    bool is_upper = c >= 'A' && c <= 'Z';
    bool is_lower = c >= 'a' && c <= 'z';
    if (is_upper || is_lower) {
      if (previous_cased && is_upper) c = static_cast<char>(c - 'A' + 'a');
      if (!previous_cased && is_lower) c = static_cast<char>(c - 'a' + 'A');
      previous_cased = true;
    } else {
      previous_cased = false;
    }
  }
  return out;
}

std::string py_capitalize(const std::string& s) {
  std::string out = py_lower(s);
  if (!out.empty() && out[0] >= 'a' && out[0] <= 'z') out[0] = static_cast<char>(out[0] - 'a' + 'A');
  return out;
}

}  // namespace moe::tokenizer::jinja

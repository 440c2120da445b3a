// Minimal UTF-8 helpers shared by the tokenizers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace moe::tokenizer {

// Returns the sequence length a lead byte announces (1 for ASCII, continuation and invalid
// bytes 0x80-0xBF; 4 for 0xF0-0xFF). Same table as llama.cpp's unicode_len_utf8, so malformed
// input splits into the same symbols.
inline size_t utf8_sequence_length(uint8_t lead) {
  static constexpr uint8_t kLengths[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLengths[lead >> 4];
}

inline bool is_utf8_continuation(uint8_t byte) { return (byte & 0xC0) == 0x80; }

// Appends the UTF-8 encoding of code point `cp` (at most U+10FFFF) to `out`.
inline void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

}  // namespace moe::tokenizer

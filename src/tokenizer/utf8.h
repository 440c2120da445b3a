// Minimal UTF-8 helpers shared by the tokenizers.
#pragma once

#include <cstddef>
#include <cstdint>

namespace moe::tokenizer {

// Returns the sequence length a lead byte announces (1 for ASCII, continuation and invalid
// bytes 0x80-0xBF; 4 for 0xF0-0xFF). Same table as llama.cpp's unicode_len_utf8, so malformed
// input splits into the same symbols.
inline size_t utf8_sequence_length(uint8_t lead) {
  static constexpr uint8_t kLengths[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLengths[lead >> 4];
}

inline bool is_utf8_continuation(uint8_t byte) { return (byte & 0xC0) == 0x80; }

}  // namespace moe::tokenizer

// GPT-2's reversible mapping between raw bytes and printable code points, used
// by byte-level BPE vocabularies: every byte of the input becomes one visible
// character (space -> "Ġ", newline -> "Ċ") so that token texts never contain
// raw control bytes or partial UTF-8.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace moe::tokenizer {

// Returns the UTF-8 text of the code point standing for `byte` ("!" for '!',
// "Ġ" for ' ').
std::string_view byte_to_unicode(uint8_t byte);

// Returns the byte that code point `cpt` stands for, or nullopt when `cpt` is
// not in the map.
std::optional<uint8_t> unicode_to_byte(uint32_t cpt);

// Returns the raw bytes a byte-level token text stands for. Code points outside
// the map (added tokens stored as plain UTF-8) are copied through unchanged, as
// Hugging Face's ByteLevel decoder does, and malformed UTF-8 is copied byte for
// byte. (llama.cpp writes an
// "[UNK_BYTE_0x..]" marker instead; the text itself is more useful to a
// reader.)
std::string decode_byte_level(std::string_view text);

} // namespace moe::tokenizer

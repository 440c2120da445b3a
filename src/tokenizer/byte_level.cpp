#include "tokenizer/byte_level.h"

#include <algorithm>
#include <array>

#include "tokenizer/utf8.h"

namespace moe::tokenizer {
namespace {

void append_utf8(std::string &out, uint32_t cpt) {
  if (cpt < 0x80) {
    out += static_cast<char>(cpt);
  } else if (cpt < 0x800) {
    out += static_cast<char>(0xC0 | (cpt >> 6));
    out += static_cast<char>(0x80 | (cpt & 0x3F));
  } else {
    out += static_cast<char>(0xE0 | (cpt >> 12));
    out += static_cast<char>(0x80 | ((cpt >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cpt & 0x3F));
  }
}

// Printable Latin-1 bytes map to themselves; the other 68 bytes (controls,
// space, 0x7F-0xA0, soft hyphen) map in byte order to U+0100, U+0101, ...
// (GPT-2's bytes_to_unicode).
bool maps_to_itself(int byte) {
  return (byte >= '!' && byte <= '~') || (byte >= 0xA1 && byte <= 0xAC) ||
         (byte >= 0xAE && byte <= 0xFF);
}

// One past the largest mapped code point: 0x100 plus the 68 remapped bytes.
constexpr uint32_t kMaxCpt = 0x100 + 68;

struct ByteTables {
  std::array<std::string, 256> to_text;
  std::array<int16_t, kMaxCpt>
      from_cpt{}; // -1 where the code point is not in the map
  ByteTables() {
    from_cpt.fill(-1);
    uint32_t next = 0x100;
    for (int byte = 0; byte < 256; ++byte) {
      const uint32_t cpt = maps_to_itself(byte) ? byte : next++;
      append_utf8(to_text[byte], cpt);
      from_cpt[cpt] = static_cast<int16_t>(byte);
    }
  }
};

const ByteTables &tables() {
  static const ByteTables kTables;
  return kTables;
}

} // namespace

std::string_view byte_to_unicode(uint8_t byte) {
  return tables().to_text[byte];
}

std::optional<uint8_t> unicode_to_byte(uint32_t cpt) {
  if (cpt >= kMaxCpt || tables().from_cpt[cpt] < 0)
    return std::nullopt;
  return static_cast<uint8_t>(tables().from_cpt[cpt]);
}

std::string decode_byte_level(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    const auto lead = static_cast<uint8_t>(text[pos]);
    const size_t n = utf8_sequence_length(lead);
    // Only 1- and 2-byte sequences can be in the map (all its code points are
    // below U+0800).
    std::optional<uint8_t> byte;
    if (n == 1 && lead < 0x80) {
      byte = unicode_to_byte(lead);
    } else if (n == 2 && pos + 1 < text.size() &&
               is_utf8_continuation(static_cast<uint8_t>(text[pos + 1]))) {
      byte = unicode_to_byte(((lead & 0x1Fu) << 6) |
                             (static_cast<uint8_t>(text[pos + 1]) & 0x3Fu));
    }
    if (byte) {
      out += static_cast<char>(*byte);
      pos += n;
      continue;
    }
    const size_t copy = std::min(std::max<size_t>(n, 1), text.size() - pos);
    out.append(text.substr(pos, copy));
    pos += copy;
  }
  return out;
}

} // namespace moe::tokenizer

// Ids -> text (llama.cpp's token_to_piece and detokenize), plus a streaming
// form that never splits a UTF-8 character. SPM and WordPiece pieces use "▁"
// for spaces; byte-level BPE pieces are GPT-2 characters that decode to raw
// bytes.
#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace moe::tokenizer {
namespace {

constexpr std::string_view kSpaceMarker = "\xe2\x96\x81"; // U+2581 "▁"

std::string unescape_spaces(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    if (text.compare(pos, kSpaceMarker.size(), kSpaceMarker) == 0) {
      out += ' ';
      pos += kSpaceMarker.size();
    } else {
      out += text[pos++];
    }
  }
  return out;
}

// Returns how many bytes at the end of `text` start a UTF-8 character that is
// not complete yet (0 when the text ends on a boundary). Invalid bytes never
// complete, so they are not held.
size_t incomplete_tail(std::string_view text) {
  const size_t n = text.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const auto byte = static_cast<uint8_t>(text[n - back]);
    if (is_utf8_continuation(byte))
      continue;
    const bool is_lead = byte >= 0xC0 && byte < 0xF8;
    return is_lead && utf8_sequence_length(byte) > back ? back : 0;
  }
  return 0;
}

// Hugging Face's clean_up_tokenization_spaces, in llama.cpp's three passes: no
// space before
// "?!.,"; " ' " loses both spaces; " 's", " 'm", " 're", " 've" lose theirs.
std::string clean_up_spaces(std::string_view text) {
  std::string first;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (i > 0 && text[i - 1] == ' ' &&
        (c == '?' || c == '!' || c == '.' || c == ',')) {
      first.pop_back();
    }
    first += c;
  }
  std::string second;
  for (size_t i = 0; i < first.size(); ++i) {
    const char c = first[i];
    if (i > 0 && c == '\'' && i + 1 < first.size() && first[i - 1] == ' ' &&
        first[i + 1] == ' ') {
      second.pop_back();
      second += c;
      ++i; // drop the space after it
      continue;
    }
    second += c;
  }
  std::string third;
  for (size_t i = 0; i < second.size(); ++i) {
    const char c = second[i];
    if (i > 0 && second[i - 1] == ' ' && c == '\'' && i + 1 < second.size()) {
      const char next = second[i + 1];
      const char after = i + 2 < second.size() ? second[i + 2] : '\0';
      const bool contraction = next == 's' || next == 'm' ||
                               (i + 2 < second.size() &&
                                (next == 'r' || next == 'v') && after == 'e');
      if (contraction)
        third.pop_back();
    }
    third += c;
  }
  return third;
}

} // namespace

std::string token_to_piece(const Vocab &vocab, int32_t id,
                           bool render_special) {
  if (!vocab.is_valid(id))
    return {};
  if (vocab.is_control(id) || vocab.type(id) == TokenType::kUnknown) {
    return render_special ? vocab.token_text(id) : std::string();
  }
  if (vocab.is_user_defined(id))
    return vocab.token_text(id);
  if (vocab.is_normal(id)) {
    if (vocab.kind() == VocabKind::kBpe)
      return decode_byte_level(vocab.token_text(id));
    return unescape_spaces(vocab.token_text(id));
  }
  if (vocab.is_byte(id))
    return std::string(1, static_cast<char>(vocab.byte_value(id)));
  return {}; // UNUSED and UNDEFINED tokens render as nothing, as in llama.cpp
}

std::string detokenize(const Vocab &vocab, std::span<const int32_t> ids,
                       bool remove_special) {
  bool strip_space = vocab.add_space_prefix();
  if (remove_special && vocab.add_bos() && !ids.empty() &&
      ids.front() == vocab.bos()) {
    // llama.cpp keeps the space of the token after a removed BOS (its lstrip
    // applies to the first piece, and the BOS was that piece).
    strip_space = false;
    ids = ids.subspan(1);
  }
  if (remove_special && vocab.add_eos() && !ids.empty() &&
      ids.back() == vocab.eos()) {
    ids = ids.first(ids.size() - 1);
  }
  Detokenizer detokenizer(vocab, {.render_special = !remove_special,
                                  .strip_leading_space = strip_space});
  std::string out;
  for (int32_t id : ids)
    out += detokenizer.push(id);
  out += detokenizer.flush();
  return vocab.clean_spaces() ? clean_up_spaces(out) : out;
}

Detokenizer::Detokenizer(const Vocab &vocab, DetokenizeOptions options)
    : vocab_(&vocab), options_(options) {}

std::string Detokenizer::push(int32_t id) {
  std::string piece = token_to_piece(*vocab_, id, options_.render_special);
  if (first_ && options_.strip_leading_space && !piece.empty() &&
      piece.front() == ' ') {
    piece.erase(0, 1);
  }
  first_ = false;
  pending_ += piece;
  const size_t hold = incomplete_tail(pending_);
  std::string ready = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return ready;
}

std::string Detokenizer::flush() {
  std::string rest = std::move(pending_);
  pending_.clear();
  first_ = true;
  return rest;
}

} // namespace moe::tokenizer

// WordPiece ("bert") tokenization as Hugging Face's BertNormalizer +
// BertPreTokenizer + WordPiece do it: drop control characters, pad CJK
// ideographs with spaces, NFD and strip accents (Mn), lower-case, split on
// whitespace and punctuation, then cut every word greedily into the longest
// vocabulary pieces. The GGUF stores word-initial pieces as "▁piece" and
// continuations ("##piece" in HF) bare, so a word is matched as "▁" + word
// (llama.cpp's form). Unicode properties and decompositions come from ICU.
#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/utf8.h>

#include "tokenizer/models.h"

namespace moe::tokenizer {
namespace {

constexpr std::string_view kSpaceMarker = "\xe2\x96\x81"; // U+2581 "▁"
// HF's max_input_chars_per_word: longer words become [UNK] without being
// matched.
constexpr size_t kMaxWordChars = 100;

void append_utf8(std::string &out, UChar32 cpt) {
  char buffer[U8_MAX_LENGTH];
  int32_t length = 0;
  U8_APPEND_UNSAFE(buffer, length, cpt);
  out.append(buffer, static_cast<size_t>(length));
}

// HF's _is_chinese_char ranges (0x2B920 rather than 0x2B820 as in the HF Rust
// code).
bool is_chinese_char(UChar32 c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

bool is_whitespace(UChar32 c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || u_isUWhiteSpace(c);
}

// HF's is_control: the "other" categories, except tab and newlines (those are
// whitespace).
bool is_control(UChar32 c) {
  if (c == '\t' || c == '\n' || c == '\r')
    return false;
  const int8_t type = u_charType(c);
  return type == U_CONTROL_CHAR || type == U_FORMAT_CHAR ||
         type == U_UNASSIGNED || type == U_PRIVATE_USE_CHAR;
}

// ASCII punctuation (which includes $+<=>^`|~) or any Unicode P* category.
bool is_punctuation(UChar32 c) {
  if (c < 0x80)
    return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) ||
           (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
  return (U_GET_GC_MASK(c) & U_GC_P_MASK) != 0;
}

// Splits the normalised text into words (whitespace drops, punctuation and CJK
// stand alone).
class WordSplitter {
public:
  std::vector<std::string> split(std::string_view text) {
    const UNormalizer2 *nfd = nfd_instance();
    int32_t pos = 0;
    const auto length = static_cast<int32_t>(text.size());
    while (pos < length) {
      UChar32 c = 0;
      U8_NEXT(text.data(), pos, length, c);
      if (c < 0 || c == 0 || c == 0xFFFD || is_control(c))
        continue; // invalid bytes too
      if (is_whitespace(c)) {
        finish_word();
        continue;
      }
      if (is_chinese_char(c)) {
        add_alone(c);
        continue;
      }
      add_decomposed(nfd, c);
    }
    finish_word();
    return std::move(words_);
  }

private:
  static const UNormalizer2 *nfd_instance() {
    UErrorCode status = U_ZERO_ERROR;
    const UNormalizer2 *nfd = unorm2_getNFDInstance(&status);
    return U_SUCCESS(status) ? nfd : nullptr;
  }

  // NFD, drop nonspacing marks (strip_accents), lower-case, then place each
  // character.
  void add_decomposed(const UNormalizer2 *nfd, UChar32 c) {
    UChar decomposed[32];
    UErrorCode status = U_ZERO_ERROR;
    const int32_t n =
        nfd == nullptr
            ? -1
            : unorm2_getDecomposition(nfd, c, decomposed, 32, &status);
    if (n < 0 || U_FAILURE(status)) {
      add_char(c);
      return;
    }
    for (int32_t i = 0; i < n;) {
      UChar32 part = 0;
      U16_NEXT(decomposed, i, n, part);
      add_char(part);
    }
  }

  void add_char(UChar32 c) {
    if (u_charType(c) == U_NON_SPACING_MARK)
      return;
    c = u_tolower(c);
    if (is_punctuation(c)) {
      add_alone(c);
    } else {
      append_utf8(current_, c);
      ++current_chars_;
    }
  }

  void add_alone(UChar32 c) {
    finish_word();
    append_utf8(current_, c);
    current_chars_ = 1;
    finish_word();
  }

  void finish_word() {
    if (!current_.empty()) {
      words_.push_back(current_chars_ > kMaxWordChars ? std::string()
                                                      : std::move(current_));
    }
    current_.clear();
    current_chars_ = 0;
  }

  std::vector<std::string> words_;
  std::string current_;
  size_t current_chars_ = 0;
};

// Appends the greedy longest-match pieces of one word, or UNK when some part
// has no piece.
void tokenize_word(const Vocab &vocab, const std::string &word,
                   std::vector<int32_t> &out) {
  const size_t first = out.size();
  if (!word.empty()) { // an over-long word arrives empty
    const std::string marked = std::string(kSpaceMarker) + word;
    const size_t n = marked.size();
    for (size_t begin = 0; begin < n;) {
      size_t end = std::min(n, begin + vocab.max_token_length());
      std::optional<int32_t> id;
      for (; end > begin; --end) {
        if ((id = vocab.find(
                 std::string_view(marked).substr(begin, end - begin))))
          break;
      }
      if (!id) {
        out.resize(first);
        break;
      }
      out.push_back(*id);
      begin = end;
    }
  }
  if (out.size() == first && vocab.unk() != kNoToken)
    out.push_back(vocab.unk());
}

} // namespace

void tokenize_wpm(const Vocab &vocab, std::string_view text,
                  std::vector<int32_t> &out) {
  for (const std::string &word : WordSplitter().split(text))
    tokenize_word(vocab, word, out);
}

} // namespace moe::tokenizer

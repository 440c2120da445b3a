// tokenize(): special tokens are split out of the text first, then each text
// fragment goes to the vocabulary's model (SPM, byte-level BPE or WordPiece);
// BOS / EOS / SEP wrap the result as llama.cpp's llama_vocab::impl::tokenize
// does for that model.
#include <cctype>

#include "tokenizer/models.h"
#include "tokenizer/tokenizer.h"

namespace moe::tokenizer {
namespace {

bool is_space_byte(char c) {
  return std::isspace(static_cast<unsigned char>(c)) != 0;
}

// Splits every text fragment around occurrences of `id`'s text (llama.cpp's
// tokenizer_st_partition, one special token at a time, longest first).
std::vector<Fragment> split_on_token(const Vocab &vocab, std::string_view text,
                                     const std::vector<Fragment> &fragments,
                                     int32_t id) {
  const std::string &needle = vocab.token_text(id);
  std::vector<Fragment> out;
  out.reserve(fragments.size());
  for (const Fragment &fragment : fragments) {
    if (!fragment.is_text()) {
      out.push_back(fragment);
      continue;
    }
    size_t pos = fragment.begin;
    while (pos < fragment.end) {
      const size_t match = text.substr(0, fragment.end).find(needle, pos);
      if (match == std::string_view::npos)
        break;
      size_t left_end = match;
      if (vocab.lstrip(id)) {
        while (left_end > pos && is_space_byte(text[left_end - 1]))
          --left_end;
      }
      if (left_end > pos)
        out.push_back({kNoToken, pos, left_end});
      out.push_back({id, 0, 0});
      pos = match + needle.size();
      if (vocab.rstrip(id)) {
        while (pos < fragment.end && is_space_byte(text[pos]))
          ++pos;
      }
    }
    if (pos < fragment.end)
      out.push_back({kNoToken, pos, fragment.end});
  }
  return out;
}

// The space prefix goes on the first text fragment and on every one following a
// special token, as llama.cpp does ("<s>Hi" parses as <s> "▁Hi").
void tokenize_spm_fragments(const Vocab &vocab, std::string_view text,
                            const std::vector<Fragment> &fragments,
                            std::vector<int32_t> &out) {
  bool prev_special = true;
  for (const Fragment &fragment : fragments) {
    if (!fragment.is_text()) {
      out.push_back(fragment.token);
      prev_special = true;
      continue;
    }
    tokenize_spm(vocab,
                 text.substr(fragment.begin, fragment.end - fragment.begin),
                 vocab.add_space_prefix() && prev_special, out);
    prev_special = false;
  }
}

} // namespace

std::vector<Fragment> partition_special(const Vocab &vocab,
                                        std::string_view text,
                                        bool parse_special) {
  std::vector<Fragment> fragments;
  if (text.empty())
    return fragments;
  fragments.push_back({kNoToken, 0, text.size()});
  for (int32_t id : vocab.special_tokens()) {
    // USER_DEFINED tokens are always split out (HF does the same); control ones
    // on request.
    if (!parse_special && vocab.is_control(id))
      continue;
    if (!parse_special && vocab.type(id) == TokenType::kUnknown)
      continue;
    fragments = split_on_token(vocab, text, fragments, id);
  }
  return fragments;
}

std::vector<int32_t> tokenize(const Vocab &vocab, std::string_view text,
                              bool add_special, bool parse_special) {
  std::vector<int32_t> out;
  if (add_special && vocab.add_bos())
    out.push_back(vocab.bos());
  const std::vector<Fragment> fragments =
      partition_special(vocab, text, parse_special);
  if (vocab.kind() == VocabKind::kSpm) {
    tokenize_spm_fragments(vocab, text, fragments, out);
  } else {
    for (const Fragment &fragment : fragments) {
      if (!fragment.is_text()) {
        out.push_back(fragment.token);
        continue;
      }
      const std::string_view piece =
          text.substr(fragment.begin, fragment.end - fragment.begin);
      if (vocab.kind() == VocabKind::kBpe) {
        tokenize_bpe(vocab, piece, out);
      } else {
        tokenize_wpm(vocab, piece, out);
      }
    }
  }
  if (add_special && vocab.add_eos())
    out.push_back(vocab.eos());
  if (add_special && vocab.add_sep())
    out.push_back(vocab.sep());
  return out;
}

} // namespace moe::tokenizer

// Internal entry points of the tokenizer layer: the special-token splitter
// shared by every model, and one tokenize function per model that tokenize()
// (tokenize.cpp) dispatches to.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.h"

namespace moe::tokenizer {

// A piece of the input: either raw text [begin, end) or an already recognised
// special token.
struct Fragment {
  int32_t token = kNoToken;
  size_t begin = 0;
  size_t end = 0;
  bool is_text() const { return token == kNoToken; }
};

// Returns `text` cut around special-token texts (llama.cpp's
// tokenizer_st_partition): USER_DEFINED tokens always, CONTROL and UNKNOWN ones
// only with `parse_special`.
std::vector<Fragment> partition_special(const Vocab &vocab,
                                        std::string_view text,
                                        bool parse_special);

// Each appends the tokens of one text fragment (no special tokens in it) to
// `out`. SPM: `prepend_space` adds the "▁" prefix (first fragment or one after
// a special token).
void tokenize_spm(const Vocab &vocab, std::string_view text, bool prepend_space,
                  std::vector<int32_t> &out);
void tokenize_bpe(const Vocab &vocab, std::string_view text,
                  std::vector<int32_t> &out);
void tokenize_wpm(const Vocab &vocab, std::string_view text,
                  std::vector<int32_t> &out);

} // namespace moe::tokenizer

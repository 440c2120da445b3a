// Byte-level BPE pre-tokenization: the regular expressions that cut text into
// words before merging, selected by tokenizer.ggml.pre. Matching uses PCRE2
// with UTF and UCP, so \p{L}, \p{N}, \s and friends are real Unicode classes.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace moe::tokenizer {

// How a pre-tokenizer family differs beyond its regexes (llama.cpp's per-`pre`
// settings).
struct PreTokenizerTraits {
  bool ignore_merges =
      false; // a word that is already a token is not merged (llama3, tekken)
  bool clean_spaces =
      true; // detokenize() drops spaces before punctuation (HF cleanup)
  bool add_bos = false;     // default of tokenizer.ggml.add_bos_token
  bool disable_bos = false; // the family has no BOS token (chatglm)
};

// A byte range [begin, end) of the input.
struct TextRange {
  size_t begin = 0;
  size_t end = 0;
};

// Returns the traits of a tokenizer.ggml.pre value ("" means the default), or
// nullopt when it is unknown. Cheap: no regex is compiled.
std::optional<PreTokenizerTraits>
find_pre_tokenizer_traits(std::string_view pre);

class PreTokenizer {
public:
  // Returns the pre-tokenizer for a tokenizer.ggml.pre value ("" means
  // llama.cpp's default), or an error naming an unknown or unsupported value.
  static Result<PreTokenizer> create(std::string_view pre);

  const PreTokenizerTraits &traits() const { return traits_; }
  const std::string &name() const { return name_; }

  // Replaces `words` with the words of `text`, in order and covering every
  // byte: each regex in turn splits every current piece into its matches and
  // the gaps between them (Hugging Face's Split with "isolated" behaviour).
  // Invalid UTF-8 never matches and so ends up in gaps.
  void split(std::string_view text, std::vector<TextRange> &words) const;

private:
  class Regex;
  std::string name_;
  PreTokenizerTraits traits_;
  std::vector<std::shared_ptr<const Regex>>
      regexes_; // shared: compiled code is read-only
};

} // namespace moe::tokenizer

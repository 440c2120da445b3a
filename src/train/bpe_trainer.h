// Byte-level BPE tokenizer training (GPT-2 style): text is cut into words by one of the tokenizer
// layer's pre-tokenizers, every word starts as its bytes, and the most frequent adjacent pair of
// symbols is merged, again and again, until the vocabulary reaches its target size. The result
// is a "gpt2" VocabData that tokenizer::Vocab, llama.cpp and Hugging Face all read the same way.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/result.h"
#include "formats/gguf.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/vocab.h"

namespace moe::train {

// Reported while merging, every few hundred merges and once at the end.
struct BpeProgress {
  int32_t n_tokens = 0;         // vocabulary size so far (specials + bytes + learned tokens)
  int32_t n_tokens_target = 0;  // BpeTrainOptions::vocab_size
  int64_t last_pair_count = 0;  // occurrences of the pair merged last
};

struct BpeTrainOptions {
  // Total tokens: special tokens + 256 byte tokens + learned merges. Training stops earlier when
  // no pair occurs at least min_frequency times.
  int32_t vocab_size = 4096;
  // CONTROL tokens, placed first (ids 0, 1, ...); the first is BOS and EOS. Their texts are cut
  // out of the corpus before counting, so no merge ever spans one.
  std::vector<std::string> special_tokens = {"<|endoftext|>"};
  // tokenizer.ggml.pre: the pre-tokenizer that cuts words, both here and when the vocabulary is
  // used. "gpt-2" and "llama3" are the common choices; any name the tokenizer layer knows works.
  std::string pre = "gpt-2";
  int64_t min_frequency = 2;  // a pair seen fewer times is never merged
  std::function<void(const BpeProgress&)> progress;
};

class BpeTrainer {
 public:
  // Returns a trainer after checking the options: a known pre-tokenizer, one or more distinct,
  // non-empty special tokens that are not byte tokens, and room for the 256 byte tokens.
  static Result<BpeTrainer> create(BpeTrainOptions options);

  // Counts the words of `text` (its special-token texts cut out first). Texts are independent:
  // no word spans two calls.
  void add_text(std::string_view text);
  // Reads a file and adds its text; errors name the file.
  Status add_file(const std::string& path);

  int64_t n_bytes() const { return n_bytes_; }
  int64_t n_words() const { return n_words_; }  // words counted, with repetition
  size_t n_unique_words() const { return word_counts_.size(); }

  // Returns the trained vocabulary: specials, the 256 byte tokens (in byte order), then the learned
  // tokens in merge order, and the merges. Deterministic: ties between equally frequent pairs go
  // to the pair of lower symbol ids (byte values for single bytes, then order of creation). Errors
  // when nothing was added.
  Result<tokenizer::VocabData> train() const;

 private:
  explicit BpeTrainer(BpeTrainOptions options, tokenizer::PreTokenizer pre)
      : options_(std::move(options)), pre_(std::move(pre)) {}
  void add_fragment(std::string_view text);

  BpeTrainOptions options_;
  tokenizer::PreTokenizer pre_;
  std::unordered_map<std::string, int64_t> word_counts_;  // raw bytes of a word -> occurrences
  std::vector<tokenizer::TextRange> ranges_;               // scratch for the pre-tokenizer
  int64_t n_bytes_ = 0;
  int64_t n_words_ = 0;
};

// Returns a writer holding the vocabulary-only GGUF of `vocab`: the tokenizer.ggml.* keys plus a
// general.architecture, which llama.cpp needs even to load only the vocabulary.
formats::GgufWriter tokenizer_gguf_writer(const tokenizer::VocabData& vocab);

}  // namespace moe::train

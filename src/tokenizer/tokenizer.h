// Text <-> token ids for SentencePiece-BPE ("llama"), byte-level BPE ("gpt2")
// and WordPiece
// ("bert") vocabularies, matching llama.cpp's llama_tokenize / llama_detokenize
// / llama_token_to_piece and, where llama.cpp's regex engine deviates, Hugging
// Face tokenizers.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.h"

namespace moe::tokenizer {

// Returns the ids for `text`. `add_special` adds BOS / EOS / SEP as the
// vocabulary asks (add_bos, add_eos, add_sep); `parse_special` recognises
// CONTROL and UNKNOWN token texts ("<s>", "<|end|>") in the text (USER_DEFINED
// texts are always recognised). Never fails: bytes without a token become byte
// tokens, or UNK when the vocabulary has none. Every returned id is valid.
std::vector<int32_t> tokenize(const Vocab &vocab, std::string_view text,
                              bool add_special, bool parse_special);

// Returns the bytes token `id` stands for: "▁" becomes a space, a byte token
// its raw byte, a byte-level BPE token its GPT-2 characters decoded to bytes.
// CONTROL / UNKNOWN tokens give "" unless `render_special`. Out-of-range ids
// give "".
std::string token_to_piece(const Vocab &vocab, int32_t id, bool render_special);

// Returns the text for `ids` (llama_detokenize). With `remove_special`, a
// leading BOS and a trailing EOS are dropped (when the vocabulary adds them)
// and control tokens are not rendered; otherwise every control token is written
// as its text ("<s>"). One leading space is removed when the vocabulary has
// add_space_prefix, unless a leading BOS was removed (llama.cpp's rule:
// tokenize("Hello") without BOS -> "▁Hello" -> "Hello").
std::string detokenize(const Vocab &vocab, std::span<const int32_t> ids,
                       bool remove_special);

struct DetokenizeOptions {
  bool render_special = false; // write CONTROL / UNKNOWN texts such as "</s>"
  bool strip_leading_space =
      false; // drop one leading space of the first piece (llama.cpp
             // does so for a sequence's first token; generated
             // continuations keep theirs)
};

// Streaming detokenizer for generated tokens: push one id at a time and get
// back only complete UTF-8, holding back a character split across byte tokens
// until its last byte arrives. Concatenating every push() and the final flush()
// equals detokenizing the whole sequence, except for detokenize()'s
// clean_spaces() pass, which a stream cannot apply (llama.cpp's generation
// loop, built on token_to_piece, does not either).
class Detokenizer {
public:
  explicit Detokenizer(const Vocab &vocab, DetokenizeOptions options = {});

  // Returns the text that became complete with `id` (possibly empty).
  std::string push(int32_t id);
  // Returns any held-back bytes (an incomplete or invalid sequence) as they
  // are, and resets.
  std::string flush();

private:
  const Vocab *vocab_;
  DetokenizeOptions options_;
  bool first_ = true;
  std::string
      pending_; // bytes of a UTF-8 character still waiting for its continuation
};

} // namespace moe::tokenizer

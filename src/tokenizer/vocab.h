// Vocabulary: token texts, scores and types plus the special ids, built from
// plain data so the tokenizer does not depend on where the vocabulary came from
// (GGUF, built-in, tests). Behaviour follows llama.cpp's llama_vocab for
// SentencePiece ("llama") vocabularies.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/result.h"

namespace moe::tokenizer {

// Marks an absent special token (llama.cpp's LLAMA_TOKEN_NULL).
inline constexpr int32_t kNoToken = -1;

class BpeModel;

// The tokenization algorithm, from tokenizer.ggml.model.
enum class VocabKind {
  kSpm, // "llama": SentencePiece BPE over "▁"-escaped text, scores decide
        // merges
  kBpe, // "gpt2": byte-level BPE, regex pre-tokenizer, ranked merges
  kWpm, // "bert": WordPiece, greedy longest match per word
};

// tokenizer.ggml.token_type values (llama_token_type).
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

// Everything a vocabulary file says about the tokenizer, as plain values.
struct VocabData {
  std::string model =
      "llama"; // tokenizer.ggml.model: "llama", "gpt2" or "bert"
  std::string
      pre; // tokenizer.ggml.pre (gpt2 only); "" means llama.cpp's default
  std::string name; // general.name; llama.cpp keys a few per-model fixes on it
  std::vector<std::string> tokens;
  std::vector<float> scores;        // same length as tokens; empty means all 0
  std::vector<int32_t> token_types; // TokenType values; empty means all kNormal
  std::vector<std::string>
      merges; // gpt2: "LEFT RIGHT" token texts, rank = index
  int32_t bos_id = 1;
  int32_t eos_id = 2;
  int32_t unk_id = 0;
  int32_t pad_id = kNoToken;
  int32_t eot_id =
      kNoToken; // end of turn; auto-detected from the token texts when absent
  int32_t eom_id = kNoToken; // end of message (tool calls)
  int32_t sep_id = kNoToken; // separator (bert's [SEP])
  // Defaults are SentencePiece's; read_vocab_data sets each model's own
  // (llama.cpp's).
  bool add_bos = true;
  bool add_eos = false;
  bool add_sep = false;
  bool add_space_prefix = true;
};

class Vocab {
public:
  // Returns a vocabulary after checking the arrays agree in length and the
  // texts are unique. Special ids outside the vocabulary are disabled with a
  // warning, as llama.cpp does.
  static Result<Vocab> create(VocabData data);

  int32_t size() const { return static_cast<int32_t>(tokens_.size()); }
  VocabKind kind() const { return kind_; }
  // Returns the merge table and pre-tokenizer of a kBpe vocabulary (nullptr
  // otherwise).
  const BpeModel *bpe() const { return bpe_.get(); }
  bool is_valid(int32_t id) const { return id >= 0 && id < size(); }

  // Returns the stored text of `id` (with "▁" for spaces, "<0x0A>" for byte
  // tokens).
  const std::string &token_text(int32_t id) const {
    return tokens_.at(id).text;
  }
  float score(int32_t id) const { return tokens_.at(id).score; }
  TokenType type(int32_t id) const { return tokens_.at(id).type; }

  // Returns true for tokens rendered only on request and parsed only with
  // parse_special (CONTROL and UNKNOWN types, plus control-looking texts such
  // as "<|end|>").
  bool is_control(int32_t id) const {
    return tokens_.at(id).attr & kAttrControl;
  }
  bool is_user_defined(int32_t id) const {
    return tokens_.at(id).attr & kAttrUserDefined;
  }
  bool is_byte(int32_t id) const { return tokens_.at(id).attr & kAttrByte; }
  bool is_normal(int32_t id) const { return tokens_.at(id).attr & kAttrNormal; }
  // Returns true for tokens that end generation (EOS, EOT, EOM and known end
  // markers).
  bool is_eog(int32_t id) const;

  int32_t bos() const { return bos_id_; }
  int32_t eos() const { return eos_id_; }
  int32_t eot() const { return eot_id_; }
  int32_t unk() const { return unk_id_; }
  int32_t pad() const { return pad_id_; }
  int32_t sep() const { return sep_id_; }
  bool add_bos() const { return add_bos_; }
  bool add_eos() const { return add_eos_; }
  bool add_sep() const { return add_sep_; }
  // Whether detokenize() applies Hugging Face's clean_up_tokenization_spaces ("
  // ," -> ",").
  bool clean_spaces() const { return clean_spaces_; }
  // SPM: whether no token has a "▁" after its first character other than runs
  // of "▁" alone, so that the text can be merged word by word (a cut before
  // each "▁" that follows another character) with the same result as merging it
  // whole.
  bool spm_splits_at_spaces() const { return spm_splits_at_spaces_; }
  // WordPiece: the longest token text in bytes, bounding the greedy match.
  size_t max_token_length() const { return max_token_length_; }
  bool add_space_prefix() const { return add_space_prefix_; }
  const std::vector<int32_t> &eog_ids() const { return eog_ids_; }

  // Returns the id whose text is exactly `text` (any type), or nullopt.
  std::optional<int32_t> find(std::string_view text) const;
  // Returns the token for a raw byte: "<0xXX>", else the one-byte text, else
  // kNoToken.
  int32_t byte_token(uint8_t byte) const { return byte_tokens_[byte]; }
  // Returns the byte a BYTE token ("<0xXX>") stands for.
  uint8_t byte_value(int32_t id) const;

  // Tokens matched verbatim in the input before SPM runs (CONTROL, UNKNOWN,
  // USER_DEFINED), longest text first so that "<|end|>" wins over a shorter
  // prefix token.
  const std::vector<int32_t> &special_tokens() const { return special_tokens_; }
  // Whether matching `id` in the input also eats the whitespace to its left /
  // right.
  bool lstrip(int32_t id) const { return tokens_.at(id).attr & kAttrLstrip; }
  bool rstrip(int32_t id) const { return tokens_.at(id).attr & kAttrRstrip; }

private:
  // llama_token_attr bits: a token can be, e.g., USER_DEFINED and forced
  // CONTROL.
  enum : uint32_t {
    kAttrUnknown = 1u << 1,
    kAttrUnused = 1u << 2,
    kAttrNormal = 1u << 3,
    kAttrControl = 1u << 4,
    kAttrUserDefined = 1u << 5,
    kAttrByte = 1u << 6,
    kAttrLstrip = 1u << 8,
    kAttrRstrip = 1u << 9,
  };
  struct Token {
    std::string text;
    float score = 0.0f;
    TokenType type = TokenType::kNormal;
    uint32_t attr = kAttrNormal;
  };
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const {
      return std::hash<std::string_view>{}(s);
    }
  };

  static uint32_t attr_for_type(TokenType type);
  Status init_kind(const VocabData &data);
  Status init_tokens(VocabData &data);
  void init_special_ids(const VocabData &data);
  void detect_control_texts();
  void apply_model_fixes(const std::string &name);
  void init_special_cache();
  void init_spm_splitting();
  int32_t checked_special(int32_t id, const char *what) const;

  VocabKind kind_ = VocabKind::kSpm;
  std::shared_ptr<const BpeModel>
      bpe_; // shared: immutable, and Vocab stays copyable
  std::vector<Token> tokens_;
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>
      text_to_id_;
  std::array<int32_t, 256> byte_tokens_{};
  std::vector<int32_t> special_tokens_;
  std::vector<int32_t> eog_ids_; // sorted
  int32_t bos_id_ = kNoToken;
  int32_t eos_id_ = kNoToken;
  int32_t eot_id_ = kNoToken;
  int32_t eom_id_ = kNoToken;
  int32_t unk_id_ = kNoToken;
  int32_t pad_id_ = kNoToken;
  int32_t sep_id_ = kNoToken;
  bool add_bos_ = true;
  bool add_eos_ = false;
  bool add_sep_ = false;
  bool add_space_prefix_ = true;
  bool clean_spaces_ = false;
  bool spm_splits_at_spaces_ = false;
  size_t max_token_length_ = 0;
};

// Returns the built-in vocabulary `moe gen` writes when no vocabulary file is
// given: an SPM
// ("llama") vocabulary of <unk>, <s>, </s>, the 256 byte tokens, "▁", printable
// ASCII and a few hundred common English pieces. Deterministic; llama.cpp loads
// it and tokenizes identically.
VocabData builtin_byte_vocab();

} // namespace moe::tokenizer

// The rest of the tokenizer layer's API (tokenize, detokenize, Detokenizer,
// load_vocab, write_vocab_metadata), so that "tokenizer/vocab.h" is the one
// include users need. Placed after the declarations above because those headers
// include this one.
#include "tokenizer/gguf_vocab.h" // IWYU pragma: export
#include "tokenizer/tokenizer.h"  // IWYU pragma: export

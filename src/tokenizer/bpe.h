// Byte-level BPE model (tokenizer.ggml.model "gpt2"): the merge table keyed by
// token ids, the token of each raw byte, and the pre-tokenizer. Internal to the
// tokenizer layer; users go through Vocab and tokenize().
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/result.h"
#include "tokenizer/pre_tokenizer.h"

namespace moe::tokenizer {

class Vocab;

class BpeModel {
public:
  struct Merge {
    int32_t rank = 0;   // index in tokenizer.ggml.merges; lower merges first
    int32_t merged = 0; // token id of the concatenation
  };

  // Returns the model for `vocab` after checking every merge: "LEFT RIGHT" with
  // a space, and LEFT, RIGHT and LEFTRIGHT all tokens (Hugging Face rejects
  // such files too). `pre` selects the pre-tokenizer ("" means llama.cpp's
  // default).
  static Result<std::shared_ptr<const BpeModel>>
  create(const Vocab &vocab, const std::vector<std::string> &merges,
         std::string_view pre);

  // Returns the merge of adjacent tokens `left` and `right`, or nullptr.
  const Merge *find_merge(int32_t left, int32_t right) const {
    const auto it = merges_.find(pair_key(left, right));
    return it == merges_.end() ? nullptr : &it->second;
  }
  // Returns the token of the one-character text raw `byte` encodes to, or
  // kNoToken.
  int32_t byte_token(uint8_t byte) const { return byte_tokens_[byte]; }
  const PreTokenizer &pre_tokenizer() const { return pre_; }
  size_t merge_count() const { return merges_.size(); }

private:
  static uint64_t pair_key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
  }
  struct PairHash {
    // Mixes both halves; std::hash<uint64_t> is the identity on libstdc++.
    size_t operator()(uint64_t key) const {
      return (key * 0x9E3779B97F4A7C15ull) >> 17;
    }
  };

  std::unordered_map<uint64_t, Merge, PairHash> merges_;
  std::array<int32_t, 256> byte_tokens_{};
  PreTokenizer pre_;
};

} // namespace moe::tokenizer

// SentencePiece-BPE tokenization as llama.cpp's llm_tokenizer_spm does it:
// split special tokens out of the text, escape spaces to "▁", then merge
// adjacent symbols by vocabulary score until no adjacent pair forms a token.
#include <algorithm>
#include <queue>

#include "tokenizer/models.h"
#include "tokenizer/utf8.h"

namespace moe::tokenizer {
namespace {

constexpr std::string_view kSpaceMarker = "\xe2\x96\x81"; // U+2581 "▁"

// One symbol of the merge: a byte range of the escaped text in a doubly linked
// list.
struct Symbol {
  int prev = -1;
  int next = -1;
  size_t offset = 0;
  size_t n = 0; // 0 once merged into its left neighbour
};

struct Bigram {
  int left = 0;
  int right = 0;
  float score = 0.0f;
  size_t size =
      0; // merged byte length, to detect pairs made stale by another merge
};

// Highest score first; among equal scores the leftmost pair.
struct BigramOrder {
  bool operator()(const Bigram &a, const Bigram &b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

class SpmSession {
public:
  SpmSession(const Vocab &vocab, std::string_view text)
      : vocab_(vocab), text_(text) {}

  void tokenize(std::vector<int32_t> &out) {
    split_chars();
    for (int i = 1; i < static_cast<int>(symbols_.size()); ++i)
      try_add_bigram(i - 1, i);
    merge_all();
    for (int i = symbols_.empty() ? -1 : 0; i != -1; i = symbols_[i].next)
      emit(symbols_[i], out);
  }

private:
  // One symbol per UTF-8 character; malformed bytes split as llama.cpp does (by
  // lead byte only).
  void split_chars() {
    size_t offset = 0;
    while (offset < text_.size()) {
      const size_t n =
          std::min(utf8_sequence_length(static_cast<uint8_t>(text_[offset])),
                   text_.size() - offset);
      const int index = static_cast<int>(symbols_.size());
      symbols_.push_back(
          {index - 1, offset + n == text_.size() ? -1 : index + 1, offset, n});
      offset += n;
    }
  }

  void try_add_bigram(int left, int right) {
    if (left == -1 || right == -1)
      return;
    const std::string_view merged = text_.substr(
        symbols_[left].offset, symbols_[left].n + symbols_[right].n);
    const auto id = vocab_.find(merged);
    if (!id)
      return;
    queue_.push({left, right, vocab_.score(*id), merged.size()});
  }

  void merge_all() {
    while (!queue_.empty()) {
      const Bigram bigram = queue_.top();
      queue_.pop();
      Symbol &left = symbols_[bigram.left];
      Symbol &right = symbols_[bigram.right];
      // Skip pairs whose symbols changed since they were queued.
      if (left.n == 0 || right.n == 0 || left.n + right.n != bigram.size)
        continue;
      left.n += right.n;
      right.n = 0;
      left.next = right.next;
      if (right.next >= 0)
        symbols_[right.next].prev = bigram.left;
      try_add_bigram(left.prev, bigram.left);
      try_add_bigram(bigram.left, left.next);
    }
  }

  // A merged symbol is always a token; a single character may not be, and then
  // goes out as bytes. (llama.cpp's rev_merge re-split never triggers for SPM
  // for exactly this reason.)
  void emit(const Symbol &symbol, std::vector<int32_t> &out) const {
    const std::string_view piece = text_.substr(symbol.offset, symbol.n);
    if (const auto id = vocab_.find(piece)) {
      out.push_back(*id);
      return;
    }
    for (char c : piece) {
      const int32_t byte_id = vocab_.byte_token(static_cast<uint8_t>(c));
      const int32_t id = byte_id != kNoToken ? byte_id : vocab_.unk();
      if (id != kNoToken)
        out.push_back(id);
    }
  }

  const Vocab &vocab_;
  std::string_view text_;
  std::vector<Symbol> symbols_;
  std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue_;
};

std::string escape_spaces(std::string_view text, bool prepend_space) {
  std::string out;
  out.reserve(text.size() + 3);
  if (prepend_space)
    out += kSpaceMarker;
  for (char c : text) {
    if (c == ' ') {
      out += kSpaceMarker;
    } else {
      out += c;
    }
  }
  return out;
}

} // namespace

void tokenize_spm(const Vocab &vocab, std::string_view text, bool prepend_space,
                  std::vector<int32_t> &out) {
  const std::string escaped = escape_spaces(text, prepend_space);
  const std::string_view all = escaped;
  if (!vocab.spm_splits_at_spaces()) {
    SpmSession(vocab, all).tokenize(out);
    return;
  }
  // No token spans a "▁" that follows another character
  // (Vocab::spm_splits_at_spaces), so no merge crosses such a point and each
  // word merges on its own with the same result; this keeps the merge queue
  // small instead of holding the whole text. Cuts fall on the same character
  // boundaries the whole-text split would use.
  size_t word = 0;
  bool prev_marker = false;
  for (size_t pos = 0; pos < all.size();) {
    const size_t n = std::min(
        utf8_sequence_length(static_cast<uint8_t>(all[pos])), all.size() - pos);
    const bool marker = all.substr(pos, n) == kSpaceMarker;
    if (marker && !prev_marker && pos > word) {
      SpmSession(vocab, all.substr(word, pos - word)).tokenize(out);
      word = pos;
    }
    prev_marker = marker;
    pos += n;
  }
  if (word < all.size())
    SpmSession(vocab, all.substr(word)).tokenize(out);
}

} // namespace moe::tokenizer

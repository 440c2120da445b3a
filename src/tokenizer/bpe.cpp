// Byte-level BPE as Hugging Face's BPE model with a ByteLevel pre-tokenizer
// does it (and llama.cpp's llm_tokenizer_bpe): split the text into words with
// the pre-tokenizer's regexes, map every byte of a word to its GPT-2 character,
// then repeatedly merge the adjacent pair with the lowest merge rank (leftmost
// first) until no pair has a merge.
#include "tokenizer/bpe.h"

#include <algorithm>

#include "core/log.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/models.h"
#include "tokenizer/vocab.h"

namespace moe::tokenizer {
namespace {

// Marks a merged-away symbol.
constexpr int32_t kDead = -2;

struct Symbol {
  int32_t token; // token id; kNoToken for a byte whose character is not a
                 // token; kDead
  int32_t prev;
  int32_t next;
  uint8_t byte; // the raw byte an unmerged symbol came from (for the fallback)
};

struct Candidate {
  int32_t rank;
  int32_t left; // symbol index; the right symbol is symbols[left].next at queue
                // time
  int32_t left_token;
  int32_t right;
  int32_t right_token;
  int32_t merged; // token of the pair
};

// Min-heap order: lowest rank, then leftmost.
bool later(const Candidate &a, const Candidate &b) {
  return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
}

// Reused buffers, one set per thread, so a long text costs no allocation per
// word.
struct BpeScratch {
  std::vector<TextRange> words;
  std::vector<Symbol> symbols;
  std::vector<Candidate> heap;
  std::string encoded;
};

BpeScratch &scratch() {
  thread_local BpeScratch kScratch;
  return kScratch;
}

class WordMerger {
public:
  WordMerger(const BpeModel &model, BpeScratch &scratch)
      : model_(model), symbols_(scratch.symbols), heap_(scratch.heap) {}

  void run(std::string_view word, const Vocab &vocab,
           std::vector<int32_t> &out) {
    init_symbols(word);
    for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols_.size()); ++i)
      push(i, i + 1);
    merge_all();
    for (int32_t i = 0; i != -1; i = symbols_[i].next)
      emit(symbols_[i], vocab, out);
  }

private:
  void init_symbols(std::string_view word) {
    symbols_.clear();
    heap_.clear();
    const auto n = static_cast<int32_t>(word.size());
    for (int32_t i = 0; i < n; ++i) {
      const auto byte = static_cast<uint8_t>(word[i]);
      symbols_.push_back(
          {model_.byte_token(byte), i - 1, i + 1 < n ? i + 1 : -1, byte});
    }
  }

  void push(int32_t left, int32_t right) {
    if (left < 0 || right < 0)
      return;
    const int32_t left_token = symbols_[left].token;
    const int32_t right_token = symbols_[right].token;
    if (left_token < 0 || right_token < 0)
      return;
    const BpeModel::Merge *merge = model_.find_merge(left_token, right_token);
    if (merge == nullptr)
      return;
    heap_.push_back(
        {merge->rank, left, left_token, right, right_token, merge->merged});
    std::push_heap(heap_.begin(), heap_.end(), later);
  }

  void merge_all() {
    while (!heap_.empty()) {
      std::pop_heap(heap_.begin(), heap_.end(), later);
      const Candidate c = heap_.back();
      heap_.pop_back();
      Symbol &left = symbols_[c.left];
      Symbol &right = symbols_[c.right];
      // A symbol's token changes whenever it merges, so equal tokens mean the
      // pair is current.
      if (left.token != c.left_token || right.token != c.right_token)
        continue;
      left.token = c.merged;
      right.token = kDead;
      left.next = right.next;
      if (right.next >= 0)
        symbols_[right.next].prev = c.left;
      push(left.prev, c.left);
      push(c.left, left.next);
    }
  }

  // A byte whose GPT-2 character is not a token goes out as the one-byte tokens
  // of that character's UTF-8, where they exist (llama.cpp's fallback), else is
  // dropped.
  static void emit(const Symbol &symbol, const Vocab &vocab,
                   std::vector<int32_t> &out) {
    if (symbol.token >= 0) {
      out.push_back(symbol.token);
      return;
    }
    for (char c : byte_to_unicode(symbol.byte)) {
      if (const auto id = vocab.find(std::string_view(&c, 1)))
        out.push_back(*id);
    }
  }

  const BpeModel &model_;
  std::vector<Symbol> &symbols_;
  std::vector<Candidate> &heap_;
};

// Returns the token whose text is the GPT-2 encoding of `word`, or kNoToken.
int32_t whole_word_token(const Vocab &vocab, std::string_view word,
                         std::string &encoded) {
  encoded.clear();
  for (char c : word)
    encoded += byte_to_unicode(static_cast<uint8_t>(c));
  return vocab.find(encoded).value_or(kNoToken);
}

} // namespace

Result<std::shared_ptr<const BpeModel>>
BpeModel::create(const Vocab &vocab, const std::vector<std::string> &merges,
                 std::string_view pre) {
  auto model = std::make_shared<BpeModel>();
  if (pre.empty()) {
    MOE_LOG_WARN("vocabulary: no tokenizer.ggml.pre, using the default "
                 "pre-tokenizer (output "
                 "may differ from the model's own tokenizer)");
  }
  MOE_ASSIGN_OR_RETURN(model->pre_, PreTokenizer::create(pre));
  model->merges_.reserve(merges.size());
  std::string joined;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const std::string &merge = merges[rank];
    // The separator is the first space after the first byte ("Ġ Ġ" splits in
    // the middle).
    const size_t space =
        merge.size() > 1 ? merge.find(' ', 1) : std::string::npos;
    if (space == std::string::npos) {
      return make_error(
          "merge {} ('{}') is not two tokens separated by a space", rank,
          merge);
    }
    const std::string_view left(merge.data(), space);
    const std::string_view right = std::string_view(merge).substr(space + 1);
    const auto left_id = vocab.find(left);
    const auto right_id = vocab.find(right);
    joined.assign(left).append(right);
    const auto merged_id = vocab.find(joined);
    for (const auto &[part, id] :
         {std::pair{left, left_id}, std::pair{right, right_id},
          std::pair{std::string_view(joined), merged_id}}) {
      if (!id)
        return make_error("merge {} ('{}') names '{}', which is not a token",
                          rank, merge, part);
    }
    if (rank > static_cast<size_t>(INT32_MAX))
      return make_error("too many merges ({})", merges.size());
    // A repeated pair keeps its first (lowest) rank, as llama.cpp and HF do.
    model->merges_.try_emplace(pair_key(*left_id, *right_id),
                               Merge{static_cast<int32_t>(rank), *merged_id});
  }
  for (int byte = 0; byte < 256; ++byte) {
    model->byte_tokens_[byte] =
        vocab.find(byte_to_unicode(static_cast<uint8_t>(byte)))
            .value_or(kNoToken);
  }
  return std::shared_ptr<const BpeModel>(std::move(model));
}

void tokenize_bpe(const Vocab &vocab, std::string_view text,
                  std::vector<int32_t> &out) {
  const BpeModel &model = *vocab.bpe();
  BpeScratch &buffers = scratch();
  model.pre_tokenizer().split(text, buffers.words);
  const bool ignore_merges = model.pre_tokenizer().traits().ignore_merges;
  WordMerger merger(model, buffers);
  for (const TextRange &range : buffers.words) {
    const std::string_view word =
        text.substr(range.begin, range.end - range.begin);
    if (ignore_merges) {
      const int32_t id = whole_word_token(vocab, word, buffers.encoded);
      if (id != kNoToken) {
        out.push_back(id);
        continue;
      }
    }
    merger.run(word, vocab, out);
  }
}

} // namespace moe::tokenizer

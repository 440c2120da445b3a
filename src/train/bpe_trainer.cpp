#include "train/bpe_trainer.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <queue>
#include <utility>

#include "tokenizer/byte_level.h"

namespace moe::train {
namespace {

constexpr int32_t kByteSymbols = 256;
constexpr int32_t kProgressEvery = 250;  // merges between progress reports

// An adjacent pair of symbols (left, right) as one key; ordering keys orders pairs
// lexicographically by (left, right).
using PairKey = uint64_t;

PairKey pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}
int32_t pair_left(PairKey key) { return static_cast<int32_t>(key >> 32); }
int32_t pair_right(PairKey key) { return static_cast<int32_t>(key & 0xFFFFFFFFu); }

struct PairHash {
  // Mixes both halves; std::hash<uint64_t> is the identity on libstdc++.
  size_t operator()(PairKey key) const { return (key * 0x9E3779B97F4A7C15ull) >> 17; }
};

// A distinct word of the corpus as its current symbols, and how often it occurs.
struct Word {
  std::vector<int32_t> symbols;
  int64_t count = 0;
};

// A candidate merge in the priority queue. Entries are not updated in place: when a pair's count
// changes the queue may hold stale entries, which pop_best() recognises and skips.
struct HeapEntry {
  int64_t count = 0;
  PairKey pair = 0;
  // Max-heap order: more frequent first, then the lexicographically smaller pair.
  bool operator<(const HeapEntry& other) const {
    return count != other.count ? count < other.count : pair > other.pair;
  }
};

// Replaces every non-overlapping occurrence of (left, right), scanning left to right, by `merged`
// ("a a a" with (a, a) becomes "aa a", as byte-level BPE tokenizers merge).
void merge_symbols(std::vector<int32_t>& symbols, int32_t left, int32_t right, int32_t merged) {
  size_t out = 0;
  for (size_t i = 0; i < symbols.size(); ++i) {
    if (i + 1 < symbols.size() && symbols[i] == left && symbols[i + 1] == right) {
      symbols[out++] = merged;
      ++i;
    } else {
      symbols[out++] = symbols[i];
    }
  }
  symbols.resize(out);
}

bool contains_pair(const std::vector<int32_t>& symbols, int32_t left, int32_t right) {
  for (size_t i = 0; i + 1 < symbols.size(); ++i) {
    if (symbols[i] == left && symbols[i + 1] == right) return true;
  }
  return false;
}

void sort_unique(std::vector<int32_t>& values) {
  std::sort(values.begin(), values.end());
  values.erase(std::unique(values.begin(), values.end()), values.end());
}

// Pair counts over all words, kept up to date as merges are applied. Each merge touches only the
// words that hold the pair (found through the pair -> words index), so a merge costs the length
// of those words rather than a pass over the corpus.
class PairCounts {
 public:
  explicit PairCounts(std::vector<Word> words) : words_(std::move(words)) {
    for (size_t w = 0; w < words_.size(); ++w) {
      add_word_pairs(static_cast<int32_t>(w), words_[w].count, kTrackAll, nullptr);
    }
    std::vector<HeapEntry> entries;
    entries.reserve(counts_.size());
    for (const auto& [pair, count] : counts_) entries.push_back({count, pair});
    heap_ = std::priority_queue<HeapEntry>(std::less<HeapEntry>(), std::move(entries));
  }

  // Returns the most frequent pair that is not banned, or nullopt when none occurs at least
  // `min_count` times.
  std::optional<HeapEntry> pop_best(int64_t min_count) {
    while (!heap_.empty()) {
      const HeapEntry top = heap_.top();
      heap_.pop();
      const auto it = counts_.find(top.pair);
      const int64_t current = it == counts_.end() ? 0 : it->second;
      if (current != top.count) {
        // Stale: the pair lost occurrences since this entry was pushed.
        if (current > 0) heap_.push({current, top.pair});
        if (current <= 0) forget(top.pair);
        continue;
      }
      if (std::binary_search(banned_.begin(), banned_.end(), top.pair)) continue;
      if (current < min_count) return std::nullopt;
      return top;
    }
    return std::nullopt;
  }

  // Never offers `pair` again (its merge would duplicate a special token's text).
  void ban(PairKey pair) { banned_.insert(std::upper_bound(banned_.begin(), banned_.end(), pair), pair); }

  // Replaces every occurrence of `pair` by symbol `merged` and updates the counts of the pairs
  // around each occurrence.
  void apply(PairKey pair, int32_t merged) {
    const auto it = where_.find(pair);
    if (it == where_.end()) return;
    std::vector<int32_t> word_ids = std::move(it->second);
    sort_unique(word_ids);  // the index may list a word twice, or words that lost the pair
    std::vector<PairKey> raised;
    const int32_t left = pair_left(pair);
    const int32_t right = pair_right(pair);
    for (int32_t w : word_ids) {
      Word& word = words_[static_cast<size_t>(w)];
      if (!contains_pair(word.symbols, left, right)) continue;
      // Subtract all of the word's pairs and add back those of the merged word: pairs away from
      // the merge cancel out, and only pairs holding `merged` can gain.
      add_word_pairs(w, -word.count, merged, nullptr);
      merge_symbols(word.symbols, left, right, merged);
      add_word_pairs(w, word.count, merged, &raised);
    }
    forget(pair);
    std::sort(raised.begin(), raised.end());
    raised.erase(std::unique(raised.begin(), raised.end()), raised.end());
    for (PairKey p : raised) heap_.push({counts_[p], p});
  }

 private:
  static constexpr int32_t kTrackAll = -1;

  // Adds `delta` to the count of every adjacent pair of word `w`. Pairs holding symbol `track`
  // (any pair for kTrackAll) get `w` in their word index and, when `raised` is given, are
  // appended to it.
  void add_word_pairs(int32_t w, int64_t delta, int32_t track, std::vector<PairKey>* raised) {
    const std::vector<int32_t>& s = words_[static_cast<size_t>(w)].symbols;
    for (size_t i = 0; i + 1 < s.size(); ++i) {
      const PairKey p = pair_key(s[i], s[i + 1]);
      counts_[p] += delta;
      if (delta > 0 && (track == kTrackAll || s[i] == track || s[i + 1] == track)) {
        where_[p].push_back(w);
        if (raised != nullptr) raised->push_back(p);
      }
    }
  }

  void forget(PairKey pair) {
    counts_.erase(pair);
    where_.erase(pair);
  }

  std::vector<Word> words_;
  std::unordered_map<PairKey, int64_t, PairHash> counts_;               // pair -> occurrences
  std::unordered_map<PairKey, std::vector<int32_t>, PairHash> where_;  // pair -> words holding it
  std::priority_queue<HeapEntry> heap_;
  std::vector<PairKey> banned_;  // sorted
};

// The symbols learned so far as raw bytes: 0..255 are the bytes themselves.
class SymbolTable {
 public:
  SymbolTable() {
    for (int32_t b = 0; b < kByteSymbols; ++b) intern(std::string(1, static_cast<char>(b)));
  }
  // Returns the id of `bytes`, adding it if new (a merge can rebuild an existing text, e.g.
  // (a, bc) after (ab, c); it then reuses that token, as Hugging Face's trainer does).
  int32_t intern(const std::string& bytes) {
    const auto [it, added] = ids_.try_emplace(bytes, static_cast<int32_t>(bytes_.size()));
    if (added) bytes_.push_back(bytes);
    return it->second;
  }
  const std::string& bytes(int32_t id) const { return bytes_[static_cast<size_t>(id)]; }
  int32_t size() const { return static_cast<int32_t>(bytes_.size()); }

 private:
  std::vector<std::string> bytes_;
  std::unordered_map<std::string, int32_t> ids_;
};

// Returns the token text of raw bytes: each byte as its GPT-2 code point ("Ġ" for a space).
std::string encode_bytes(std::string_view bytes) {
  std::string out;
  for (char c : bytes) out += tokenizer::byte_to_unicode(static_cast<uint8_t>(c));
  return out;
}

// Returns the corpus's words of two or more bytes as symbol sequences, sorted by their bytes so
// the result does not depend on hash-map order.
std::vector<Word> initial_words(const std::unordered_map<std::string, int64_t>& counts) {
  std::vector<std::pair<std::string_view, int64_t>> sorted;
  for (const auto& [text, count] : counts) {
    if (text.size() >= 2) sorted.emplace_back(text, count);
  }
  std::sort(sorted.begin(), sorted.end());
  std::vector<Word> words;
  words.reserve(sorted.size());
  for (const auto& [text, count] : sorted) {
    Word word;
    word.count = count;
    for (char c : text) word.symbols.push_back(static_cast<uint8_t>(c));
    words.push_back(std::move(word));
  }
  return words;
}

// Returns the "gpt2" vocabulary: specials, then every symbol, then the merges by rank.
tokenizer::VocabData make_vocab_data(const BpeTrainOptions& options, const SymbolTable& symbols,
                                     const std::vector<PairKey>& merges) {
  using tokenizer::TokenType;
  tokenizer::VocabData data;
  data.model = "gpt2";
  data.pre = options.pre;
  for (const std::string& special : options.special_tokens) {
    data.tokens.push_back(special);
    data.token_types.push_back(static_cast<int32_t>(TokenType::kControl));
  }
  for (int32_t id = 0; id < symbols.size(); ++id) {
    data.tokens.push_back(encode_bytes(symbols.bytes(id)));
    data.token_types.push_back(static_cast<int32_t>(TokenType::kNormal));
  }
  for (PairKey merge : merges) {
    data.merges.push_back(encode_bytes(symbols.bytes(pair_left(merge))) + " " +
                          encode_bytes(symbols.bytes(pair_right(merge))));
  }
  data.bos_id = 0;
  data.eos_id = 0;
  data.unk_id = tokenizer::kNoToken;  // every byte has a token
  data.add_bos = tokenizer::find_pre_tokenizer_traits(options.pre)->add_bos;  // checked in create()
  data.add_eos = false;
  data.add_space_prefix = false;
  return data;
}

Status check_special_tokens(const std::vector<std::string>& specials) {
  if (specials.empty()) return make_error("at least one special token is needed (it becomes BOS and EOS)");
  for (size_t i = 0; i < specials.size(); ++i) {
    const std::string& s = specials[i];
    if (s.empty()) return make_error("special token {} is empty", i + 1);
    if (std::find(specials.begin(), specials.begin() + static_cast<std::ptrdiff_t>(i), s) !=
        specials.begin() + static_cast<std::ptrdiff_t>(i)) {
      return make_error("special token '{}' is given twice", s);
    }
    for (int b = 0; b < kByteSymbols; ++b) {
      if (s == tokenizer::byte_to_unicode(static_cast<uint8_t>(b))) {
        return make_error("special token '{}' is the text of byte token 0x{:02X}", s, b);
      }
    }
  }
  return ok_status();
}

}  // namespace

Result<BpeTrainer> BpeTrainer::create(BpeTrainOptions options) {
  MOE_TRY(check_special_tokens(options.special_tokens));
  const auto n_special = static_cast<int64_t>(options.special_tokens.size());
  const int64_t min_size = kByteSymbols + n_special;
  if (options.vocab_size < min_size) {
    return make_error("vocab size {} is below the minimum {} (256 byte tokens + {} special tokens)",
                      options.vocab_size, min_size, n_special);
  }
  if (options.min_frequency < 1) return make_error("min frequency must be at least 1, got {}", options.min_frequency);
  auto pre = tokenizer::PreTokenizer::create(options.pre);
  if (!pre.ok()) return make_error("{}", pre.error().message);
  return BpeTrainer(std::move(options), std::move(*pre));
}

void BpeTrainer::add_text(std::string_view text) {
  n_bytes_ += static_cast<int64_t>(text.size());
  const std::vector<std::string>& specials = options_.special_tokens;
  // Next occurrence of each special at or after `pos`, found again only once passed, so that
  // cutting costs one scan of the text per special.
  std::vector<size_t> next(specials.size(), 0);
  for (size_t i = 0; i < specials.size(); ++i) next[i] = text.find(specials[i]);
  size_t pos = 0;
  while (pos < text.size()) {
    size_t cut = std::string_view::npos;
    size_t cut_length = 0;
    for (size_t i = 0; i < specials.size(); ++i) {
      if (next[i] != std::string_view::npos && next[i] < pos) next[i] = text.find(specials[i], pos);
      // The earliest special wins; at the same place, the longest.
      if (next[i] < cut || (next[i] == cut && next[i] != std::string_view::npos && specials[i].size() > cut_length)) {
        cut = next[i];
        cut_length = specials[i].size();
      }
    }
    if (cut == std::string_view::npos) {
      add_fragment(text.substr(pos));
      break;
    }
    add_fragment(text.substr(pos, cut - pos));
    pos = cut + cut_length;
  }
}

void BpeTrainer::add_fragment(std::string_view text) {
  pre_.split(text, ranges_);
  for (const tokenizer::TextRange& range : ranges_) {
    ++word_counts_[std::string(text.substr(range.begin, range.end - range.begin))];
  }
  n_words_ += static_cast<int64_t>(ranges_.size());
}

Status BpeTrainer::add_file(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) return make_error("cannot open training text '{}': {}", path, std::strerror(errno));
  std::string text;
  char buffer[1 << 16];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof(buffer), file)) > 0) text.append(buffer, n);
  const bool failed = std::ferror(file) != 0;
  const int error = errno;
  std::fclose(file);
  if (failed) return make_error("cannot read training text '{}': {}", path, std::strerror(error));
  add_text(text);
  return ok_status();
}

Result<tokenizer::VocabData> BpeTrainer::train() const {
  if (word_counts_.empty()) return make_error("the training corpus is empty: no text to learn merges from");
  const auto n_special = static_cast<int32_t>(options_.special_tokens.size());
  SymbolTable symbols;
  PairCounts pairs(initial_words(word_counts_));
  std::vector<PairKey> merges;
  BpeProgress progress{n_special + symbols.size(), options_.vocab_size, 0};
  while (n_special + symbols.size() < options_.vocab_size) {
    const std::optional<HeapEntry> best = pairs.pop_best(options_.min_frequency);
    if (!best) break;
    const std::string bytes = symbols.bytes(pair_left(best->pair)) + symbols.bytes(pair_right(best->pair));
    const std::string text = encode_bytes(bytes);
    const auto& specials = options_.special_tokens;
    if (std::find(specials.begin(), specials.end(), text) != specials.end()) {
      pairs.ban(best->pair);  // the vocabulary's texts must stay unique
      continue;
    }
    pairs.apply(best->pair, symbols.intern(bytes));
    merges.push_back(best->pair);
    progress = {n_special + symbols.size(), options_.vocab_size, best->count};
    if (options_.progress && merges.size() % kProgressEvery == 0) options_.progress(progress);
  }
  if (options_.progress && (merges.empty() || merges.size() % kProgressEvery != 0)) options_.progress(progress);
  return make_vocab_data(options_, symbols, merges);
}

formats::GgufWriter tokenizer_gguf_writer(const tokenizer::VocabData& vocab) {
  formats::GgufWriter writer;
  // llama.cpp refuses a file without a known architecture even when it loads only the vocabulary;
  // "llama" is what `moe train` writes.
  writer.set("general.architecture", formats::GgufValue::string("llama"));
  tokenizer::write_vocab_metadata(vocab, writer);
  return writer;
}

}  // namespace moe::train

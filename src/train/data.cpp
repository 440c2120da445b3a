#include "train/data.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "tokenizer/gguf_vocab.h"
#include "tokenizer/tokenizer.h"

namespace moe::train {

Result<DataSource> parse_data_source(const std::string& spec) {
  DataSource source;
  std::string rest = spec;
  if (const size_t eq = rest.find('='); eq != std::string::npos) {
    source.name = rest.substr(0, eq);
    rest = rest.substr(eq + 1);
    // The weight follows the last ':' only in the name=path:weight form, so plain paths with
    // colons still work.
    if (const size_t colon = rest.rfind(':'); colon != std::string::npos) {
      const std::string weight = rest.substr(colon + 1);
      try {
        size_t used = 0;
        source.weight = std::stod(weight, &used);
        if (used != weight.size()) throw std::invalid_argument(weight);
      } catch (const std::exception&) {
        return make_error("data source '{}': weight '{}' is not a number", spec, weight);
      }
      rest = rest.substr(0, colon);
    }
  }
  source.path = rest;
  if (source.name.empty()) source.name = source.path.substr(source.path.find_last_of('/') + 1);
  if (source.path.empty()) return make_error("data source '{}' has no path", spec);
  if (!(source.weight > 0.0)) return make_error("data source '{}': weight must be positive", spec);
  return source;
}

Result<TrainVocab> load_train_vocab(const std::string& spec) {
  if (spec == "builtin") {
    tokenizer::VocabData data = tokenizer::builtin_byte_vocab();
    MOE_ASSIGN_OR_RETURN(tokenizer::Vocab vocab, tokenizer::Vocab::create(data));
    return TrainVocab{std::move(vocab), [data](formats::GgufWriter& w) { tokenizer::write_vocab_metadata(data, w); }};
  }
  MOE_ASSIGN_OR_RETURN(formats::GgufFile file, formats::GgufFile::open(spec));
  MOE_ASSIGN_OR_RETURN(tokenizer::Vocab vocab, tokenizer::load_vocab(file));
  std::vector<std::pair<std::string, formats::GgufValue>> keys;
  for (const auto& [key, value] : file.metadata()) {
    if (key.rfind("tokenizer.", 0) == 0) keys.emplace_back(key, value);
  }
  return TrainVocab{std::move(vocab), [keys](formats::GgufWriter& w) {
                      for (const auto& [key, value] : keys) w.set(key, value);
                    }};
}

namespace {

Result<std::string> read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error("cannot open data file '{}'", path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Splits text into pieces of about `target` bytes ending at newlines, so they can be tokenized
// in parallel; no token spans a line break in an SPM vocabulary anyway.
std::vector<std::string_view> split_chunks(std::string_view text, size_t target) {
  std::vector<std::string_view> chunks;
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = std::min(text.size(), begin + target);
    if (end < text.size()) {
      const size_t nl = text.find('\n', end);
      end = nl == std::string_view::npos ? text.size() : nl + 1;
    }
    chunks.push_back(text.substr(begin, end - begin));
    begin = end;
  }
  return chunks;
}

std::vector<int32_t> tokenize_text(std::string_view text, const tokenizer::Vocab& vocab, ThreadPool& pool) {
  const std::vector<std::string_view> chunks = split_chunks(text, 16384);
  std::vector<std::vector<int32_t>> ids(chunks.size());
  pool.parallel_for(static_cast<int64_t>(chunks.size()), 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      ids[static_cast<size_t>(i)] = tokenizer::tokenize(vocab, chunks[static_cast<size_t>(i)], false, false);
    }
  });
  std::vector<int32_t> all;
  for (const auto& part : ids) all.insert(all.end(), part.begin(), part.end());
  return all;
}

}  // namespace

Result<DataSet> DataSet::load(const std::vector<DataSource>& sources, const tokenizer::Vocab& vocab,
                              double valid_fraction, int64_t seq_len, ThreadPool& pool) {
  if (sources.empty()) return make_error("no training data given (--data FILE)");
  if (!(valid_fraction > 0.0 && valid_fraction < 1.0)) {
    return make_error("validation fraction must be in (0, 1), got {}", valid_fraction);
  }
  std::vector<Corpus> corpora;
  for (const DataSource& source : sources) {
    MOE_ASSIGN_OR_RETURN(std::string text, read_text(source.path));
    std::vector<int32_t> ids = tokenize_text(text, vocab, pool);
    const auto n_valid = static_cast<size_t>(static_cast<double>(ids.size()) * valid_fraction);
    Corpus c;
    c.name = source.name;
    c.weight = source.weight;
    c.valid.assign(ids.end() - static_cast<std::ptrdiff_t>(n_valid), ids.end());
    ids.resize(ids.size() - n_valid);
    c.train = std::move(ids);
    corpora.push_back(std::move(c));
  }
  return from_corpora(std::move(corpora), seq_len);
}

Result<DataSet> DataSet::from_corpora(std::vector<Corpus> corpora, int64_t seq_len) {
  DataSet set;
  double total = 0.0;
  for (const Corpus& c : corpora) {
    const auto need = static_cast<size_t>(seq_len + 1);
    if (c.train.size() < need || c.valid.size() < need) {
      return make_error("corpus '{}' is too small: {} training and {} validation tokens, each part needs at least {}",
                        c.name, c.train.size(), c.valid.size(), need);
    }
    total += c.weight;
  }
  double running = 0.0;
  for (const Corpus& c : corpora) {
    running += c.weight / total;
    set.cumulative_.push_back(running);
  }
  set.corpora_ = std::move(corpora);
  return set;
}

int64_t DataSet::n_train_tokens() const {
  int64_t n = 0;
  for (const Corpus& c : corpora_) n += static_cast<int64_t>(c.train.size());
  return n;
}

void DataSet::sample_train(Rng& rng, int64_t n_seq, int64_t seq_len, Batch& batch) const {
  batch.n_seq = n_seq;
  batch.seq_len = seq_len;
  batch.tokens.resize(static_cast<size_t>(n_seq * seq_len));
  batch.targets.resize(batch.tokens.size());
  for (int64_t s = 0; s < n_seq; ++s) {
    const double pick = rng.uniform();
    size_t index = 0;
    while (index + 1 < cumulative_.size() && pick >= cumulative_[index]) ++index;
    const std::vector<int32_t>& ids = corpora_[index].train;
    const uint64_t start = rng.below(ids.size() - static_cast<uint64_t>(seq_len));
    for (int64_t i = 0; i < seq_len; ++i) {
      batch.tokens[static_cast<size_t>(s * seq_len + i)] = ids[start + static_cast<uint64_t>(i)];
      batch.targets[static_cast<size_t>(s * seq_len + i)] = ids[start + static_cast<uint64_t>(i) + 1];
    }
  }
}

std::vector<Batch> DataSet::validation_batches(size_t index, int64_t n_seq, int64_t seq_len,
                                               int64_t max_windows) const {
  const std::vector<int32_t>& ids = corpora_[index].valid;
  const int64_t available = (static_cast<int64_t>(ids.size()) - 1) / seq_len;
  const int64_t n_windows = std::min(available, max_windows);
  std::vector<Batch> batches;
  for (int64_t w0 = 0; w0 < n_windows; w0 += n_seq) {
    Batch b;
    b.n_seq = std::min(n_seq, n_windows - w0);
    b.seq_len = seq_len;
    for (int64_t w = w0; w < w0 + b.n_seq; ++w) {
      const auto start = static_cast<size_t>(w * seq_len);
      b.tokens.insert(b.tokens.end(), ids.begin() + static_cast<std::ptrdiff_t>(start),
                      ids.begin() + static_cast<std::ptrdiff_t>(start + static_cast<size_t>(seq_len)));
      b.targets.insert(b.targets.end(), ids.begin() + static_cast<std::ptrdiff_t>(start + 1),
                       ids.begin() + static_cast<std::ptrdiff_t>(start + 1 + static_cast<size_t>(seq_len)));
    }
    batches.push_back(std::move(b));
  }
  return batches;
}

}  // namespace moe::train

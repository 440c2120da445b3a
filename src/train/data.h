// Training data: text corpora tokenized once, each split into a training part and a held-out
// validation tail; training batches are random contiguous windows, drawn from the corpora in
// proportion to their mixture weights.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/thread_pool.h"
#include "formats/gguf.h"
#include "tokenizer/vocab.h"
#include "train/network.h"
#include "train/rng.h"

namespace moe::train {

// One corpus on the command line: "path", or "name=path:weight".
struct DataSource {
  std::string name;
  std::string path;
  double weight = 1.0;
};

// Returns the parsed source; errors name the spec.
Result<DataSource> parse_data_source(const std::string& spec);

struct Corpus {
  std::string name;
  double weight = 1.0;
  std::vector<int32_t> train;  // tokens of the training part
  std::vector<int32_t> valid;  // tokens of the held-out tail
};

// The vocabulary to train with and how to write it into the output GGUF.
struct TrainVocab {
  tokenizer::Vocab vocab;
  std::function<void(formats::GgufWriter&)> write_metadata;
};

// Returns the vocabulary for `spec`: "builtin" (tokenizer::builtin_byte_vocab) or a GGUF file
// whose tokenizer.* keys are copied to the output.
Result<TrainVocab> load_train_vocab(const std::string& spec);

class DataSet {
 public:
  // Reads and tokenizes every source (in parallel chunks of lines); the last `valid_fraction`
  // of each corpus is held out. Errors when a part is shorter than one window of seq_len + 1.
  static Result<DataSet> load(const std::vector<DataSource>& sources, const tokenizer::Vocab& vocab,
                              double valid_fraction, int64_t seq_len, ThreadPool& pool);
  // Builds a data set from token ids (tests).
  static Result<DataSet> from_corpora(std::vector<Corpus> corpora, int64_t seq_len);

  const std::vector<Corpus>& corpora() const { return corpora_; }
  int64_t n_train_tokens() const;

  // Fills `batch` with n_seq windows of seq_len (+1 for targets): corpus by weight, start
  // uniform. Consumes a fixed number of draws from `rng`, so the data order is its state.
  void sample_train(Rng& rng, int64_t n_seq, int64_t seq_len, Batch& batch) const;
  // Returns validation batches of corpus `index`: consecutive windows from the start of its
  // tail, at most `max_windows` of them, n_seq per batch (the last may hold fewer).
  std::vector<Batch> validation_batches(size_t index, int64_t n_seq, int64_t seq_len, int64_t max_windows) const;

 private:
  std::vector<Corpus> corpora_;
  std::vector<double> cumulative_;  // normalised cumulative weights
};

}  // namespace moe::train

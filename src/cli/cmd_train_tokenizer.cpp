// `moe train-tokenizer`: learns a byte-level BPE vocabulary from text files and writes it as a
// vocabulary-only GGUF that `moe tokenize`, `moe train --vocab` and llama.cpp load. Progress goes
// to stderr.
#include <fmt/format.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "train/bpe_trainer.h"

namespace moe::cli {

namespace {

struct TrainTokenizerCliOptions {
  std::vector<std::string> data;
  std::string output_path;
  train::BpeTrainOptions bpe;
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

Status run_train_tokenizer_impl(TrainTokenizerCliOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  o.bpe.progress = [](const train::BpeProgress& p) {
    fmt::print(stderr, "merges: vocab {}/{}, last pair seen {} times\n", p.n_tokens, p.n_tokens_target,
               p.last_pair_count);
  };
  MOE_ASSIGN_OR_RETURN(train::BpeTrainer trainer, train::BpeTrainer::create(o.bpe));
  for (const std::string& path : o.data) MOE_TRY(trainer.add_file(path));
  fmt::print(stderr, "read {} bytes: {} words, {} distinct ({:.1f} s)\n", trainer.n_bytes(), trainer.n_words(),
             trainer.n_unique_words(), seconds_since(start));
  MOE_ASSIGN_OR_RETURN(const tokenizer::VocabData vocab, trainer.train());
  // Load the result as the runtime would, so a broken vocabulary never reaches disk.
  MOE_TRY(tokenizer::Vocab::create(vocab));
  MOE_TRY(train::tokenizer_gguf_writer(vocab).write(o.output_path));
  fmt::print(stderr, "wrote {}: {} tokens ({} special), {} merges, pre-tokenizer '{}' ({:.1f} s)\n", o.output_path,
             vocab.tokens.size(), o.bpe.special_tokens.size(), vocab.merges.size(), vocab.pre, seconds_since(start));
  return ok_status();
}

int run_train_tokenizer(TrainTokenizerCliOptions& o) {
  if (Status s = run_train_tokenizer_impl(o); !s.ok()) return report_error(s.error().message);
  return 0;
}

}  // namespace

CommandRunner add_train_tokenizer_command(CLI::App& app) {
  auto o = std::make_shared<TrainTokenizerCliOptions>();
  train::BpeTrainOptions& b = o->bpe;
  CLI::App* sub = app.add_subcommand("train-tokenizer", "Train a byte-level BPE tokenizer on text files");
  sub->add_option("--data", o->data, "Training text file (repeatable)")->required();
  sub->add_option("--vocab-size", b.vocab_size, "Tokens in all: special + 256 bytes + merges")->required();
  sub->add_option("--special", b.special_tokens, "Special (CONTROL) tokens, the first is BOS/EOS (repeatable)")
      ->capture_default_str();
  sub->add_option("--pre", b.pre, "Pre-tokenizer (tokenizer.ggml.pre): gpt-2, llama3, ...")->capture_default_str();
  sub->add_option("--min-frequency", b.min_frequency, "Merge only pairs seen at least this often")
      ->capture_default_str();
  sub->add_option("-o,--output", o->output_path, "Output vocabulary-only GGUF")->required();
  return [o] { return run_train_tokenizer(*o); };
}

}  // namespace moe::cli

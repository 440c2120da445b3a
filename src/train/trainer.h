// A training run: model, optimizer, data order and loss history, stepped one optimizer update
// at a time; checkpoints that resume bit-exactly; export to a GGUF that `moe run` loads.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/thread_pool.h"
#include "formats/gguf.h"
#include "train/data.h"
#include "train/model.h"
#include "train/network.h"
#include "train/optimizer.h"
#include "train/rng.h"

namespace moe::train {

struct TrainOptions {
  int64_t n_layer = 4;
  int64_t n_embd = 192;
  int64_t n_head = 6;
  int64_t n_head_kv = 0;  // 0: same as n_head
  int64_t n_ff = 384;     // per expert
  int n_expert = 4;       // 0: dense FFN
  int n_expert_used = 2;
  int64_t ctx = 128;      // training window
  int64_t batch = 16;     // windows per step
  int64_t steps = 1000;
  uint64_t seed = 42;
  RouterSpec router;
  OptimizerConfig optim;  // total_steps is taken from `steps`
  int64_t eval_windows = 64;  // validation windows per corpus
};

struct LossPoint {
  int64_t step = 0;
  double train = 0.0;
  double valid = std::numeric_limits<double>::quiet_NaN();  // NaN when not evaluated
};

struct StepResult {
  double loss = 0.0;  // mean cross-entropy of the batch (before the update)
  double aux = 0.0;
  double z = 0.0;
  double grad_norm = 0.0;
  float lr = 0.0f;
  std::vector<std::vector<int64_t>> expert_counts;  // (n_layer, n_expert)
};

struct EvalResult {
  std::vector<double> loss;  // mean cross-entropy per corpus
  double mean = 0.0;         // over every validation token
};

class Trainer {
 public:
  // Returns a fresh run (weights initialised from options.seed).
  static Result<std::unique_ptr<Trainer>> create(const TrainOptions& options, const DataSet& data, int64_t n_vocab,
                                                 ThreadPool& pool);

  // Runs one optimizer step on a fresh batch.
  StepResult step();
  // Returns the validation loss of each corpus (no gradients, no effect on the run's state).
  EvalResult evaluate();

  // Writes everything needed to continue exactly: weights, Adam moments, step, RNG (data
  // position), expert biases and the loss history. Atomic (temporary file + rename).
  Status save_checkpoint(const std::string& path) const;
  // Restores a checkpoint written by a run with the same model shape.
  Status load_checkpoint(const std::string& path);
  // Writes the model as a llama-arch GGUF with the vocabulary written by `write_vocab`. Matrices
  // are stored as `type` (f32, f16, q8_0, ...); norms and routers stay f32, as llama.cpp keeps them.
  Status export_gguf(const std::string& path, const std::function<void(formats::GgufWriter&)>& write_vocab,
                     DType type = DType::kF32) const;

  int64_t step_index() const { return step_; }
  const TrainOptions& options() const { return options_; }
  TrainModel& model() { return model_; }
  const TrainModel& model() const { return model_; }
  Network& network() { return network_; }
  std::vector<LossPoint>& history() { return history_; }
  const DataSet& data() const { return data_; }

 private:
  Trainer(const TrainOptions& options, const DataSet& data, TrainModel model, ThreadPool& pool);
  std::string fingerprint() const;

  TrainOptions options_;
  const DataSet& data_;
  ThreadPool& pool_;
  TrainModel model_;
  Network network_;
  AdamW optimizer_;
  Rng rng_;
  int64_t step_ = 0;
  Batch batch_;
  std::vector<LossPoint> history_;
};

// Returns the model hyperparameters `options` describe for a vocabulary of n_vocab.
model::HParams hparams_for(const TrainOptions& options, int64_t n_vocab);

}  // namespace moe::train

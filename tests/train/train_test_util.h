// Shared fixtures of the training tests: tiny model options and synthetic corpora.
#pragma once

#include <string>
#include <vector>

#include "train/data.h"
#include "train/rng.h"
#include "train/trainer.h"

namespace moe::train::testing {

// A tiny MoE: 2 layers, GQA (4 heads, 2 KV heads), 4 experts top-2.
inline TrainOptions tiny_options() {
  TrainOptions o;
  o.n_layer = 2;
  o.n_embd = 32;
  o.n_head = 4;
  o.n_head_kv = 2;
  o.n_ff = 48;
  o.n_expert = 4;
  o.n_expert_used = 2;
  o.ctx = 16;
  o.batch = 4;
  o.steps = 20;
  o.seed = 7;
  o.optim.warmup = 5;
  o.optim.lr = 3e-3f;
  o.eval_windows = 8;
  return o;
}

// A corpus of random tokens below n_vocab (training and validation parts).
inline Corpus random_corpus(const std::string& name, int64_t n_vocab, size_t n_tokens, uint64_t seed) {
  Rng rng(seed);
  Corpus c;
  c.name = name;
  for (size_t i = 0; i < n_tokens; ++i) c.train.push_back(static_cast<int32_t>(rng.below(static_cast<uint64_t>(n_vocab))));
  for (size_t i = 0; i < n_tokens / 4; ++i) c.valid.push_back(static_cast<int32_t>(rng.below(static_cast<uint64_t>(n_vocab))));
  return c;
}

}  // namespace moe::train::testing

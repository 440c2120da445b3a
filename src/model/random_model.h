// Writes models with random weights for any registered architecture, driven by the same tensor
// descriptions the loader checks (so a generated file always loads). Used by `moe gen` for
// tests, benchmarks and the embedded default. Deterministic for a seed, whatever the thread
// count: every row draws from its own generator seeded by (seed, tensor name, row).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/thread_pool.h"
#include "formats/gguf.h"
#include "model/hparams.h"

namespace moe::model {

struct RandomModelOptions {
  DType weight_type = DType::kF32;  // type of matmul weights and the token embedding
  uint64_t seed = 42;
  // Logit spread: the output projection's std is this over sqrt(n_embd). Wider spreads make
  // greedy decoding less sensitive to rounding, which matters when comparing engines.
  float output_scale = 3.0f;
  // Skewed expert popularity, as real routers have (random routers spread tokens uniformly, the
  // worst case for an expert cache): router row e of a layer is scaled by (1 + rank)^-skew, with
  // a per-layer random ranking of the experts. A wider row wins the top-k more often, so
  // popularity falls steeply with rank; 0 keeps routers uniform.
  float router_skew = 0.0f;
  // Temporal locality: token ids fall into `router_topics` contiguous ranges, each with its own
  // direction added to the token embeddings and favoured by a share of every layer's experts, so
  // a token stream that stays in one region of ids keeps using the same experts. 0: off.
  int router_topics = 0;
  float topic_strength = 1.0f;  // length of the topic component relative to the embedding row
};

// Adds hyperparameter metadata and every tensor of `hp.arch` to `writer` (tensors filled lazily
// at write time, one at a time). The caller adds tokenizer metadata and writes the file.
Status add_random_model(const HParams& hp, const RandomModelOptions& options, ThreadPool& pool,
                        formats::GgufWriter& writer);

// Returns the scale of each row (expert) of router tensor `name` of `shape` under
// RandomModelOptions::router_skew = `skew` and seed `seed`; empty when `name` is not a router or
// skew is 0. Each router gets its own ranking of the experts.
std::function<float(int64_t row)> router_row_scale(const std::string& name, const std::vector<int64_t>& shape,
                                                   float skew, uint64_t seed);

// Sets the general.* and <arch>.* hyperparameter keys llama.cpp reads for `hp` (shared with the
// trainer's export, so trained and random models carry the same metadata).
void add_llama_family_metadata(const HParams& hp, formats::GgufWriter& writer);

// Sets what an architecture derives from the basic shape (shared-expert size, leading dense
// layers, Qwen3's wider heads, Granite's multipliers...). Call again after changing the shape.
void apply_arch_defaults(HParams& hp);

// Returns hyperparameters for a named preset shape ("tiny", "tiny-moe", "mixtral-shaped",
// "olmoe-shaped"), with n_vocab left for the caller to set.
Result<HParams> preset_hparams(const std::string& arch, const std::string& preset);

}  // namespace moe::model

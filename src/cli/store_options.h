// The expert-store options `moe run`, `moe serve` and `moe bench` share (--mem-budget and
// friends), and the decision whether a model needs the store at all.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "core/result.h"
#include "model/model.h"
#include "moe/expert_store.h"

namespace moe::cli {

struct StoreCliOptions {
  std::string mem_budget;         // "" = what the machine or its cgroup allows
  std::string mode = "auto";      // auto: only when the model does not fit; on; off
  std::string policy = "lru";
  bool per_layer = false;
  bool prefetch = true;
  unsigned io_depth = 32;
  std::string pin;                // "layer:expert,layer:expert"
};

void add_store_options(CLI::App& sub, StoreCliOptions& o);
// Adds --stats (`moe run` and `moe serve`; `moe bench` always reports the store).
void add_store_stats_flag(CLI::App& sub, bool& print_stats);
// Prints the store's statistics to stderr, or that it is off (null).
void print_store_stats(const experts::ExpertStore* store);

// Returns the store to run `model` with, or null when it is off or (auto) the model, its KV
// cache (`kv_bytes`) and activations for `n_ubatch` tokens fit in the budget.
Result<std::unique_ptr<experts::ExpertStore>> make_store(model::Model& model, const StoreCliOptions& o,
                                                         uint64_t kv_bytes, int64_t n_ubatch, int64_t n_ctx);

}  // namespace moe::cli

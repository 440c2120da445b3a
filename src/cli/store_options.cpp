#include "cli/store_options.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "core/log.h"
#include "formats/mapped_file.h"
#include "moe/memory_budget.h"

namespace moe::cli {

void add_store_options(CLI::App& sub, StoreCliOptions& o) {
  sub.add_option("--mem-budget", o.mem_budget,
                 "Memory the model may use (e.g. 2G, 512M; default: the cgroup limit or MemAvailable minus a margin); "
                 "routed experts beyond it are read from the file as needed");
  sub.add_option("--expert-store", o.mode, "Expert store: auto (when the model does not fit), on, off")
      ->check(CLI::IsMember({"auto", "on", "off"}))
      ->capture_default_str();
  sub.add_option("--cache-policy", o.policy, "Expert cache eviction: lru, lfu (decayed), routing (per-layer share)")
      ->capture_default_str();
  sub.add_flag("--cache-per-layer", o.per_layer, "Give each MoE layer an equal share of the expert cache");
  sub.add_flag("!--no-prefetch", o.prefetch, "Do not prefetch the next layer's predicted experts");
  sub.add_option("--io-depth", o.io_depth, "Expert reads in flight")->capture_default_str();
  sub.add_option("--pin-experts", o.pin, "Experts kept in memory, as layer:expert,layer:expert");
}

void add_store_stats_flag(CLI::App& sub, bool& print_stats) {
  sub.add_flag("--stats", print_stats,
               "Print expert-store statistics (hit rate, reads, stalls, prediction) at the end");
}

void print_store_stats(const experts::ExpertStore* store) {
  if (store != nullptr) {
    fmt::print(stderr, "{}", experts::format_store_stats(store->stats(), /*per_layer=*/true));
  } else {
    fmt::print(stderr, "expert store: off (the model fits in memory, or --expert-store off)\n");
  }
}

namespace {

Result<std::vector<std::pair<int, int>>> parse_pins(const std::string& text) {
  std::vector<std::pair<int, int>> pins;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    int layer = -1, expert = -1;
    char colon = 0;
    std::stringstream one(item);
    if (!(one >> layer >> colon >> expert) || colon != ':' || !one.eof()) {
      return make_error("--pin-experts: '{}' is not layer:expert", item);
    }
    pins.emplace_back(layer, expert);
  }
  return pins;
}

// Memory besides the weights: KV cache, activations of a micro-batch, and a fixed allowance for
// code, thread stacks and allocator slack. Deliberately generous: underestimating it is what
// gets a process killed in a cgroup.
uint64_t reserved_estimate(const model::HParams& hp, uint64_t kv_bytes, int64_t n_ubatch, int64_t n_ctx) {
  const int64_t k = std::max(hp.moe.n_expert_used, 1);
  // Per token of a micro-batch: the block scratch (norm, q, k, v, attention and block outputs,
  // residual), the k expert outputs, one expert's gate/up rows, router logits.
  const int64_t per_token = hp.n_embd * (10 + 2 * k) + 3 * std::max(hp.n_ff, hp.n_ff_expert) + hp.moe.n_expert;
  // Attention scores are per head group and thread, not per token: a few rows of n_ctx.
  const int64_t scores = 8 * hp.n_head * n_ctx;
  return kv_bytes + static_cast<uint64_t>(n_ubatch * per_token + scores) * 4 + static_cast<uint64_t>(hp.n_vocab) * 8 +
         (uint64_t{64} << 20);
}

}  // namespace

Result<std::unique_ptr<experts::ExpertStore>> make_store(model::Model& model, const StoreCliOptions& o,
                                                         uint64_t kv_bytes, int64_t n_ubatch, int64_t n_ctx) {
  if (o.mode == "off") return std::unique_ptr<experts::ExpertStore>();
  uint64_t budget = 0;
  if (o.mem_budget.empty()) {
    MOE_ASSIGN_OR_RETURN(budget, experts::default_memory_budget());
  } else {
    MOE_ASSIGN_OR_RETURN(budget, experts::parse_size(o.mem_budget));
  }
  const model::HParams& hp = model.hparams();
  experts::StoreOptions options;
  options.budget_bytes = budget;
  options.reserved_bytes = reserved_estimate(hp, kv_bytes, n_ubatch, n_ctx);
  uint64_t weights = 0;
  for (const auto& t : model.file().tensors()) weights += t.n_bytes;
  if (o.mode == "auto" && (!hp.moe.is_moe() || weights + options.reserved_bytes <= budget)) {
    // The whole model fits: fault its mapping in now, as llama.cpp's loader does (MAP_POPULATE),
    // so the first tokens do not pay a page fault for every weight page they are the first to use.
    formats::populate_read(model.file().mapped_bytes());
    return std::unique_ptr<experts::ExpertStore>();
  }
  MOE_ASSIGN_OR_RETURN(options.policy, experts::policy_from_name(o.policy));
  MOE_ASSIGN_OR_RETURN(options.pinned, parse_pins(o.pin));
  options.per_layer = o.per_layer;
  options.prefetch = o.prefetch;
  options.queue_depth = o.io_depth;
  MOE_ASSIGN_OR_RETURN(auto store, experts::ExpertStore::create(model, options));
  const experts::StorePlan& plan = store->plan();
  MOE_LOG_INFO("moe: expert store: budget {}, resident {} + reserved {}, cache {} of {} experts ({} each, {}){}",
               experts::format_size(budget), experts::format_size(plan.resident_bytes),
               experts::format_size(plan.reserved_bytes), plan.n_slots, plan.n_experts,
               experts::format_size(plan.expert_bytes), o.policy, store->direct_io() ? ", O_DIRECT" : "");
  return store;
}

}  // namespace moe::cli

// What the expert store did: cache hits, bytes read, time the compute waited for reads, how well
// speculative gating predicted the next layer, and how often each expert was used. A plain
// struct so `moe run --stats`, `moe bench` and (later) the server's metrics share it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace moe::experts {

struct StoreStats {
  int64_t tokens = 0;          // tokens through the first MoE layer
  int64_t expert_uses = 0;     // (layer, expert) pairs the steps needed
  int64_t hits = 0;            // ... already in memory
  int64_t late_prefetches = 0; // ... being prefetched (read started before the layer asked)
  int64_t misses = 0;          // ... read on demand
  int64_t reads = 0;           // experts read from the file (demand and prefetch)
  int64_t prefetch_reads = 0;  // experts read on a prediction
  int64_t prefetch_used = 0;   // ... that a step used before they were evicted
  int64_t evictions = 0;
  uint64_t bytes_read = 0;     // bytes read from the file (including alignment padding)
  double stall_seconds = 0.0;  // time the evaluating thread waited for reads
  int64_t predicted = 0;           // experts predicted for the next layer (summed over steps)
  int64_t predicted_correct = 0;   // ... that the layer then used
  int64_t predicted_layer_uses = 0;  // experts used by layers that had a prediction
  int64_t n_layer = 0;
  int64_t n_expert = 0;
  std::vector<int64_t> uses;   // (n_layer, n_expert): steps that used each expert

  // Returns hits / expert_uses (prefetches still in flight count as misses).
  double hit_rate() const { return expert_uses > 0 ? static_cast<double>(hits) / static_cast<double>(expert_uses) : 0.0; }
  // Returns the share of predicted experts that were used.
  double precision() const {
    return predicted > 0 ? static_cast<double>(predicted_correct) / static_cast<double>(predicted) : 0.0;
  }
  // Returns the share of used experts (of predicted layers) that were predicted.
  double recall() const {
    return predicted_layer_uses > 0 ? static_cast<double>(predicted_correct) / static_cast<double>(predicted_layer_uses)
                                    : 0.0;
  }
  double bytes_per_token() const { return tokens > 0 ? static_cast<double>(bytes_read) / static_cast<double>(tokens) : 0.0; }
  double stall_seconds_per_token() const { return tokens > 0 ? stall_seconds / static_cast<double>(tokens) : 0.0; }
};

// Returns a human-readable report; with `per_layer`, each layer's most used experts too.
std::string format_store_stats(const StoreStats& stats, bool per_layer);

}  // namespace moe::experts

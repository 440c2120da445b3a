// Counts of which experts the router picks, per layer: the raw material for utilisation
// reports, cache sizing and (later) the server's metrics.
#pragma once

#include <cstdint>
#include <vector>

namespace moe::model {

class RoutingStats {
 public:
  RoutingStats(int64_t n_layer, int64_t n_expert)
      : n_layer_(n_layer), n_expert_(n_expert), counts_(static_cast<size_t>(n_layer * n_expert), 0),
        tokens_(static_cast<size_t>(n_layer), 0) {}

  // Records one token's chosen experts at `layer`.
  void record(int layer, const std::vector<int>& experts) {
    for (int e : experts) ++counts_[static_cast<size_t>(layer * n_expert_ + e)];
    ++tokens_[static_cast<size_t>(layer)];
  }

  int64_t n_layer() const { return n_layer_; }
  int64_t n_expert() const { return n_expert_; }
  int64_t count(int64_t layer, int64_t expert) const { return counts_[static_cast<size_t>(layer * n_expert_ + expert)]; }
  int64_t tokens(int64_t layer) const { return tokens_[static_cast<size_t>(layer)]; }
  // Returns the share of this layer's expert selections that went to `expert` (0 when unrouted).
  double share(int64_t layer, int64_t expert) const {
    int64_t total = 0;
    for (int64_t e = 0; e < n_expert_; ++e) total += count(layer, e);
    return total > 0 ? static_cast<double>(count(layer, expert)) / static_cast<double>(total) : 0.0;
  }

 private:
  int64_t n_layer_;
  int64_t n_expert_;
  std::vector<int64_t> counts_;  // (n_layer, n_expert)
  std::vector<int64_t> tokens_;  // tokens routed per layer
};

}  // namespace moe::model

#include "moe/cache_policy.h"

#include <cmath>

namespace moe::experts {

Result<PolicyKind> policy_from_name(std::string_view name) {
  if (name == "lru") return PolicyKind::kLru;
  if (name == "lfu") return PolicyKind::kLfu;
  if (name == "routing") return PolicyKind::kRouting;
  return make_error("unknown cache policy '{}' (lru, lfu, routing)", name);
}

std::string_view policy_name(PolicyKind kind) {
  switch (kind) {
    case PolicyKind::kLru: return "lru";
    case PolicyKind::kLfu: return "lfu";
    case PolicyKind::kRouting: return "routing";
  }
  return "?";
}

namespace {

class LruPolicy final : public CachePolicy {
 public:
  explicit LruPolicy(size_t n) : last_(n, 0) {}
  void on_use(int entry, int64_t, uint64_t tick) override { last_[static_cast<size_t>(entry)] = tick; }
  void on_insert(int entry, uint64_t tick) override { last_[static_cast<size_t>(entry)] = tick; }
  double keep_score(int entry, uint64_t) const override { return static_cast<double>(last_[static_cast<size_t>(entry)]); }

 private:
  std::vector<uint64_t> last_;
};

// Exponentially decayed use counts: an expert hot long ago loses to one hot now, which plain
// LFU never lets happen. Counts are stored as of their last update and decayed on read.
class DecayedCounts {
 public:
  DecayedCounts(size_t n, double half_life) : value_(n, 0.0), at_(n, 0), rate_(std::log(2.0) / half_life) {}
  void add(size_t i, double amount, uint64_t tick) {
    value_[i] = get(i, tick) + amount;
    at_[i] = tick;
  }
  double get(size_t i, uint64_t tick) const {
    return value_[i] * std::exp(-rate_ * static_cast<double>(tick - at_[i]));
  }

 private:
  std::vector<double> value_;
  std::vector<uint64_t> at_;
  double rate_;
};

class LfuPolicy final : public CachePolicy {
 public:
  LfuPolicy(size_t n, double half_life) : counts_(n, half_life), last_(n, 0) {}
  void on_use(int entry, int64_t, uint64_t tick) override {
    counts_.add(static_cast<size_t>(entry), 1.0, tick);
    last_[static_cast<size_t>(entry)] = tick;
  }
  void on_insert(int entry, uint64_t tick) override { last_[static_cast<size_t>(entry)] = tick; }
  // Ties (e.g. never used, only prefetched) go to the least recent.
  double keep_score(int entry, uint64_t tick) const override {
    return counts_.get(static_cast<size_t>(entry), tick) + 1e-12 * static_cast<double>(last_[static_cast<size_t>(entry)]);
  }

 private:
  DecayedCounts counts_;
  std::vector<uint64_t> last_;
};

// Keeps the experts the router favours in their layer: a decayed count of tokens routed to
// each expert, over the decayed count of tokens through its layer. Unlike LFU it weighs a use by
// its token count and compares experts by their share of their own layer, so a layer whose
// routing is flat does not crowd out the hot experts of a skewed one.
class RoutingPolicy final : public CachePolicy {
 public:
  RoutingPolicy(int n_layer, int n_expert, double half_life)
      : n_expert_(n_expert),
        expert_tokens_(static_cast<size_t>(n_layer) * static_cast<size_t>(n_expert), half_life),
        layer_tokens_(static_cast<size_t>(n_layer), half_life),
        last_(static_cast<size_t>(n_layer) * static_cast<size_t>(n_expert), 0) {}
  void on_use(int entry, int64_t tokens, uint64_t tick) override {
    expert_tokens_.add(static_cast<size_t>(entry), static_cast<double>(tokens), tick);
    layer_tokens_.add(static_cast<size_t>(entry / n_expert_), static_cast<double>(tokens), tick);
    last_[static_cast<size_t>(entry)] = tick;
  }
  void on_insert(int entry, uint64_t tick) override { last_[static_cast<size_t>(entry)] = tick; }
  double keep_score(int entry, uint64_t tick) const override {
    const double layer = layer_tokens_.get(static_cast<size_t>(entry / n_expert_), tick);
    const double share = layer > 0.0 ? expert_tokens_.get(static_cast<size_t>(entry), tick) / layer : 0.0;
    return share + 1e-12 * static_cast<double>(last_[static_cast<size_t>(entry)]);
  }

 private:
  int n_expert_;
  DecayedCounts expert_tokens_;
  DecayedCounts layer_tokens_;
  std::vector<uint64_t> last_;
};

}  // namespace

std::unique_ptr<CachePolicy> make_policy(PolicyKind kind, int n_layer, int n_expert, double half_life) {
  const size_t n = static_cast<size_t>(n_layer) * static_cast<size_t>(n_expert);
  switch (kind) {
    case PolicyKind::kLru: return std::make_unique<LruPolicy>(n);
    case PolicyKind::kLfu: return std::make_unique<LfuPolicy>(n, half_life);
    case PolicyKind::kRouting: return std::make_unique<RoutingPolicy>(n_layer, n_expert, half_life);
  }
  return std::make_unique<LruPolicy>(n);
}

}  // namespace moe::experts

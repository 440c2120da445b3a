// Which cached expert to evict: policies behind one interface. The store asks for a keep score
// of every evictable expert and evicts the lowest; policies only keep their own bookkeeping.
// Experts are named by entry = layer * n_expert + expert. Ticks count MoE layer steps.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace moe::experts {

enum class PolicyKind {
  kLru,        // least recently used
  kLfu,        // least frequently used, counts halving every `half_life` ticks
  kRouting,    // lowest routing share within its layer (moving average of router picks)
};

// Returns the kind for "lru", "lfu", "routing"; an error lists the names.
Result<PolicyKind> policy_from_name(std::string_view name);
std::string_view policy_name(PolicyKind kind);

class CachePolicy {
 public:
  virtual ~CachePolicy() = default;
  // The layer's step routed `tokens` tokens to the entry (called for every used expert).
  virtual void on_use(int entry, int64_t tokens, uint64_t tick) = 0;
  // The entry was read into the cache (by demand or prefetch).
  virtual void on_insert(int entry, uint64_t tick) = 0;
  // Returns how much the entry is worth keeping at `tick`: the lowest is evicted first.
  virtual double keep_score(int entry, uint64_t tick) const = 0;
};

// Returns a policy for `n_layer` * `n_expert` entries. `half_life` (ticks) applies to kLfu and
// to the moving average of kRouting.
std::unique_ptr<CachePolicy> make_policy(PolicyKind kind, int n_layer, int n_expert, double half_life);

}  // namespace moe::experts

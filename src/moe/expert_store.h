// The expert store: runs a MoE model whose routed experts do not all fit in memory. Everything
// else (attention, norms, routers, shared experts, embeddings) is copied into RAM; the routed
// experts stay in the model file and are read per expert slice (each expert of a stacked *_exps
// tensor is one contiguous byte range per projection) into a fixed pool of cache slots sized by
// the memory budget. Reads run on an io_uring thread with O_DIRECT; while a layer computes, the
// next layer's router is applied to the current hidden state (speculative gating) and the
// predicted misses are prefetched, most wanted first. Output is bit-identical to running from
// the mapping: a slot holds the expert's bytes exactly as the file does.
#pragma once

#include <array>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "core/result.h"
#include "model/expert_source.h"
#include "model/model.h"
#include "moe/cache_policy.h"
#include "moe/io_engine.h"
#include "moe/store_stats.h"

namespace moe::experts {

struct StoreOptions {
  uint64_t budget_bytes = 0;    // all the memory the model may use
  uint64_t reserved_bytes = 0;  // of which not for weights: KV cache, activations (caller's estimate)
  PolicyKind policy = PolicyKind::kLru;
  double half_life = 64.0;      // in layer steps, for the lfu and routing policies
  bool per_layer = false;       // each MoE layer gets an equal share of the slots
  bool prefetch = true;         // speculative next-layer prefetch
  unsigned queue_depth = 32;    // reads in flight
  std::vector<std::pair<int, int>> pinned;  // (layer, expert) read at start, never evicted
  int64_t fail_read_at = 0;     // test seam: the n-th read fails with EIO
};

// How the budget divides up; computed before anything is allocated.
struct StorePlan {
  uint64_t budget_bytes = 0;        // from StoreOptions
  uint64_t resident_bytes = 0;      // non-expert weights, copied into RAM
  uint64_t reserved_bytes = 0;      // from StoreOptions
  uint64_t expert_bytes = 0;        // one expert: its three projections
  uint64_t slot_bytes = 0;          // one cache slot (the expert plus O_DIRECT alignment)
  uint64_t all_experts_bytes = 0;   // every routed expert in the file
  int64_t n_experts = 0;            // routed experts in the file (MoE layers * n_expert)
  int64_t n_slots = 0;              // experts the cache holds
};

// Returns the plan for `model` under `options`, or an error when the budget does not cover the
// resident part plus enough slots for one token's experts of a layer.
Result<StorePlan> plan_store(const model::Model& model, const StoreOptions& options);

class ExpertStore final : public model::ExpertSource {
 public:
  // Plans, copies the non-expert weights of `model` into RAM (the model then reads only those
  // copies; its mapped expert ranges are dropped from memory), allocates the slots and starts
  // the I/O thread. The model must outlive the store.
  static Result<std::unique_ptr<ExpertStore>> create(model::Model& model, const StoreOptions& options);
  ~ExpertStore() override;

  size_t begin_layer(int layer, std::vector<int>& experts) override;
  void hint(int layer, const float* hidden, int64_t n_tokens) override;
  model::ExpertWeights acquire(int layer, int expert) override;
  void release(int layer, int expert) override;
  Status status() const override;

  const StorePlan& plan() const { return plan_; }
  bool direct_io() const { return io_->direct(); }
  // Returns whether the expert is in memory now (read complete).
  bool is_cached(int layer, int expert) const;
  // Returns how many experts are in memory now (safe from any thread).
  int64_t n_cached() const;
  // Returns a snapshot of the counters (safe from any thread).
  StoreStats stats() const;
  void reset_stats();

 private:
  enum class State : uint8_t { kAbsent, kQueued, kLoading, kReady };
  struct Entry {
    int slot = -1;
    State state = State::kAbsent;
    int pins = 0;             // steps holding it: never evicted while > 0
    int reads_left = 0;       // projections still being read
    bool permanent = false;   // pinned by the options
    bool prefetched = false;  // read on a prediction, not yet used
    bool failed = false;
  };
  struct Slot {
    int entry = -1;
    int owner_layer = -1;  // per-layer capacity: the MoE layer this slot serves
    uint8_t* data = nullptr;
  };
  // Where one projection of a layer's experts lies in the file.
  struct Projection {
    uint64_t offset = 0;   // file offset of expert 0
    uint64_t stride = 0;   // bytes of one expert (= its length)
    uint64_t slot_offset = 0;  // where it goes in a slot
  };
  // Speculative gating for one MoE layer: its FFN norm and router (f32, (n_expert, n_embd)).
  struct Gate {
    const float* norm = nullptr;
    std::vector<float> router;
    const float* router_bias = nullptr;
    const float* selection_bias = nullptr;
  };

  ExpertStore(model::Model& model, const StoreOptions& options, const StorePlan& plan);
  Status init_layout();
  Status init_memory();
  Status load_pinned();
  void on_read_done(ReadRequest& request, const Status& status);

  int entry_of(int layer, int expert) const { return layer * n_expert_ + expert; }
  // Returns a slot that can take a new expert of `layer` (free or evictable), or -1.
  int find_slot_locked(int layer) const;
  // Reads `entry` into `slot`, evicting the slot's expert.
  void start_load_locked(int entry, int slot, bool prefetch);
  // Starts reads for queued experts of the running layer while slots are free.
  void issue_queued_locked();
  void reset_stats_locked();
  void score_prediction_locked(int layer, const std::vector<int>& experts);
  // Returns the experts the router of `layer` picks for `hidden`, most picked first.
  std::vector<int> predict(int layer, const float* hidden, int64_t n_tokens) const;
  model::ExpertWeights weights_in(const uint8_t* base, int layer, int expert) const;

  model::Model& model_;
  StoreOptions options_;
  StorePlan plan_;
  int n_layer_ = 0;
  int n_expert_ = 0;
  int first_moe_layer_ = -1;
  std::vector<int> moe_layers_;                 // MoE layer indices
  std::vector<std::array<Projection, 3>> proj_;  // per layer (gate, up, down)
  std::vector<Gate> gates_;                      // per layer (empty for dense ones)
  std::unique_ptr<CachePolicy> policy_;
  std::unique_ptr<IoEngine> io_;
  uint8_t* slot_memory_ = nullptr;  // n_slots * slot_bytes, anonymous mapping
  uint8_t* zero_slot_ = nullptr;    // served after a failure
  std::vector<Slot> slots_;
  std::vector<Entry> entries_;      // (n_layer, n_expert)
  std::vector<ReadRequest> requests_;  // 3 per slot

  mutable std::mutex mutex_;  // guards everything below and the entries/slots
  std::condition_variable changed_;
  std::vector<int> queued_;   // experts of the running layer waiting for a slot, in order
  std::vector<std::vector<uint8_t>> predicted_;  // per layer: experts predicted for its next step
  uint64_t tick_ = 0;
  Status error_;
  StoreStats stats_;
};

}  // namespace moe::experts

// Where the weights of routed experts come from. By default they are read straight from the
// mapped model file; an expert store (src/moe/) can serve them from its own RAM cache instead,
// reading them from disk when a model is larger than memory. The MoE blocks talk to this
// interface only, so the model layer never depends on the store.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/result.h"
#include "model/weights.h"

namespace moe::model {

// One routed expert's weights: each pointer is the expert's first row of that projection, laid
// out as the matrix `expert` of the stacked *_exps tensor (same type, same row_bytes).
struct ExpertWeights {
  const uint8_t* gate = nullptr;  // (n_ff_expert rows of n_embd)
  const uint8_t* up = nullptr;    // (n_ff_expert rows of n_embd)
  const uint8_t* down = nullptr;  // (n_embd rows of n_ff_expert)
};

// Returns the expert's weights in the mapped tensors of layer `w` (the default source).
inline ExpertWeights mapped_expert_weights(const LayerWeights& w, int expert) {
  return {w[LayerSlot::kFfnGateExps].row(0, expert), w[LayerSlot::kFfnUpExps].row(0, expert),
          w[LayerSlot::kFfnDownExps].row(0, expert)};
}

// The calls a MoE layer makes, in order, for each micro-batch:
//   begin_layer(layer, experts)          after routing; may reorder `experts`
//   hint(layer, hidden, n_tokens)        lets the source predict and prefetch later layers
//   for e in experts: acquire(layer, e), run the expert, release(layer, e)
// Implementations are used by one evaluating thread at a time.
class ExpertSource {
 public:
  virtual ~ExpertSource() = default;
  // `experts` holds the distinct experts the micro-batch routed to at `layer`, most used first.
  // Reorders them into the order the caller must acquire them in (experts already in memory
  // first, so that their compute overlaps the reads of the others). Returns how many of them
  // (a prefix) are in memory: when that is all, the caller may acquire them all at once.
  virtual size_t begin_layer(int layer, std::vector<int>& experts) = 0;
  // `hidden` (n_tokens, n_embd) is the residual stream entering the FFN of `layer`.
  virtual void hint(int layer, const float* hidden, int64_t n_tokens) = 0;
  // Returns the expert's weights, waiting for its read if needed; valid until release(). After a
  // failure (see status()) returns all-zero weights so the step finishes without reading more.
  virtual ExpertWeights acquire(int layer, int expert) = 0;
  virtual void release(int layer, int expert) = 0;
  // Returns the first failure (read error, truncated file), which eval() reports; sticky.
  virtual Status status() const = 0;
};

}  // namespace moe::model

// Running a model: the KV cache, scratch buffers and the evaluation loop that feeds micro-batches
// of tokens through the architecture's layers.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/result.h"
#include "core/thread_pool.h"
#include "kernels/kernels.h"
#include "model/expert_ffn.h"
#include "model/expert_source.h"
#include "model/model.h"
#include "model/routing_stats.h"

namespace moe::model {

enum class KvType { kF32, kF16 };

struct ContextParams {
  int64_t n_ctx = 2048;     // positions the KV cache holds
  int64_t n_ubatch = 512;   // tokens per forward micro-batch
  // F16 by default, as llama.cpp keeps its cache: half the memory, and the same rounding.
  KvType kv_type = KvType::kF16;
};

// Keys and values of every layer for positions [0, n_ctx), laid out as llama.cpp's CPU backend
// keeps them without flash attention, so attention is the same dot products over the same rows:
//   K of layer l at position p:   k_rows(l) + p * k_row_bytes()  (n_embd_k_gqa values)
//   V of layer l, dimension d:    v_rows(l) + d * v_row_bytes()  (n_ctx_padded() positions)
// V is stored transposed: each output dimension of attention is one dot product over positions.
class KvCache {
 public:
  // Positions are allocated in multiples of this; attention reads V rows and probabilities
  // padded to it (see attention.cpp). Never-written positions hold zeros.
  static constexpr int64_t kPositionPad = 64;

  KvCache(const HParams& hp, int64_t n_ctx, KvType type);

  KvType type() const { return type_; }
  int64_t n_ctx() const { return n_ctx_; }
  int64_t n_ctx_padded() const { return n_ctx_padded_; }
  // Returns the kernels of the cache's element type (F16 or F32).
  const kernels::TypeTraits& traits() const { return *traits_; }
  // Stores one position's keys/values (float in, converted to the cache type).
  void store_k(int layer, int64_t pos, const float* k);
  void store_v(int layer, int64_t pos, const float* v);
  // Returns one position's values offset..offset+n of K or V as float in `out` (for attention
  // code that reads position by position; V is gathered from its transposed rows).
  void load_k(int layer, int64_t pos, int64_t offset, int64_t n, float* out) const;
  void load_v(int layer, int64_t pos, int64_t offset, int64_t n, float* out) const;
  // Raw rows in the cache's type, laid out as above.
  const uint8_t* k_rows(int layer) const { return k_.data() + static_cast<size_t>(layer) * layer_bytes_k(); }
  const uint8_t* v_rows(int layer) const { return v_.data() + static_cast<size_t>(layer) * layer_bytes_v(); }
  size_t k_row_bytes() const { return static_cast<size_t>(row_k_) * elem_bytes(); }
  size_t v_row_bytes() const { return static_cast<size_t>(n_ctx_padded_) * elem_bytes(); }
  // Returns the bytes held.
  size_t bytes() const { return k_.size() + v_.size(); }
  // Returns the bytes a cache of n_ctx positions would hold (for memory budgets).
  static size_t bytes_for(const HParams& hp, int64_t n_ctx, KvType type);

 private:
  KvType type_;
  const kernels::TypeTraits* traits_;
  int64_t n_ctx_;
  int64_t n_ctx_padded_;
  int64_t row_k_;
  int64_t row_v_;
  std::vector<uint8_t> k_;  // (n_layer, n_ctx_padded, n_embd_k_gqa)
  std::vector<uint8_t> v_;  // (n_layer, n_embd_v_gqa, n_ctx_padded)
  size_t elem_bytes() const { return type_ == KvType::kF16 ? 2 : 4; }
  size_t layer_bytes_k() const { return static_cast<size_t>(n_ctx_padded_) * k_row_bytes(); }
  size_t layer_bytes_v() const { return static_cast<size_t>(row_v_) * v_row_bytes(); }
};

// Scratch space of one micro-batch, sized once for n_ubatch tokens.
struct Scratch {
  std::vector<float> norm;       // (n_tokens, n_embd) normalised input of a block
  std::vector<float> q;          // (n_tokens, n_head * head_dim_k)
  std::vector<float> k;          // (n_tokens, n_embd_k_gqa)
  std::vector<float> v;          // (n_tokens, n_embd_v_gqa)
  std::vector<float> attn_out;   // (n_tokens, n_head * head_dim_v)
  std::vector<float> block_out;  // (n_tokens, n_embd)
  std::vector<uint8_t> act;      // activations converted to a weight's vec_dot_type
  ExpertFfnScratch experts;      // buffers of the grouped expert FFN
};

// One sequence's tokens within a micro-batch that holds several (continuous batching): its own
// KV cache and positions, its rows [first, first + n_tokens) of LayerContext::hidden.
struct SequenceSegment {
  KvCache* kv = nullptr;
  int64_t pos0 = 0;       // position of the segment's first token
  int64_t first = 0;      // row of that token in the micro-batch
  int64_t n_tokens = 0;
  bool wants_logits = false;  // keep the last token through the last layer for its logits
};

// What an architecture's layer function works on.
struct LayerContext {
  const Model& model;
  const HParams& hp;
  ThreadPool& pool;
  KvCache& kv;
  Scratch& scratch;
  int64_t n_tokens = 0;   // tokens in this micro-batch
  int64_t pos0 = 0;       // position of the first of them
  float* hidden = nullptr;  // (n_tokens, n_embd) residual stream, updated in place
  // Set when only the last token's logits are wanted: after the last layer's attention,
  // attention_block keeps that token alone (n_tokens becomes 1), as llama.cpp does.
  bool last_token_only = false;
  RoutingStats* routing = nullptr;  // when set, MoE layers record their expert choices
  ExpertSource* experts = nullptr;  // when set, routed experts come from it, not the mapping
  // Several sequences in one micro-batch (see BatchEvaluator); empty for the single sequence of
  // kv, pos0 and n_tokens above. Attention runs per segment, everything else over all tokens.
  std::vector<SequenceSegment> segments;
  // Sums in an order that does not depend on how many tokens a micro-batch holds, so a
  // sequence's logits do not depend on what else shares its step (or how its prompt was chunked).
  bool batch_invariant = false;

  const LayerWeights& layer(int index) const { return model.weights().layers[static_cast<size_t>(index)]; }
  bool batched() const { return !segments.empty(); }
  // Returns the segments, or the single sequence as one segment.
  std::vector<SequenceSegment> sequence_segments() const;
  // Returns a single-sequence context over one segment's rows (sharing scratch and pool), for
  // attention code written for one sequence.
  LayerContext single_sequence(const SequenceSegment& segment) const;
};

class InferenceContext {
 public:
  static Result<std::unique_ptr<InferenceContext>> create(const Model& model, const ContextParams& params,
                                                          ThreadPool& pool);

  // Appends `tokens` at position n_past() and runs them through the model; afterwards logits()
  // holds the last token's logits. Errors (context full, token id out of range) leave the
  // context unchanged.
  Status eval(std::span<const int32_t> tokens);

  std::span<const float> logits() const { return logits_; }
  int64_t n_past() const { return n_past_; }
  int64_t n_ctx() const { return params_.n_ctx; }
  // Forgets every position (the next eval starts at position 0).
  void reset() { n_past_ = 0; }
  // Forgets positions from `n_keep` on, keeping the cache of the prefix (chat turns that share
  // the conversation so far). No-op when n_keep >= n_past().
  void truncate(int64_t n_keep) { n_past_ = std::clamp<int64_t>(n_keep, 0, n_past_); }
  const KvCache& kv_cache() const { return kv_; }
  // Makes MoE layers count their expert choices into `stats` (null: stop counting). The
  // caller keeps `stats` alive while it is set.
  void set_routing_stats(RoutingStats* stats) { routing_ = stats; }
  // Makes MoE layers take routed experts from `source` (null: from the mapped file). The caller
  // keeps it alive while it is set. A failure of the source fails eval().
  void set_expert_source(ExpertSource* source) { experts_ = source; }

 private:
  InferenceContext(const Model& model, const ContextParams& params, ThreadPool& pool);
  void eval_micro_batch(std::span<const int32_t> tokens, bool compute_logits);

  const Model& model_;
  ContextParams params_;
  ThreadPool& pool_;
  KvCache kv_;
  Scratch scratch_;
  std::vector<float> hidden_;
  std::vector<float> logits_;
  int64_t n_past_ = 0;
  RoutingStats* routing_ = nullptr;
  ExpertSource* experts_ = nullptr;

  friend class BatchEvaluator;
};

// One step of continuous batching: for each sequence (an InferenceContext: its KV cache and
// position) the tokens to append. Sequences must be distinct.
struct SequenceChunk {
  InferenceContext* sequence = nullptr;
  std::span<const int32_t> tokens;
  bool wants_logits = true;  // afterwards sequence->logits() holds its last token's logits
};

// Runs the chunks of several sequences as one micro-batch: attention per sequence over its own
// cache, the projections and FFNs over all tokens together, so in MoE layers each chosen
// expert's weights are read once per step for the union of the tokens routed to it. Sums are
// batch-invariant (LayerContext::batch_invariant): a sequence gets the same logits whichever
// other sequences share its steps.
class BatchEvaluator {
 public:
  BatchEvaluator(const Model& model, ThreadPool& pool) : model_(model), pool_(pool) {}

  // Evaluates all chunks in one forward pass. Errors (empty chunk, context full, token out of
  // range, a context of another model, a failed expert read) leave every sequence unchanged.
  Status eval(std::span<const SequenceChunk> chunks);
  // Makes MoE layers take routed experts from `source` (null: from the mapped file), as
  // InferenceContext::set_expert_source does; the sequences' own sources are not used. Each step
  // asks it once per layer for the union of the experts its tokens routed to.
  void set_expert_source(ExpertSource* source) { experts_ = source; }

 private:
  Status validate(std::span<const SequenceChunk> chunks) const;

  const Model& model_;
  ThreadPool& pool_;
  Scratch scratch_;
  std::vector<float> hidden_;
  std::vector<float> logits_;
  ExpertSource* experts_ = nullptr;
};

}  // namespace moe::model

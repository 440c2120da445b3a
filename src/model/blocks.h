// Blocks shared by the architectures: matrix products over a micro-batch, attention with the
// KV cache, the dense SwiGLU FFN and the MoE FFN configured by MoeSpec.
#pragma once

#include <cstdint>
#include <span>
#include <functional>
#include <vector>

#include "core/thread_pool.h"
#include "model/context.h"
#include "model/tensor.h"

namespace moe::model {

// Activations converted to a weight type's vec_dot_type: n_tokens rows of row_bytes.
struct ConvertedRows {
  const uint8_t* data = nullptr;
  size_t row_bytes = 0;
};

// Converts n_tokens rows of n_cols floats (rows `x_stride` floats apart) to the type `w` pairs
// with, into `buffer` (or points at x directly when that type is f32 and rows are packed).
ConvertedRows convert_rows(ThreadPool& pool, const kernels::TypeTraits& w, const float* x, int64_t n_tokens,
                           int64_t n_cols, std::vector<uint8_t>& buffer);

// y[t * y_stride + r] = row r of matrix `matrix` of w . x[t]; parallel over rows. The default
// order is ggml vec_dot's, which llama.cpp's mul_mat_id (MoE experts) always uses.
void matmul(ThreadPool& pool, const Tensor& w, int64_t matrix, ConvertedRows x, int64_t n_tokens, float* y,
            int64_t y_stride, kernels::SumOrder order = kernels::SumOrder::kVecDot);

// Convenience: converts x and multiplies, y is (n_tokens, w.n_rows()), summed in the order
// llama.cpp's mul_mat takes for this shape.
void matmul_f32(ThreadPool& pool, const Tensor& w, const float* x, int64_t n_tokens, float* y,
                std::vector<uint8_t>& buffer);

// One product of matmul_shared_input: y (n_tokens, w.n_rows()).
struct MatmulOutput {
  const Tensor* w = nullptr;
  float* y = nullptr;
};

// Several products of the same input (e.g. Q, K and V): x is converted once and all rows run in
// one loop over the pool; each product sums in the order matmul_f32 would use. The weights
// must share a vec_dot_type.
void matmul_shared_input(ThreadPool& pool, std::span<const MatmulOutput> outputs, const float* x, int64_t n_tokens,
                         std::vector<uint8_t>& buffer);
// While one is alive on the calling thread, matmul_f32 sums in the one-token (vec_dot) order
// whatever the batch size, so results do not depend on batch composition
// (LayerContext::batch_invariant; BatchEvaluator holds one during each step).
class BatchInvariantSums {
 public:
  explicit BatchInvariantSums(bool enable);
  ~BatchInvariantSums();
  BatchInvariantSums(const BatchInvariantSums&) = delete;
  BatchInvariantSums& operator=(const BatchInvariantSums&) = delete;
  // Returns whether one is active on this thread.
  static bool active();

 private:
  bool previous_;
};

// Returns whether a product of `w` with n_tokens tokens runs on the tile unit: the unit is on, no
// BatchInvariantSums is active on this thread, w's type keeps its precision in bf16, and there
// are at least kernels::tiles::min_tokens(w.type) tokens.
bool use_tiles(const Tensor& w, int64_t n_tokens);

// Returns whether products may sum on the int8 tile unit on this thread: it is on
// (kernels::int8_tiles::enabled()) and no BatchInvariantSums is active.
bool int8_tiles_allowed();

// Returns whether a product of `w` with n_tokens tokens sums on the int8 tile unit, given that
// int8_tiles_allowed(): its type has int8 tile kernels and the batch is big enough for them.
bool use_int8_tiles(const Tensor& w, int64_t n_tokens);

// Returns the order a plain (non-expert) product of `w` with n_tokens tokens sums in: on the int8
// tile unit where int8_tiles_allowed() and use_int8_tiles() say so, else plain_matmul_order's.
kernels::SumOrder plain_matmul_order(const Tensor& w, int64_t n_tokens);

// Returns the order a plain (non-expert) product of that shape sums in: llama.cpp's mul_mat
// order, or vec_dot's while a BatchInvariantSums is active.
kernels::SumOrder plain_matmul_order(int64_t n_rows, int64_t n_cols, int64_t n_tokens);

// Runs `block` (attention written for one sequence) once per sequence of a batched micro-batch,
// each time on a single-sequence view of that sequence's rows; directly when not batched.
void for_each_sequence(LayerContext& ctx, const std::function<void(LayerContext&)>& block);

// RMS-normalises every token of ctx.hidden with `weight` into ctx.scratch.norm.
void norm_tokens(LayerContext& ctx, const Tensor& weight);

// Q, K and V of the normalised input (ctx.scratch.norm) into ctx.scratch.q/k/v, with the
// optional biases and Q/K norms of the layer.
void project_qkv(LayerContext& ctx, const LayerWeights& w);

// Self-attention of llama-family layers: norm, Q/K/V, RoPE, cache store, causal softmax
// attention (GQA), output projection, residual add.
void attention_block(LayerContext& ctx, int layer);

// Adds a block's output to the residual stream (scaled by hp.residual_scale when set).
void add_residual(const LayerContext& ctx, float* block_out);

// FFN of a layer: dense SwiGLU or, when hp.layer_is_moe(layer), the routed-experts block.
// Includes the norm and the residual add.
void ffn_block(LayerContext& ctx, int layer);

// Routing of one token: the chosen experts (in order of decreasing score) and their weights.
struct RoutedToken {
  std::vector<int> experts;
  std::vector<float> weights;
};

// Returns a view of one expert of a stacked *_exps tensor whose rows start at `data` (as matrix 0).
Tensor expert_view(const Tensor& stacked, const uint8_t* data);

// Returns the experts with tokens in `token_counts` (per expert), most tokens first, ties by index.
std::vector<int> experts_by_use(const std::vector<int64_t>& token_counts);

// Runs fn(expert, weights) for each of `experts` of `layer`, with the weights from ctx.experts
// when set (which decides the order and may prefetch) or from the mapped tensors.
template <typename Fn>
void for_each_expert(LayerContext& ctx, int layer, std::vector<int> experts, Fn&& fn) {
  ExpertSource* source = ctx.experts;
  if (source == nullptr) {
    for (int e : experts) fn(e, mapped_expert_weights(ctx.layer(layer), e));
    return;
  }
  source->begin_layer(layer, experts);
  source->hint(layer, ctx.hidden, ctx.n_tokens);
  for (int e : experts) {
    fn(e, source->acquire(layer, e));
    source->release(layer, e);
  }
}

// Picks the top-k experts from router logits per MoeSpec (softmax or sigmoid scores, optional
// selection bias and group-limited routing, renormalisation, scaling). `selection_bias` may be
// null.
RoutedToken route_token(const MoeSpec& spec, const float* router_logits, const float* selection_bias = nullptr);

}  // namespace moe::model

// Causal self-attention over the KV cache, computed as llama.cpp's CPU backend computes it with
// flash attention off: the same dot products (K.q per position, then one dot over positions per
// output dimension of V, which the cache stores transposed), in the same summation orders
// (kernels::SumOrder), with the same f16 roundings of q and of the probabilities and the same
// softmax. A Q8_0 model amplifies any last-bit difference here into different greedy tokens.
#pragma once

#include "model/context.h"

namespace moe::model {

// For every token t of the micro-batch and query head h: softmax(scale * q.K) . V over the
// positions [0, pos(t)] of t's sequence cache (ctx.sequence_segments()), with q read from ctx.scratch.q (n_tokens, n_head * head_dim_k) and
// the result written to ctx.scratch.attn_out (n_tokens, n_head * head_dim_v). The micro-batch's
// own keys and values must already be in the cache.
void attend_cached(LayerContext& ctx, int layer, float kq_scale);

}  // namespace moe::model

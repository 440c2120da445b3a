// Multi-head latent attention (DeepSeek-V2/V3), in the "absorbed" form llama.cpp runs: the key
// decompression is folded into the queries and the value decompression applied after attention,
// so attention works directly on the cached latent (kv_lora_rank + n_rot values per position,
// shared by all heads, the values being the first kv_lora_rank of them).
#pragma once

#include "model/context.h"

namespace moe::model {

// Self-attention of a deepseek2 layer: norm, compressed Q and KV projections, YaRN RoPE on the
// RoPE part, attention over the latent cache, value decompression, output projection, residual.
void mla_attention_block(LayerContext& ctx, int layer);

// Returns the magnitude factor llama.cpp hands rope for deepseek2 (its context's
// yarn_attn_factor, with deepseek2's special case of the YaRN log multiplier).
float mla_rope_attn_factor(const HParams& hp);

// Returns llama.cpp's deepseek2 softmax scale: 1/sqrt(head_dim_k of the decompressed heads),
// times the square of YaRN's magnitude correction (llama.cpp discussion 7416).
float mla_kq_scale(const HParams& hp);

}  // namespace moe::model

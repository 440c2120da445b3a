// The blocks particular to gpt-oss (llama.cpp's LLM_ARCH_OPENAI_MOE): attention with one learned
// "sink" logit per head, sliding-window attention on alternate layers and YaRN RoPE; and an MoE
// whose router and experts carry biases and whose experts use a clamped SwiGLU.
#pragma once

#include <cstdint>
#include <vector>

#include "model/context.h"

namespace moe::model {

// RoPE with YaRN as ggml_rope_ext computes it, for one position: n_rot/2 (cos, sin) pairs that
// already include the magnitude factor. Without YaRN (hp.yarn.enabled false) it is plain RoPE.
class YarnRope {
 public:
  explicit YarnRope(const HParams& hp);
  // Fills `table` (n_rot floats: cos, sin per rotated pair) for position `pos`.
  void table(int64_t pos, std::vector<float>& table) const;
  // Rotates the first n_rot dims of one head in NeoX layout (pairs i, i + n_rot/2) by `table`.
  void rotate_neox(const std::vector<float>& table, float* head) const;

 private:
  int64_t n_rot_;
  float freq_scale_;
  float theta_scale_;   // base^(-2/n_rot)
  float ext_factor_;    // 0: no YaRN ramp
  float mscale_;        // attn_factor times ggml's 1 + 0.1 ln(1/freq_scale) when YaRN is on
  float corr_low_;      // rotated pairs below this keep the original frequency,
  float corr_high_;     // pairs above this are fully interpolated
};

// Attention of a gpt-oss layer: norm, Q/K/V (+ optional biases), YaRN RoPE, cache store, causal
// attention over the last hp.n_swa positions on windowed layers (all positions otherwise) with
// each head's sink logit in the softmax, output projection + bias, residual add.
void sink_attention_block(LayerContext& ctx, int layer);

// FFN of a gpt-oss layer: norm (post_attention_norm), router logits + bias, top-k by logit with a
// softmax over the chosen, experts gate/up/down each + per-expert bias with the clamped SwiGLU,
// weighted sum, residual add.
void biased_moe_block(LayerContext& ctx, int layer);

}  // namespace moe::model

// The weights of a model, addressed by slot so that one generic loader fills every
// architecture's tensors from its description list.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "model/tensor.h"

namespace moe::model {

// Per-layer tensor slots. Shapes are ggml order (input dimension first).
enum class LayerSlot : int {
  kAttnNorm,      // (n_embd)
  kWq,            // (n_embd, n_head * head_dim_k)
  kWk,            // (n_embd, n_head_kv * head_dim_k)
  kWv,            // (n_embd, n_head_kv * head_dim_v)
  kWo,            // (n_head * head_dim_v, n_embd)
  kFfnNorm,       // (n_embd)
  kFfnGate,       // (n_embd, n_ff)          dense layers
  kFfnUp,         // (n_embd, n_ff)
  kFfnDown,       // (n_ff, n_embd)
  kFfnGateInp,    // (n_embd, n_expert)      router
  kFfnGateExps,   // (n_embd, n_ff_expert, n_expert)
  kFfnUpExps,     // (n_embd, n_ff_expert, n_expert)
  kFfnDownExps,   // (n_ff_expert, n_embd, n_expert)
  // Optional or architecture-specific tensors.
  kBq,            // (n_head * head_dim_k)   attention biases
  kBk,            // (n_embd_k_gqa)
  kBv,            // (n_embd_v_gqa)
  kBo,            // (n_embd)
  kAttnQNorm,     // (head_dim_k) per head, or (n_head * head_dim_k) over the projection
  kAttnKNorm,     // (head_dim_k) per head, or (n_embd_k_gqa)
  kFfnGateInpShexp,  // (n_embd)                 sigmoid gate of the shared expert (qwen2moe)
  kFfnGateShexp,  // (n_embd, n_ff_shared)
  kFfnUpShexp,    // (n_embd, n_ff_shared)
  kFfnDownShexp,  // (n_ff_shared, n_embd)
  kExpProbsB,     // (n_expert)                 selection bias (DeepSeek-V3 routing)
  kAttnSinks,     // (n_head)                   extra softmax logit per head (gpt-oss)
  kFfnGateInpB,   // (n_expert)                 router bias
  kFfnGateExpsB,  // (n_ff_expert, n_expert)    per-expert biases
  kFfnUpExpsB,    // (n_ff_expert, n_expert)
  kFfnDownExpsB,  // (n_embd, n_expert)
  // Multi-head latent attention (deepseek2); hk = mla.head_dim_k, hv = mla.head_dim_v.
  kWqA,           // (n_embd, q_lora_rank)      query compression
  kQANorm,        // (q_lora_rank)
  kWqB,           // (q_lora_rank, n_head * hk) query decompression
  kWkvAMqa,       // (n_embd, kv_lora_rank + n_rot)  compressed KV and the shared RoPE key
  kKvANorm,       // (kv_lora_rank)
  kWkB,           // (hk - n_rot, kv_lora_rank, n_head)  key decompression, absorbed into Q
  kWvB,           // (kv_lora_rank, hv, n_head)  value decompression, applied after attention
  kCount,
};

enum class GlobalSlot : int {
  kTokenEmbd,     // (n_embd, n_vocab)
  kOutputNorm,    // (n_embd)
  kOutput,        // (n_embd, n_vocab); absent when tied to token_embd
  kCount,
};

struct LayerWeights {
  std::array<Tensor, static_cast<size_t>(LayerSlot::kCount)> slots;
  const Tensor& operator[](LayerSlot s) const { return slots[static_cast<size_t>(s)]; }
  Tensor& operator[](LayerSlot s) { return slots[static_cast<size_t>(s)]; }
};

struct ModelWeights {
  std::array<Tensor, static_cast<size_t>(GlobalSlot::kCount)> globals;
  std::vector<LayerWeights> layers;
  const Tensor& operator[](GlobalSlot s) const { return globals[static_cast<size_t>(s)]; }
  Tensor& operator[](GlobalSlot s) { return globals[static_cast<size_t>(s)]; }
  // The output projection: `output` if present, else the tied token embedding.
  const Tensor& output() const {
    const Tensor& out = (*this)[GlobalSlot::kOutput];
    return out.present() ? out : (*this)[GlobalSlot::kTokenEmbd];
  }
};

// Where a described tensor goes: a global slot (layer < 0) or a slot of one layer.
struct SlotRef {
  int layer = -1;
  int slot = 0;
};

struct SlottedDesc {
  TensorDesc desc;
  SlotRef where;
};

}  // namespace moe::model

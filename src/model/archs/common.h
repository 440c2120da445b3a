// Building blocks for architecture files: the tensor descriptions most llama-family
// architectures share, so each archs/<name>.cpp lists only what is particular to it.
#pragma once

#include <string>
#include <vector>

#include <fmt/format.h>

#include "model/hparams.h"
#include "model/weights.h"

namespace moe::model::archs {

inline SlottedDesc layer_tensor(int layer, LayerSlot slot, const std::string& name, std::vector<int64_t> shape,
                                TensorUse use = TensorUse::kMatmul, bool required = true) {
  return {TensorDesc{fmt::format("blk.{}.{}", layer, name), std::move(shape), use, required},
          SlotRef{layer, static_cast<int>(slot)}};
}

inline SlottedDesc global_tensor(GlobalSlot slot, const std::string& name, std::vector<int64_t> shape, TensorUse use,
                                 bool required = true) {
  return {TensorDesc{name, std::move(shape), use, required}, SlotRef{-1, static_cast<int>(slot)}};
}

// token_embd (first) — call before the layers.
void add_embedding(const HParams& hp, std::vector<SlottedDesc>& list);

// output_norm and output (tied to token_embd when absent) — call after the layers.
void add_output(const HParams& hp, std::vector<SlottedDesc>& list, bool output_required = false);

enum class Presence { kNever, kOptional, kRequired };

struct AttentionTensors {
  // Q/K/V biases: llama.cpp applies them when present on most llama-family architectures;
  // some (olmoe) ignore them, so they are not read there either.
  Presence biases = Presence::kOptional;
  bool output_bias = false;   // attn_output.bias required
};

// attn_norm, attn_q/k/v/output with optional biases, and Q/K norms per hp.qk_norm.
void add_attention(const HParams& hp, int layer, std::vector<SlottedDesc>& list, AttentionTensors options = {});

// ffn_norm plus, per hp.layer_is_moe(layer), the dense FFN or the router, stacked experts, the
// shared experts (hp.moe.n_ff_shared) with their gate (hp.moe.shared_expert_gate) and the
// selection bias (hp.moe.selection_bias).
void add_ffn(const HParams& hp, int layer, std::vector<SlottedDesc>& list);

// The tensors of a standard llama-family body: embedding, per layer attention + FFN, output.
std::vector<SlottedDesc> describe_standard(const HParams& hp, AttentionTensors attention = {},
                                           bool output_required = false);

}  // namespace moe::model::archs

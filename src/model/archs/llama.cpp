// `llama`: Llama/Mistral-style dense models and Mixtral-style MoE (router `ffn_gate_inp`,
// stacked `ffn_{gate,up,down}_exps`, softmax over the router, top-k renormalised).
#include <fmt/format.h>

#include "model/arch.h"
#include "model/blocks.h"
#include "model/context.h"

namespace moe::model {

namespace {

Result<HParams> read_llama_hparams(const formats::GgufFile& file) {
  MOE_ASSIGN_OR_RETURN(HParams hp, read_llama_family_hparams(file, "llama"));
  hp.rope_layout = kernels::RopeLayout::kNormal;
  hp.moe.gating = GatingFunction::kSoftmax;
  hp.moe.normalize_top_k = true;
  return hp;
}

SlottedDesc layer_tensor(int layer, LayerSlot slot, const char* name, std::vector<int64_t> shape,
                         TensorUse use = TensorUse::kMatmul) {
  return {TensorDesc{fmt::format("blk.{}.{}.weight", layer, name), std::move(shape), use, true},
          SlotRef{layer, static_cast<int>(slot)}};
}

std::vector<SlottedDesc> describe_llama_tensors(const HParams& hp) {
  const int64_t n_embd = hp.n_embd;
  std::vector<SlottedDesc> list;
  list.push_back({TensorDesc{"token_embd.weight", {n_embd, hp.n_vocab}, TensorUse::kEmbedding, true},
                  SlotRef{-1, static_cast<int>(GlobalSlot::kTokenEmbd)}});
  for (int l = 0; l < hp.n_layer; ++l) {
    list.push_back(layer_tensor(l, LayerSlot::kAttnNorm, "attn_norm", {n_embd}, TensorUse::kNorm));
    list.push_back(layer_tensor(l, LayerSlot::kWq, "attn_q", {n_embd, hp.n_head * hp.head_dim_k}));
    list.push_back(layer_tensor(l, LayerSlot::kWk, "attn_k", {n_embd, hp.n_embd_k_gqa()}));
    list.push_back(layer_tensor(l, LayerSlot::kWv, "attn_v", {n_embd, hp.n_embd_v_gqa()}));
    list.push_back(layer_tensor(l, LayerSlot::kWo, "attn_output", {hp.n_head * hp.head_dim_v, n_embd}));
    list.push_back(layer_tensor(l, LayerSlot::kFfnNorm, "ffn_norm", {n_embd}, TensorUse::kNorm));
    if (hp.layer_is_moe(l)) {
      const int64_t n_ff = hp.n_ff_expert;
      const int64_t n_expert = hp.moe.n_expert;
      list.push_back(layer_tensor(l, LayerSlot::kFfnGateInp, "ffn_gate_inp", {n_embd, n_expert}));
      list.push_back(layer_tensor(l, LayerSlot::kFfnGateExps, "ffn_gate_exps", {n_embd, n_ff, n_expert}));
      list.push_back(layer_tensor(l, LayerSlot::kFfnDownExps, "ffn_down_exps", {n_ff, n_embd, n_expert}));
      list.push_back(layer_tensor(l, LayerSlot::kFfnUpExps, "ffn_up_exps", {n_embd, n_ff, n_expert}));
    } else {
      list.push_back(layer_tensor(l, LayerSlot::kFfnGate, "ffn_gate", {n_embd, hp.n_ff}));
      list.push_back(layer_tensor(l, LayerSlot::kFfnDown, "ffn_down", {hp.n_ff, n_embd}));
      list.push_back(layer_tensor(l, LayerSlot::kFfnUp, "ffn_up", {n_embd, hp.n_ff}));
    }
  }
  list.push_back({TensorDesc{"output_norm.weight", {n_embd}, TensorUse::kNorm, true},
                  SlotRef{-1, static_cast<int>(GlobalSlot::kOutputNorm)}});
  // Absent when the output projection is tied to the token embedding.
  list.push_back({TensorDesc{"output.weight", {n_embd, hp.n_vocab}, TensorUse::kMatmul, false},
                  SlotRef{-1, static_cast<int>(GlobalSlot::kOutput)}});
  return list;
}

void forward_llama_layer(LayerContext& ctx, int layer) {
  attention_block(ctx, layer);
  ffn_block(ctx, layer);
}

}  // namespace

const ArchDef kArchLlama = {"llama", read_llama_hparams, describe_llama_tensors, forward_llama_layer};

}  // namespace moe::model

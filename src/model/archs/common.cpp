#include "model/archs/common.h"

namespace moe::model::archs {

void add_embedding(const HParams& hp, std::vector<SlottedDesc>& list) {
  list.push_back(global_tensor(GlobalSlot::kTokenEmbd, "token_embd.weight", {hp.n_embd, hp.n_vocab},
                               TensorUse::kEmbedding));
}

void add_output(const HParams& hp, std::vector<SlottedDesc>& list, bool output_required) {
  list.push_back(global_tensor(GlobalSlot::kOutputNorm, "output_norm.weight", {hp.n_embd}, TensorUse::kNorm));
  list.push_back(global_tensor(GlobalSlot::kOutput, "output.weight", {hp.n_embd, hp.n_vocab}, TensorUse::kMatmul,
                               output_required));
}

void add_attention(const HParams& hp, int l, std::vector<SlottedDesc>& list, AttentionTensors options) {
  const int64_t n_q = hp.n_head * hp.head_dim_k;
  list.push_back(layer_tensor(l, LayerSlot::kAttnNorm, "attn_norm.weight", {hp.n_embd}, TensorUse::kNorm));
  list.push_back(layer_tensor(l, LayerSlot::kWq, "attn_q.weight", {hp.n_embd, n_q}));
  list.push_back(layer_tensor(l, LayerSlot::kWk, "attn_k.weight", {hp.n_embd, hp.n_embd_k_gqa()}));
  list.push_back(layer_tensor(l, LayerSlot::kWv, "attn_v.weight", {hp.n_embd, hp.n_embd_v_gqa()}));
  list.push_back(layer_tensor(l, LayerSlot::kWo, "attn_output.weight", {hp.n_head * hp.head_dim_v, hp.n_embd}));
  if (options.biases != Presence::kNever) {
    const bool required = options.biases == Presence::kRequired;
    list.push_back(layer_tensor(l, LayerSlot::kBq, "attn_q.bias", {n_q}, TensorUse::kNorm, required));
    list.push_back(layer_tensor(l, LayerSlot::kBk, "attn_k.bias", {hp.n_embd_k_gqa()}, TensorUse::kNorm, required));
    list.push_back(layer_tensor(l, LayerSlot::kBv, "attn_v.bias", {hp.n_embd_v_gqa()}, TensorUse::kNorm, required));
  }
  if (options.output_bias) {
    list.push_back(layer_tensor(l, LayerSlot::kBo, "attn_output.bias", {hp.n_embd}, TensorUse::kNorm));
  }
  if (hp.qk_norm == HParams::QkNorm::kPerHead) {
    list.push_back(layer_tensor(l, LayerSlot::kAttnQNorm, "attn_q_norm.weight", {hp.head_dim_k}, TensorUse::kNorm));
    list.push_back(layer_tensor(l, LayerSlot::kAttnKNorm, "attn_k_norm.weight", {hp.head_dim_k}, TensorUse::kNorm));
  } else if (hp.qk_norm == HParams::QkNorm::kWholeProjection) {
    list.push_back(layer_tensor(l, LayerSlot::kAttnQNorm, "attn_q_norm.weight", {n_q}, TensorUse::kNorm));
    list.push_back(layer_tensor(l, LayerSlot::kAttnKNorm, "attn_k_norm.weight", {hp.n_embd_k_gqa()}, TensorUse::kNorm));
  }
}

void add_ffn(const HParams& hp, int l, std::vector<SlottedDesc>& list) {
  list.push_back(layer_tensor(l, LayerSlot::kFfnNorm, "ffn_norm.weight", {hp.n_embd}, TensorUse::kNorm));
  if (!hp.layer_is_moe(l)) {
    list.push_back(layer_tensor(l, LayerSlot::kFfnGate, "ffn_gate.weight", {hp.n_embd, hp.n_ff}));
    list.push_back(layer_tensor(l, LayerSlot::kFfnDown, "ffn_down.weight", {hp.n_ff, hp.n_embd}));
    list.push_back(layer_tensor(l, LayerSlot::kFfnUp, "ffn_up.weight", {hp.n_embd, hp.n_ff}));
    return;
  }
  const int64_t n_ff = hp.n_ff_expert;
  const int64_t n_expert = hp.moe.n_expert;
  list.push_back(layer_tensor(l, LayerSlot::kFfnGateInp, "ffn_gate_inp.weight", {hp.n_embd, n_expert}));
  if (hp.moe.selection_bias) {
    list.push_back(layer_tensor(l, LayerSlot::kExpProbsB, "exp_probs_b.bias", {n_expert}, TensorUse::kNorm));
  }
  list.push_back(layer_tensor(l, LayerSlot::kFfnGateExps, "ffn_gate_exps.weight", {hp.n_embd, n_ff, n_expert}));
  list.push_back(layer_tensor(l, LayerSlot::kFfnDownExps, "ffn_down_exps.weight", {n_ff, hp.n_embd, n_expert}));
  list.push_back(layer_tensor(l, LayerSlot::kFfnUpExps, "ffn_up_exps.weight", {hp.n_embd, n_ff, n_expert}));
  if (hp.moe.n_ff_shared > 0) {
    const int64_t n_sh = hp.moe.n_ff_shared;
    if (hp.moe.shared_expert_gate) {
      list.push_back(layer_tensor(l, LayerSlot::kFfnGateInpShexp, "ffn_gate_inp_shexp.weight", {hp.n_embd}));
    }
    list.push_back(layer_tensor(l, LayerSlot::kFfnGateShexp, "ffn_gate_shexp.weight", {hp.n_embd, n_sh}));
    list.push_back(layer_tensor(l, LayerSlot::kFfnDownShexp, "ffn_down_shexp.weight", {n_sh, hp.n_embd}));
    list.push_back(layer_tensor(l, LayerSlot::kFfnUpShexp, "ffn_up_shexp.weight", {hp.n_embd, n_sh}));
  }
}

std::vector<SlottedDesc> describe_standard(const HParams& hp, AttentionTensors attention, bool output_required) {
  std::vector<SlottedDesc> list;
  add_embedding(hp, list);
  for (int l = 0; l < hp.n_layer; ++l) {
    add_attention(hp, l, list, attention);
    add_ffn(hp, l, list);
  }
  add_output(hp, list, output_required);
  return list;
}

}  // namespace moe::model::archs

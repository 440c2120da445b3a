// `deepseek2` (DeepSeek-V2, V2-Lite, V3 and their relatives, as llama.cpp's converter writes
// them): multi-head latent attention (model/mla.cpp) over a cache of compressed KV, then
// leading dense layers and MoE layers with always-on shared experts. V3 adds sigmoid gating, a
// selection bias (exp_probs_b), group-limited routing and renormalised top-k; the metadata
// says which (expert_gating_func, expert_weights_norm, expert_group_count).
#include "model/arch.h"
#include "model/archs/common.h"
#include "model/blocks.h"
#include "model/mla.h"

namespace moe::model {

namespace {

constexpr const char* kPrefix = "deepseek2.";

// llama.cpp's expert_gating_func values.
constexpr int64_t kGatingNone = 0, kGatingSoftmax = 1, kGatingSigmoid = 2;

Result<int64_t> required_key(const formats::GgufFile& file, const std::string& name) {
  const std::string key = kPrefix + name;
  if (file.find(key) == nullptr) return make_error("deepseek2: missing required key '{}'", key);
  return read_int_key(file, key, 0);
}

// The MLA sizes. Only files whose attn_kv_b is split into attn_k_b / attn_v_b (every converter
// since llama.cpp added MLA; they write key_length_mla) are supported.
Status read_mla(const formats::GgufFile& file, HParams& hp) {
  MOE_ASSIGN_OR_RETURN(hp.mla.kv_lora_rank, required_key(file, "attention.kv_lora_rank"));
  // llama.cpp requires q_lora_rank except for its "lite" layer counts; 0 means a plain attn_q.
  MOE_ASSIGN_OR_RETURN(hp.mla.q_lora_rank, read_int_key(file, std::string(kPrefix) + "attention.q_lora_rank", 0));
  if (file.find(std::string(kPrefix) + "attention.key_length_mla") == nullptr) {
    return make_error("deepseek2: missing required key 'deepseek2.attention.key_length_mla' (files with an unsplit "
                      "attn_kv_b, from converters before MLA support, are not supported: reconvert the model)");
  }
  MOE_ASSIGN_OR_RETURN(hp.mla.head_dim_k, required_key(file, "attention.key_length_mla"));
  MOE_ASSIGN_OR_RETURN(hp.mla.head_dim_v, required_key(file, "attention.value_length_mla"));
  const int64_t kv = hp.mla.kv_lora_rank;
  if (kv <= 0 || kv > (1 << 20)) return make_error("deepseek2: attention.kv_lora_rank {} is out of range", kv);
  if (hp.mla.q_lora_rank < 0 || hp.mla.q_lora_rank > (1 << 20)) {
    return make_error("deepseek2: attention.q_lora_rank {} is out of range", hp.mla.q_lora_rank);
  }
  if (hp.mla.head_dim_k <= hp.n_rot || hp.mla.head_dim_k > (1 << 20)) {
    return make_error("deepseek2: attention.key_length_mla {} must exceed rope.dimension_count {}", hp.mla.head_dim_k,
                      hp.n_rot);
  }
  if (hp.mla.head_dim_v <= 0 || hp.mla.head_dim_v > (1 << 20)) {
    return make_error("deepseek2: attention.value_length_mla {} is out of range", hp.mla.head_dim_v);
  }
  // The cache is llama.cpp's MQA view of the latent: one KV head of kv_lora_rank + n_rot.
  if (hp.n_head_kv != 1 || hp.head_dim_k != kv + hp.n_rot || hp.head_dim_v != kv) {
    return make_error("deepseek2: expected attention.head_count_kv 1, key_length {} and value_length {} "
                      "(kv_lora_rank {} + rope {}), got {}, {} and {}",
                      kv + hp.n_rot, kv, kv, hp.n_rot, hp.n_head_kv, hp.head_dim_k, hp.head_dim_v);
  }
  hp.cache_v_in_k = true;
  return ok_status();
}

Result<GatingFunction> read_gating(const formats::GgufFile& file) {
  MOE_ASSIGN_OR_RETURN(int64_t gating, read_int_key(file, std::string(kPrefix) + "expert_gating_func", kGatingNone));
  // V2 files predate the key: softmax.
  if (gating == kGatingNone || gating == kGatingSoftmax) return GatingFunction::kSoftmax;
  if (gating == kGatingSigmoid) return GatingFunction::kSigmoid;
  return make_error("deepseek2: expert_gating_func {} is not supported (1 softmax, 2 sigmoid)", gating);
}

Status read_moe(const formats::GgufFile& file, HParams& hp) {
  const std::string p = kPrefix;
  MOE_ASSIGN_OR_RETURN(int64_t n_dense, read_int_key(file, p + "leading_dense_block_count", 0));
  MOE_TRY(required_key(file, "expert_feed_forward_length"));
  MOE_ASSIGN_OR_RETURN(int64_t n_shared, required_key(file, "expert_shared_count"));
  if (n_dense < 0 || n_dense > hp.n_layer) {
    return make_error("deepseek2: leading_dense_block_count {} out of range", n_dense);
  }
  if (n_shared < 0 || n_shared > 1024) return make_error("deepseek2: expert_shared_count {} out of range", n_shared);
  hp.moe.n_leading_dense = static_cast<int>(n_dense);
  if (!hp.moe.is_moe() && n_dense < hp.n_layer) {
    return make_error("deepseek2: expert_count must be positive (layers {}.. are MoE layers)", n_dense);
  }
  MOE_ASSIGN_OR_RETURN(hp.moe.gating, read_gating(file));
  MOE_ASSIGN_OR_RETURN(hp.moe.routed_scale, read_float_key(file, p + "expert_weights_scale", 0.0f));
  MOE_ASSIGN_OR_RETURN(auto norm, file.get_bool_opt(p + "expert_weights_norm"));
  hp.moe.normalize_top_k = norm.value_or(false);
  hp.moe.n_expert_shared = static_cast<int>(n_shared);
  hp.moe.n_ff_shared = hp.n_ff_expert * n_shared;
  // exp_probs_b is optional per file (V3 has it); its presence in the first MoE layer decides.
  hp.moe.selection_bias =
      hp.moe.is_moe() && file.find_tensor(fmt::format("blk.{}.exp_probs_b.bias", n_dense)) != nullptr;
  if (hp.moe.n_group > 1 && hp.moe.n_group_used >= hp.moe.n_group) {
    return make_error("deepseek2: expert_group_used_count {} must be below expert_group_count {}", hp.moe.n_group_used,
                      hp.moe.n_group);
  }
  return ok_status();
}

// Features of the family that llama.cpp reads but this engine does not run.
Status reject_unsupported(const formats::GgufFile& file) {
  const std::string p = kPrefix;
  MOE_ASSIGN_OR_RETURN(int64_t n_nextn, read_int_key(file, p + "nextn_predict_layers", 0));
  if (n_nextn != 0) {
    return make_error("deepseek2: nextn_predict_layers {} (multi-token prediction) is not supported", n_nextn);
  }
  MOE_ASSIGN_OR_RETURN(float temp_scale, read_float_key(file, p + "attention.temperature_scale", 0.0f));
  if (temp_scale != 0.0f) return make_error("deepseek2: attention.temperature_scale is not supported");
  return ok_status();
}

Result<HParams> read_deepseek2_hparams(const formats::GgufFile& file) {
  // llama.cpp requires the epsilon for this architecture (the common reader defaults it).
  if (file.find(std::string(kPrefix) + "attention.layer_norm_rms_epsilon") == nullptr) {
    return make_error("deepseek2: missing required key 'deepseek2.attention.layer_norm_rms_epsilon'");
  }
  MOE_ASSIGN_OR_RETURN(HParams hp, read_llama_family_hparams(file, "deepseek2", /*yarn_supported=*/true));
  hp.rope_layout = kernels::RopeLayout::kNormal;
  MOE_TRY(reject_unsupported(file));
  MOE_TRY(read_mla(file, hp));
  MOE_TRY(read_moe(file, hp));
  hp.kq_scale = mla_kq_scale(hp);
  return hp;
}

void add_mla_tensors(const HParams& hp, int l, std::vector<SlottedDesc>& list) {
  using archs::layer_tensor;
  const int64_t kv = hp.mla.kv_lora_rank;
  const int64_t n_q = hp.n_head * hp.mla.head_dim_k;
  list.push_back(layer_tensor(l, LayerSlot::kAttnNorm, "attn_norm.weight", {hp.n_embd}, TensorUse::kNorm));
  if (hp.mla.q_lora_rank > 0) {
    const int64_t rank = hp.mla.q_lora_rank;
    list.push_back(layer_tensor(l, LayerSlot::kWqA, "attn_q_a.weight", {hp.n_embd, rank}));
    list.push_back(layer_tensor(l, LayerSlot::kQANorm, "attn_q_a_norm.weight", {rank}, TensorUse::kNorm));
    list.push_back(layer_tensor(l, LayerSlot::kWqB, "attn_q_b.weight", {rank, n_q}));
  } else {
    list.push_back(layer_tensor(l, LayerSlot::kWq, "attn_q.weight", {hp.n_embd, n_q}));
  }
  list.push_back(layer_tensor(l, LayerSlot::kWkvAMqa, "attn_kv_a_mqa.weight", {hp.n_embd, kv + hp.n_rot}));
  list.push_back(layer_tensor(l, LayerSlot::kKvANorm, "attn_kv_a_norm.weight", {kv}, TensorUse::kNorm));
  list.push_back(layer_tensor(l, LayerSlot::kWkB, "attn_k_b.weight", {hp.mla.head_dim_k - hp.n_rot, kv, hp.n_head}));
  list.push_back(layer_tensor(l, LayerSlot::kWvB, "attn_v_b.weight", {kv, hp.mla.head_dim_v, hp.n_head}));
  list.push_back(layer_tensor(l, LayerSlot::kWo, "attn_output.weight", {hp.n_head * hp.mla.head_dim_v, hp.n_embd}));
}

std::vector<SlottedDesc> describe_deepseek2_tensors(const HParams& hp) {
  std::vector<SlottedDesc> list;
  archs::add_embedding(hp, list);
  for (int l = 0; l < hp.n_layer; ++l) {
    add_mla_tensors(hp, l, list);
    archs::add_ffn(hp, l, list);
  }
  archs::add_output(hp, list);
  return list;
}

void forward_deepseek2_layer(LayerContext& ctx, int layer) {
  mla_attention_block(ctx, layer);
  ffn_block(ctx, layer);
}

}  // namespace

const ArchDef kArchDeepseek2 = {"deepseek2", read_deepseek2_hparams, describe_deepseek2_tensors,
                                forward_deepseek2_layer};

}  // namespace moe::model

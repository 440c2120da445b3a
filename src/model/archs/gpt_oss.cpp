// `gpt-oss` (gpt-oss-20b, gpt-oss-120b; llama.cpp's LLM_ARCH_OPENAI_MOE): attention with Q/K/V
// and output biases, one learned sink logit per head, sliding-window attention on every layer but
// the last of each period (default 2: even layers windowed), YaRN NeoX RoPE; a post-attention
// RMSNorm before the MoE, whose router and experts carry biases, which picks experts by raw
// logit and weights the chosen by a softmax over them, and whose experts use a clamped SwiGLU.
#include "model/arch.h"
#include "model/archs/common.h"
#include "model/blocks.h"
#include "model/gpt_oss_blocks.h"

namespace moe::model {

namespace {

// ggml_swiglu_oai's parameters as llama.cpp hard-codes them for gpt-oss (build_moe_ffn).
constexpr float kSwigluAlpha = 1.702f;
constexpr float kSwigluLimit = 7.0f;

Status require_key(const formats::GgufFile& file, const std::string& key) {
  if (file.find(key) == nullptr) return make_error("gpt-oss: missing required key '{}'", key);
  return ok_status();
}

// What llama.cpp's gpt-oss loader reads beyond the common keys: the window and its period.
Status read_sliding_window(const formats::GgufFile& file, HParams& hp) {
  MOE_TRY(require_key(file, "gpt-oss.attention.sliding_window"));
  MOE_ASSIGN_OR_RETURN(hp.n_swa, read_int_key(file, "gpt-oss.attention.sliding_window", 0));
  if (hp.n_swa <= 0) return make_error("gpt-oss: key 'gpt-oss.attention.sliding_window' must be positive");
  MOE_ASSIGN_OR_RETURN(hp.swa_period, read_int_key(file, "gpt-oss.attention.sliding_window_pattern", 2));
  // A separate RoPE base for windowed layers is not implemented; refuse rather than differ.
  MOE_ASSIGN_OR_RETURN(float base_swa, read_float_key(file, "gpt-oss.rope.freq_base_swa", hp.rope_freq_base));
  if (base_swa != hp.rope_freq_base) {
    return make_error("gpt-oss: rope.freq_base_swa {} differs from rope.freq_base {} (not supported)", base_swa,
                      hp.rope_freq_base);
  }
  return ok_status();
}

Result<HParams> read_gpt_oss_hparams(const formats::GgufFile& file) {
  // llama.cpp requires these where the common reader has defaults.
  MOE_TRY(require_key(file, "gpt-oss.attention.layer_norm_rms_epsilon"));
  MOE_TRY(require_key(file, "gpt-oss.expert_feed_forward_length"));
  MOE_ASSIGN_OR_RETURN(HParams hp, read_llama_family_hparams(file, "gpt-oss", /*yarn_supported=*/true));
  MOE_TRY(read_sliding_window(file, hp));
  if (!hp.moe.is_moe()) return make_error("gpt-oss: expert_count must be positive");
  // llama.cpp sizes Q, K, V and the output projection by the rotated dims.
  if (hp.head_dim_k != hp.n_rot || hp.head_dim_v != hp.n_rot) {
    return make_error("gpt-oss: key_length {} and value_length {} must equal rope.dimension_count {}", hp.head_dim_k,
                      hp.head_dim_v, hp.n_rot);
  }
  hp.rope_layout = kernels::RopeLayout::kNeox;
  hp.moe.gating = GatingFunction::kSoftmaxWeight;
  hp.moe.normalize_top_k = false;
  hp.moe.swiglu_alpha = kSwigluAlpha;
  hp.moe.swiglu_limit = kSwigluLimit;
  return hp;
}

// post_attention_norm, router, stacked experts and their biases (llama.cpp's order).
void add_biased_moe(const HParams& hp, int l, std::vector<SlottedDesc>& list) {
  using archs::layer_tensor;
  const int64_t n_ff = hp.n_ff_expert;
  const int64_t n_expert = hp.moe.n_expert;
  list.push_back(layer_tensor(l, LayerSlot::kFfnNorm, "post_attention_norm.weight", {hp.n_embd}, TensorUse::kNorm));
  list.push_back(layer_tensor(l, LayerSlot::kFfnGateInp, "ffn_gate_inp.weight", {hp.n_embd, n_expert}));
  list.push_back(layer_tensor(l, LayerSlot::kFfnGateExps, "ffn_gate_exps.weight", {hp.n_embd, n_ff, n_expert}));
  list.push_back(layer_tensor(l, LayerSlot::kFfnDownExps, "ffn_down_exps.weight", {n_ff, hp.n_embd, n_expert}));
  list.push_back(layer_tensor(l, LayerSlot::kFfnUpExps, "ffn_up_exps.weight", {hp.n_embd, n_ff, n_expert}));
  list.push_back(layer_tensor(l, LayerSlot::kFfnGateInpB, "ffn_gate_inp.bias", {n_expert}, TensorUse::kNorm));
  list.push_back(layer_tensor(l, LayerSlot::kFfnGateExpsB, "ffn_gate_exps.bias", {n_ff, n_expert}, TensorUse::kNorm));
  list.push_back(layer_tensor(l, LayerSlot::kFfnDownExpsB, "ffn_down_exps.bias", {hp.n_embd, n_expert}, TensorUse::kNorm));
  list.push_back(layer_tensor(l, LayerSlot::kFfnUpExpsB, "ffn_up_exps.bias", {n_ff, n_expert}, TensorUse::kNorm));
}

std::vector<SlottedDesc> describe_gpt_oss_tensors(const HParams& hp) {
  std::vector<SlottedDesc> list;
  archs::add_embedding(hp, list);
  for (int l = 0; l < hp.n_layer; ++l) {
    archs::add_attention(hp, l, list, {.biases = archs::Presence::kOptional, .output_bias = true});
    list.push_back(archs::layer_tensor(l, LayerSlot::kAttnSinks, "attn_sinks.weight", {hp.n_head}, TensorUse::kNorm));
    add_biased_moe(hp, l, list);
  }
  archs::add_output(hp, list, /*output_required=*/true);
  return list;
}

void forward_gpt_oss_layer(LayerContext& ctx, int layer) {
  sink_attention_block(ctx, layer);
  biased_moe_block(ctx, layer);
}

}  // namespace

const ArchDef kArchGptOss = {"gpt-oss", read_gpt_oss_hparams, describe_gpt_oss_tensors, forward_gpt_oss_layer};

}  // namespace moe::model

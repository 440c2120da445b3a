// `dots1` (dots.llm1): DeepSeek-V3-style routing — sigmoid scores, an `exp_probs_b` bias used
// for selection only, optional group-limited routing, optional renormalisation and routed
// scaling — plus shared experts and leading dense layers, in a Qwen3-style body (per-head
// Q/K RMSNorm, NeoX RoPE).
#include "model/arch.h"
#include "model/archs/common.h"

namespace moe::model {

namespace {

// llama.cpp's expert_gating_func values (llama_expert_gating_func_type).
constexpr int64_t kGatingSoftmax = 1;
constexpr int64_t kGatingSigmoid = 2;

Result<HParams> read_dots1_hparams(const formats::GgufFile& file) {
  MOE_ASSIGN_OR_RETURN(HParams hp, read_llama_family_hparams(file, "dots1"));
  hp.rope_layout = kernels::RopeLayout::kNeox;
  hp.qk_norm = HParams::QkNorm::kPerHead;
  if (!hp.moe.is_moe()) return make_error("dots1: expert_count must be positive");
  MOE_ASSIGN_OR_RETURN(int64_t gating, read_int_key(file, "dots1.expert_gating_func", -1));
  if (gating != kGatingSoftmax && gating != kGatingSigmoid) {
    return make_error("dots1: key 'dots1.expert_gating_func' must be 1 (softmax) or 2 (sigmoid), got {}", gating);
  }
  hp.moe.gating = gating == kGatingSigmoid ? GatingFunction::kSigmoid : GatingFunction::kSoftmax;
  MOE_ASSIGN_OR_RETURN(auto norm, file.get_bool_opt("dots1.expert_weights_norm"));
  hp.moe.normalize_top_k = norm.value_or(false);
  MOE_ASSIGN_OR_RETURN(hp.moe.routed_scale, read_float_key(file, "dots1.expert_weights_scale", 1.0f));
  MOE_ASSIGN_OR_RETURN(int64_t n_dense, read_int_key(file, "dots1.leading_dense_block_count", 0));
  MOE_ASSIGN_OR_RETURN(int64_t n_shared, read_int_key(file, "dots1.expert_shared_count", -1));
  if (n_shared < 0) return make_error("dots1: missing required key 'dots1.expert_shared_count'");
  if (n_dense < 0 || n_dense > hp.n_layer) return make_error("dots1: leading_dense_block_count {} out of range", n_dense);
  hp.moe.n_leading_dense = static_cast<int>(n_dense);
  hp.moe.n_expert_shared = static_cast<int>(n_shared);
  hp.moe.n_ff_shared = hp.n_ff_expert * n_shared;
  // The selection bias is optional in dots1 files; describe_tensors reads it when present.
  hp.moe.selection_bias = file.find_tensor("blk." + std::to_string(n_dense) + ".exp_probs_b.bias") != nullptr;
  return hp;
}

std::vector<SlottedDesc> describe_dots1_tensors(const HParams& hp) {
  return archs::describe_standard(hp, {}, /*output_required=*/true);
}

}  // namespace

const ArchDef kArchDots1 = {"dots1", read_dots1_hparams, describe_dots1_tensors, forward_standard_layer};

}  // namespace moe::model

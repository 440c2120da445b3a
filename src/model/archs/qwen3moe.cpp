// `qwen3moe` (Qwen3-30B-A3B, Qwen3-235B-A22B): RMSNorm on each Q and K head before RoPE (NeoX
// layout), head size from key_length, softmax router with top-k renormalised, no shared expert.
// This is the worked example in docs/ADDING_AN_ARCH.md.
#include "model/arch.h"
#include "model/archs/common.h"

namespace moe::model {

namespace {

Result<HParams> read_qwen3moe_hparams(const formats::GgufFile& file) {
  MOE_ASSIGN_OR_RETURN(HParams hp, read_llama_family_hparams(file, "qwen3moe"));
  hp.rope_layout = kernels::RopeLayout::kNeox;
  hp.qk_norm = HParams::QkNorm::kPerHead;
  hp.moe.gating = GatingFunction::kSoftmax;
  hp.moe.normalize_top_k = true;
  if (!hp.moe.is_moe()) return make_error("qwen3moe: expert_count must be positive");
  return hp;
}

std::vector<SlottedDesc> describe_qwen3moe_tensors(const HParams& hp) {
  return archs::describe_standard(hp, {}, /*output_required=*/false);
}

}  // namespace

const ArchDef kArchQwen3Moe = {"qwen3moe", read_qwen3moe_hparams, describe_qwen3moe_tensors, forward_standard_layer};

}  // namespace moe::model

// `qwen2moe` (Qwen1.5-MoE, Qwen2-57B-A14B): QKV biases, NeoX RoPE, softmax router without
// top-k renormalisation, and a shared expert scaled by its own sigmoid gate.
#include "model/arch.h"
#include "model/archs/common.h"

namespace moe::model {

namespace {

Result<HParams> read_qwen2moe_hparams(const formats::GgufFile& file) {
  MOE_ASSIGN_OR_RETURN(HParams hp, read_llama_family_hparams(file, "qwen2moe"));
  hp.rope_layout = kernels::RopeLayout::kNeox;
  hp.moe.gating = GatingFunction::kSoftmax;
  hp.moe.normalize_top_k = false;
  hp.moe.shared_expert_gate = true;
  MOE_ASSIGN_OR_RETURN(hp.moe.n_ff_shared, read_int_key(file, "qwen2moe.expert_shared_feed_forward_length", hp.n_ff));
  if (!hp.moe.is_moe()) return make_error("qwen2moe: expert_count must be positive");
  return hp;
}

std::vector<SlottedDesc> describe_qwen2moe_tensors(const HParams& hp) {
  return archs::describe_standard(hp, {.biases = archs::Presence::kRequired}, /*output_required=*/true);
}

}  // namespace

const ArchDef kArchQwen2Moe = {"qwen2moe", read_qwen2moe_hparams, describe_qwen2moe_tensors, forward_standard_layer};

}  // namespace moe::model

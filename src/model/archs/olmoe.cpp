// `olmoe` (OLMoE-1B-7B): RMSNorm over the whole Q and K projections before RoPE (NeoX layout),
// 64 experts top-8, softmax router without top-k renormalisation.
#include "model/arch.h"
#include "model/archs/common.h"

namespace moe::model {

namespace {

Result<HParams> read_olmoe_hparams(const formats::GgufFile& file) {
  MOE_ASSIGN_OR_RETURN(HParams hp, read_llama_family_hparams(file, "olmoe"));
  hp.rope_layout = kernels::RopeLayout::kNeox;
  hp.qk_norm = HParams::QkNorm::kWholeProjection;
  hp.moe.gating = GatingFunction::kSoftmax;
  hp.moe.normalize_top_k = false;
  if (!hp.moe.is_moe()) return make_error("olmoe: expert_count must be positive");
  return hp;
}

std::vector<SlottedDesc> describe_olmoe_tensors(const HParams& hp) {
  return archs::describe_standard(hp, {.biases = archs::Presence::kNever}, /*output_required=*/true);
}

}  // namespace

const ArchDef kArchOlmoe = {"olmoe", read_olmoe_hparams, describe_olmoe_tensors, forward_standard_layer};

}  // namespace moe::model

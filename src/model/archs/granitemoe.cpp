// `granitemoe` (Granite 3.x MoE): the llama body with Granite's multipliers — embeddings scaled,
// each block's output scaled before the residual add, a fixed attention scale, logits divided —
// softmax router with top-k renormalised, optional shared expert.
#include "model/arch.h"
#include "model/archs/common.h"

namespace moe::model {

namespace {

Result<HParams> read_granitemoe_hparams(const formats::GgufFile& file) {
  MOE_ASSIGN_OR_RETURN(HParams hp, read_llama_family_hparams(file, "granitemoe"));
  hp.rope_layout = kernels::RopeLayout::kNormal;
  hp.moe.gating = GatingFunction::kSoftmax;
  hp.moe.normalize_top_k = true;
  MOE_ASSIGN_OR_RETURN(auto logit_scale, file.get_f32("granitemoe.logit_scale"));
  hp.logit_scale = logit_scale;
  MOE_ASSIGN_OR_RETURN(hp.residual_scale, read_float_key(file, "granitemoe.residual_scale", 0.0f));
  MOE_ASSIGN_OR_RETURN(hp.embedding_scale, read_float_key(file, "granitemoe.embedding_scale", 0.0f));
  MOE_ASSIGN_OR_RETURN(hp.kq_scale, read_float_key(file, "granitemoe.attention.scale", 0.0f));
  MOE_ASSIGN_OR_RETURN(hp.moe.n_ff_shared, read_int_key(file, "granitemoe.expert_shared_feed_forward_length", 0));
  return hp;
}

std::vector<SlottedDesc> describe_granitemoe_tensors(const HParams& hp) {
  return archs::describe_standard(hp, {}, /*output_required=*/false);
}

}  // namespace

const ArchDef kArchGraniteMoe = {"granitemoe", read_granitemoe_hparams, describe_granitemoe_tensors,
                                 forward_standard_layer};

}  // namespace moe::model

// `llama`: Llama/Mistral-style dense models and Mixtral-style MoE (router `ffn_gate_inp`,
// stacked `ffn_{gate,up,down}_exps`, softmax over the router, top-k renormalised).
#include "model/arch.h"
#include "model/archs/common.h"
#include "model/blocks.h"

namespace moe::model {

namespace {

Result<HParams> read_llama_hparams(const formats::GgufFile& file) {
  MOE_ASSIGN_OR_RETURN(HParams hp, read_llama_family_hparams(file, "llama"));
  hp.rope_layout = kernels::RopeLayout::kNormal;
  hp.moe.gating = GatingFunction::kSoftmax;
  hp.moe.normalize_top_k = true;
  return hp;
}

std::vector<SlottedDesc> describe_llama_tensors(const HParams& hp) {
  return archs::describe_standard(hp, {}, /*output_required=*/false);
}

}  // namespace

void forward_standard_layer(LayerContext& ctx, int layer) {
  attention_block(ctx, layer);
  ffn_block(ctx, layer);
}

const ArchDef kArchLlama = {"llama", read_llama_hparams, describe_llama_tensors, forward_standard_layer};

}  // namespace moe::model

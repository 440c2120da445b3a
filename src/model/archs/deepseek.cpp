// `deepseek` (DeepSeekMoE 16B): fine-grained routed experts plus always-on shared experts,
// leading dense layers, softmax router without renormalisation, optional weight scale.
#include "model/arch.h"
#include "model/archs/common.h"

namespace moe::model {

namespace {

Result<HParams> read_deepseek_hparams(const formats::GgufFile& file) {
  MOE_ASSIGN_OR_RETURN(HParams hp, read_llama_family_hparams(file, "deepseek"));
  hp.rope_layout = kernels::RopeLayout::kNormal;
  hp.moe.gating = GatingFunction::kSoftmax;
  hp.moe.normalize_top_k = false;
  MOE_ASSIGN_OR_RETURN(int64_t n_dense, read_int_key(file, "deepseek.leading_dense_block_count", 0));
  MOE_ASSIGN_OR_RETURN(int64_t n_shared, read_int_key(file, "deepseek.expert_shared_count", -1));
  if (n_shared < 0) return make_error("deepseek: missing required key 'deepseek.expert_shared_count'");
  if (file.find("deepseek.expert_feed_forward_length") == nullptr) {
    return make_error("deepseek: missing required key 'deepseek.expert_feed_forward_length'");
  }
  MOE_ASSIGN_OR_RETURN(hp.moe.routed_scale, read_float_key(file, "deepseek.expert_weights_scale", 1.0f));
  if (n_dense < 0 || n_dense > hp.n_layer) return make_error("deepseek: leading_dense_block_count {} out of range", n_dense);
  hp.moe.n_leading_dense = static_cast<int>(n_dense);
  hp.moe.n_expert_shared = static_cast<int>(n_shared);
  hp.moe.n_ff_shared = hp.n_ff_expert * n_shared;
  if (!hp.moe.is_moe()) return make_error("deepseek: expert_count must be positive");
  return hp;
}

std::vector<SlottedDesc> describe_deepseek_tensors(const HParams& hp) {
  return archs::describe_standard(hp, {}, /*output_required=*/false);
}

}  // namespace

const ArchDef kArchDeepseek = {"deepseek", read_deepseek_hparams, describe_deepseek_tensors, forward_standard_layer};

}  // namespace moe::model

// Hyperparameters of a model, read from GGUF metadata under the architecture's key prefix
// ("llama.embedding_length", ...), exactly as llama.cpp's converters name them.
#pragma once

#include <cstdint>
#include <string>

#include "core/result.h"
#include "formats/gguf.h"
#include "kernels/ops.h"

namespace moe::model {

enum class GatingFunction { kSoftmax, kSigmoid };

// What distinguishes one MoE variant from another, as data (see STYLE.md): the shared MoE block
// reads only this.
struct MoeSpec {
  int n_expert = 0;            // routed experts per MoE layer (0: dense model)
  int n_expert_used = 0;       // top-k
  int n_expert_shared = 0;     // always-on shared experts
  int n_leading_dense = 0;     // leading layers with a dense FFN instead of experts
  GatingFunction gating = GatingFunction::kSoftmax;
  bool normalize_top_k = true;  // renormalise the chosen experts' weights to sum to 1
  float routed_scale = 1.0f;    // multiplier on routed experts' weights
  int64_t n_ff_shared = 0;      // FFN size of the shared expert(s) together (0: none)
  bool shared_expert_gate = false;  // shared expert output scaled by sigmoid(w . x) (qwen2moe)
  bool selection_bias = false;  // exp_probs_b added to scores for selection only (DeepSeek-V3)
  int n_group = 0;              // expert groups for group-limited routing (0/1: off)
  int n_group_used = 0;         // groups kept per token

  bool is_moe() const { return n_expert > 0; }
};

struct HParams {
  std::string arch;            // general.architecture
  std::string name;            // general.name (may be empty)
  int64_t n_vocab = 0;
  int64_t n_ctx_train = 0;
  int64_t n_embd = 0;
  int64_t n_layer = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim_k = 0;      // key/query head size (default n_embd / n_head)
  int64_t head_dim_v = 0;      // value head size (default n_embd / n_head)
  int64_t n_ff = 0;            // dense FFN size
  int64_t n_ff_expert = 0;     // expert FFN size (llama: same key as n_ff)
  float rms_eps = 1e-5f;
  int64_t n_rot = 0;           // rotated dims per head
  float rope_freq_base = 10000.0f;
  float rope_freq_scale = 1.0f;  // 1 / linear scaling factor
  kernels::RopeLayout rope_layout = kernels::RopeLayout::kNormal;
  MoeSpec moe;

  // Attention variants.
  enum class QkNorm { kNone, kPerHead, kWholeProjection };
  QkNorm qk_norm = QkNorm::kNone;  // RMSNorm on Q and K before RoPE (qwen3moe per head, olmoe whole)
  float kq_scale = 0.0f;           // 0: 1/sqrt(head_dim_k)

  // Granite's multipliers (0: off).
  float embedding_scale = 0.0f;
  float residual_scale = 0.0f;
  float logit_scale = 0.0f;        // logits are divided by it

  int64_t n_embd_k_gqa() const { return head_dim_k * n_head_kv; }
  int64_t n_embd_v_gqa() const { return head_dim_v * n_head_kv; }
  bool layer_is_moe(int64_t layer) const { return moe.is_moe() && layer >= moe.n_leading_dense; }
};

// Returns the common hyperparameter reader's view of the key "<arch>.<name>" as an integer, or
// `fallback` when absent.
Result<int64_t> read_int_key(const formats::GgufFile& file, const std::string& key, int64_t fallback);
Result<float> read_float_key(const formats::GgufFile& file, const std::string& key, float fallback);

// Reads the hyperparameters common to the llama family under `<arch>.` from `file`. Errors
// name the missing or invalid key. Validates relationships (heads divide, k <= n_expert, ...).
Result<HParams> read_llama_family_hparams(const formats::GgufFile& file, const std::string& arch);

// Returns an error if the hyperparameters are inconsistent (names the offending field).
Status validate_hparams(const HParams& hp);

}  // namespace moe::model

// Hyperparameters of a model, read from GGUF metadata under the architecture's key prefix
// ("llama.embedding_length", ...), exactly as llama.cpp's converters name them.
#pragma once

#include <cstdint>
#include <string>

#include "core/result.h"
#include "formats/gguf.h"
#include "kernels/ops.h"

namespace moe::model {

// kSoftmaxWeight (gpt-oss): experts are chosen by raw router logits and weighted by a softmax
// over the chosen ones only.
enum class GatingFunction { kSoftmax, kSigmoid, kSoftmaxWeight };

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
  // gpt-oss's clamped SwiGLU, min(g, limit) * sigmoid(alpha * min(g, limit)) * (clamp(up, +-limit)
  // + 1), instead of plain SwiGLU (alpha 0: plain).
  float swiglu_alpha = 0.0f;
  float swiglu_limit = 0.0f;

  bool is_moe() const { return n_expert > 0; }
};

// Multi-head latent attention (deepseek2): queries and keys/values go through low-rank
// projections, and the cache keeps each position's compressed KV plus one shared RoPE key.
struct MlaSpec {
  int64_t q_lora_rank = 0;   // 0: queries from a plain attn_q (DeepSeek-V2-Lite)
  int64_t kv_lora_rank = 0;  // 0: not MLA
  int64_t head_dim_k = 0;    // per-head query/key size once decompressed (no-RoPE part + n_rot)
  int64_t head_dim_v = 0;    // per-head value size once decompressed
};

// YaRN context extension (rope.scaling.type "yarn"): the file's values; each architecture that
// reads it derives rope's factors as llama.cpp does. rope_freq_scale holds 1 / its factor.
struct YarnSpec {
  bool enabled = false;
  int64_t n_ctx_orig = 0;    // rope.scaling.original_context_length (default n_ctx_train)
  float log_mul = 0.0f;      // rope.scaling.yarn_log_multiplier as the file stores it
  float attn_factor = 1.0f;  // rope.scaling.attn_factor
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
  MlaSpec mla;
  YarnSpec yarn;
  // MLA: the values are the first head_dim_v entries of each cached key row, so the cache
  // keeps no separate V (as llama.cpp's K-only cache for MLA).
  bool cache_v_in_k = false;
  // Sliding-window attention (gpt-oss): windowed layers see their last n_swa positions only.
  int64_t n_swa = 0;               // 0: no windowed layers
  int64_t swa_period = 0;          // of each `period` layers all but the last are windowed

  // Granite's multipliers (0: off).
  float embedding_scale = 0.0f;
  float residual_scale = 0.0f;
  float logit_scale = 0.0f;        // logits are divided by it

  int64_t n_embd_k_gqa() const { return head_dim_k * n_head_kv; }
  int64_t n_embd_v_gqa() const { return head_dim_v * n_head_kv; }
  bool layer_is_moe(int64_t layer) const { return moe.is_moe() && layer >= moe.n_leading_dense; }
  // llama.cpp's set_swa_pattern(period) without dense_first.
  bool layer_is_swa(int64_t layer) const {
    return n_swa > 0 && (swa_period == 0 || layer % swa_period < swa_period - 1);
  }
};

// Returns the common hyperparameter reader's view of the key "<arch>.<name>" as an integer, or
// `fallback` when absent.
Result<int64_t> read_int_key(const formats::GgufFile& file, const std::string& key, int64_t fallback);
Result<float> read_float_key(const formats::GgufFile& file, const std::string& key, float fallback);

// Reads the hyperparameters common to the llama family under `<arch>.` from `file`. Errors
// name the missing or invalid key. Validates relationships (heads divide, k <= n_expert, ...).
// YaRN rope scaling is an error unless `yarn_supported` (then hp.yarn is filled).
Result<HParams> read_llama_family_hparams(const formats::GgufFile& file, const std::string& arch,
                                          bool yarn_supported = false);

// Returns an error if the hyperparameters are inconsistent (names the offending field).
Status validate_hparams(const HParams& hp);

}  // namespace moe::model

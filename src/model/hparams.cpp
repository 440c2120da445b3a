#include "model/hparams.h"

#include <cmath>

namespace moe::model {

namespace {

// Upper bounds that no real model approaches; they keep hostile metadata from driving huge
// allocations before a tensor shape check could catch it.
constexpr int64_t kMaxLayers = 4096;
constexpr int64_t kMaxEmbd = 1 << 20;
constexpr int64_t kMaxExperts = 1 << 16;

Result<int64_t> required_int(const formats::GgufFile& file, const std::string& key) {
  MOE_ASSIGN_OR_RETURN(uint64_t value, file.get_u64(key));
  if (value > static_cast<uint64_t>(INT64_MAX)) return make_error("key '{}' is too large: {}", key, value);
  return static_cast<int64_t>(value);
}

Result<int64_t> optional_int(const formats::GgufFile& file, const std::string& key, int64_t fallback) {
  if (file.find(key) == nullptr) return fallback;
  return required_int(file, key);
}

}  // namespace

Result<int64_t> read_int_key(const formats::GgufFile& file, const std::string& key, int64_t fallback) {
  return optional_int(file, key, fallback);
}

Result<float> read_float_key(const formats::GgufFile& file, const std::string& key, float fallback) {
  MOE_ASSIGN_OR_RETURN(auto value, file.get_f32_opt(key));
  return value ? *value : fallback;
}

Result<HParams> read_llama_family_hparams(const formats::GgufFile& file, const std::string& arch,
                                          bool yarn_supported) {
  HParams hp;
  hp.arch = arch;
  if (auto name = file.get_string_opt("general.name"); name.ok() && name->has_value()) hp.name = **name;
  const std::string p = arch + ".";
  MOE_ASSIGN_OR_RETURN(hp.n_embd, required_int(file, p + "embedding_length"));
  MOE_ASSIGN_OR_RETURN(hp.n_layer, required_int(file, p + "block_count"));
  MOE_ASSIGN_OR_RETURN(hp.n_head, required_int(file, p + "attention.head_count"));
  MOE_ASSIGN_OR_RETURN(hp.n_head_kv, optional_int(file, p + "attention.head_count_kv", hp.n_head));
  MOE_ASSIGN_OR_RETURN(hp.n_ctx_train, optional_int(file, p + "context_length", 2048));
  MOE_ASSIGN_OR_RETURN(hp.n_ff, required_int(file, p + "feed_forward_length"));
  hp.n_ff_expert = hp.n_ff;
  MOE_ASSIGN_OR_RETURN(hp.n_ff_expert, optional_int(file, p + "expert_feed_forward_length", hp.n_ff));
  if (hp.n_head <= 0) return make_error("key '{}attention.head_count' must be positive, got {}", p, hp.n_head);
  const int64_t default_head_dim = hp.n_embd / hp.n_head;
  MOE_ASSIGN_OR_RETURN(hp.head_dim_k, optional_int(file, p + "attention.key_length", default_head_dim));
  MOE_ASSIGN_OR_RETURN(hp.head_dim_v, optional_int(file, p + "attention.value_length", default_head_dim));
  MOE_ASSIGN_OR_RETURN(hp.n_rot, optional_int(file, p + "rope.dimension_count", hp.head_dim_k));
  MOE_ASSIGN_OR_RETURN(auto eps, file.get_f32_opt(p + "attention.layer_norm_rms_epsilon"));
  if (eps) hp.rms_eps = *eps;
  MOE_ASSIGN_OR_RETURN(auto base, file.get_f32_opt(p + "rope.freq_base"));
  if (base) hp.rope_freq_base = *base;
  MOE_ASSIGN_OR_RETURN(auto scaling_type, file.get_string_opt(p + "rope.scaling.type"));
  MOE_ASSIGN_OR_RETURN(auto scaling_factor, file.get_f32_opt(p + "rope.scaling.factor"));
  hp.yarn.enabled = yarn_supported && scaling_type && *scaling_type == "yarn";
  if (scaling_type && *scaling_type != "none" && *scaling_type != "linear" && !hp.yarn.enabled) {
    return make_error("{}: rope scaling type '{}' is not supported for this architecture", arch, *scaling_type);
  }
  // llama.cpp takes rope.scaling.factor for any scaling type but "none".
  if (scaling_factor && *scaling_factor > 0.0f && (!scaling_type || *scaling_type != "none")) {
    hp.rope_freq_scale = 1.0f / *scaling_factor;
  }
  if (hp.yarn.enabled) {
    MOE_ASSIGN_OR_RETURN(hp.yarn.n_ctx_orig,
                         optional_int(file, p + "rope.scaling.original_context_length", hp.n_ctx_train));
    MOE_ASSIGN_OR_RETURN(hp.yarn.log_mul, read_float_key(file, p + "rope.scaling.yarn_log_multiplier", 0.0f));
    MOE_ASSIGN_OR_RETURN(hp.yarn.attn_factor, read_float_key(file, p + "rope.scaling.attn_factor", 1.0f));
  }
  MOE_ASSIGN_OR_RETURN(int64_t n_expert, optional_int(file, p + "expert_count", 0));
  MOE_ASSIGN_OR_RETURN(int64_t n_expert_used, optional_int(file, p + "expert_used_count", 0));
  if (n_expert > kMaxExperts) return make_error("key '{}expert_count' is absurd: {}", p, n_expert);
  hp.moe.n_expert = static_cast<int>(n_expert);
  hp.moe.n_expert_used = static_cast<int>(n_expert_used);
  MOE_ASSIGN_OR_RETURN(int64_t n_group, optional_int(file, p + "expert_group_count", 0));
  MOE_ASSIGN_OR_RETURN(int64_t n_group_used, optional_int(file, p + "expert_group_used_count", 0));
  if (n_group > kMaxExperts || n_group_used > n_group) {
    return make_error("{}: expert_group_used_count {} must be within expert_group_count {}", arch, n_group_used, n_group);
  }
  hp.moe.n_group = static_cast<int>(n_group);
  hp.moe.n_group_used = static_cast<int>(n_group_used);
  if (auto vocab = file.find("tokenizer.ggml.tokens"); vocab != nullptr) {
    hp.n_vocab = static_cast<int64_t>(vocab->array_size());
  }
  MOE_ASSIGN_OR_RETURN(hp.n_vocab, optional_int(file, p + "vocab_size", hp.n_vocab));
  MOE_TRY(validate_hparams(hp));
  return hp;
}

Status validate_hparams(const HParams& hp) {
  const std::string& a = hp.arch;
  auto positive = [&](int64_t v, const char* field, int64_t max) -> Status {
    if (v <= 0 || v > max) return make_error("{}: hyperparameter {} = {} is out of range (1..{})", a, field, v, max);
    return ok_status();
  };
  MOE_TRY(positive(hp.n_embd, "n_embd", kMaxEmbd));
  MOE_TRY(positive(hp.n_layer, "n_layer", kMaxLayers));
  MOE_TRY(positive(hp.n_head, "n_head", kMaxEmbd));
  MOE_TRY(positive(hp.n_head_kv, "n_head_kv", kMaxEmbd));
  MOE_TRY(positive(hp.head_dim_k, "head_dim_k", kMaxEmbd));
  MOE_TRY(positive(hp.head_dim_v, "head_dim_v", kMaxEmbd));
  MOE_TRY(positive(hp.n_vocab, "n_vocab", 1 << 24));
  if (hp.n_head % hp.n_head_kv != 0) {
    return make_error("{}: n_head ({}) is not a multiple of n_head_kv ({})", a, hp.n_head, hp.n_head_kv);
  }
  if (hp.n_rot <= 0 || hp.n_rot > hp.head_dim_k || hp.n_rot % 2 != 0) {
    return make_error("{}: rope dimension count {} must be even and within the head size {}", a, hp.n_rot, hp.head_dim_k);
  }
  if (!(hp.rms_eps > 0.0f) || !std::isfinite(hp.rms_eps)) return make_error("{}: invalid rms epsilon {}", a, hp.rms_eps);
  if (!(hp.rope_freq_base > 0.0f) || !std::isfinite(hp.rope_freq_base)) {
    return make_error("{}: invalid rope freq_base {}", a, hp.rope_freq_base);
  }
  if (hp.moe.is_moe()) {
    if (hp.moe.n_expert_used <= 0 || hp.moe.n_expert_used > hp.moe.n_expert) {
      return make_error("{}: expert_used_count {} must be within 1..expert_count ({})", a, hp.moe.n_expert_used,
                        hp.moe.n_expert);
    }
    MOE_TRY(positive(hp.n_ff_expert, "n_ff_expert", kMaxEmbd * 16));
    if (hp.moe.n_group > 1) {
      if (hp.moe.n_expert % hp.moe.n_group != 0 || hp.moe.n_group_used <= 0 ||
          hp.moe.n_expert_used > (hp.moe.n_expert / hp.moe.n_group) * hp.moe.n_group_used) {
        return make_error("{}: {} experts in {} groups with {} groups used cannot give top-{}", a, hp.moe.n_expert,
                          hp.moe.n_group, hp.moe.n_group_used, hp.moe.n_expert_used);
      }
    }
  } else {
    MOE_TRY(positive(hp.n_ff, "n_ff", kMaxEmbd * 16));
  }
  return ok_status();
}

}  // namespace moe::model

#include "model/random_model.h"

#include <cmath>
#include <functional>
#include <numbers>
#include <vector>

#include "kernels/kernels.h"
#include "model/arch.h"

namespace moe::model {

namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t hash_name(const std::string& name) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : name) h = (h ^ c) * 1099511628211ull;
  return h;
}

// Small, fast generator of standard normal floats (xorshift64* + Box-Muller); its sequence is
// fixed by this code, unlike std::normal_distribution's, so files are reproducible anywhere.
class NormalSource {
 public:
  explicit NormalSource(uint64_t seed) : state_(splitmix64(seed) | 1) {}
  float next() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double u1 = (static_cast<double>(next_u64() >> 11) + 0.5) * 0x1.0p-53;
    const double u2 = static_cast<double>(next_u64() >> 11) * 0x1.0p-53;
    const double radius = std::sqrt(-2.0 * std::log(u1));
    spare_ = static_cast<float>(radius * std::sin(2.0 * std::numbers::pi * u2));
    has_spare_ = true;
    return static_cast<float>(radius * std::cos(2.0 * std::numbers::pi * u2));
  }

 private:
  uint64_t next_u64() {
    state_ ^= state_ >> 12;
    state_ ^= state_ << 25;
    state_ ^= state_ >> 27;
    return state_ * 2685821657736338717ull;
  }
  uint64_t state_;
  float spare_ = 0.0f;
  bool has_spare_ = false;
};

struct InitRule {
  float mean = 0.0f;
  float std = 1.0f;
};

InitRule init_rule(const TensorDesc& desc, const RandomModelOptions& options) {
  const auto n_in = static_cast<float>(desc.shape[0]);
  // Biases of blocks that write to the residual stream (gpt-oss) are centred on zero: with a mean
  // of one every layer adds the same vector to every position and greedy decoding collapses onto
  // one token. Other biases keep the norm rule (recorded references depend on it).
  const bool residual_bias = desc.name.ends_with(".bias") &&
                             (desc.name.ends_with("attn_output.bias") || desc.name.find(".ffn_") != std::string::npos);
  if (desc.use == TensorUse::kNorm) return {residual_bias ? 0.0f : 1.0f, 0.1f};
  if (desc.use == TensorUse::kEmbedding) return {0.0f, 1.0f};
  if (desc.name == "output.weight") return {0.0f, options.output_scale / std::sqrt(n_in)};
  return {0.0f, 1.0f / std::sqrt(n_in)};
}

DType tensor_type(const TensorDesc& desc, const RandomModelOptions& options) {
  // Norms stay f32 as llama.cpp requires; routers stay f32 as llama-quantize keeps them.
  if (desc.use == TensorUse::kNorm) return DType::kF32;
  if (desc.name.find("ffn_gate_inp") != std::string::npos) return DType::kF32;
  return options.weight_type;
}

// Changes a drawn row before it is quantized (router skew, topic directions); may be empty.
using RowEdit = std::function<void(int64_t row, std::vector<float>& values)>;

Status fill_tensor(const TensorDesc& desc, DType type, InitRule rule, uint64_t tensor_seed, const RowEdit& edit,
                   ThreadPool& pool, std::span<uint8_t> out) {
  const kernels::TypeTraits* traits = kernels::type_traits(type);
  if (traits == nullptr || traits->from_float == nullptr) {
    return make_error("cannot write tensor '{}' as {}: no quantizer", desc.name, dtype_name(type));
  }
  const int64_t n_cols = desc.shape[0];
  const size_t row_bytes = *dtype_row_bytes(type, n_cols);
  const int64_t n_rows = static_cast<int64_t>(out.size() / row_bytes);
  pool.parallel_for(n_rows, 8, [&](int64_t begin, int64_t end) {
    std::vector<float> row(static_cast<size_t>(n_cols));
    for (int64_t r = begin; r < end; ++r) {
      NormalSource source(tensor_seed ^ splitmix64(static_cast<uint64_t>(r)));
      for (float& x : row) x = rule.mean + rule.std * source.next();
      if (edit) edit(r, row);
      traits->from_float(row.data(), out.data() + static_cast<size_t>(r) * row_bytes, n_cols);
    }
  });
  return ok_status();
}

}  // namespace

namespace {

// Architectures whose expert FFN size is llama.cpp's feed_forward_length (the others keep the
// dense size there and the expert size under expert_feed_forward_length).
bool experts_use_feed_forward_length(const std::string& arch) {
  return arch == "llama" || arch == "olmoe" || arch == "granitemoe";
}

}  // namespace

void add_llama_family_metadata(const HParams& hp, formats::GgufWriter& writer) {
  using formats::GgufValue;
  const std::string p = hp.arch + ".";
  auto u32 = [](int64_t v) { return GgufValue::u32(static_cast<uint32_t>(v)); };
  writer.set("general.architecture", GgufValue::string(hp.arch));
  writer.set("general.name", GgufValue::string(hp.name.empty() ? "moe.cpp random " + hp.arch : hp.name));
  writer.set(p + "context_length", u32(hp.n_ctx_train));
  writer.set(p + "embedding_length", u32(hp.n_embd));
  writer.set(p + "block_count", u32(hp.n_layer));
  const bool ff_is_expert = hp.moe.is_moe() && experts_use_feed_forward_length(hp.arch);
  writer.set(p + "feed_forward_length", u32(ff_is_expert ? hp.n_ff_expert : hp.n_ff));
  writer.set(p + "attention.head_count", u32(hp.n_head));
  writer.set(p + "attention.head_count_kv", u32(hp.n_head_kv));
  if (hp.head_dim_k * hp.n_head != hp.n_embd || hp.head_dim_v != hp.head_dim_k) {
    writer.set(p + "attention.key_length", u32(hp.head_dim_k));
    writer.set(p + "attention.value_length", u32(hp.head_dim_v));
  }
  writer.set(p + "attention.layer_norm_rms_epsilon", GgufValue::f32(hp.rms_eps));
  writer.set(p + "rope.freq_base", GgufValue::f32(hp.rope_freq_base));
  writer.set(p + "rope.dimension_count", u32(hp.n_rot));
  writer.set(p + "vocab_size", u32(hp.n_vocab));
  if (hp.yarn.enabled) {
    writer.set(p + "rope.scaling.type", GgufValue::string("yarn"));
    writer.set(p + "rope.scaling.factor", GgufValue::f32(1.0f / hp.rope_freq_scale));
    writer.set(p + "rope.scaling.original_context_length", u32(hp.yarn.n_ctx_orig));
    if (hp.yarn.log_mul != 0.0f) writer.set(p + "rope.scaling.yarn_log_multiplier", GgufValue::f32(hp.yarn.log_mul));
  }
  if (hp.n_swa > 0) writer.set(p + "attention.sliding_window", u32(hp.n_swa));
  if (hp.arch == "granitemoe") {
    writer.set(p + "logit_scale", GgufValue::f32(hp.logit_scale));
    writer.set(p + "residual_scale", GgufValue::f32(hp.residual_scale));
    writer.set(p + "embedding_scale", GgufValue::f32(hp.embedding_scale));
    writer.set(p + "attention.scale", GgufValue::f32(hp.kq_scale));
  }
  if (hp.mla.kv_lora_rank > 0) {
    // Always written: llama.cpp requires q_lora_rank unless the layer count is a "lite" one.
    writer.set(p + "attention.q_lora_rank", u32(hp.mla.q_lora_rank));
    writer.set(p + "attention.kv_lora_rank", u32(hp.mla.kv_lora_rank));
    writer.set(p + "attention.key_length_mla", u32(hp.mla.head_dim_k));
    writer.set(p + "attention.value_length_mla", u32(hp.mla.head_dim_v));
  }
  if (!hp.moe.is_moe()) return;
  writer.set(p + "expert_count", u32(hp.moe.n_expert));
  writer.set(p + "expert_used_count", u32(hp.moe.n_expert_used));
  if (!experts_use_feed_forward_length(hp.arch)) writer.set(p + "expert_feed_forward_length", u32(hp.n_ff_expert));
  if (hp.moe.n_group > 1) {
    writer.set(p + "expert_group_count", u32(hp.moe.n_group));
    writer.set(p + "expert_group_used_count", u32(hp.moe.n_group_used));
  }
  if (hp.arch == "dots1" || hp.arch == "deepseek2") {
    writer.set(p + "leading_dense_block_count", u32(hp.moe.n_leading_dense));
    writer.set(p + "expert_shared_count", u32(hp.moe.n_expert_shared));
    writer.set(p + "expert_weights_scale", GgufValue::f32(hp.moe.routed_scale));
    writer.set(p + "expert_weights_norm", GgufValue::boolean(hp.moe.normalize_top_k));
    writer.set(p + "expert_gating_func", u32(hp.moe.gating == GatingFunction::kSigmoid ? 2 : 1));
  }
  if (hp.moe.n_ff_shared > 0 && hp.arch != "deepseek" && hp.arch != "dots1" && hp.arch != "deepseek2") {
    writer.set(p + "expert_shared_feed_forward_length", u32(hp.moe.n_ff_shared));
  }
  if (hp.arch == "deepseek") {
    writer.set(p + "leading_dense_block_count", u32(hp.moe.n_leading_dense));
    writer.set(p + "expert_shared_count", u32(hp.moe.n_expert_shared));
    writer.set(p + "expert_weights_scale", GgufValue::f32(hp.moe.routed_scale));
  }
}

std::function<float(int64_t)> router_row_scale(const std::string& name, const std::vector<int64_t>& shape, float skew,
                                               uint64_t seed) {
  if (skew == 0.0f || name.find("ffn_gate_inp.weight") == std::string::npos || shape.size() < 2) return {};
  const uint64_t tensor_seed = splitmix64(seed) ^ hash_name(name);
  const int64_t n_expert = shape[1];
  std::vector<int64_t> rank(static_cast<size_t>(n_expert));
  for (int64_t e = 0; e < n_expert; ++e) rank[static_cast<size_t>(e)] = e;
  uint64_t state = tensor_seed;
  for (int64_t i = n_expert - 1; i > 0; --i) {  // Fisher-Yates with splitmix64
    state = splitmix64(state);
    std::swap(rank[static_cast<size_t>(i)], rank[static_cast<size_t>(state % static_cast<uint64_t>(i + 1))]);
  }
  return [rank, skew](int64_t row) {
    return std::pow(1.0f + static_cast<float>(rank[static_cast<size_t>(row)]), -skew);
  };
}

namespace {

// Unit direction of topic `topic` in the embedding space (n values).
std::vector<float> topic_direction(uint64_t seed, int topic, int64_t n) {
  NormalSource source(splitmix64(seed ^ hash_name("topic")) ^ splitmix64(static_cast<uint64_t>(topic) + 1));
  std::vector<float> u(static_cast<size_t>(n));
  double norm = 0.0;
  for (float& x : u) {
    x = source.next();
    norm += static_cast<double>(x) * x;
  }
  for (float& x : u) x = static_cast<float>(x / std::sqrt(norm));
  return u;
}

// Topic structure (RandomModelOptions::router_topics): token t carries the direction of topic
// t * n_topics / n_vocab (contiguous id ranges), and each layer's router favours, for each topic,
// its own n_expert / n_topics experts. A token stream that stays in a region of ids for a while
// then keeps using the same experts: temporal locality, as text on one subject has.
RowEdit topic_edit(const TensorDesc& desc, const HParams& hp, const RandomModelOptions& options) {
  const int n_topics = options.router_topics;
  if (n_topics <= 0 || desc.shape.size() < 2) return {};
  const bool embedding = desc.name == "token_embd.weight";
  const bool router = desc.name.find("ffn_gate_inp.weight") != std::string::npos;
  if (!embedding && !router) return {};
  const int64_t n = desc.shape[0];
  std::vector<std::vector<float>> topics;
  for (int g = 0; g < n_topics; ++g) topics.push_back(topic_direction(options.seed, g, n));
  const float s = options.topic_strength;
  // Embedding rows have norm ~sqrt(n): the topic adds a component s times as long. After the
  // norm a token's topic component is sqrt(n) * s / sqrt(1 + s^2) long; router rows get their
  // topic's direction scaled so that it adds ~2 standard deviations of a random router logit.
  const float amount = embedding ? s * std::sqrt(static_cast<float>(n))
                                 : 2.0f * std::sqrt(1.0f + s * s) / (s * std::sqrt(static_cast<float>(n)));
  const int64_t n_rows = desc.shape[1];
  const uint64_t offset = hash_name(desc.name) % static_cast<uint64_t>(n_topics);  // per-layer assignment
  return [=](int64_t row, std::vector<float>& values) {
    const int64_t topic = embedding ? row * n_topics / std::max<int64_t>(hp.n_vocab, n_rows)
                                    : static_cast<int64_t>((static_cast<uint64_t>(row) + offset) % static_cast<uint64_t>(n_topics));
    const std::vector<float>& u = topics[static_cast<size_t>(topic)];
    for (size_t i = 0; i < values.size(); ++i) values[i] += amount * u[i];
  };
}

// Returns the edits of a tensor (skew, topics) as one, or empty when there are none.
RowEdit row_edit(const TensorDesc& desc, const HParams& hp, const RandomModelOptions& options) {
  auto scale = router_row_scale(desc.name, desc.shape, options.router_skew, options.seed);
  RowEdit topics = topic_edit(desc, hp, options);
  if (!scale && !topics) return {};
  return [scale, topics](int64_t row, std::vector<float>& values) {
    if (topics) topics(row, values);
    if (scale) {
      const float k = scale(row);
      for (float& x : values) x *= k;
    }
  };
}

}  // namespace

Status add_random_model(const HParams& hp, const RandomModelOptions& options, ThreadPool& pool,
                        formats::GgufWriter& writer) {
  MOE_TRY(validate_hparams(hp));
  MOE_ASSIGN_OR_RETURN(const ArchDef* arch, find_arch(hp.arch));
  add_llama_family_metadata(hp, writer);
  for (const SlottedDesc& item : arch->describe_tensors(hp)) {
    const TensorDesc desc = item.desc;
    // Optional biases are left out (an untied output projection is written).
    if (!desc.required && desc.name.ends_with(".bias")) continue;
    const DType type = tensor_type(desc, options);
    if (!dtype_row_bytes(type, desc.shape[0])) {
      return make_error("tensor '{}': row of {} elements does not fit {} blocks", desc.name, desc.shape[0],
                        dtype_name(type));
    }
    const InitRule rule = init_rule(desc, options);
    const uint64_t tensor_seed = splitmix64(options.seed) ^ hash_name(desc.name);
    const RowEdit edit = row_edit(desc, hp, options);
    MOE_TRY(writer.add_tensor_lazy(desc.name, type, desc.shape, [=, &pool](std::span<uint8_t> out) {
      return fill_tensor(desc, type, rule, tensor_seed, edit, pool, out);
    }));
  }
  return ok_status();
}

namespace {

// DeepSeek-V2-Lite's published configuration (config.json of deepseek-ai/DeepSeek-V2-Lite): 27
// layers of width 2048, the first dense (n_ff 10944), then 64 routed experts of n_ff 1408 (top-6,
// softmax, no renormalisation, no groups) plus 2 shared ones; MLA with plain queries (no
// q_lora), a 512-wide latent KV, heads of 128 + 64 RoPE dims and 128-wide values. The YaRN
// context extension of the real model is left out: it changes no shapes or costs.
Result<HParams> deepseek_v2_lite_hparams(HParams hp) {
  hp.n_embd = 2048;
  hp.n_layer = 27;
  hp.n_head = 16;
  hp.n_ff_expert = 1408;
  hp.moe.n_expert = 64;
  hp.moe.n_expert_used = 6;
  hp.head_dim_k = hp.head_dim_v = 128;
  apply_arch_defaults(hp);
  hp.n_ff = 10944;
  hp.n_rot = 64;
  hp.mla.q_lora_rank = 0;
  hp.mla.kv_lora_rank = 512;
  hp.mla.head_dim_k = 128 + hp.n_rot;
  hp.mla.head_dim_v = 128;
  hp.head_dim_k = hp.mla.kv_lora_rank + hp.n_rot;
  hp.head_dim_v = hp.mla.kv_lora_rank;
  hp.moe.n_expert_shared = 2;
  hp.moe.n_ff_shared = 2 * hp.n_ff_expert;
  return hp;
}

}  // namespace

Result<HParams> preset_hparams(const std::string& arch, const std::string& preset) {
  HParams hp;
  hp.arch = arch;
  hp.n_ctx_train = 4096;
  hp.rms_eps = 1e-5f;
  hp.rope_freq_base = 10000.0f;
  auto shape = [&](int64_t n_embd, int64_t n_layer, int64_t n_head, int64_t n_head_kv, int64_t n_ff, int n_expert,
                   int n_expert_used) {
    hp.n_embd = n_embd;
    hp.n_layer = n_layer;
    hp.n_head = n_head;
    hp.n_head_kv = n_head_kv;
    hp.n_ff = n_ff;
    hp.n_ff_expert = n_ff;
    hp.moe.n_expert = n_expert;
    hp.moe.n_expert_used = n_expert_used;
  };
  // "<preset>-v3": deepseek2 with DeepSeek-V3's routing and YaRN (see apply_arch_defaults).
  const bool v3 = preset.ends_with("-v3");
  const std::string base = v3 ? preset.substr(0, preset.size() - 3) : preset;
  if (v3 && arch != "deepseek2") return make_error("preset '{}' is for --arch deepseek2 only", preset);
  if (preset == "deepseek-v2-lite") {
    if (arch != "deepseek2") return make_error("preset '{}' is for --arch deepseek2 only", preset);
    return deepseek_v2_lite_hparams(hp);
  }
  if (v3) {
    hp.moe.gating = GatingFunction::kSigmoid;
    // YaRN x4 over a quarter of the context, V3's mscale_all_dim 1 (stored as 0.1).
    hp.rope_freq_scale = 0.25f;
    hp.yarn.enabled = true;
    hp.yarn.n_ctx_orig = hp.n_ctx_train / 4;
    hp.yarn.log_mul = 0.1f;
  }
  if (base == "tiny") {
    shape(64, 2, 4, 2, 128, 0, 0);
  } else if (base == "tiny-moe") {
    shape(64, 2, 4, 2, 96, 4, 2);
  } else if (base == "small-moe") {
    shape(256, 4, 8, 4, 512, 8, 2);
  } else if (base == "mixtral-shaped") {
    // Mixtral's proportions (head size 128, 4 query heads per KV head, 8 experts, top-2).
    shape(1024, 8, 8, 2, 2816, 8, 2);
    hp.rope_freq_base = 1000000.0f;
  } else if (base == "olmoe-shaped") {
    shape(2048, 16, 16, 16, 1024, 64, 8);
  } else {
    return make_error("unknown preset '{}' (tiny, tiny-moe, small-moe, mixtral-shaped, olmoe-shaped; deepseek2 also "
                      "tiny-moe-v3, small-moe-v3, deepseek-v2-lite)", preset);
  }
  hp.head_dim_k = hp.head_dim_v = hp.n_embd / hp.n_head;
  hp.n_rot = hp.head_dim_k;
  apply_arch_defaults(hp);
  return hp;
}

namespace {

// DeepSeek-V2's proportions on the preset's width: query/key heads of n_embd / n_head without
// RoPE plus half that with RoPE (V2: 128 + 64), a latent KV of n_embd / 2, one shared expert.
// Tiny widths take V2-Lite's plain attn_q; wider ones compress Q as well. Sigmoid gating
// (the "-v3" presets) brings V3's renormalised top-k, selection bias, routed scale and groups.
void set_deepseek2_defaults(HParams& hp) {
  const int64_t head = hp.n_embd / hp.n_head;
  hp.n_rot = head / 2;
  hp.mla.head_dim_k = head + hp.n_rot;
  hp.mla.head_dim_v = head;
  hp.mla.kv_lora_rank = hp.n_embd / 2;
  hp.mla.q_lora_rank = hp.n_embd >= 128 ? hp.n_embd / 2 : 0;
  // What llama.cpp caches: one KV head holding the latent and the RoPE key; V is its prefix.
  hp.n_head_kv = 1;
  hp.head_dim_k = hp.mla.kv_lora_rank + hp.n_rot;
  hp.head_dim_v = hp.mla.kv_lora_rank;
  hp.cache_v_in_k = true;
  hp.moe.n_leading_dense = 1;
  hp.moe.n_expert_shared = 1;
  hp.moe.n_ff_shared = hp.n_ff_expert;
  const bool v3 = hp.moe.gating == GatingFunction::kSigmoid;
  hp.moe.normalize_top_k = v3;
  hp.moe.selection_bias = v3;
  hp.moe.routed_scale = v3 ? 2.5f : 1.0f;
  if (v3 && hp.moe.n_expert >= 4 && hp.moe.n_expert % 2 == 0) {
    hp.moe.n_group = hp.moe.n_expert % 4 == 0 && hp.moe.n_expert >= 8 ? 4 : 2;
    hp.moe.n_group_used = hp.moe.n_group / 2;
  }
}

}  // namespace

void apply_arch_defaults(HParams& hp) {
  const std::string& a = hp.arch;
  hp.moe.n_ff_shared = 0;
  hp.moe.n_group = hp.moe.n_group_used = 0;
  hp.moe.n_expert_shared = 0;
  hp.moe.n_leading_dense = 0;
  hp.moe.shared_expert_gate = false;
  if (a == "qwen2moe" || a == "qwen3moe" || a == "deepseek" || a == "dots1" || a == "deepseek2") {
    hp.n_ff = 2 * hp.n_ff_expert;  // dense size
  }
  if (a == "qwen2moe") {
    hp.moe.n_ff_shared = hp.n_ff;
    hp.moe.shared_expert_gate = true;
    hp.moe.normalize_top_k = false;
  } else if (a == "qwen3moe") {
    // Qwen3 heads are wider than n_embd / n_head (e.g. 2048 wide, 32 heads of 128).
    hp.head_dim_k = hp.head_dim_v = 2 * hp.n_embd / hp.n_head;
    hp.n_rot = hp.head_dim_k;
    hp.qk_norm = HParams::QkNorm::kPerHead;
  } else if (a == "olmoe") {
    hp.n_head_kv = hp.n_head;  // OLMoE has no GQA (llama.cpp sizes k_norm by n_embd)
    hp.qk_norm = HParams::QkNorm::kWholeProjection;
    hp.moe.normalize_top_k = false;
  } else if (a == "deepseek") {
    hp.moe.n_leading_dense = 1;
    hp.moe.n_expert_shared = 2;
    hp.moe.n_ff_shared = 2 * hp.n_ff_expert;
    hp.moe.normalize_top_k = false;
  } else if (a == "dots1") {
    hp.n_head_kv = hp.n_head;  // llama.cpp's dots1 sizes K and V by n_head (dots.llm1 has no GQA)
    hp.qk_norm = HParams::QkNorm::kPerHead;
    hp.moe.n_leading_dense = 1;
    hp.moe.n_expert_shared = 1;
    hp.moe.n_ff_shared = hp.n_ff_expert;
    hp.moe.gating = GatingFunction::kSigmoid;
    hp.moe.selection_bias = true;
    hp.moe.normalize_top_k = true;
    hp.moe.routed_scale = 2.5f;
    // Group-limited routing when the expert count allows it (DeepSeek-V3 uses 8 groups, 4 kept).
    if (hp.moe.n_expert >= 8 && hp.moe.n_expert % 4 == 0) {
      hp.moe.n_group = 4;
      hp.moe.n_group_used = 2;
    }
  } else if (a == "gpt-oss") {
    // gpt-oss-20b's layout: heads wider than n_embd / n_head, every other layer windowed, YaRN
    // x32 over a 4096-token original context; windows small enough that short prompts cross them.
    hp.head_dim_k = hp.head_dim_v = hp.n_rot = 2 * hp.n_embd / hp.n_head;
    hp.n_swa = hp.n_embd <= 64 ? 8 : 16;
    hp.swa_period = 2;
    hp.rope_freq_base = 150000.0f;
    hp.rope_freq_scale = 1.0f / 32.0f;
    hp.yarn.enabled = true;
    hp.yarn.n_ctx_orig = 4096;
  } else if (a == "deepseek2") {
    set_deepseek2_defaults(hp);
  } else if (a == "granitemoe") {
    hp.embedding_scale = 12.0f;
    hp.residual_scale = 0.22f;
    hp.kq_scale = 0.0078125f;
    hp.logit_scale = 6.0f;
  }
}

}  // namespace moe::model

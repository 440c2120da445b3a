#include "model/quant_rules.h"

#include <array>
#include <initializer_list>

namespace moe::model::quant_rules {

namespace {

using F = FileTypeId;

bool is_one_of(F ftype, std::initializer_list<F> set) {
  for (F f : set) {
    if (f == ftype) return true;
  }
  return false;
}

bool contains(std::string_view s, std::string_view part) { return s.find(part) != std::string_view::npos; }

// llama.cpp's "use more bits" layers: the first and last eighth, and every third layer between.
bool gets_more_bits(int64_t i_layer, int64_t n_layer) {
  return i_layer < n_layer / 8 || i_layer >= 7 * n_layer / 8 || (i_layer - n_layer / 8) % 3 == 2;
}

// Name fragments of weights llama-quantize never quantizes (besides norms and routers): small
// or position-like tensors of architectures it supports. Kept for files moe.cpp may meet.
constexpr std::array kNeverQuantized = {
    std::string_view("ffn_gate_inp.weight"), std::string_view("ffn_gate_tid2eid.weight"),
    std::string_view("altup"),               std::string_view("laurel"),
    std::string_view("per_layer_model_proj"), std::string_view("ssm_conv1d"),
    std::string_view("shortconv.conv.weight"), std::string_view("attn_rel_b.weight"),
    std::string_view(".position_embd"),      std::string_view(".rel_pos"),
};

int n_dims(std::span<const int64_t> shape) {
  int n = 1;
  for (size_t i = 1; i < shape.size(); ++i) {
    if (shape[i] > 1) n = static_cast<int>(i) + 1;
  }
  return n;
}

// attn_v, attn_qkv and attn_kv_b: the most quantization-sensitive attention weights.
DType attn_v_type(MixtureState& s, DType type) {
  switch (s.ftype) {
    case F::kQ2_K: type = s.n_gqa >= 4 ? DType::kQ4_K : DType::kQ3_K; break;
    case F::kQ3_K_M: type = s.i_attn_v < 2 ? DType::kQ5_K : DType::kQ4_K; break;
    case F::kQ3_K_L: type = DType::kQ5_K; break;
    case F::kIQ4_NL:
    case F::kIQ4_XS:
      if (s.n_gqa >= 4) type = DType::kQ5_K;
      break;
    case F::kQ4_K_M:
    case F::kQ5_K_M:
      if (gets_more_bits(s.i_attn_v, s.n_attn_v)) type = DType::kQ6_K;
      break;
    case F::kQ4_K_S:
      if (s.i_attn_v < 4) type = DType::kQ5_K;
      break;
    default: break;
  }
  // 70B llama: 8 query heads share each V head, so attn_v is small and worth more bits.
  if (s.is_llama_70b && (type == DType::kQ3_K || type == DType::kQ4_K)) type = DType::kQ5_K;
  // 8-expert models (Mixtral): attention is a small share of the file, so it gets Q8_0.
  if (s.n_expert == 8) type = DType::kQ8_0;
  ++s.i_attn_v;
  return type;
}

DType ffn_down_type(const MixtureState& s, DType type, int64_t i_layer) {
  const int64_t n = s.n_layer;
  switch (s.ftype) {
    case F::kQ2_K: return DType::kQ3_K;
    case F::kQ3_K_M: return i_layer < n / 16 ? DType::kQ5_K : DType::kQ4_K;
    case F::kQ3_K_L: return DType::kQ5_K;
    case F::kQ4_K_M:
    case F::kQ5_K_M: return gets_more_bits(i_layer, n) ? DType::kQ6_K : type;
    case F::kIQ4_NL:
    case F::kIQ4_XS:  // without an importance matrix (moe.cpp has none)
    case F::kQ4_K_S: return i_layer < n / 8 ? DType::kQ5_K : type;
    default: return type;
  }
}

DType attn_output_type(const MixtureState& s, DType type) {
  if (s.n_expert == 8) {
    const bool bump = is_one_of(s.ftype, {F::kQ2_K, F::kQ3_K_S, F::kQ3_K_M, F::kIQ4_NL, F::kQ4_K_S, F::kQ4_K_M,
                                          F::kIQ4_XS});
    return bump ? DType::kQ5_K : type;
  }
  switch (s.ftype) {
    case F::kQ2_K: return DType::kQ3_K;
    case F::kQ3_K_M: return DType::kQ4_K;
    case F::kQ3_K_L: return DType::kQ5_K;
    default: return type;
  }
}

// The output projection, and the token embedding when it doubles as the output.
DType output_type(const MixtureState& s, std::span<const int64_t> shape) {
  if (s.ftype == F::kMXFP4_MOE) return DType::kQ8_0;
  if (shape[0] % dtype_info(s.default_type).block_size != 0) return DType::kQ8_0;
  return s.default_type == DType::kQ8_0 ? DType::kQ8_0 : DType::kQ6_K;
}

}  // namespace

int64_t layer_of(std::string_view name) {
  constexpr std::string_view kPrefix = "blk.";
  if (!name.starts_with(kPrefix)) return -1;
  int64_t layer = 0;
  size_t i = kPrefix.size();
  const size_t first_digit = i;
  for (; i < name.size() && name[i] >= '0' && name[i] <= '9'; ++i) {
    if (layer > 100'000'000) return -1;
    layer = layer * 10 + (name[i] - '0');
  }
  if (i == first_digit || i >= name.size() || name[i] != '.') return -1;
  return layer;
}

Category tensor_category(std::string_view name) {
  if (name == "output.weight") return Category::kOutput;
  if (name == "token_embd.weight" || name == "per_layer_token_embd.weight") return Category::kTokenEmbd;
  // The order matters: "attn_qkv.weight" must not be taken for something else, and the FFN
  // checks match the _exps/_shexp variants too.
  if (contains(name, "attn_qkv.weight") || contains(name, "attn_kv_b.weight") || contains(name, "attn_v.weight")) {
    return Category::kAttnV;
  }
  if (contains(name, "attn_k.weight")) return Category::kAttnK;
  if (contains(name, "attn_q.weight")) return Category::kAttnQ;
  if (contains(name, "attn_output.weight")) return Category::kAttnOutput;
  if (contains(name, "ffn_up")) return Category::kFfnUp;
  if (contains(name, "ffn_gate")) return Category::kFfnGate;
  if (contains(name, "ffn_down")) return Category::kFfnDown;
  return Category::kOther;
}

bool is_quantizable(std::string_view name, std::span<const int64_t> shape, bool quantize_output) {
  if (shape.empty() || n_dims(shape) < 2) return false;
  if (!name.ends_with("weight")) return false;
  if (contains(name, "_norm.weight")) return false;
  if (!quantize_output && name == "output.weight") return false;
  if (name == "position_embd.weight" || name == "token_types.weight") return false;
  for (std::string_view part : kNeverQuantized) {
    if (contains(name, part)) return false;
  }
  return true;
}

Result<DType> mixture_type(MixtureState& s, std::string_view name, Category category,
                           std::span<const int64_t> shape) {
  const DType type = s.default_type;
  if (category == Category::kOutput || (category == Category::kTokenEmbd && s.tied_embeddings)) {
    return output_type(s, shape);
  }
  if (s.ftype == F::kMXFP4_MOE) {
    // Expert tensors (3-D, one matrix per expert) in MXFP4, everything else Q8_0.
    return shape.size() >= 3 && shape[2] > 1 ? DType::kMXFP4 : DType::kQ8_0;
  }
  switch (category) {
    case Category::kAttnV: return attn_v_type(s, type);
    case Category::kAttnK: return s.n_expert == 8 ? DType::kQ8_0 : type;
    case Category::kAttnOutput: return attn_output_type(s, type);
    case Category::kFfnDown: {
      // MoE files may interleave expert tensors, so the layer comes from the name; dense models
      // count ffn_down tensors instead (llama.cpp does both the same way).
      int64_t i_layer = s.i_ffn_down;
      if (s.n_expert > 1) {
        i_layer = layer_of(name);
        if (i_layer < 0 || i_layer >= s.n_layer) {
          return make_error("tensor '{}': cannot tell its layer (expected blk.<0..{}>.)", name, s.n_layer - 1);
        }
      }
      ++s.i_ffn_down;
      return ffn_down_type(s, type, i_layer);
    }
    default: return type;
  }
}

DType fallback_type(DType wanted, int64_t n_cols) {
  if (n_cols % dtype_info(wanted).block_size == 0) return wanted;
  DType next = DType::kF16;
  switch (wanted) {
    case DType::kIQ4_XS: next = DType::kIQ4_NL; break;
    case DType::kQ2_K:
    case DType::kQ3_K: next = DType::kQ4_0; break;
    case DType::kQ4_K: next = DType::kQ5_0; break;
    case DType::kQ5_K: next = DType::kQ5_1; break;
    case DType::kQ6_K: next = DType::kQ8_0; break;
    default: break;  // 32-element blocks: llama-quantize gives up here, we keep F16
  }
  return n_cols % dtype_info(next).block_size == 0 ? next : DType::kF16;
}

}  // namespace moe::model::quant_rules

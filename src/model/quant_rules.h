// The per-tensor type rules of llama.cpp's quantization mixtures (llama-quantize's ftypes), as
// data and small functions: which tensors may be quantized at all, their role ("category"), the
// mixture's choice for a tensor, and the fallback when a row is not a whole number of blocks.
// Facts from llama.cpp's src/llama-quant.cpp (commit 3f545be); structure and code are ours.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "core/result.h"
#include "formats/dtype.h"
#include "model/quantize.h"

namespace moe::model::quant_rules {

// llama_ftype values moe.cpp can produce (the numbers written to general.file_type).
enum class FileTypeId : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ8_0 = 7,
  kQ5_0 = 8,
  kQ5_1 = 9,
  kQ2_K = 10,
  kQ3_K_S = 11,
  kQ3_K_M = 12,
  kQ3_K_L = 13,
  kQ4_K_S = 14,
  kQ4_K_M = 15,
  kQ5_K_S = 16,
  kQ5_K_M = 17,
  kQ6_K = 18,
  kIQ4_NL = 25,
  kIQ4_XS = 30,
  kBF16 = 32,
  kMXFP4_MOE = 38,
};

// A tensor's role as the rules see it, decided from its name alone.
enum class Category {
  kOutput,      // output.weight
  kTokenEmbd,   // token_embd.weight
  kAttnV,       // attn_v, and the fused attn_qkv / MLA attn_kv_b, which the rules treat alike
  kAttnK,
  kAttnQ,
  kAttnOutput,
  kFfnUp,       // also the _exps / _shexp variants
  kFfnGate,     // idem (but not the router, which is never quantized)
  kFfnDown,     // idem
  kOther,
};

Category tensor_category(std::string_view name);

// Returns whether llama-quantize would quantize this tensor at all: a weight of 2 or more
// dimensions (trailing 1s ignored) that is not a norm, a router or another small special tensor.
bool is_quantizable(std::string_view name, std::span<const int64_t> shape, bool quantize_output);

// What the rules know about the model and the file as a whole, plus the running counters the
// rules advance as they visit tensors in output order.
struct MixtureState {
  FileTypeId ftype = FileTypeId::kQ8_0;
  DType default_type = DType::kQ8_0;
  int64_t n_layer = 0;
  int n_expert = 0;
  int64_t n_gqa = 0;         // n_head / n_head_kv (0 when n_head_kv is 0)
  bool is_llama_70b = false;  // llama with 80 layers and GQA: attn_v gets more bits
  bool tied_embeddings = false;  // no output.weight: token_embd is ruled like the output
  int n_attn_v = 0;          // attn_v-like tensors in the model
  int i_attn_v = 0;          // attn_v-like tensors visited so far
  int i_ffn_down = 0;        // ffn_down tensors visited so far (dense models' layer index)
};

// Returns the mixture's type for a quantizable tensor (before the block-size fallback) and
// advances the state's counters. Errors when a MoE ffn_down name carries no valid layer index.
Result<DType> mixture_type(MixtureState& state, std::string_view name, Category category,
                           std::span<const int64_t> shape);

// Returns the type to use when rows of `n_cols` do not split into `wanted`'s blocks: the
// llama.cpp fallback (Q4_K -> Q5_0, Q6_K -> Q8_0, IQ4_XS -> IQ4_NL, ...), else F16.
DType fallback_type(DType wanted, int64_t n_cols);

// Returns the layer index in a "blk.<N>." name, or -1.
int64_t layer_of(std::string_view name);

}  // namespace moe::model::quant_rules

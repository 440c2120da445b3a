// The scalar kernel table: every supported type, in one list. To add a type, add its block
// struct to blocks.h, its scalar kernels here, and (optionally) SIMD overrides per ISA.
#include <array>

#include "kernels/blocks.h"
#include "kernels/kernel_table.h"
#include "kernels/ref/ref_kernels.h"
#include "kernels/ref/ref_kquants.h"

namespace moe::kernels::ref {

namespace {

// Weight types convert activations with from_float (F32/F16/BF16) or are never activations
// (Q4/Q5), which from_float_activation = nullptr says.
constexpr std::array kTable = {
    TypeTraits{DType::kF32, 1, 4, DType::kF32, to_float_f32, from_float_f32, vec_dot_f32,
               from_float_f32, nullptr, tile_batched_f32},
    TypeTraits{DType::kF16, 1, 2, DType::kF16, to_float_f16, from_float_f16, vec_dot_f16,
               from_float_f16, nullptr, tile_batched_f16},
    TypeTraits{DType::kBF16, 1, 2, DType::kBF16, to_float_bf16, from_float_bf16, vec_dot_bf16,
               from_float_bf16},
    TypeTraits{DType::kQ4_0, kQK4_0, sizeof(BlockQ4_0), DType::kQ8_0, to_float_q4_0,
               from_float_q4_0, vec_dot_q4_0_q8_0, nullptr},
    TypeTraits{DType::kQ4_1, kQK4_1, sizeof(BlockQ4_1), DType::kQ8_1, to_float_q4_1,
               from_float_q4_1, vec_dot_q4_1_q8_1, nullptr},
    TypeTraits{DType::kQ5_0, kQK5_0, sizeof(BlockQ5_0), DType::kQ8_0, to_float_q5_0,
               from_float_q5_0, vec_dot_q5_0_q8_0, nullptr},
    TypeTraits{DType::kQ5_1, kQK5_1, sizeof(BlockQ5_1), DType::kQ8_1, to_float_q5_1,
               from_float_q5_1, vec_dot_q5_1_q8_1, nullptr},
    TypeTraits{DType::kQ8_0, kQK8_0, sizeof(BlockQ8_0), DType::kQ8_0, to_float_q8_0,
               from_float_q8_0, vec_dot_q8_0_q8_0, from_float_activation_q8_0},
    // Q8_1 only ever holds activations (ggml has no Q8_1 weight dot either).
    TypeTraits{DType::kQ8_1, kQK8_1, sizeof(BlockQ8_1), DType::kQ8_1, to_float_q8_1,
               from_float_q8_1, nullptr, from_float_activation_q8_1},
    // K-quants pair with Q8_K; Q8_K (like Q8_1) only ever holds activations. ggml's x86 build
    // quantizes Q8_K activations with its reference quantizer, so from_float serves both.
    TypeTraits{DType::kQ2_K, kQK_K, sizeof(BlockQ2_K), DType::kQ8_K, to_float_q2_k, from_float_q2_k,
               vec_dot_q2_k_q8_k, nullptr},
    TypeTraits{DType::kQ3_K, kQK_K, sizeof(BlockQ3_K), DType::kQ8_K, to_float_q3_k, from_float_q3_k,
               vec_dot_q3_k_q8_k, nullptr},
    TypeTraits{DType::kQ4_K, kQK_K, sizeof(BlockQ4_K), DType::kQ8_K, to_float_q4_k, from_float_q4_k,
               vec_dot_q4_k_q8_k, nullptr},
    TypeTraits{DType::kQ5_K, kQK_K, sizeof(BlockQ5_K), DType::kQ8_K, to_float_q5_k, from_float_q5_k,
               vec_dot_q5_k_q8_k, nullptr},
    TypeTraits{DType::kQ6_K, kQK_K, sizeof(BlockQ6_K), DType::kQ8_K, to_float_q6_k, from_float_q6_k,
               vec_dot_q6_k_q8_k, nullptr},
    TypeTraits{DType::kQ8_K, kQK_K, sizeof(BlockQ8_K), DType::kQ8_K, to_float_q8_k, from_float_q8_k,
               nullptr, from_float_q8_k},
    TypeTraits{DType::kIQ4_NL, kQK4_NL, sizeof(BlockIQ4_NL), DType::kQ8_0, to_float_iq4_nl,
               from_float_iq4_nl, vec_dot_iq4_nl_q8_0, nullptr},
    TypeTraits{DType::kIQ4_XS, kQK_K, sizeof(BlockIQ4_XS), DType::kQ8_K, to_float_iq4_xs,
               from_float_iq4_xs, vec_dot_iq4_xs_q8_k, nullptr},
    // GPT-OSS experts; paired with Q8_0 as in ggml.
    TypeTraits{DType::kMXFP4, kQK_MXFP4, sizeof(BlockMXFP4), DType::kQ8_0, to_float_mxfp4,
               from_float_mxfp4, vec_dot_mxfp4_q8_0, nullptr},
};

}  // namespace

std::span<const TypeTraits> all_type_traits() { return kTable; }

}  // namespace moe::kernels::ref

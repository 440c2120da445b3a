// The scalar kernel table: every supported type, in one list. To add a type, add its block
// struct to blocks.h, its scalar kernels here, and (optionally) SIMD overrides per ISA.
#include <array>

#include "kernels/blocks.h"
#include "kernels/kernel_table.h"
#include "kernels/ref/ref_kernels.h"

namespace moe::kernels::ref {

namespace {

// Weight types convert activations with from_float (F32/F16/BF16) or are never activations
// (Q4/Q5), which from_float_activation = nullptr says.
constexpr std::array kTable = {
    TypeTraits{DType::kF32, 1, 4, DType::kF32, to_float_f32, from_float_f32, vec_dot_f32,
               from_float_f32},
    TypeTraits{DType::kF16, 1, 2, DType::kF16, to_float_f16, from_float_f16, vec_dot_f16,
               from_float_f16},
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
};

}  // namespace

std::span<const TypeTraits> all_type_traits() { return kTable; }

}  // namespace moe::kernels::ref

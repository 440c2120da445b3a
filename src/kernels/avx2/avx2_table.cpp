// Which kernels AVX2 overrides in the scalar table.
#include "kernels/avx2/avx2_kernels.h"
#include "kernels/avx2/avx2_kquants.h"
#include "kernels/kernel_table.h"

namespace moe::kernels::avx2 {

void override_kernels(TypeTraits& t) {
  switch (t.type) {
    case DType::kF32:
      t.vec_dot = vec_dot_f32;
      // Our AVX2 dots have one order of their own; do not mix in the scalar AVX-512 emulation.
      t.vec_dot_tile_batched = nullptr;
      break;
    case DType::kF16:
      t.to_float = to_float_f16;
      t.from_float = from_float_f16;
      t.from_float_activation = from_float_f16;
      t.vec_dot = vec_dot_f16;
      t.vec_dot_tile_batched = nullptr;
      break;
    case DType::kBF16:
      t.to_float = to_float_bf16;
      t.vec_dot = vec_dot_bf16;
      break;
    case DType::kQ4_0:
      t.to_float = to_float_q4_0;
      t.vec_dot = vec_dot_q4_0_q8_0;
      break;
    case DType::kQ4_1:
      t.vec_dot = vec_dot_q4_1_q8_1;
      break;
    case DType::kQ5_0:
      t.vec_dot = vec_dot_q5_0_q8_0;
      break;
    case DType::kQ5_1:
      t.vec_dot = vec_dot_q5_1_q8_1;
      break;
    case DType::kQ8_0:
      t.to_float = to_float_q8_0;
      t.from_float_activation = from_float_activation_q8_0;
      t.vec_dot = vec_dot_q8_0_q8_0;
      break;
    case DType::kQ8_1:
      t.from_float_activation = from_float_activation_q8_1;
      break;
    case DType::kQ2_K:
      t.vec_dot = vec_dot_q2_k_q8_k;
      break;
    case DType::kQ3_K:
      t.vec_dot = vec_dot_q3_k_q8_k;
      break;
    case DType::kQ4_K:
      t.vec_dot = vec_dot_q4_k_q8_k;
      break;
    case DType::kQ5_K:
      t.vec_dot = vec_dot_q5_k_q8_k;
      break;
    case DType::kQ6_K:
      t.vec_dot = vec_dot_q6_k_q8_k;
      break;
    case DType::kIQ4_NL:
      t.vec_dot = vec_dot_iq4_nl_q8_0;
      break;
    case DType::kIQ4_XS:
      t.vec_dot = vec_dot_iq4_xs_q8_k;
      break;
    case DType::kMXFP4:
      t.vec_dot = vec_dot_mxfp4_q8_0;
      break;
    default:
      break;
  }
}

}  // namespace moe::kernels::avx2

// Which kernels AVX-512 overrides (on top of the AVX2 table, see kernels.cpp).
#include "kernels/avx512/avx512_kernels.h"
#include "kernels/avx512/avx512_kquants.h"
#include "kernels/kernel_table.h"

namespace moe::kernels::avx512 {

void override_kernels(TypeTraits& t, bool has_bf16) {
  switch (t.type) {
    case DType::kF32:
      t.vec_dot = vec_dot_f32;
      t.vec_dot_tile = tile_f32;
      t.vec_dot_tile_batched = tile_batched_f32;
      break;
    case DType::kF16:
      t.vec_dot = vec_dot_f16;
      t.vec_dot_tile = tile_f16;
      t.vec_dot_tile_batched = tile_batched_f16;
      break;
    case DType::kBF16:
      if (has_bf16) t.vec_dot = vec_dot_bf16;
      break;
    case DType::kQ4_0:
      t.vec_dot = vec_dot_q4_0_q8_0;
      t.vec_dot_tile = tile_q4_0_q8_0;
      t.decode_tile_rows = 1;  // prefetches the next rows
      break;
    case DType::kQ5_0:
      t.vec_dot = vec_dot_q5_0_q8_0;
      t.vec_dot_tile = tile_q5_0_q8_0;
      t.decode_tile_rows = 1;  // prefetches the next rows
      break;
    case DType::kQ8_0:
      t.vec_dot = vec_dot_q8_0_q8_0;
      t.vec_dot_tile = tile_q8_0_q8_0;
      t.decode_tile_rows = 1;  // prefetches the next rows
      t.from_float_activation = from_float_activation_q8_0;
      break;
    case DType::kQ8_1:
      t.from_float_activation = from_float_activation_q8_1;
      break;
    case DType::kQ8_K:
      t.from_float_activation = from_float_activation_q8_k;
      break;
    case DType::kQ4_K:
      t.vec_dot = vec_dot_q4_k_q8_k;
      t.vec_dot_tile = tile_q4_k_q8_k;
      t.decode_tile_rows = 1;  // prefetches the next rows
      break;
    case DType::kQ5_K:
      t.vec_dot = vec_dot_q5_k_q8_k;
      t.vec_dot_tile = tile_q5_k_q8_k;
      t.decode_tile_rows = 1;  // prefetches the next rows
      break;
    case DType::kQ6_K:
      t.vec_dot = vec_dot_q6_k_q8_k;
      t.vec_dot_tile = tile_q6_k_q8_k;
      t.decode_tile_rows = 1;  // prefetches the next rows
      break;
    default:
      break;
  }
}

}  // namespace moe::kernels::avx512

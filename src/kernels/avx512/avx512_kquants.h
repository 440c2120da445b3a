// Internal: AVX-512 (VNNI) K-quant kernels, bit-identical to the scalar and AVX2 ones.
#pragma once

#include <cstddef>
#include <cstdint>

namespace moe::kernels::avx512 {

float vec_dot_q4_k_q8_k(int64_t n, const void* w, const void* x);
void tile_q4_k_q8_k(int64_t n, const uint8_t* w, size_t w_row_bytes, int n_rows, const uint8_t* x,
                    size_t x_row_bytes, int n_tokens, float* y, int64_t y_stride);

float vec_dot_q5_k_q8_k(int64_t n, const void* w, const void* x);
void tile_q5_k_q8_k(int64_t n, const uint8_t* w, size_t w_row_bytes, int n_rows, const uint8_t* x,
                    size_t x_row_bytes, int n_tokens, float* y, int64_t y_stride);

float vec_dot_q6_k_q8_k(int64_t n, const void* w, const void* x);
void tile_q6_k_q8_k(int64_t n, const uint8_t* w, size_t w_row_bytes, int n_rows, const uint8_t* x,
                    size_t x_row_bytes, int n_tokens, float* y, int64_t y_stride);

}  // namespace moe::kernels::avx512

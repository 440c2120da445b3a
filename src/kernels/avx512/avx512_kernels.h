// Internal: AVX-512 kernels (F, BW, VL, VNNI; BF16 where noted). Each vec_dot is the 1x1 case
// of its tile kernel, so matmul_rows and vec_dot give bit-identical results.
#pragma once

#include <cstddef>
#include <cstdint>

namespace moe::kernels::avx512 {

float vec_dot_q8_0_q8_0(int64_t n, const void* w, const void* x);
float vec_dot_q4_0_q8_0(int64_t n, const void* w, const void* x);
float vec_dot_q5_0_q8_0(int64_t n, const void* w, const void* x);
void tile_q8_0_q8_0(int64_t n, const uint8_t* w, size_t w_row_bytes, int n_rows, const uint8_t* x,
                    size_t x_row_bytes, int n_tokens, float* y, int64_t y_stride);
void tile_q4_0_q8_0(int64_t n, const uint8_t* w, size_t w_row_bytes, int n_rows, const uint8_t* x,
                    size_t x_row_bytes, int n_tokens, float* y, int64_t y_stride);
void tile_q5_0_q8_0(int64_t n, const uint8_t* w, size_t w_row_bytes, int n_rows, const uint8_t* x,
                    size_t x_row_bytes, int n_tokens, float* y, int64_t y_stride);

float vec_dot_f32(int64_t n, const void* w, const void* x);
float vec_dot_f16(int64_t n, const void* w, const void* x);
void tile_f32(int64_t n, const uint8_t* w, size_t w_row_bytes, int n_rows, const uint8_t* x,
              size_t x_row_bytes, int n_tokens, float* y, int64_t y_stride);
void tile_f16(int64_t n, const uint8_t* w, size_t w_row_bytes, int n_rows, const uint8_t* x,
              size_t x_row_bytes, int n_tokens, float* y, int64_t y_stride);
float vec_dot_bf16(int64_t n, const void* w, const void* x);  // needs AVX512_BF16

void from_float_activation_q8_0(const float* src, void* dst, int64_t n);
void from_float_activation_q8_1(const float* src, void* dst, int64_t n);

}  // namespace moe::kernels::avx512

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
// F32/F16 in llamafile sgemm's order (TypeTraits::vec_dot_tile_batched).
void tile_batched_f32(int64_t n, const uint8_t* w, size_t w_row_bytes, int n_rows, const uint8_t* x,
                      size_t x_row_bytes, int n_tokens, float* y, int64_t y_stride);
void tile_batched_f16(int64_t n, const uint8_t* w, size_t w_row_bytes, int n_rows, const uint8_t* x,
                      size_t x_row_bytes, int n_tokens, float* y, int64_t y_stride);
float vec_dot_bf16(int64_t n, const void* w, const void* x);  // needs AVX512_BF16

// The whole groups of 16 of ops.cpp's softmax and SwiGLU (n a multiple of 16), bit-identical to
// their scalar lane_math.h versions. exp_sub_sum_groups: x[i] = e^(x[i] - max_value), returns
// the double sum of each group's reduced sum. swiglu_groups: out = silu(gate) * up.
double exp_sub_sum_groups(float* x, int64_t n, float max_value);
void swiglu_groups(const float* gate, const float* up, float* out, int64_t n);

void from_float_activation_q8_0(const float* src, void* dst, int64_t n);
void from_float_activation_q8_k(const float* src, void* dst, int64_t n);
void from_float_activation_q8_1(const float* src, void* dst, int64_t n);

}  // namespace moe::kernels::avx512

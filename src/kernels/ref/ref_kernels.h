// Internal: the scalar reference kernels (baseline flags, safe on any x86-64). ISA tables fall
// back to these for anything they do not accelerate; tests compare every ISA against them.
#pragma once

#include <cstddef>
#include <cstdint>

namespace moe::kernels::ref {

void to_float_f32(const void* src, float* dst, int64_t n);
void from_float_f32(const float* src, void* dst, int64_t n);
void to_float_f16(const void* src, float* dst, int64_t n);
void from_float_f16(const float* src, void* dst, int64_t n);
void to_float_bf16(const void* src, float* dst, int64_t n);
void from_float_bf16(const float* src, void* dst, int64_t n);
void to_float_q4_0(const void* src, float* dst, int64_t n);
void from_float_q4_0(const float* src, void* dst, int64_t n);
void to_float_q4_1(const void* src, float* dst, int64_t n);
void from_float_q4_1(const float* src, void* dst, int64_t n);
void to_float_q5_0(const void* src, float* dst, int64_t n);
void from_float_q5_0(const float* src, void* dst, int64_t n);
void to_float_q5_1(const void* src, float* dst, int64_t n);
void from_float_q5_1(const float* src, void* dst, int64_t n);
void to_float_q8_0(const void* src, float* dst, int64_t n);
void from_float_q8_0(const float* src, void* dst, int64_t n);
void to_float_q8_1(const void* src, float* dst, int64_t n);
void from_float_q8_1(const float* src, void* dst, int64_t n);

// Activation quantizers as ggml's x86 CPU backend runs them (see TypeTraits).
void from_float_activation_q8_0(const float* src, void* dst, int64_t n);
void from_float_activation_q8_1(const float* src, void* dst, int64_t n);

// Dot products (w of the named type, x of its vec_dot_type). Quantized dots sum each block in
// integers, then accumulate sumi * d_w * d_x in float as ggml's generic code does; BF16
// accumulates in double, the accurate yardstick for the SIMD versions.
float vec_dot_bf16(int64_t n, const void* w, const void* x);
float vec_dot_q4_0_q8_0(int64_t n, const void* w, const void* x);
float vec_dot_q4_1_q8_1(int64_t n, const void* w, const void* x);
float vec_dot_q5_0_q8_0(int64_t n, const void* w, const void* x);
float vec_dot_q5_1_q8_1(int64_t n, const void* w, const void* x);
float vec_dot_q8_0_q8_0(int64_t n, const void* w, const void* x);

// F32/F16 dots in the two orders of llama.cpp's AVX-512 CPU backend (ref_float_dot.cpp), which
// the AVX-512 kernels reproduce bit for bit. vec_dot_*: ggml's vec_dot (one token): four 16-lane
// accumulators over 64 elements per step, F16 finished in double. tile_batched_*: llamafile's
// sgemm (batches): one 16-lane accumulator, for TypeTraits::vec_dot_tile_batched.
float vec_dot_f32(int64_t n, const void* w, const void* x);
float vec_dot_f16(int64_t n, const void* w, const void* x);
void tile_batched_f32(int64_t n, const uint8_t* w, size_t w_row_bytes, int n_rows, const uint8_t* x,
                      size_t x_row_bytes, int n_tokens, float* y, int64_t y_stride);
void tile_batched_f16(int64_t n, const uint8_t* w, size_t w_row_bytes, int n_rows, const uint8_t* x,
                      size_t x_row_bytes, int n_tokens, float* y, int64_t y_stride);

}  // namespace moe::kernels::ref

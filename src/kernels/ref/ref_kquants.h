// Internal: scalar kernels of the K-quants (Q2_K..Q6_K with their Q8_K activations), IQ4_NL,
// IQ4_XS and MXFP4. Quantizers reproduce llama.cpp's output bytes; dots reproduce ggml's x86
// (AVX2) float order, so every ISA of these types returns the same bits.
#pragma once

#include <cstdint>

namespace moe::kernels::ref {

void to_float_q2_k(const void* src, float* dst, int64_t n);
void from_float_q2_k(const float* src, void* dst, int64_t n);
void to_float_q3_k(const void* src, float* dst, int64_t n);
void from_float_q3_k(const float* src, void* dst, int64_t n);
void to_float_q4_k(const void* src, float* dst, int64_t n);
void from_float_q4_k(const float* src, void* dst, int64_t n);
void to_float_q5_k(const void* src, float* dst, int64_t n);
void from_float_q5_k(const float* src, void* dst, int64_t n);
void to_float_q6_k(const void* src, float* dst, int64_t n);
void from_float_q6_k(const float* src, void* dst, int64_t n);
void to_float_q8_k(const void* src, float* dst, int64_t n);
void from_float_q8_k(const float* src, void* dst, int64_t n);  // also ggml x86's activation path

void to_float_iq4_nl(const void* src, float* dst, int64_t n);
void from_float_iq4_nl(const float* src, void* dst, int64_t n);
void to_float_iq4_xs(const void* src, float* dst, int64_t n);
void from_float_iq4_xs(const float* src, void* dst, int64_t n);
void to_float_mxfp4(const void* src, float* dst, int64_t n);
void from_float_mxfp4(const float* src, void* dst, int64_t n);

float vec_dot_q2_k_q8_k(int64_t n, const void* w, const void* x);
float vec_dot_q3_k_q8_k(int64_t n, const void* w, const void* x);
float vec_dot_q4_k_q8_k(int64_t n, const void* w, const void* x);
float vec_dot_q5_k_q8_k(int64_t n, const void* w, const void* x);
float vec_dot_q6_k_q8_k(int64_t n, const void* w, const void* x);
float vec_dot_iq4_xs_q8_k(int64_t n, const void* w, const void* x);
float vec_dot_iq4_nl_q8_0(int64_t n, const void* w, const void* x);
float vec_dot_mxfp4_q8_0(int64_t n, const void* w, const void* x);

}  // namespace moe::kernels::ref

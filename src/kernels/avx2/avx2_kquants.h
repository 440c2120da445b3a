// Internal: AVX2 dots of the K-quants, IQ4 and MXFP4 (bit-identical to ref/ref_kquants.h's).
#pragma once

#include <cstdint>

namespace moe::kernels::avx2 {

float vec_dot_q2_k_q8_k(int64_t n, const void* w, const void* x);
float vec_dot_q3_k_q8_k(int64_t n, const void* w, const void* x);
float vec_dot_q4_k_q8_k(int64_t n, const void* w, const void* x);
float vec_dot_q5_k_q8_k(int64_t n, const void* w, const void* x);
float vec_dot_q6_k_q8_k(int64_t n, const void* w, const void* x);
float vec_dot_iq4_xs_q8_k(int64_t n, const void* w, const void* x);
float vec_dot_iq4_nl_q8_0(int64_t n, const void* w, const void* x);
float vec_dot_mxfp4_q8_0(int64_t n, const void* w, const void* x);

}  // namespace moe::kernels::avx2

// AVX2 dots of the 4/5/8-bit types with Q8 activations. Like ggml's AVX2 code: per block, eight
// int32 lanes of exact integer sums, converted to float and multiply-added into one accumulator
// with the block's combined scale.
#include "kernels/avx2/avx2_common.h"
#include "kernels/avx2/avx2_kernels.h"
#include "kernels/blocks.h"

namespace moe::kernels::avx2 {

namespace {

inline __m256 scale_of(uint16_t d_w, uint16_t d_x) {
  return _mm256_set1_ps(fp16_to_fp32(d_w) * fp16_to_fp32(d_x));
}

inline __m256i load32(const int8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

}  // namespace

float vec_dot_q8_0_q8_0(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const BlockQ8_0*>(w);
  const auto* b = static_cast<const BlockQ8_0*>(x);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQK8_0; ++i) {
    const __m256i sums = dot_i8_i8(load32(a[i].qs), load32(b[i].qs));
    acc = _mm256_fmadd_ps(scale_of(a[i].d, b[i].d), _mm256_cvtepi32_ps(sums), acc);
  }
  return hsum_f32x8(acc);
}

float vec_dot_q4_0_q8_0(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const BlockQ4_0*>(w);
  const auto* b = static_cast<const BlockQ8_0*>(x);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQK8_0; ++i) {
    const __m256i q = _mm256_sub_epi8(unpack_nibbles(a[i].qs), _mm256_set1_epi8(8));
    const __m256i sums = dot_i8_i8(q, load32(b[i].qs));
    acc = _mm256_fmadd_ps(scale_of(a[i].d, b[i].d), _mm256_cvtepi32_ps(sums), acc);
  }
  return hsum_f32x8(acc);
}

float vec_dot_q5_0_q8_0(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const BlockQ5_0*>(w);
  const auto* b = static_cast<const BlockQ8_0*>(x);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQK8_0; ++i) {
    const __m256i q5 = _mm256_or_si256(unpack_nibbles(a[i].qs), unpack_fifth_bits(a[i].qh));
    const __m256i q = _mm256_sub_epi8(q5, _mm256_set1_epi8(16));
    const __m256i sums = dot_i8_i8(q, load32(b[i].qs));
    acc = _mm256_fmadd_ps(scale_of(a[i].d, b[i].d), _mm256_cvtepi32_ps(sums), acc);
  }
  return hsum_f32x8(acc);
}

// Q4_1/Q5_1 weights are unsigned, so they go straight into maddubs' unsigned slot; their
// minimum m contributes m * s per block (s = d_x * sum(x quants), precomputed in Q8_1).
float vec_dot_q4_1_q8_1(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const BlockQ4_1*>(w);
  const auto* b = static_cast<const BlockQ8_1*>(x);
  __m256 acc = _mm256_setzero_ps();
  float sum_min = 0.0f;
  for (int64_t i = 0; i < n / kQK8_1; ++i) {
    sum_min += fp16_to_fp32(a[i].m) * fp16_to_fp32(b[i].s);
    const __m256i sums = dot_u8_i8(unpack_nibbles(a[i].qs), load32(b[i].qs));
    acc = _mm256_fmadd_ps(scale_of(a[i].d, b[i].d), _mm256_cvtepi32_ps(sums), acc);
  }
  return hsum_f32x8(acc) + sum_min;
}

float vec_dot_q5_1_q8_1(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const BlockQ5_1*>(w);
  const auto* b = static_cast<const BlockQ8_1*>(x);
  __m256 acc = _mm256_setzero_ps();
  float sum_min = 0.0f;
  for (int64_t i = 0; i < n / kQK8_1; ++i) {
    sum_min += fp16_to_fp32(a[i].m) * fp16_to_fp32(b[i].s);
    const __m256i q5 = _mm256_or_si256(unpack_nibbles(a[i].qs), unpack_fifth_bits(a[i].qh));
    const __m256i sums = dot_u8_i8(q5, load32(b[i].qs));
    acc = _mm256_fmadd_ps(scale_of(a[i].d, b[i].d), _mm256_cvtepi32_ps(sums), acc);
  }
  return hsum_f32x8(acc) + sum_min;
}

}  // namespace moe::kernels::avx2

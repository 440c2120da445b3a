// Internal helpers for the AVX2 translation units only (compiled with -mavx2 -mfma -mf16c).
// Everything here has internal linkage: an inline function with external linkage compiled with
// these flags could be picked by the linker for a baseline caller and fault on an older CPU.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace moe::kernels::avx2 {
namespace {

inline float fp16_to_fp32(uint16_t h) { return _cvtsh_ss(h); }
inline uint16_t fp32_to_fp16(float f) {
  return static_cast<uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

// Horizontal sum in the order ggml's hsum_float_8 uses (upper + lower half, then pairs).
inline float hsum_f32x8(__m256 v) {
  __m128 r = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
  r = _mm_add_ps(r, _mm_movehl_ps(r, r));
  r = _mm_add_ss(r, _mm_movehdup_ps(r));
  return _mm_cvtss_f32(r);
}

// 16 bytes of nibbles -> 32 bytes: low nibbles (elements 0..15), then high ones (16..31).
inline __m256i unpack_nibbles(const uint8_t* qs) {
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(packed, 4), packed);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0f));
}

// Q5's 32 fifth bits -> 32 bytes holding 0x10 where the bit is set.
inline __m256i unpack_fifth_bits(const uint8_t* qh_bytes) {
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, 4);
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(static_cast<int>(qh)),
      _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0));
  const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201));
  const __m256i is_set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
  return _mm256_and_si256(is_set, _mm256_set1_epi8(0x10));
}

// Sums of 4 adjacent products of unsigned bytes `u` (<= 128) and signed bytes `s`, as 8 int32.
inline __m256i dot_u8_i8(__m256i u, __m256i s) {
  const __m256i pairs = _mm256_maddubs_epi16(u, s);  // cannot saturate: |u*s*2| <= 32512
  return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}

// The same for two signed operands (|a| moves into the unsigned slot, its sign onto b).
inline __m256i dot_i8_i8(__m256i a, __m256i b) {
  return dot_u8_i8(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a));
}

}  // namespace
}  // namespace moe::kernels::avx2

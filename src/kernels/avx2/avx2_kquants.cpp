// AVX2 dots of the K-quants, IQ4 and MXFP4 types. Each builds, per block, the same 8 int32
// lanes as ggml's x86 kernels (lane k: elements 4k..4k+3 of every 32-element chunk, via
// maddubs + madd) and replays ggml's float steps, so results are bit-identical to llama.cpp's
// CPU backend and to our scalar references (see ref/ref_kquants_dot.cpp).
#include <cmath>
#include <cstddef>

#include "kernels/avx2/avx2_common.h"
#include "kernels/avx2/avx2_kquants.h"
#include "kernels/blocks.h"
#include "kernels/quant_tables.h"

namespace moe::kernels::avx2 {

namespace {

inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// Lanes of sum scale * u * y for 32 unsigned weight bytes u and 32 activation bytes y, one
// 16-bit scale per 16-element half (scale_lo for bytes 0..15, scale_hi for 16..31).
inline __m256i scaled_lanes(__m256i u, const int8_t* y, int scale_lo, int scale_hi) {
  const __m256i scales = _mm256_set_m128i(_mm_set1_epi16(static_cast<short>(scale_hi)),
                                          _mm_set1_epi16(static_cast<short>(scale_lo)));
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, load256(y)), scales);
}

// Bit `bit` of each byte of `bits`, moved to bit `to`.
inline __m256i bit_of_bytes(__m256i bits, int bit, int to) {
  const __m256i one = _mm256_and_si256(_mm256_srli_epi16(bits, bit), _mm256_set1_epi8(1));
  return _mm256_slli_epi16(one, to);
}

// 2 bits at `shift` of each byte.
inline __m256i crumbs(__m256i bits, int shift) {
  return _mm256_and_si256(_mm256_srli_epi16(bits, shift), _mm256_set1_epi8(3));
}

inline __m256i nibbles(__m256i bits, int shift) {
  return _mm256_and_si256(_mm256_srli_epi16(bits, shift), _mm256_set1_epi8(0x0f));
}

// Table values of the 32 nibbles of a 16-byte block: low nibbles are elements 0..15.
inline __m256i table_values(const uint8_t* qs, __m128i table) {
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i m4 = _mm_set1_epi8(0x0f);
  return _mm256_set_m128i(_mm_shuffle_epi8(table, _mm_and_si128(_mm_srli_epi16(packed, 4), m4)),
                          _mm_shuffle_epi8(table, _mm_and_si128(packed, m4)));
}

// Signed x signed byte products as 16 int16 pair sums (no saturation: |q|, |y| <= 127).
inline __m256i pair_sums_i8(__m256i q, __m256i y) {
  return _mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(y, q));
}

inline void scales_mins_k4(const uint8_t* packed, int* scales, int* mins) {
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    scale_min_k4(j, packed, &sc, &m);
    scales[j] = sc;
    mins[j] = m;
  }
}

// Q4_K/Q5_K mins term lanes: min_j times the 32-element sums of sub-blocks 2k and 2k + 1.
inline __m128i mins_k4_lanes(const BlockQ8_K& y, const int* mins) {
  int lanes[4];
  for (int k = 0; k < 4; ++k) {
    lanes[k] = mins[2 * k] * (y.bsums[4 * k] + y.bsums[4 * k + 1]) + mins[2 * k + 1] * (y.bsums[4 * k + 2] + y.bsums[4 * k + 3]);
  }
  return _mm_setr_epi32(lanes[0], lanes[1], lanes[2], lanes[3]);
}

// Lanes k = sum over groups 2k, 2k+1 of per_group * bsums (madd of the 16 Q8_K sums).
inline __m256i bsum_lanes(const BlockQ8_K& y, __m256i per_group16) {
  return _mm256_madd_epi16(load256(reinterpret_cast<const uint8_t*>(&y) + offsetof(BlockQ8_K, bsums)), per_group16);
}

inline __m256 fma_lanes(float scale, __m256i lanes, __m256 acc) {
  return _mm256_fmadd_ps(_mm256_set1_ps(scale), _mm256_cvtepi32_ps(lanes), acc);
}

}  // namespace

float vec_dot_q2_k_q8_k(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const BlockQ2_K*>(w);
  const auto* b = static_cast<const BlockQ8_K*>(x);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = b[i].d * fp16_to_fp32(a[i].d);
    const float dmin = -b[i].d * fp16_to_fp32(a[i].dmin);
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a[i].scales));
    const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), _mm_set1_epi8(0x0f)));
    acc = fma_lanes(dmin, bsum_lanes(b[i], mins), acc);
    __m256i sum = _mm256_setzero_si256();
    for (int c = 0; c < 8; ++c) {  // 32-element chunks: sub-blocks 2c and 2c + 1
      const __m256i q = crumbs(load256(a[i].qs + 32 * (c / 4)), 2 * (c % 4));
      sum = _mm256_add_epi32(sum, scaled_lanes(q, b[i].qs + 32 * c, a[i].scales[2 * c] & 0x0f, a[i].scales[2 * c + 1] & 0x0f));
    }
    acc = fma_lanes(d, sum, acc);
  }
  return hsum_f32x8(acc);
}

// Q3_K's quants are q - 4 with q = low 2 bits | third bit << 2: unsigned products with the
// low bits, minus 4 * y where the third bit is clear (both exact in int16).
float vec_dot_q3_k_q8_k(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const BlockQ3_K*>(w);
  const auto* b = static_cast<const BlockQ8_K*>(x);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = b[i].d * fp16_to_fp32(a[i].d);
    int8_t scales[16];
    unpack_q3_k_scales(a[i].scales, scales);
    const __m256i hbits = load256(a[i].hmask);
    __m256i sum = _mm256_setzero_si256();
    for (int c = 0; c < 8; ++c) {
      const __m256i low = crumbs(load256(a[i].qs + 32 * (c / 4)), 2 * (c % 4));
      const __m256i minus4 = _mm256_xor_si256(bit_of_bytes(hbits, c, 2), _mm256_set1_epi8(4));
      const __m256i y = load256(b[i].qs + 32 * c);
      const __m256i p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(low, y), _mm256_maddubs_epi16(minus4, y));
      const __m256i sc = _mm256_set_m128i(_mm_set1_epi16(static_cast<short>(scales[2 * c + 1] - 32)),
                                          _mm_set1_epi16(static_cast<short>(scales[2 * c] - 32)));
      sum = _mm256_add_epi32(sum, _mm256_madd_epi16(p16, sc));
    }
    acc = fma_lanes(d, sum, acc);
  }
  return hsum_f32x8(acc);
}

float vec_dot_q4_k_q8_k(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const BlockQ4_K*>(w);
  const auto* b = static_cast<const BlockQ8_K*>(x);
  __m256 acc = _mm256_setzero_ps();
  __m128 acc_m = _mm_setzero_ps();
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = b[i].d * fp16_to_fp32(a[i].d);
    const float dmin = -b[i].d * fp16_to_fp32(a[i].dmin);
    int scales[8], mins[8];
    scales_mins_k4(a[i].scales, scales, mins);
    acc_m = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(mins_k4_lanes(b[i], mins)), acc_m);
    __m256i sum = _mm256_setzero_si256();
    for (int j = 0; j < 4; ++j) {
      const __m256i bits = load256(a[i].qs + 32 * j);
      sum = _mm256_add_epi32(sum, scaled_lanes(nibbles(bits, 0), b[i].qs + 64 * j, scales[2 * j], scales[2 * j]));
      sum = _mm256_add_epi32(sum, scaled_lanes(nibbles(bits, 4), b[i].qs + 64 * j + 32, scales[2 * j + 1], scales[2 * j + 1]));
    }
    acc = fma_lanes(d, sum, acc);
  }
  acc_m = _mm_add_ps(acc_m, _mm_movehl_ps(acc_m, acc_m));
  acc_m = _mm_add_ss(acc_m, _mm_movehdup_ps(acc_m));
  return hsum_f32x8(acc) + _mm_cvtss_f32(acc_m);
}

float vec_dot_q5_k_q8_k(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const BlockQ5_K*>(w);
  const auto* b = static_cast<const BlockQ8_K*>(x);
  __m256 acc = _mm256_setzero_ps();
  float sum_mins = 0.0f;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = b[i].d * fp16_to_fp32(a[i].d);
    const float dmin = -b[i].d * fp16_to_fp32(a[i].dmin);
    int scales[8], mins[8];
    scales_mins_k4(a[i].scales, scales, mins);
    int m[4];
    _mm_storeu_si128(reinterpret_cast<__m128i*>(m), mins_k4_lanes(b[i], mins));
    sum_mins = std::fma(dmin, static_cast<float>(m[0] + m[1] + m[2] + m[3]), sum_mins);
    const __m256i hbits = load256(a[i].qh);
    __m256i sum = _mm256_setzero_si256();
    for (int j = 0; j < 4; ++j) {
      const __m256i bits = load256(a[i].qs + 32 * j);
      const __m256i q_lo = _mm256_or_si256(nibbles(bits, 0), bit_of_bytes(hbits, 2 * j, 4));
      const __m256i q_hi = _mm256_or_si256(nibbles(bits, 4), bit_of_bytes(hbits, 2 * j + 1, 4));
      sum = _mm256_add_epi32(sum, scaled_lanes(q_lo, b[i].qs + 64 * j, scales[2 * j], scales[2 * j]));
      sum = _mm256_add_epi32(sum, scaled_lanes(q_hi, b[i].qs + 64 * j + 32, scales[2 * j + 1], scales[2 * j + 1]));
    }
    acc = fma_lanes(d, sum, acc);
  }
  return hsum_f32x8(acc) + sum_mins;
}

// Q6_K's quants enter unsigned (0..63); 32 * (scale-weighted Q8_K sums) comes off per lane.
float vec_dot_q6_k_q8_k(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const BlockQ6_K*>(w);
  const auto* b = static_cast<const BlockQ8_K*>(x);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = b[i].d * fp16_to_fp32(a[i].d);
    const int8_t* sc = a[i].scales;
    const __m256i scales16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc)));
    const __m256i offset = _mm256_slli_epi32(bsum_lanes(b[i], scales16), 5);
    __m256i sum = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const __m256i ql0 = load256(a[i].ql + 64 * h);
      const __m256i ql1 = load256(a[i].ql + 64 * h + 32);
      const __m256i qh = load256(a[i].qh + 32 * h);
      const __m256i q[4] = {
          _mm256_or_si256(nibbles(ql0, 0), _mm256_slli_epi16(crumbs(qh, 0), 4)),
          _mm256_or_si256(nibbles(ql1, 0), _mm256_slli_epi16(crumbs(qh, 2), 4)),
          _mm256_or_si256(nibbles(ql0, 4), _mm256_slli_epi16(crumbs(qh, 4), 4)),
          _mm256_or_si256(nibbles(ql1, 4), _mm256_slli_epi16(crumbs(qh, 6), 4)),
      };
      for (int c = 0; c < 4; ++c) {
        const int s = 8 * h + 2 * c;
        sum = _mm256_add_epi32(sum, scaled_lanes(q[c], b[i].qs + 128 * h + 32 * c, sc[s], sc[s + 1]));
      }
    }
    acc = fma_lanes(d, _mm256_sub_epi32(sum, offset), acc);
  }
  return hsum_f32x8(acc);
}

float vec_dot_iq4_xs_q8_k(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const BlockIQ4_XS*>(w);
  const auto* b = static_cast<const BlockQ8_K*>(x);
  const __m128i table = _mm_load_si128(reinterpret_cast<const __m128i*>(kIq4nlValues));
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    __m256i sum = _mm256_setzero_si256();
    for (int ib = 0; ib < 8; ++ib) {
      const int ls = (((a[i].scales_l[ib / 2] >> (4 * (ib % 2))) & 0x0f) | (((a[i].scales_h >> (2 * ib)) & 3) << 4)) - 32;
      const __m256i p16 = pair_sums_i8(table_values(a[i].qs + 16 * ib, table), load256(b[i].qs + 32 * ib));
      sum = _mm256_add_epi32(sum, _mm256_madd_epi16(p16, _mm256_set1_epi16(static_cast<short>(ls))));
    }
    acc = fma_lanes(fp16_to_fp32(a[i].d) * b[i].d, sum, acc);
  }
  return hsum_f32x8(acc);
}

namespace {

// IQ4_NL / MXFP4 with Q8_0: two accumulators (even / odd blocks) summed before the reduction,
// an odd last block finished with one scalar fma, as ggml (and GCC's contraction of it) does.
template <typename Block, typename ScaleOf>
float dot_table_q8_0(int64_t n, const Block* a, const BlockQ8_0* b, const int8_t* values, ScaleOf scale_of) {
  const __m128i table = _mm_load_si128(reinterpret_cast<const __m128i*>(values));
  const __m256i ones = _mm256_set1_epi16(1);
  const int64_t nb = n / 32;
  __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
  int64_t ib = 0;
  for (; ib + 1 < nb; ib += 2) {
    for (int h = 0; h < 2; ++h) {
      const __m256i p16 = pair_sums_i8(table_values(a[ib + h].qs, table), load256(b[ib + h].qs));
      acc[h] = fma_lanes(fp16_to_fp32(b[ib + h].d) * scale_of(a[ib + h]), _mm256_madd_epi16(p16, ones), acc[h]);
    }
  }
  float sum = hsum_f32x8(_mm256_add_ps(acc[0], acc[1]));
  if (ib < nb) {
    const __m256i p16 = pair_sums_i8(table_values(a[ib].qs, table), load256(b[ib].qs));
    const __m256i lanes = _mm256_madd_epi16(p16, ones);
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(lanes), _mm256_extracti128_si256(lanes, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
    sum = std::fma(fp16_to_fp32(b[ib].d) * scale_of(a[ib]), static_cast<float>(_mm_cvtsi128_si32(s)), sum);
  }
  return sum;
}

}  // namespace

float vec_dot_iq4_nl_q8_0(int64_t n, const void* w, const void* x) {
  return dot_table_q8_0(n, static_cast<const BlockIQ4_NL*>(w), static_cast<const BlockQ8_0*>(x), kIq4nlValues,
                        [](const BlockIQ4_NL& blk) { return fp16_to_fp32(blk.d); });
}

float vec_dot_mxfp4_q8_0(int64_t n, const void* w, const void* x) {
  return dot_table_q8_0(n, static_cast<const BlockMXFP4*>(w), static_cast<const BlockQ8_0*>(x), kMxfp4Values,
                        [](const BlockMXFP4& blk) { return mxfp4_half_scale(blk.e); });
}

}  // namespace moe::kernels::avx2

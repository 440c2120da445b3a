// AVX-512 Q4_K, Q5_K and Q6_K x Q8_K: vec_dot and the multi-row x multi-token tile (the decode / prefill hot
// path of Q4_K_M models). One 512-bit register holds a 64-element chunk (two sub-blocks): low
// nibbles in bytes 0..31, high nibbles in 32..63, matching the Q8_K bytes in memory order.
// maddubs + vpdpwssd (VNNI) apply the per-sub-block scale; folding the upper 8 int32 lanes onto
// the lower 8 gives exactly the lanes of ggml's AVX2 kernel (integer sums are exact), and the
// float steps replay it, so results are bit-identical to ggml, our scalar reference and AVX2.
#include <cmath>
#include <cstddef>
#include <cstring>

#include "kernels/avx512/avx512_common.h"
#include "kernels/avx512/avx512_kquants.h"
#include "kernels/blocks.h"
#include "kernels/quant_tables.h"

namespace moe::kernels::avx512 {

namespace {

// One Q4_K super-block of a weight row, decoded for reuse across the tile's tokens.
struct Q4KDecoded {
  __m512i quants[4];  // chunk j: elements 64j .. 64j + 63 as unsigned bytes
  __m512i scales[4];  // 16-bit scales: sub-block 2j in the low half, 2j + 1 in the high half
  __m128i mins;       // the 8 sub-block mins as 16-bit values
  float d;            // fp16 d (times the token's Q8_K d later)
  float dmin;
};

// Q5_K is Q4_K's layout plus a fifth bit per quant (element 64 j + 32 h + l has it in bit 2 j + h
// of qh[l]), or-ed in at 16.
template <class Block, bool kFifthBit>
inline void decode_q4_k_or_q5_k(const Block& b, Q4KDecoded& out) {
  const __m128i scales_mins = unpack_scales_mins(b.scales);
  const __m512i scales16 = _mm512_castsi128_si512(_mm_cvtepu8_epi16(scales_mins));
  out.mins = _mm_cvtepu8_epi16(_mm_srli_si128(scales_mins, 8));
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  for (int j = 0; j < 4; ++j) {
    const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * j));
    const __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512(bits), _mm256_srli_epi16(bits, 4), 1);
    out.quants[j] = _mm512_and_si512(both, m4);
    if constexpr (kFifthBit) {
      const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh));
      const __m512i qh_pair = _mm512_inserti64x4(_mm512_castsi256_si512(qh), _mm256_srli_epi16(qh, 1), 1);
      const __m512i fifth = _mm512_and_si512(_mm512_srli_epi16(qh_pair, 2 * j), _mm512_set1_epi8(1));
      out.quants[j] = _mm512_or_si512(out.quants[j], _mm512_slli_epi16(fifth, 4));
    }
    // 16-bit lanes 0..15 take scale 2j, lanes 16..31 scale 2j + 1.
    const __m512i index = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi16(static_cast<short>(2 * j))),
                                              _mm256_set1_epi16(static_cast<short>(2 * j + 1)), 1);
    out.scales[j] = _mm512_permutexvar_epi16(index, scales16);
  }
  out.d = _cvtsh_ss(b.d);
  out.dmin = _cvtsh_ss(b.dmin);
}

// Mins term: 4 lanes, lane k = min_2k * (sum of sub-block 2k's Q8_K quants) + the same for 2k+1.
inline __m128 mins_lanes(const Q4KDecoded& w, const BlockQ8_K& y) {
  const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(y.bsums));
  const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(y.bsums + 8));
  return _mm_cvtepi32_ps(_mm_madd_epi16(w.mins, _mm_hadd_epi16(lo, hi)));
}

// ggml's 8 lanes of sum scale * q * y for one super-block.
inline __m256i q4_k_lanes(const Q4KDecoded& w, const BlockQ8_K& y) {
  __m512i sum = _mm512_setzero_si512();
  for (int j = 0; j < 4; ++j) {
    const __m512i yq = _mm512_loadu_si512(y.qs + 64 * j);
    sum = _mm512_dpwssd_epi32(sum, _mm512_maddubs_epi16(w.quants[j], yq), w.scales[j]);
  }
  return _mm256_add_epi32(_mm512_castsi512_si256(sum), _mm512_extracti64x4_epi64(sum, 1));
}

inline float hsum_f32x8(__m256 v) {
  __m128 r = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
  r = _mm_add_ps(r, _mm_movehl_ps(r, r));
  r = _mm_add_ss(r, _mm_movehdup_ps(r));
  return _mm_cvtss_f32(r);
}

inline float hsum_f32x4(__m128 v) {
  v = _mm_add_ps(v, _mm_movehl_ps(v, v));
  v = _mm_add_ss(v, _mm_movehdup_ps(v));
  return _mm_cvtss_f32(v);
}

// The mins term's integer total for one super-block and token: sum_j min_j * (sub-block j's Q8_K sum).
inline int mins_total(const Q4KDecoded& w, const BlockQ8_K& y) {
  const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(y.bsums));
  const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(y.bsums + 8));
  const __m128i m = _mm_madd_epi16(w.mins, _mm_hadd_epi16(lo, hi));
  const __m128i m2 = _mm_add_epi32(m, _mm_unpackhi_epi64(m, m));
  return _mm_cvtsi128_si32(_mm_add_epi32(m2, _mm_shuffle_epi32(m2, 1)));
}

// R rows x T tokens of Q4_K (kFifthBit false) or Q5_K: each weight super-block is decoded once per
// row and used by every token. ggml sums their mins terms differently, and so does this: Q4_K in
// four float lanes (acc_m), Q5_K as one scalar per output (fma(dmin, integer total)).
template <class Block, bool kFifthBit>
struct KQuantMinsTile {
  template <int R, int T>
  struct Tile {
    static void run(int64_t n, const uint8_t* w, size_t w_row_bytes, const uint8_t* x, size_t x_row_bytes,
                    float* y, int64_t y_stride) {
      __m256 acc[R][T];
      __m128 acc_m[R][T];     // Q4_K
      float sum_mins[R][T];   // Q5_K
      for (int r = 0; r < R; ++r) {
        for (int t = 0; t < T; ++t) {
          acc[r][t] = _mm256_setzero_ps();
          acc_m[r][t] = _mm_setzero_ps();
          sum_mins[r][t] = 0.0f;
        }
      }
      const int64_t n_blocks = n / kQK_K;
      for (int64_t i = 0; i < n_blocks; ++i) {
        prefetch_next_tile_slice(w + R * w_row_bytes, R * w_row_bytes, i, n_blocks);
        for (int r = 0; r < R; ++r) {
          Q4KDecoded dw;
          decode_q4_k_or_q5_k<Block, kFifthBit>(reinterpret_cast<const Block*>(w + r * w_row_bytes)[i], dw);
          for (int t = 0; t < T; ++t) {
            const BlockQ8_K& xb = reinterpret_cast<const BlockQ8_K*>(x + t * x_row_bytes)[i];
            const float d = xb.d * dw.d;
            const float dmin = -xb.d * dw.dmin;
            if constexpr (kFifthBit) {
              sum_mins[r][t] = std::fma(dmin, static_cast<float>(mins_total(dw, xb)), sum_mins[r][t]);
            } else {
              acc_m[r][t] = _mm_fmadd_ps(_mm_set1_ps(dmin), mins_lanes(dw, xb), acc_m[r][t]);
            }
            acc[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(q4_k_lanes(dw, xb)), acc[r][t]);
          }
        }
      }
      for (int r = 0; r < R; ++r) {
        for (int t = 0; t < T; ++t) {
          y[t * y_stride + r] =
              hsum_f32x8(acc[r][t]) + (kFifthBit ? sum_mins[r][t] : hsum_f32x4(acc_m[r][t]));
        }
      }
    }
  };
};

template <int R, int T>
using Q4KTile = KQuantMinsTile<BlockQ4_K, false>::Tile<R, T>;
template <int R, int T>
using Q5KTile = KQuantMinsTile<BlockQ5_K, true>::Tile<R, T>;

// One Q6_K super-block of a weight row, decoded for reuse across the tile's tokens. Register m
// holds chunks 2m and 2m + 1 of 32 elements (elements 64m .. 64m + 63, the order of the Q8_K
// bytes), as unsigned 6-bit values; its 16-bit scales run sub-block 4m .. 4m + 3 by quarter.
struct Q6KDecoded {
  __m512i quants[4];
  __m512i scales[4];
  __m256i scales16;  // all 16 sub-block scales, for the Q8_K bsums offset term
  float d;
};

// Four 16-bit broadcast scales, one per 128-bit quarter.
inline __m512i quarter_scales(const int8_t* sc) {
  const __m256i lo = _mm256_set_m128i(_mm_set1_epi16(sc[1]), _mm_set1_epi16(sc[0]));
  const __m256i hi = _mm256_set_m128i(_mm_set1_epi16(sc[3]), _mm_set1_epi16(sc[2]));
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

inline void decode_q6_k(const BlockQ6_K& b, Q6KDecoded& out) {
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  const __m512i m2 = _mm512_set1_epi8(3);
  for (int h = 0; h < 2; ++h) {
    // ql bytes 64h..64h+63: chunk 4h+0 / 4h+1 in the low nibbles, 4h+2 / 4h+3 in the high ones.
    const __m512i ql = _mm512_loadu_si512(b.ql + 64 * h);
    const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh + 32 * h));
    // High bits: chunk c of this half takes bits 2c..2c+1 of qh.
    const __m512i qh01 = _mm512_inserti64x4(_mm512_castsi256_si512(qh), _mm256_srli_epi16(qh, 2), 1);
    const __m512i qh23 = _mm512_srli_epi16(qh01, 4);
    out.quants[2 * h] = _mm512_or_si512(_mm512_and_si512(ql, m4), _mm512_slli_epi16(_mm512_and_si512(qh01, m2), 4));
    out.quants[2 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4),
                                            _mm512_slli_epi16(_mm512_and_si512(qh23, m2), 4));
  }
  for (int m = 0; m < 4; ++m) out.scales[m] = quarter_scales(b.scales + 4 * m);
  out.scales16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales)));
  out.d = _cvtsh_ss(b.d);
}

// ggml's 8 lanes of sum scale * q * y minus 32 * sum scale * bsum, for one super-block.
inline __m256i q6_k_lanes(const Q6KDecoded& w, const BlockQ8_K& y) {
  __m512i sum = _mm512_setzero_si512();
  for (int m = 0; m < 4; ++m) {
    const __m512i yq = _mm512_loadu_si512(y.qs + 64 * m);
    sum = _mm512_dpwssd_epi32(sum, _mm512_maddubs_epi16(w.quants[m], yq), w.scales[m]);
  }
  const __m256i bsums = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y.bsums));
  const __m256i offset = _mm256_slli_epi32(_mm256_madd_epi16(bsums, w.scales16), 5);
  const __m256i folded = _mm256_add_epi32(_mm512_castsi512_si256(sum), _mm512_extracti64x4_epi64(sum, 1));
  return _mm256_sub_epi32(folded, offset);
}

template <int R, int T>
struct Q6KTile {
  static void run(int64_t n, const uint8_t* w, size_t w_row_bytes, const uint8_t* x, size_t x_row_bytes,
                  float* y, int64_t y_stride) {
    __m256 acc[R][T];
    for (int r = 0; r < R; ++r) {
      for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
    }
    const int64_t n_blocks = n / kQK_K;
    for (int64_t i = 0; i < n_blocks; ++i) {
      prefetch_next_tile_slice(w + R * w_row_bytes, R * w_row_bytes, i, n_blocks);
      for (int r = 0; r < R; ++r) {
        Q6KDecoded dw;
        decode_q6_k(reinterpret_cast<const BlockQ6_K*>(w + r * w_row_bytes)[i], dw);
        for (int t = 0; t < T; ++t) {
          const BlockQ8_K& xb = reinterpret_cast<const BlockQ8_K*>(x + t * x_row_bytes)[i];
          acc[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(xb.d * dw.d), _mm256_cvtepi32_ps(q6_k_lanes(dw, xb)), acc[r][t]);
        }
      }
    }
    for (int r = 0; r < R; ++r) {
      for (int t = 0; t < T; ++t) y[t * y_stride + r] = hsum_f32x8(acc[r][t]);
    }
  }
};

}  // namespace

float vec_dot_q4_k_q8_k(int64_t n, const void* w, const void* x) {
  float y;
  Q4KTile<1, 1>::run(n, static_cast<const uint8_t*>(w), 0, static_cast<const uint8_t*>(x), 0, &y, 0);
  return y;
}

void tile_q4_k_q8_k(int64_t n, const uint8_t* w, size_t w_row_bytes, int n_rows, const uint8_t* x,
                    size_t x_row_bytes, int n_tokens, float* y, int64_t y_stride) {
  dispatch_tile<Q4KTile>(n, w, w_row_bytes, n_rows, x, x_row_bytes, n_tokens, y, y_stride);
}

}  // namespace moe::kernels::avx512

namespace moe::kernels::avx512 {

float vec_dot_q5_k_q8_k(int64_t n, const void* w, const void* x) {
  float y;
  Q5KTile<1, 1>::run(n, static_cast<const uint8_t*>(w), 0, static_cast<const uint8_t*>(x), 0, &y, 0);
  return y;
}

void tile_q5_k_q8_k(int64_t n, const uint8_t* w, size_t w_row_bytes, int n_rows, const uint8_t* x,
                    size_t x_row_bytes, int n_tokens, float* y, int64_t y_stride) {
  dispatch_tile<Q5KTile>(n, w, w_row_bytes, n_rows, x, x_row_bytes, n_tokens, y, y_stride);
}

float vec_dot_q6_k_q8_k(int64_t n, const void* w, const void* x) {
  float y;
  Q6KTile<1, 1>::run(n, static_cast<const uint8_t*>(w), 0, static_cast<const uint8_t*>(x), 0, &y, 0);
  return y;
}

void tile_q6_k_q8_k(int64_t n, const uint8_t* w, size_t w_row_bytes, int n_rows, const uint8_t* x,
                    size_t x_row_bytes, int n_tokens, float* y, int64_t y_stride) {
  dispatch_tile<Q6KTile>(n, w, w_row_bytes, n_rows, x, x_row_bytes, n_tokens, y, y_stride);
}

}  // namespace moe::kernels::avx512

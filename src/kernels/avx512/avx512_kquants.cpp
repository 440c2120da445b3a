// AVX-512 Q4_K x Q8_K: vec_dot and the multi-row x multi-token tile (the decode / prefill hot
// path of Q4_K_M models). One 512-bit register holds a 64-element chunk (two sub-blocks): low
// nibbles in bytes 0..31, high nibbles in 32..63, matching the Q8_K bytes in memory order.
// maddubs + vpdpwssd (VNNI) apply the per-sub-block scale; folding the upper 8 int32 lanes onto
// the lower 8 gives exactly the lanes of ggml's AVX2 kernel (integer sums are exact), and the
// float steps replay it, so results are bit-identical to ggml, our scalar reference and AVX2.
#include <cstddef>

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
  float d;            // fp16 d (times the token's Q8_K d later)
  float dmin;
  int mins[8];
};

inline void decode_q4_k(const BlockQ4_K& b, Q4KDecoded& out) {
  int scales[8];
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    scale_min_k4(j, b.scales, &sc, &m);
    scales[j] = sc;
    out.mins[j] = m;
  }
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  for (int j = 0; j < 4; ++j) {
    const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * j));
    const __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512(bits), _mm256_srli_epi16(bits, 4), 1);
    out.quants[j] = _mm512_and_si512(both, m4);
    out.scales[j] = _mm512_inserti64x4(_mm512_set1_epi16(static_cast<short>(scales[2 * j])),
                                       _mm256_set1_epi16(static_cast<short>(scales[2 * j + 1])), 1);
  }
  out.d = _cvtsh_ss(b.d);
  out.dmin = _cvtsh_ss(b.dmin);
}

// Mins term: 4 lanes, lane k = min_2k * (sum of sub-block 2k's Q8_K quants) + the same for 2k+1.
inline __m128 mins_lanes(const Q4KDecoded& w, const BlockQ8_K& y) {
  int lanes[4];
  for (int k = 0; k < 4; ++k) {
    lanes[k] = w.mins[2 * k] * (y.bsums[4 * k] + y.bsums[4 * k + 1]) +
               w.mins[2 * k + 1] * (y.bsums[4 * k + 2] + y.bsums[4 * k + 3]);
  }
  return _mm_cvtepi32_ps(_mm_setr_epi32(lanes[0], lanes[1], lanes[2], lanes[3]));
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

// R rows x T tokens: each weight super-block is decoded once per row and used by every token.
template <int R, int T>
struct Q4KTile {
  static void run(int64_t n, const uint8_t* w, size_t w_row_bytes, const uint8_t* x, size_t x_row_bytes,
                  float* y, int64_t y_stride) {
    __m256 acc[R][T];
    __m128 acc_m[R][T];
    for (int r = 0; r < R; ++r) {
      for (int t = 0; t < T; ++t) {
        acc[r][t] = _mm256_setzero_ps();
        acc_m[r][t] = _mm_setzero_ps();
      }
    }
    for (int64_t i = 0; i < n / kQK_K; ++i) {
      for (int r = 0; r < R; ++r) {
        Q4KDecoded dw;
        decode_q4_k(reinterpret_cast<const BlockQ4_K*>(w + r * w_row_bytes)[i], dw);
        for (int t = 0; t < T; ++t) {
          const BlockQ8_K& xb = reinterpret_cast<const BlockQ8_K*>(x + t * x_row_bytes)[i];
          const float d = xb.d * dw.d;
          const float dmin = -xb.d * dw.dmin;
          acc_m[r][t] = _mm_fmadd_ps(_mm_set1_ps(dmin), mins_lanes(dw, xb), acc_m[r][t]);
          acc[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(q4_k_lanes(dw, xb)), acc[r][t]);
        }
      }
    }
    for (int r = 0; r < R; ++r) {
      for (int t = 0; t < T; ++t) y[t * y_stride + r] = hsum_f32x8(acc[r][t]) + hsum_f32x4(acc_m[r][t]);
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

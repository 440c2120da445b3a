// AVX-512 VNNI dots of Q8_0/Q4_0/Q5_0 weights with Q8_0 activations, two blocks per 512-bit
// register (lanes 0..7 block i, 8..15 block i+1).
//
// vpdpbusd multiplies unsigned by signed bytes, so each weight type presents its quants as
// unsigned bytes u = q + bias (Q8_0: q ^ 0x80 = q + 128; Q4_0: the raw nibble, bias 8; Q5_0:
// the raw 5 bits, bias 16) and the bias is removed by starting the accumulation at
// -bias * sum(x) — computed once per token and block pair, then shared by every row of the
// tile. Each int32 lane is then the exact sum of 4 products, as in ggml.
//
// The float side follows ggml's x86 vec_dot exactly (llama.cpp runs it for decode: its
// llamafile sgemm declines n < 2): per (row, token) one 8-lane accumulator, one fma per block in
// block order with d_w * d_x, and the same final horizontal sum. So these dots are bit-identical
// to llama.cpp's for Q8_0 and Q5_0 weights (Q4_0 goes through its repacked 8x8 path instead).
#include <cstring>

#include "kernels/avx512/avx512_common.h"
#include "kernels/avx512/avx512_kernels.h"
#include "kernels/blocks.h"

namespace moe::kernels::avx512 {

namespace {

// 16 floats: d0 in lanes 0..7, d1 in lanes 8..15 (both fp16 bits).
inline __m512 pair_scales(uint16_t d0, uint16_t d1) {
  const __m256i h = _mm256_mask_set1_epi16(_mm256_set1_epi16(static_cast<short>(d0)), 0xff00,
                                           static_cast<short>(d1));
  return _mm512_cvtph_ps(h);
}

// 32 bytes of block a, then 32 of block b (or zeros when the row has an odd block left).
template <bool kTwo>
inline __m512i load_pair(const int8_t* a, const int8_t* b) {
  const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a));
  if constexpr (kTwo) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b)), 1);
  } else {
    (void)b;
    return _mm512_zextsi256_si512(lo);
  }
}

// Nibbles of two Q4/Q5 blocks in element order: [a low, a high, b low, b high] nibbles.
template <bool kTwo>
inline __m512i unpack_nibble_pair(const uint8_t* a, const uint8_t* b) {
  const __m128i qa = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a));
  __m128i qb = _mm_setzero_si128();
  if constexpr (kTwo) qb = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b));
  const __m256i ab = _mm256_inserti128_si256(_mm256_castsi128_si256(qa), qb, 1);
  const __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(ab), _mm256_srli_epi16(ab, 4), 1);
  const __m512i ordered = _mm512_shuffle_i64x2(z, z, _MM_SHUFFLE(3, 1, 2, 0));
  return _mm512_and_si512(ordered, _mm512_set1_epi8(0x0f));
}

inline __m256 upper_half(__m512 v) {
  return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
}

// Horizontal sum in the order of ggml's hsum_float_8.
inline float hsum_f32x8(__m256 v) {
  __m128 r = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
  r = _mm_add_ps(r, _mm_movehl_ps(r, r));
  r = _mm_add_ss(r, _mm_movehdup_ps(r));
  return _mm_cvtss_f32(r);
}

inline uint64_t load_qh(const uint8_t* qh_bytes) {
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, 4);
  return qh;
}

struct WeightQ8_0 {
  using Block = BlockQ8_0;
  static constexpr char kBias = static_cast<char>(0x80);  // 128 as an unsigned byte
  template <bool kTwo>
  static __m512i unsigned_quants(const Block* b) {
    const __m512i q = load_pair<kTwo>(b[0].qs, kTwo ? b[1].qs : nullptr);
    return _mm512_xor_si512(q, _mm512_set1_epi8(kBias));
  }
};

struct WeightQ4_0 {
  using Block = BlockQ4_0;
  static constexpr char kBias = 8;
  template <bool kTwo>
  static __m512i unsigned_quants(const Block* b) {
    return unpack_nibble_pair<kTwo>(b[0].qs, kTwo ? b[1].qs : nullptr);
  }
};

struct WeightQ5_0 {
  using Block = BlockQ5_0;
  static constexpr char kBias = 16;
  template <bool kTwo>
  static __m512i unsigned_quants(const Block* b) {
    uint64_t fifth = load_qh(b[0].qh);
    if constexpr (kTwo) fifth |= load_qh(b[1].qh) << 32;
    const __m512i high = _mm512_maskz_set1_epi8(fifth, 0x10);
    return _mm512_or_si512(unpack_nibble_pair<kTwo>(b[0].qs, kTwo ? b[1].qs : nullptr), high);
  }
};

// One pair of blocks (or the odd last block) of an R x T tile.
template <typename W, int R, int T, bool kTwo>
inline void tile_step(int64_t i, const uint8_t* w, size_t w_row_bytes, const uint8_t* x,
                      size_t x_row_bytes, __m256 (&acc)[R][T]) {
  __m512i wq[R];
  __m512 wd[R];
  for (int r = 0; r < R; ++r) {
    const auto* b = reinterpret_cast<const typename W::Block*>(w + r * w_row_bytes) + i;
    wq[r] = W::template unsigned_quants<kTwo>(b);
    wd[r] = pair_scales(b[0].d, kTwo ? b[1].d : 0);
  }
  for (int t = 0; t < T; ++t) {
    const auto* b = reinterpret_cast<const BlockQ8_0*>(x + t * x_row_bytes) + i;
    const __m512i xq = load_pair<kTwo>(b[0].qs, kTwo ? b[1].qs : nullptr);
    const __m512i bias_sum = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(W::kBias), xq);
    const __m512i start = _mm512_sub_epi32(_mm512_setzero_si512(), bias_sum);
    const __m512 xd = pair_scales(b[0].d, kTwo ? b[1].d : 0);
    for (int r = 0; r < R; ++r) {
      const __m512 sums = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(start, wq[r], xq));
      const __m512 scales = _mm512_mul_ps(wd[r], xd);
      acc[r][t] = _mm256_fmadd_ps(_mm512_castps512_ps256(scales), _mm512_castps512_ps256(sums), acc[r][t]);
      if constexpr (kTwo) {
        acc[r][t] = _mm256_fmadd_ps(upper_half(scales), upper_half(sums), acc[r][t]);
      }
    }
  }
}

template <typename W>
struct QuantTile {
  template <int R, int T>
  struct Kernel {
    static void run(int64_t n, const uint8_t* w, size_t w_row_bytes, const uint8_t* x,
                    size_t x_row_bytes, float* y, int64_t y_stride) {
      __m256 acc[R][T];
      for (auto& row : acc) {
        for (auto& a : row) a = _mm256_setzero_ps();
      }
      const int64_t n_blocks = n / kQK8_0;
      int64_t i = 0;
      for (; i + 2 <= n_blocks; i += 2) {
        prefetch_next_tile_slice(w + R * w_row_bytes, R * w_row_bytes, i / 2, n_blocks / 2);
        tile_step<W, R, T, true>(i, w, w_row_bytes, x, x_row_bytes, acc);
      }
      if (i < n_blocks) tile_step<W, R, T, false>(i, w, w_row_bytes, x, x_row_bytes, acc);
      for (int r = 0; r < R; ++r) {
        for (int t = 0; t < T; ++t) y[t * y_stride + r] = hsum_f32x8(acc[r][t]);
      }
    }
  };
};

template <typename W>
float vec_dot_1x1(int64_t n, const void* w, const void* x) {
  float y;
  QuantTile<W>::template Kernel<1, 1>::run(n, static_cast<const uint8_t*>(w), 0,
                                           static_cast<const uint8_t*>(x), 0, &y, 0);
  return y;
}

}  // namespace

float vec_dot_q8_0_q8_0(int64_t n, const void* w, const void* x) { return vec_dot_1x1<WeightQ8_0>(n, w, x); }
float vec_dot_q4_0_q8_0(int64_t n, const void* w, const void* x) { return vec_dot_1x1<WeightQ4_0>(n, w, x); }
float vec_dot_q5_0_q8_0(int64_t n, const void* w, const void* x) { return vec_dot_1x1<WeightQ5_0>(n, w, x); }

void tile_q8_0_q8_0(int64_t n, const uint8_t* w, size_t w_row_bytes, int n_rows, const uint8_t* x,
                    size_t x_row_bytes, int n_tokens, float* y, int64_t y_stride) {
  dispatch_tile<QuantTile<WeightQ8_0>::Kernel>(n, w, w_row_bytes, n_rows, x, x_row_bytes, n_tokens, y, y_stride);
}

void tile_q4_0_q8_0(int64_t n, const uint8_t* w, size_t w_row_bytes, int n_rows, const uint8_t* x,
                    size_t x_row_bytes, int n_tokens, float* y, int64_t y_stride) {
  dispatch_tile<QuantTile<WeightQ4_0>::Kernel>(n, w, w_row_bytes, n_rows, x, x_row_bytes, n_tokens, y, y_stride);
}

void tile_q5_0_q8_0(int64_t n, const uint8_t* w, size_t w_row_bytes, int n_rows, const uint8_t* x,
                    size_t x_row_bytes, int n_tokens, float* y, int64_t y_stride) {
  dispatch_tile<QuantTile<WeightQ5_0>::Kernel>(n, w, w_row_bytes, n_rows, x, x_row_bytes, n_tokens, y, y_stride);
}

}  // namespace moe::kernels::avx512

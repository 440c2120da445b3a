// AMX-BF16 products (see kernels/tile_gemm.h) and the AVX-512 BF16 conversions that feed them.
// Compiled with AMX flags; only called after tiles::available().
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/check.h"
#include "kernels/amx/amx_tiles.h"
#include "kernels/avx512/avx512_common.h"
#include "kernels/blocks.h"
#include "kernels/kernels.h"

namespace moe::kernels::tiles::amx {

namespace {

using avx512::unpack_scales_mins;

// The tile shapes, fixed for the thread's lifetime: every tile is 16 rows of 64 bytes
// (C: 16 x 16 fp32; A: 16 weight rows x 32 bf16; B: 16 column pairs x 16 tokens).
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

void configure_tiles_once() {
  thread_local bool configured = false;
  if (configured) return;
  TileConfig config;
  for (int i = 0; i < 8; ++i) {
    config.rows[i] = 16;
    config.colsb[i] = 64;
  }
  _tile_loadconfig(&config);
  configured = true;
}

// 32 floats to 32 bf16 (nearest even), in order.
inline __m512i to_bf16(__m512 lo, __m512 hi) { return (__m512i)_mm512_cvtne2ps_pbh(hi, lo); }

void floats_to_bf16(const float* src, uint16_t* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    _mm512_storeu_si512(dst + i, to_bf16(_mm512_loadu_ps(src + i), _mm512_loadu_ps(src + i + 16)));
  }
  for (; i < n; ++i) dst[i] = ref::round_to_bf16(src[i]);
}

void dequantize_q8_0(const uint8_t* row, int64_t n_cols, uint16_t* out) {
  const auto* b = reinterpret_cast<const BlockQ8_0*>(row);
  for (int64_t i = 0; i < n_cols / kQK8_0; ++i) {
    const __m512 d = _mm512_set1_ps(_cvtsh_ss(b[i].d));
    const __m128i q0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b[i].qs));
    const __m128i q1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b[i].qs + 16));
    const __m512 lo = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q0)), d);
    const __m512 hi = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q1)), d);
    _mm512_storeu_si512(out + i * kQK8_0, to_bf16(lo, hi));
  }
}

// Q4_K: a sub-block's 16 possible values dl * q - ml (dl = d * scale, ml = dmin * min, computed as
// to_float does, then rounded) form a table; each element is a lookup of its nibble (vpermw).
void dequantize_q4_k(const uint8_t* row, int64_t n_cols, uint16_t* out) {
  const auto* b = reinterpret_cast<const BlockQ4_K*>(row);
  const __m512 q_values = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  alignas(32) float dl[8], ml[8];
  for (int64_t i = 0; i < n_cols / kQK_K; ++i, out += kQK_K) {
    const __m128i scales_mins = unpack_scales_mins(b[i].scales);
    const __m256 scales = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(scales_mins));
    const __m256 mins = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(scales_mins, 8)));
    _mm256_store_ps(dl, _mm256_mul_ps(_mm256_set1_ps(_cvtsh_ss(b[i].d)), scales));
    _mm256_store_ps(ml, _mm256_mul_ps(_mm256_set1_ps(_cvtsh_ss(b[i].dmin)), mins));
    for (int pair = 0; pair < 4; ++pair) {
      const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[i].qs + 32 * pair));
      const __m256i nibbles[2] = {_mm256_and_si256(bits, m4), _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4)};
      for (int h = 0; h < 2; ++h) {
        const int j = 2 * pair + h;
        const __m512 values = _mm512_sub_ps(_mm512_mul_ps(_mm512_set1_ps(dl[j]), q_values), _mm512_set1_ps(ml[j]));
        const __m512i table = _mm512_castsi256_si512((__m256i)_mm512_cvtneps_pbh(values));
        _mm512_storeu_si512(out + 32 * j, _mm512_permutexvar_epi16(_mm512_cvtepu8_epi16(nibbles[h]), table));
      }
    }
  }
}

// Q6_K: d * scale * q per 16 elements, q = 6-bit value - 32 (as to_float: (d * scale) * q).
void dequantize_q6_k(const uint8_t* row, int64_t n_cols, uint16_t* out) {
  const auto* b = reinterpret_cast<const BlockQ6_K*>(row);
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  const __m256i m2 = _mm256_set1_epi8(3);
  const __m256i bias = _mm256_set1_epi8(32);
  for (int64_t i = 0; i < n_cols / kQK_K; ++i, out += kQK_K) {
    const float d = _cvtsh_ss(b[i].d);
    for (int half = 0; half < 2; ++half) {
      const __m256i ql0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[i].ql + 64 * half));
      const __m256i ql1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[i].ql + 64 * half + 32));
      const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[i].qh + 32 * half));
      // Sub-block s (32 elements) of this half: low nibbles of ql0/ql1 for s = 0/1, high for 2/3;
      // bits 2s..2s+1 of qh on top.
      const __m256i low[4] = {_mm256_and_si256(ql0, m4), _mm256_and_si256(ql1, m4),
                              _mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                              _mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4)};
      for (int s = 0; s < 4; ++s) {
        const __m256i high = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * s), m2);
        const __m256i q = _mm256_sub_epi8(_mm256_or_si256(low[s], _mm256_slli_epi16(high, 4)), bias);
        const int e0 = 128 * half + 32 * s;
        const __m512 scale_lo = _mm512_set1_ps(d * static_cast<float>(b[i].scales[e0 / 16]));
        const __m512 scale_hi = _mm512_set1_ps(d * static_cast<float>(b[i].scales[e0 / 16 + 1]));
        const __m512 lo = _mm512_mul_ps(scale_lo, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_castsi256_si128(q))));
        const __m512 hi = _mm512_mul_ps(scale_hi, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_extracti128_si256(q, 1))));
        _mm512_storeu_si512(out + e0, to_bf16(lo, hi));
      }
    }
  }
}

void dequantize_row(DType type, const TypeTraits& traits, const uint8_t* row, int64_t n_cols, uint16_t* out,
                    std::vector<float>& scratch) {
  switch (type) {
    case DType::kQ8_0:
      return dequantize_q8_0(row, n_cols, out);
    case DType::kQ4_K:
      return dequantize_q4_k(row, n_cols, out);
    case DType::kQ6_K:
      return dequantize_q6_k(row, n_cols, out);
    default:
      // Any other type: its to_float, then the same rounding.
      scratch.resize(static_cast<size_t>(n_cols));
      traits.to_float(row, scratch.data(), n_cols);
      floats_to_bf16(scratch.data(), out, n_cols);
  }
}

// Strips s0 .. s0 + S - 1 times token groups g0 .. g0 + G - 1 (S, G in {1, 2}) over all columns,
// one accumulator tile per (strip, group): C tile 2s + g, A (strips) in tiles 4 / 5, B (groups) in
// 6 / 7. A k-step loads S + G tiles for S x G products (at 2 x 2, one load per product: the
// loads from L2, not the products, bound this unit), and up to four independent accumulations
// hide the products' latency. Every accumulation runs over the columns in order, however many
// strips and groups share the pass, so a token's result does not depend on the rest of its batch.
template <int S, int G>
void strips_times_groups(const uint16_t* strips, int64_t stride, int64_t n_cols, const uint16_t* packed_x,
                         int64_t g0, int n_rows, int64_t n_tokens, float* y, int64_t y_stride) {
  static_assert((S == 1 || S == 2) && (G == 1 || G == 2));
  _tile_zero(0);
  if constexpr (G > 1) _tile_zero(1);
  if constexpr (S > 1) _tile_zero(2);
  if constexpr (S > 1 && G > 1) _tile_zero(3);
  const int64_t group_elems = n_cols * kTileTokens;  // one token group of the packed activations
  const uint16_t* b = packed_x + g0 * group_elems;
  const uint16_t* strip1 = strips + kTileRows * stride;
  const auto a_stride = static_cast<long>(stride * 2);
  for (int64_t k = 0; k < n_cols; k += kColumnStep) {
    const uint16_t* bk = b + k * kTileTokens;
    _tile_loadd(4, strips + k, a_stride);
    _tile_loadd(6, bk, 64);
    _tile_dpbf16ps(0, 4, 6);
    if constexpr (G > 1) {
      _tile_loadd(7, bk + group_elems, 64);
      _tile_dpbf16ps(1, 4, 7);
    }
    if constexpr (S > 1) {
      _tile_loadd(5, strip1 + k, a_stride);
      _tile_dpbf16ps(2, 5, 6);
      if constexpr (G > 1) _tile_dpbf16ps(3, 5, 7);
    }
  }
  constexpr int kTileFloats = kTileRows * kTileTokens;
  alignas(64) float c[4][kTileFloats];
  _tile_stored(0, c[0], 64);
  if constexpr (G > 1) _tile_stored(1, c[1], 64);
  if constexpr (S > 1) _tile_stored(2, c[2], 64);
  if constexpr (S > 1 && G > 1) _tile_stored(3, c[3], 64);
  for (int s = 0; s < S; ++s) {
    const int rows = std::min(kTileRows, n_rows - s * kTileRows);
    for (int g = 0; g < G; ++g) {
      const int64_t t0 = (g0 + g) * kTileTokens;
      const int n_tok = static_cast<int>(std::min<int64_t>(kTileTokens, n_tokens - t0));
      const float* tile = c[2 * s + g];
      for (int t = 0; t < n_tok; ++t) {
        float* dst = y + (t0 + t) * y_stride + s * kTileRows;
        for (int r = 0; r < rows; ++r) dst[r] = tile[r * kTileTokens + t];
      }
    }
  }
}

template <int S>
void strips_times_all_groups(const uint16_t* strips, int64_t stride, int64_t n_cols, const uint16_t* packed_x,
                             int n_rows, int64_t n_tokens, float* y, int64_t y_stride) {
  const int64_t n_groups = (n_tokens + kTileTokens - 1) / kTileTokens;
  int64_t g0 = 0;
  for (; g0 + 2 <= n_groups; g0 += 2) {
    strips_times_groups<S, 2>(strips, stride, n_cols, packed_x, g0, n_rows, n_tokens, y, y_stride);
  }
  if (g0 < n_groups) strips_times_groups<S, 1>(strips, stride, n_cols, packed_x, g0, n_rows, n_tokens, y, y_stride);
}

}  // namespace

void pack_activations(const float* const* rows, int64_t n_tokens, int64_t n_cols, int64_t col_begin,
                      int64_t col_end, uint16_t* packed) {
  const int64_t n_groups = (n_tokens + kTileTokens - 1) / kTileTokens;
  alignas(64) uint32_t pairs[16];
  for (int64_t t = 0; t < n_groups * kTileTokens; ++t) {
    uint32_t* group = reinterpret_cast<uint32_t*>(packed + (t / kTileTokens) * n_cols * kTileTokens);
    const int64_t lane = t % kTileTokens;
    int64_t c = col_begin;
    if (t >= n_tokens) {
      for (; c < col_end; c += 2) group[(c / 2) * kTileTokens + lane] = 0;
      continue;
    }
    const float* x = rows[t];
    for (; c + 32 <= col_end; c += 32) {
      _mm512_store_si512(pairs, to_bf16(_mm512_loadu_ps(x + c), _mm512_loadu_ps(x + c + 16)));
      for (int p = 0; p < 16; ++p) group[(c / 2 + p) * kTileTokens + lane] = pairs[p];
    }
    for (; c < col_end; c += 2) {
      group[(c / 2) * kTileTokens + lane] = ref::round_to_bf16(x[c]) | (uint32_t{ref::round_to_bf16(x[c + 1])} << 16);
    }
  }
}

void dequantize_rows_bf16(DType type, const uint8_t* w, size_t w_row_bytes, int n_rows, int64_t n_cols,
                          uint16_t* out, int64_t out_stride) {
  const TypeTraits* traits = type_traits(type);
  MOE_CHECK(traits != nullptr && traits->to_float != nullptr);
  thread_local std::vector<float> scratch;
  for (int r = 0; r < n_rows; ++r) dequantize_row(type, *traits, w + r * w_row_bytes, n_cols, out + r * out_stride, scratch);
}

void matmul(DType type, const uint8_t* w, size_t w_row_bytes, int64_t n_cols, const uint16_t* packed_x,
            int64_t n_tokens, float* y, int64_t y_stride, int64_t row_begin, int64_t row_end) {
  MOE_CHECK(n_cols % kColumnStep == 0);
  configure_tiles_once();
  // Strip rows one cache line longer than the data: with a power-of-two stride the 16 rows of a
  // tile load would all fall in the same L1 set and evict each other.
  const int64_t stride = n_cols + 32;
  constexpr int kPairRows = 2 * kTileRows;  // two strips per pass
  thread_local std::vector<uint16_t> strips;
  strips.resize(static_cast<size_t>(kPairRows * stride));
  for (int64_t r0 = row_begin; r0 < row_end; r0 += kPairRows) {
    const int n_rows = static_cast<int>(std::min<int64_t>(kPairRows, row_end - r0));
    dequantize_rows_bf16(type, w + r0 * w_row_bytes, w_row_bytes, n_rows, n_cols, strips.data(), stride);
    // A short last strip: the tile still reads 16 rows, so the rest are zeros.
    const int padded = n_rows > kTileRows ? kPairRows : kTileRows;
    std::fill(strips.begin() + n_rows * stride, strips.begin() + padded * stride, uint16_t{0});
    if (n_rows > kTileRows) {
      strips_times_all_groups<2>(strips.data(), stride, n_cols, packed_x, n_rows, n_tokens, y + r0, y_stride);
    } else {
      strips_times_all_groups<1>(strips.data(), stride, n_cols, packed_x, n_rows, n_tokens, y + r0, y_stride);
    }
  }
}

}  // namespace moe::kernels::tiles::amx

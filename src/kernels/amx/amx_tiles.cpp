// AMX-BF16 products (see kernels/tile_gemm.h) and the AVX-512 BF16 conversions that feed them.
// Compiled with AMX flags; only called after tiles::available().
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/aligned_vector.h"
#include "core/check.h"
#include "kernels/amx/amx_common.h"
#include "kernels/amx/amx_tiles.h"
#include "kernels/avx512/avx512_common.h"
#include "kernels/blocks.h"
#include "kernels/kernels.h"

namespace moe::kernels::tiles::amx {

namespace {

struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

}  // namespace

void use_tile_shape(TileShape shape) {
  thread_local int current = -1;
  if (current == static_cast<int>(shape)) return;
  TileConfig config;
  for (int i = 0; i < 8; ++i) {
    config.rows[i] = 16;
    config.colsb[i] = 64;
  }
  if (shape == TileShape::kHalfRows) {
    config.colsb[4] = config.colsb[5] = 32;
    config.rows[6] = config.rows[7] = 8;
  }
  // GCC 12's _tile_loadconfig tells the compiler it reads only the first 8 bytes of the config,
  // so without this barrier the row and column stores above are dropped as dead (the tiles are
  // then unconfigured and the first tile instruction faults).
  asm volatile("" : : "r"(&config) : "memory");
  _tile_loadconfig(&config);
  current = static_cast<int>(shape);
}

namespace {

using avx512::unpack_scales_mins;

// 32 floats to 32 bf16 (nearest even), in order.
inline __m512i to_bf16(__m512 lo, __m512 hi) { return (__m512i)_mm512_cvtne2ps_pbh(hi, lo); }

// The dequantizers below write a row in chunks of 32 columns (one tile row of bf16), chunk c at
// out + c * chunk_stride: 32 for a plain row, or the distance between k-steps of a tile-ordered
// strip (see matmul).
void floats_to_bf16(const float* src, uint16_t* dst, int64_t n, int64_t chunk_stride) {
  int64_t i = 0;
  for (; i + kColumnStep <= n; i += kColumnStep) {
    _mm512_storeu_si512(dst + (i / kColumnStep) * chunk_stride,
                        to_bf16(_mm512_loadu_ps(src + i), _mm512_loadu_ps(src + i + 16)));
  }
  // A ragged tail (plain rows only: tile products need whole chunks).
  for (; i < n; ++i) dst[(i / kColumnStep) * chunk_stride + i % kColumnStep] = ref::round_to_bf16(src[i]);
}

// Q8_0: d * q. The scales of a span are converted first and broadcast from memory (as for Q4_K).
void dequantize_q8_0(const uint8_t* row, int64_t n_cols, uint16_t* out, int64_t chunk_stride) {
  const auto* b = reinterpret_cast<const BlockQ8_0*>(row);
  constexpr int64_t kSpanBlocks = 16;
  alignas(64) float d[kSpanBlocks];
  for (int64_t i0 = 0; i0 < n_cols / kQK8_0; i0 += kSpanBlocks) {
    const int64_t n_blocks = std::min(kSpanBlocks, n_cols / kQK8_0 - i0);
    for (int64_t i = 0; i < n_blocks; ++i) d[i] = _cvtsh_ss(b[i0 + i].d);
    asm volatile("" ::: "memory");  // keep the scales in memory: the loop broadcasts them from there
    for (int64_t i = 0; i < n_blocks; ++i) {
      const BlockQ8_0& block = b[i0 + i];
      const __m512 lo = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block.qs))));
      const __m512 hi =
          _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block.qs + 16))));
      _mm512_storeu_si512(out + (i0 + i) * chunk_stride,
                          to_bf16(_mm512_mul_ps(lo, _mm512_set1_ps(d[i])), _mm512_mul_ps(hi, _mm512_set1_ps(d[i]))));
    }
  }
}

// Q4_K: a sub-block's 16 possible values dl * q - ml (dl = d * scale, ml = dmin * min, as to_float
// computes them, then rounded) form a table; each element is a lookup of its nibble (vpermw).
// The 32 bytes of a sub-block pair hold sub-block 2p in their low nibbles and 2p + 1 in the high
// ones, so one vcvtne2ps2bf16 makes both tables: 2p + 1's in entries 0-15 (indexed by the high
// nibble, byte >> 4), 2p's in 16-31 (index (byte & 15) | 16, one vpternlog). dl * q - ml is one
// FMA with the same rounding as to_float's multiply then subtract: d (fp16, 11 significant bits)
// times a 6-bit scale, times a 4-bit q, is exact in fp32, so only the subtraction rounds. The
// per-sub-block factors are broadcast from memory (load ports): this loop is bound by the two
// vector ports, and broadcasting from a register would take one of them.
void dequantize_q4_k(const uint8_t* row, int64_t n_cols, uint16_t* out, int64_t chunk_stride) {
  const auto* b = reinterpret_cast<const BlockQ4_K*>(row);
  const __m512 q_values = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i low_nibble = _mm512_set1_epi16(0x0f);
  const __m512i upper_table = _mm512_set1_epi16(16);
  alignas(32) float dl[8], ml[8];
  for (int64_t i = 0; i < n_cols / kQK_K; ++i, out += 8 * chunk_stride) {
    const __m128i scales_mins = unpack_scales_mins(b[i].scales);
    const __m256 scales = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(scales_mins));
    const __m256 mins = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(scales_mins, 8)));
    _mm256_store_ps(dl, _mm256_mul_ps(_mm256_set1_ps(_cvtsh_ss(b[i].d)), scales));
    _mm256_store_ps(ml, _mm256_mul_ps(_mm256_set1_ps(_cvtsh_ss(b[i].dmin)), mins));
    asm volatile("" ::: "memory");  // keep dl / ml in memory: the loop broadcasts them from there
    for (int pair = 0; pair < 4; ++pair) {
      const int j = 2 * pair;
      const __m512i bytes = _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[i].qs + 32 * pair)));
      const __m512 low_values = _mm512_fmsub_ps(q_values, _mm512_set1_ps(dl[j]), _mm512_set1_ps(ml[j]));
      const __m512 high_values = _mm512_fmsub_ps(q_values, _mm512_set1_ps(dl[j + 1]), _mm512_set1_ps(ml[j + 1]));
      const __m512i tables = to_bf16(high_values, low_values);
      const __m512i low_index = _mm512_ternarylogic_epi32(bytes, low_nibble, upper_table, 0xEA);  // (a & b) | c
      const __m512i high_index = _mm512_srli_epi16(bytes, 4);
      _mm512_storeu_si512(out + j * chunk_stride, _mm512_permutexvar_epi16(low_index, tables));
      _mm512_storeu_si512(out + (j + 1) * chunk_stride, _mm512_permutexvar_epi16(high_index, tables));
    }
  }
}

// Q6_K: d * scale * q per 16 elements, q = 6-bit value - 32 (as to_float: (d * scale) * q). The
// 16 factors d * scale are made once per block and broadcast from memory, as for Q4_K.
void dequantize_q6_k(const uint8_t* row, int64_t n_cols, uint16_t* out, int64_t chunk_stride) {
  const auto* b = reinterpret_cast<const BlockQ6_K*>(row);
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  const __m256i m2 = _mm256_set1_epi8(3);
  const __m256i bias = _mm256_set1_epi8(32);
  alignas(64) float factors[16];
  for (int64_t i = 0; i < n_cols / kQK_K; ++i, out += 8 * chunk_stride) {
    const __m128i scales = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b[i].scales));
    _mm512_store_ps(factors, _mm512_mul_ps(_mm512_set1_ps(_cvtsh_ss(b[i].d)), _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(scales))));
    asm volatile("" ::: "memory");  // keep the factors in memory: the loop broadcasts them from there
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
        const __m512 lo = _mm512_mul_ps(_mm512_set1_ps(factors[e0 / 16]),
                                        _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_castsi256_si128(q))));
        const __m512 hi = _mm512_mul_ps(_mm512_set1_ps(factors[e0 / 16 + 1]),
                                        _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_extracti128_si256(q, 1))));
        _mm512_storeu_si512(out + (e0 / 32) * chunk_stride, to_bf16(lo, hi));
      }
    }
  }
}

void dequantize_row(DType type, const TypeTraits& traits, const uint8_t* row, int64_t n_cols, uint16_t* out,
                    int64_t chunk_stride, std::vector<float>& scratch) {
  switch (type) {
    case DType::kQ8_0:
      return dequantize_q8_0(row, n_cols, out, chunk_stride);
    case DType::kQ4_K:
      return dequantize_q4_k(row, n_cols, out, chunk_stride);
    case DType::kQ6_K:
      return dequantize_q6_k(row, n_cols, out, chunk_stride);
    default:
      // Any other type: its to_float, then the same rounding.
      scratch.resize(static_cast<size_t>(n_cols));
      traits.to_float(row, scratch.data(), n_cols);
      floats_to_bf16(scratch.data(), out, n_cols, chunk_stride);
  }
}

// A pass multiplies two strips (32 weight rows) by every token. Its weights are dequantized a
// span of columns at a time into a small buffer in tile order: for each k-step (32 columns),
// strip 0's 16 rows of 32 bf16 then strip 1's, so every A tile is 1 KiB of consecutive memory
// (one stream for the prefetchers, no cache-set conflicts). The span's products run right after
// its dequantization, while the span is still in L1; the tile unit works through them while the
// vector units dequantize the next span.
constexpr int64_t kTileElems = kTileRows * kColumnStep;  // one A tile
constexpr int64_t kPassStepElems = 2 * kTileElems;        // both strips' tiles of one k-step
constexpr int64_t kSpanCols = 256;                        // a multiple of every block size
constexpr int kTileFloats = kTileRows * kTileTokens;                     // one accumulator

// Where pass row r's 32 columns of the span's first k-step go (each later k-step kPassStepElems on).
constexpr int64_t tile_order_offset(int r) { return (r / kTileRows) * kTileElems + (r % kTileRows) * kColumnStep; }

using RowDequantizer = void (*)(const uint8_t* row, int64_t n_cols, uint16_t* out, int64_t chunk_stride);

// The span's columns of n_rows rows into tile order, with the row dequantizer known at compile
// time: the type switch is taken once per span, not once per row (kernel lab, Q4_K at 8 tokens:
// ~155 -> ~146 us).
template <RowDequantizer Dequantize>
void dequantize_rows_in_tile_order(const uint8_t* w, size_t w_row_bytes, int n_rows, int64_t span, uint16_t* out) {
  for (int r = 0; r < n_rows; ++r) Dequantize(w + r * w_row_bytes, span, out + tile_order_offset(r), kPassStepElems);
}

void dequantize_span(DType type, const TypeTraits& traits, const uint8_t* w, size_t w_row_bytes, int n_rows,
                     int64_t c0, int64_t span, uint16_t* out, std::vector<float>& scratch) {
  const uint8_t* first = w + static_cast<size_t>(c0 / traits.block_size) * traits.block_bytes;
  switch (type) {
    case DType::kQ8_0:
      dequantize_rows_in_tile_order<dequantize_q8_0>(first, w_row_bytes, n_rows, span, out);
      break;
    case DType::kQ4_K:
      dequantize_rows_in_tile_order<dequantize_q4_k>(first, w_row_bytes, n_rows, span, out);
      break;
    case DType::kQ6_K:
      dequantize_rows_in_tile_order<dequantize_q6_k>(first, w_row_bytes, n_rows, span, out);
      break;
    default:
      for (int r = 0; r < n_rows; ++r) {
        dequantize_row(type, traits, first + r * w_row_bytes, span, out + tile_order_offset(r), kPassStepElems, scratch);
      }
  }
  // A short last strip: the tile still reads 16 rows, so the rest are zeros.
  const int padded = n_rows > kTileRows ? 2 * kTileRows : kTileRows;
  for (int64_t k = 0; k < span / kColumnStep; ++k) {
    for (int r = n_rows; r < padded; ++r) {
      std::memset(out + k * kPassStepElems + tile_order_offset(r), 0,
                  kColumnStep * sizeof(uint16_t));
    }
  }
}

// (transpose_16x16, amx_common.h: an accumulator holds weight rows x tokens, and y wants each
// token's outputs together, one 64-byte store per token instead of 16 scalar ones.)

// Accumulator tiles: C tile 2s + g holds strip s times token group g (S strips, G groups, each
// 1 or 2); A (strips) use tiles 4 / 5, B (token groups) 6 / 7. Saved accumulators are laid out
// the same way, 4 x kTileFloats per group pair.
template <int S, int G>
void zero_accumulators() {
  _tile_zero(0);
  if constexpr (G > 1) _tile_zero(1);
  if constexpr (S > 1) _tile_zero(2);
  if constexpr (S > 1 && G > 1) _tile_zero(3);
}

template <int S, int G>
void load_accumulators(const float* c) {
  _tile_loadd(0, c, 64);
  if constexpr (G > 1) _tile_loadd(1, c + kTileFloats, 64);
  if constexpr (S > 1) _tile_loadd(2, c + 2 * kTileFloats, 64);
  if constexpr (S > 1 && G > 1) _tile_loadd(3, c + 3 * kTileFloats, 64);
}

template <int S, int G>
void store_accumulators(float* c) {
  _tile_stored(0, c, 64);
  if constexpr (G > 1) _tile_stored(1, c + kTileFloats, 64);
  if constexpr (S > 1) _tile_stored(2, c + 2 * kTileFloats, 64);
  if constexpr (S > 1 && G > 1) _tile_stored(3, c + 3 * kTileFloats, 64);
}

// The span's k-steps for the pass's strips times token groups g0 .. g0 + G - 1 (b: group g0 of the
// packed activations at the span's first column). A k-step loads S + G tiles for S x G products
// (at 2 x 2, one load per product), and up to four independent accumulations hide the products'
// latency. Every accumulation runs over the columns in order, however many strips and groups
// share the pass and whether it was saved in between (fp32 stores are exact), so a token's
// result does not depend on the rest of its batch.
template <int S, int G>
void accumulate_span(const uint16_t* a, const uint16_t* b, int64_t group_elems, int64_t n_steps) {
  for (int64_t k = 0; k < n_steps; ++k) {
    const uint16_t* ak = a + k * kPassStepElems;
    const uint16_t* bk = b + k * kColumnStep * kTileTokens;
    _tile_loadd(4, ak, 64);
    _tile_loadd(6, bk, 64);
    _tile_dpbf16ps(0, 4, 6);
    if constexpr (G > 1) {
      _tile_loadd(7, bk + group_elems, 64);
      _tile_dpbf16ps(1, 4, 7);
    }
    if constexpr (S > 1) {
      _tile_loadd(5, ak + kTileElems, 64);
      _tile_dpbf16ps(2, 5, 6);
      if constexpr (G > 1) _tile_dpbf16ps(3, 5, 7);
    }
  }
}

// y rows of the pass's strips for token groups g0 .. g0 + G - 1, from saved accumulators.
template <int S, int G>
void write_outputs(const float* c, int64_t g0, int n_rows, int64_t n_tokens, float* y, int64_t y_stride) {
  for (int s = 0; s < S; ++s) {
    const int rows = std::min(kTileRows, n_rows - s * kTileRows);
    const auto row_mask = static_cast<__mmask16>((1u << rows) - 1);
    for (int g = 0; g < G; ++g) {
      const int64_t t0 = (g0 + g) * kTileTokens;
      const int n_tok = static_cast<int>(std::min<int64_t>(kTileTokens, n_tokens - t0));
      __m512 by_row[kTileRows], by_token[kTileTokens];
      for (int r = 0; r < kTileRows; ++r) by_row[r] = _mm512_load_ps(c + (2 * s + g) * kTileFloats + r * kTileTokens);
      transpose_16x16(by_row, by_token);
      for (int t = 0; t < n_tok; ++t) {
        _mm512_mask_storeu_ps(y + (t0 + t) * y_stride + s * kTileRows, row_mask, by_token[t]);
      }
    }
  }
}

// Everything a pass needs besides its rows; the buffers are the calling thread's.
struct PassContext {
  DType type;
  const TypeTraits* traits;
  size_t w_row_bytes;
  int64_t n_cols;
  const uint16_t* packed_x;
  int64_t n_tokens;
  int64_t y_stride;
  bool first_pass;              // the product's first pass (nothing prefetched for it)
  uint16_t* span_buffer;        // kSpanCols / kColumnStep * kPassStepElems
  float* saved;                 // 4 accumulators per group pair, when they do not fit the tiles
  std::vector<float>* scratch;  // to_float output of the fallback dequantizer
};

// One pass: S strips (n_rows weight rows from w) times all tokens, into y (the pass's first row).
// With up to two token groups the accumulators stay in the tile registers for the whole pass;
// with more, each span saves and reloads them per group pair (8 tile moves per 32 products at
// 2 x 2), which is far cheaper than dequantizing the strips again per group pair.
// Asks for the weight bytes [begin, end) of n_rows rows (each w_row_bytes apart) in the cache.
void prefetch_rows(const uint8_t* w, size_t w_row_bytes, int n_rows, size_t begin, size_t end, int hint) {
  for (int r = 0; r < n_rows; ++r) {
    const char* row = reinterpret_cast<const char*>(w + r * w_row_bytes);
    for (size_t b = begin; b < end; b += 64) {
      if (hint == _MM_HINT_T0) {
        _mm_prefetch(row + b, _MM_HINT_T0);
      } else {
        _mm_prefetch(row + b, _MM_HINT_T1);
      }
    }
  }
}

template <int S>
void multiply_pass(const PassContext& ctx, const uint8_t* w, int n_rows, const uint8_t* next_w, int next_rows,
                   float* y) {
  const int64_t n_groups = (ctx.n_tokens + kTileTokens - 1) / kTileTokens;
  const int64_t n_pairs = (n_groups + 1) / 2;
  const int64_t group_elems = ctx.n_cols * kTileTokens;
  const bool resident = n_pairs == 1;
  const bool two_groups = n_groups > 1;
  const auto n_spans = static_cast<size_t>((ctx.n_cols + kSpanCols - 1) / kSpanCols);
  for (int64_t c0 = 0; c0 < ctx.n_cols; c0 += kSpanCols) {
    const int64_t span = std::min(kSpanCols, ctx.n_cols - c0);
    // A pass reads its rows a span at a time: 32 short strided pieces the hardware prefetchers do
    // not anticipate, so without help every span waits for DRAM (olmoe-shaped Q4_K_M pp64: 120
    // t/s without, 146 with). The next pass's rows are one contiguous block: each span asks for
    // its share of that block (into L2), a whole pass ahead; the first pass of a product has
    // nothing ahead of it, so it also asks for its own next span.
    const auto bytes_before = [&](int64_t col) {
      return static_cast<size_t>(col / ctx.traits->block_size) * ctx.traits->block_bytes;
    };
    if (ctx.first_pass && c0 + span < ctx.n_cols) {
      prefetch_rows(w, ctx.w_row_bytes, n_rows, bytes_before(c0 + span),
                    bytes_before(std::min(ctx.n_cols, c0 + span + kSpanCols)), _MM_HINT_T0);
    }
    if (next_w != nullptr) {
      const size_t block = static_cast<size_t>(next_rows) * ctx.w_row_bytes;
      const size_t share = (block + n_spans - 1) / static_cast<size_t>(n_spans);
      const size_t from = std::min(block, static_cast<size_t>(c0 / kSpanCols) * share);
      prefetch_rows(next_w + from, 0, 1, 0, std::min(share, block - from), _MM_HINT_T1);
    }
    dequantize_span(ctx.type, *ctx.traits, w, ctx.w_row_bytes, n_rows, c0, span, ctx.span_buffer, *ctx.scratch);
    for (int64_t pair = 0; pair < n_pairs; ++pair) {
      const int64_t g0 = 2 * pair;
      const bool both = g0 + 1 < n_groups;
      float* saved = ctx.saved + pair * 4 * kTileFloats;
      const uint16_t* b = ctx.packed_x + g0 * group_elems + c0 * kTileTokens;
      if (both) {
        if (c0 == 0) zero_accumulators<S, 2>(); else if (!resident) load_accumulators<S, 2>(saved);
        accumulate_span<S, 2>(ctx.span_buffer, b, group_elems, span / kColumnStep);
        if (!resident) store_accumulators<S, 2>(saved);
      } else {
        if (c0 == 0) zero_accumulators<S, 1>(); else if (!resident) load_accumulators<S, 1>(saved);
        accumulate_span<S, 1>(ctx.span_buffer, b, group_elems, span / kColumnStep);
        if (!resident) store_accumulators<S, 1>(saved);
      }
    }
  }
  if (resident) {
    if (two_groups) store_accumulators<S, 2>(ctx.saved); else store_accumulators<S, 1>(ctx.saved);
  }
  for (int64_t pair = 0; pair < n_pairs; ++pair) {
    const int64_t g0 = 2 * pair;
    const float* saved = ctx.saved + pair * 4 * kTileFloats;
    if (g0 + 1 < n_groups) {
      write_outputs<S, 2>(saved, g0, n_rows, ctx.n_tokens, y, ctx.y_stride);
    } else {
      write_outputs<S, 1>(saved, g0, n_rows, ctx.n_tokens, y, ctx.y_stride);
    }
  }
}

}  // namespace

void pack_activations(const float* const* rows, int64_t n_tokens, int64_t n_cols, int64_t col_begin,
                      int64_t col_end, uint16_t* packed) {
  const int64_t n_groups = (n_tokens + kTileTokens - 1) / kTileTokens;
  for (int64_t g = 0; g < n_groups; ++g) {
    auto* group = reinterpret_cast<uint32_t*>(packed + g * n_cols * kTileTokens);
    const int64_t t0 = g * kTileTokens;
    const int n_tok = static_cast<int>(std::min<int64_t>(kTileTokens, n_tokens - t0));
    int64_t c = col_begin;
    // 32 columns of 16 tokens at a time: each token's 16 bf16 pairs are one register, and a
    // 16 x 16 transpose of the pairs gives the tile rows (one pair per token).
    for (; c + kColumnStep <= col_end; c += kColumnStep) {
      __m512 by_token[kTileTokens], by_pair[kTileTokens];
      for (int t = 0; t < kTileTokens; ++t) {
        by_token[t] = t < n_tok ? _mm512_castsi512_ps(to_bf16(_mm512_loadu_ps(rows[t0 + t] + c),
                                                              _mm512_loadu_ps(rows[t0 + t] + c + 16)))
                                : _mm512_setzero_ps();
      }
      transpose_16x16(by_token, by_pair);
      for (int p = 0; p < kTileTokens; ++p) _mm512_storeu_ps(group + (c / 2 + p) * kTileTokens, by_pair[p]);
    }
    for (; c < col_end; c += 2) {
      for (int lane = 0; lane < kTileTokens; ++lane) {
        const float* x = lane < n_tok ? rows[t0 + lane] : nullptr;
        group[(c / 2) * kTileTokens + lane] =
            x == nullptr ? 0 : ref::round_to_bf16(x[c]) | (uint32_t{ref::round_to_bf16(x[c + 1])} << 16);
      }
    }
  }
}

void dequantize_rows_bf16(DType type, const uint8_t* w, size_t w_row_bytes, int n_rows, int64_t n_cols,
                          uint16_t* out, int64_t out_stride) {
  const TypeTraits* traits = type_traits(type);
  MOE_CHECK(traits != nullptr && traits->to_float != nullptr);
  thread_local std::vector<float> scratch;
  for (int r = 0; r < n_rows; ++r) {
    dequantize_row(type, *traits, w + r * w_row_bytes, n_cols, out + r * out_stride, kColumnStep, scratch);
  }
}

void matmul(DType type, const uint8_t* w, size_t w_row_bytes, int64_t n_cols, const uint16_t* packed_x,
            int64_t n_tokens, float* y, int64_t y_stride, int64_t row_begin, int64_t row_end) {
  MOE_CHECK(n_cols % kColumnStep == 0);
  use_tile_shape(TileShape::kFullRows);
  const TypeTraits* traits = type_traits(type);
  MOE_CHECK(traits != nullptr && traits->to_float != nullptr);
  constexpr int kPairRows = 2 * kTileRows;  // two strips per pass
  thread_local AlignedVector<uint16_t> span_buffer;
  thread_local AlignedVector<float> saved;
  thread_local std::vector<float> scratch;
  const int64_t n_pairs = ((n_tokens + kTileTokens - 1) / kTileTokens + 1) / 2;
  span_buffer.resize(static_cast<size_t>(kSpanCols / kColumnStep * kPassStepElems));
  saved.resize(static_cast<size_t>(n_pairs * 4 * kTileFloats));
  PassContext ctx{type,      traits, w_row_bytes, n_cols,   packed_x,           n_tokens,
                  y_stride,  true,   span_buffer.data(), saved.data(), &scratch};
  for (int64_t r0 = row_begin; r0 < row_end; r0 += kPairRows) {
    ctx.first_pass = r0 == row_begin;
    const int n_rows = static_cast<int>(std::min<int64_t>(kPairRows, row_end - r0));
    const int64_t next = r0 + kPairRows;
    const uint8_t* next_w = next < row_end ? w + next * w_row_bytes : nullptr;
    const int next_rows = static_cast<int>(std::min<int64_t>(kPairRows, std::max<int64_t>(0, row_end - next)));
    if (n_rows > kTileRows) {
      multiply_pass<2>(ctx, w + r0 * w_row_bytes, n_rows, next_w, next_rows, y + r0);
    } else {
      multiply_pass<1>(ctx, w + r0 * w_row_bytes, n_rows, next_w, next_rows, y + r0);
    }
  }
}

}  // namespace moe::kernels::tiles::amx

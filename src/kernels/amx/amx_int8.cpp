// AMX-INT8 products (see kernels/tile_int8.h). Compiled with AMX-INT8 flags; only called after
// int8_tiles::available().
//
// Shape: a strip of 16 weight rows times a group of 16 tokens per tile product, C[row][token].
// Weights are the A operand (row-major, one row per tile row): Q8_0 rows are loaded straight
// from the mapped file (a block's 32 quants, the next row w_row_bytes on), K-quant rows are
// prepared once per strip into digit tiles (see tile_int8.h) and reused by every token group.
// Activations are the B operand, packed once (pack_activations) in the tile unit's layout (4 consecutive
// columns of one token per 32-bit lane). After each block the integer tiles are stored, scaled
// by d_w * d_x and added in fp32 registers; the next block's tile products run meanwhile.
#include "kernels/amx/amx_int8.h"

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "core/aligned_vector.h"
#include "core/check.h"
#include "kernels/amx/amx_common.h"
#include "kernels/avx512/avx512_common.h"
#include "kernels/blocks.h"
#include "kernels/tile_int8.h"

namespace moe::kernels::int8_tiles::amx {

namespace {

using avx512::unpack_scales_mins;
using tiles::amx::TileShape;
using tiles::amx::transpose_16x16;
using tiles::amx::use_tile_shape;

constexpr int kTileBytes = 1024;  // one full tile: 16 rows of 64 bytes
constexpr int kCFloats = kStripRows * kGroupTokens;

// ---- Activations -------------------------------------------------------------------------------

using Activations = PackedActivations;  // layout: kernels/tile_int8.h

// Token t of group g as 64 bytes at `at` (or zeros past the last token), transposed so register
// k holds bytes 4k..4k+3 of every token: the 16 rows of a B tile.
template <class LoadToken>
void transpose_tokens_to_tile_rows(int n_tok, LoadToken load, int8_t* out, int n_out_rows) {
  __m512 by_token[kGroupTokens], by_row[kGroupTokens];
  for (int t = 0; t < kGroupTokens; ++t) by_token[t] = t < n_tok ? _mm512_castsi512_ps(load(t)) : _mm512_setzero_ps();
  transpose_16x16(by_token, by_row);
  for (int k = 0; k < n_out_rows; ++k) _mm512_store_ps(reinterpret_cast<float*>(out + 64 * k), by_row[k]);
}

void pack_q8_0(const uint8_t* x, size_t x_row_bytes, int64_t n_tokens, int64_t n_blocks, Activations& a) {
  a.n_groups = (n_tokens + kGroupTokens - 1) / kGroupTokens;
  a.n_blocks = n_blocks;
  a.blocks_even = (n_blocks + 1) / 2 * 2;
  a.q.resize(static_cast<size_t>(a.n_groups * a.blocks_even * 8 * 64));
  a.d.resize(static_cast<size_t>(a.n_groups * n_blocks * kGroupTokens));
  for (int64_t g = 0; g < a.n_groups; ++g) {
    const int64_t t0 = g * kGroupTokens;
    const int n_tok = static_cast<int>(std::min<int64_t>(kGroupTokens, n_tokens - t0));
    const auto block = [&](int t, int64_t i) {
      return reinterpret_cast<const BlockQ8_0*>(x + (t0 + t) * x_row_bytes) + i;
    };
    // Two blocks per transpose: rows 0-7 are block i's tile, 8-15 block i + 1's (the next tile).
    for (int64_t i = 0; i < n_blocks; i += 2) {
      const bool two = i + 1 < n_blocks;
      const auto load = [&](int t) {
        const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block(t, i)->qs));
        const __m256i hi = two ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block(t, i + 1)->qs))
                               : _mm256_setzero_si256();
        return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
      };
      transpose_tokens_to_tile_rows(n_tok, load, a.q.data() + (g * a.blocks_even + i) * 8 * 64, 16);
    }
    for (int64_t i = 0; i < n_blocks; ++i) {
      float* d = a.d.data() + (g * n_blocks + i) * kGroupTokens;
      for (int t = 0; t < kGroupTokens; ++t) d[t] = t < n_tok ? _cvtsh_ss(block(t, i)->d) : 0.0f;
    }
  }
}

void pack_q8_k(const uint8_t* x, size_t x_row_bytes, int64_t n_tokens, int64_t n_blocks, Activations& a) {
  a.n_groups = (n_tokens + kGroupTokens - 1) / kGroupTokens;
  a.n_blocks = n_blocks;
  a.q.resize(static_cast<size_t>(a.n_groups * n_blocks * 4 * kTileBytes));
  a.d.resize(static_cast<size_t>(a.n_groups * n_blocks * kGroupTokens));
  a.bsum_pairs.resize(static_cast<size_t>(a.n_groups * n_blocks * 4 * kGroupTokens));
  for (int64_t g = 0; g < a.n_groups; ++g) {
    const int64_t t0 = g * kGroupTokens;
    const int n_tok = static_cast<int>(std::min<int64_t>(kGroupTokens, n_tokens - t0));
    const auto block = [&](int t, int64_t i) {
      return reinterpret_cast<const BlockQ8_K*>(x + (t0 + t) * x_row_bytes) + i;
    };
    for (int64_t i = 0; i < n_blocks; ++i) {
      const int64_t gb = g * n_blocks + i;
      for (int step = 0; step < 4; ++step) {
        const auto load = [&](int t) { return _mm512_loadu_si512(block(t, i)->qs + 64 * step); };
        transpose_tokens_to_tile_rows(n_tok, load, a.q.data() + (gb * 4 + step) * kTileBytes, 16);
      }
      float* d = a.d.data() + gb * kGroupTokens;
      for (int t = 0; t < kGroupTokens; ++t) d[t] = t < n_tok ? block(t, i)->d : 0.0f;
      for (int p = 0; p < 4; ++p) {
        int32_t* pairs = a.bsum_pairs.data() + (gb * 4 + p) * kGroupTokens;
        for (int t = 0; t < kGroupTokens; ++t) {
          if (t >= n_tok) {
            pairs[t] = 0;
            continue;
          }
          int16_t bs[kQK_K / 16];
          std::memcpy(bs, block(t, i)->bsums, sizeof(bs));
          const auto lo = static_cast<uint16_t>(bs[4 * p] + bs[4 * p + 1]);
          const auto hi = static_cast<uint16_t>(bs[4 * p + 2] + bs[4 * p + 3]);
          pairs[t] = static_cast<int32_t>(lo | (uint32_t{hi} << 16));
        }
      }
    }
  }
}

// ---- Weights ------------------------------------------------------------------------------------

// Asks for bytes [0, n) at p in L2. A strip's rows are one contiguous block, but the kernels read
// them a block per row at a time (16 short strided pieces), which the hardware prefetchers do not
// anticipate: each kernel asks for the next strip while it works on this one.
void prefetch_block(const uint8_t* p, size_t n) {
  for (size_t offset = 0; offset < n; offset += 64) _mm_prefetch(reinterpret_cast<const char*>(p + offset), _MM_HINT_T1);
}

// ---- Results -----------------------------------------------------------------------------------

// y[(t0 + t) * y_stride + r] = acc[r][t] for the strip's n_rows rows and the group's n_tok tokens.
void write_outputs(__m512 acc[kStripRows], int n_rows, int n_tok, float* y, int64_t y_stride) {
  __m512 by_token[kGroupTokens];
  transpose_16x16(acc, by_token);
  const auto row_mask = static_cast<__mmask16>((1u << n_rows) - 1);
  for (int t = 0; t < n_tok; ++t) _mm512_mask_storeu_ps(y + t * y_stride, row_mask, by_token[t]);
}

// acc[r] += float(c[r]) * (d_w[r] * d_x) for one block's integer sums.
inline void scale_and_add(const int32_t* c, const float* d_w, __m512 d_x, __m512 acc[kStripRows]) {
  for (int r = 0; r < kStripRows; ++r) {
    const __m512 sums = _mm512_cvtepi32_ps(_mm512_load_si512(c + r * kGroupTokens));
    acc[r] = _mm512_fmadd_ps(sums, _mm512_mul_ps(_mm512_set1_ps(d_w[r]), d_x), acc[r]);
  }
}

// ---- Q8_0 --------------------------------------------------------------------------------------

// One block's tile product, stored to c: on tiles 0 / 4 / 6 (C / A / B), or 1 / 5 / 7 for the
// second block of a round. (The tile intrinsics paste their tile numbers into the instruction
// text, so they must be literals.)
template <bool kSecond>
inline void q8_0_block_product(const uint8_t* w_block, size_t w_row_bytes, const int8_t* b_tile, int32_t* c) {
  const auto stride = static_cast<int64_t>(w_row_bytes);
  const uint8_t* quants = w_block + offsetof(BlockQ8_0, qs);
  if constexpr (!kSecond) {
    _tile_zero(0);
    _tile_loadd(4, quants, stride);
    _tile_loadd(6, b_tile, 64);
    _tile_dpbssd(0, 4, 6);
    _tile_stored(0, c, 64);
  } else {
    _tile_zero(1);
    _tile_loadd(5, quants, stride);
    _tile_loadd(7, b_tile, 64);
    _tile_dpbssd(1, 5, 7);
    _tile_stored(1, c, 64);
  }
}

// Block i's 16 row scales (fp16 d, w_row_bytes apart) as floats at d_w + 16 i.
inline void gather_row_scales(const uint8_t* w, size_t w_row_bytes, int64_t i, float* d_w) {
  const __m512i row_offsets =
      _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                         _mm512_set1_epi32(static_cast<int>(w_row_bytes)));
  const __m512i raw = _mm512_i32gather_epi32(row_offsets, w + i * sizeof(BlockQ8_0), 1);
  _mm512_store_ps(d_w + i * kStripRows, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(raw)));
}

// A full 16-row strip (rows w_row_bytes apart) times every token group; `next` (next_rows rows,
// or null) is asked for in L2 meanwhile. The first group gathers each block's row scales right
// after its tile loads brought those lines in (a separate pass over the strip first would take
// every DRAM miss one gather at a time); later groups reuse them.
void q8_0_strip(const uint8_t* w, size_t w_row_bytes, int64_t n_blocks, const Activations& a, int n_rows,
                const uint8_t* next, int next_rows, int64_t n_tokens, float* y, int64_t y_stride) {
  thread_local AlignedVector<float> d_w;
  d_w.resize(static_cast<size_t>(n_blocks * kStripRows));
  alignas(64) int32_t c[2][kCFloats];
  const auto first_touch = [&](int64_t i) {
    gather_row_scales(w, w_row_bytes, i, d_w.data());
    for (int r = 0; r < next_rows; ++r) prefetch_block(next + r * w_row_bytes + i * sizeof(BlockQ8_0), sizeof(BlockQ8_0));
  };
  for (int64_t g = 0; g < a.n_groups; ++g) {
    const int8_t* b = a.q.data() + g * a.blocks_even * 8 * 64;
    const float* d_x = a.d.data() + g * n_blocks * kGroupTokens;
    __m512 acc[kStripRows];
    for (auto& v : acc) v = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 2 <= n_blocks; i += 2) {
      q8_0_block_product<false>(w + i * sizeof(BlockQ8_0), w_row_bytes, b + i * 512, c[0]);
      q8_0_block_product<true>(w + (i + 1) * sizeof(BlockQ8_0), w_row_bytes, b + (i + 1) * 512, c[1]);
      if (g == 0) {
        first_touch(i);
        first_touch(i + 1);
      }
      scale_and_add(c[0], d_w.data() + i * kStripRows, _mm512_load_ps(d_x + i * kGroupTokens), acc);
      scale_and_add(c[1], d_w.data() + (i + 1) * kStripRows, _mm512_load_ps(d_x + (i + 1) * kGroupTokens), acc);
    }
    if (i < n_blocks) {
      q8_0_block_product<false>(w + i * sizeof(BlockQ8_0), w_row_bytes, b + i * 512, c[0]);
      if (g == 0) first_touch(i);
      scale_and_add(c[0], d_w.data() + i * kStripRows, _mm512_load_ps(d_x + i * kGroupTokens), acc);
    }
    const int n_tok = static_cast<int>(std::min<int64_t>(kGroupTokens, n_tokens - g * kGroupTokens));
    write_outputs(acc, n_rows, n_tok, y + g * kGroupTokens * y_stride, y_stride);
  }
}

// ---- Q4_K --------------------------------------------------------------------------------------

// A strip of K-quant rows prepared for the tiles. Super-block i's digit tiles: digit k of k-step s
// at a + ((i * 4 + s) * n_digits + k) * 1024 (16 rows of 64 bytes); its row factors at
// d / dmin + i * 16 and (Q4_K) the row's 8 mins as int16 pairs at mins + (i * 16 + r) * 4.
struct PreparedStrip {
  AlignedVector<int8_t> a;
  AlignedVector<float> d;
  AlignedVector<float> dmin;
  AlignedVector<int32_t> mins;
};

// The next strip's rows (next_rows of them, right after this strip's) are asked for in L2 block by
// block as this strip's are read: one strip ahead, spread over the work.
// Q5_K is Q4_K with a fifth bit per quant (element 64 c + 32 h + l has it in bit 2 c + h of qh[l]):
// the same digits, with q <= 31 and q * digit <= 217 still one unsigned byte.
template <class Block, bool kFifthBit>
void prepare_q4_k_or_q5_k(const uint8_t* w, size_t w_row_bytes, int n_rows, int next_rows, int64_t n_blocks,
                          PreparedStrip& s) {
  s.a.resize(static_cast<size_t>(n_blocks * 8 * kTileBytes));
  s.d.resize(static_cast<size_t>(n_blocks * kStripRows));
  s.dmin.resize(s.d.size());
  s.mins.resize(static_cast<size_t>(n_blocks * kStripRows * 4));
  const __m512i low_nibbles = _mm512_set1_epi8(0x0f);
  for (int64_t i = 0; i < n_blocks; ++i) {
    for (int r = 0; r < kStripRows; ++r) {
      int8_t* rows = s.a.data() + i * 8 * kTileBytes + r * 64;
      if (r >= n_rows) {  // a short strip: zero rows give zero products
        for (int k = 0; k < 8; ++k) _mm512_store_si512(rows + k * kTileBytes, _mm512_setzero_si512());
        s.d[i * kStripRows + r] = s.dmin[i * kStripRows + r] = 0;
        std::memset(s.mins.data() + (i * kStripRows + r) * 4, 0, 16);
        continue;
      }
      const Block& b = reinterpret_cast<const Block*>(w + r * w_row_bytes)[i];
      if (r < next_rows) prefetch_block(reinterpret_cast<const uint8_t*>(&b) + kStripRows * w_row_bytes, sizeof(b));
      const __m256i scales_mins = _mm256_cvtepu8_epi16(unpack_scales_mins(b.scales));  // 8 scales, 8 mins
      const __m512i scales = _mm512_castsi256_si512(scales_mins);
      for (int step = 0; step < 4; ++step) {
        // Elements 64 step .. + 63: sub-block 2 step in the low nibbles of 32 bytes, 2 step + 1 in
        // the high ones; each 16-bit lane multiplies both its bytes by their sub-block's digit
        // (products <= 15 * 7 fit a byte, so no carry crosses into the neighbour).
        const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * step));
        __m512i q = _mm512_and_si512(
            _mm512_inserti64x4(_mm512_castsi256_si512(bits), _mm256_srli_epi16(bits, 4), 1), low_nibbles);
        if constexpr (kFifthBit) {
          const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh));
          const __m512i qh_pair = _mm512_inserti64x4(_mm512_castsi256_si512(qh), _mm256_srli_epi16(qh, 1), 1);
          const __m512i fifth = _mm512_and_si512(_mm512_srli_epi16(qh_pair, 2 * step), _mm512_set1_epi8(1));
          q = _mm512_or_si512(q, _mm512_slli_epi16(fifth, 4));
        }
        const __m512i index = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi16(static_cast<short>(2 * step))),
                                                 _mm256_set1_epi16(static_cast<short>(2 * step + 1)), 1);
        const __m512i scale = _mm512_permutexvar_epi16(index, scales);
        _mm512_store_si512(rows + (step * 2) * kTileBytes, _mm512_mullo_epi16(q, _mm512_and_si512(scale, _mm512_set1_epi16(7))));
        _mm512_store_si512(rows + (step * 2 + 1) * kTileBytes, _mm512_mullo_epi16(q, _mm512_srli_epi16(scale, 3)));
      }
      s.d[i * kStripRows + r] = _cvtsh_ss(b.d);
      s.dmin[i * kStripRows + r] = _cvtsh_ss(b.dmin);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(s.mins.data() + (i * kStripRows + r) * 4),
                       _mm256_extracti128_si256(scales_mins, 1));
    }
  }
}

// Super-block tile products into accumulators 0 (lo digits) and 1 (hi digits), stored to c_lo /
// c_hi. The tile registers are not renamed, so a load into a register waits until the product
// before it has read that register: two sets of operands (A 2 / 3 with B 6, A 4 / 5 with B 7)
// let one k-step's loads run while the other's products do.
inline void q4_k_block_products(const int8_t* a, const int8_t* b, int32_t* c_lo, int32_t* c_hi) {
  _tile_zero(0);
  _tile_zero(1);
  for (int step = 0; step < 4; step += 2) {
    const int8_t* a0 = a + (step * 2) * kTileBytes;
    _tile_loadd(6, b + step * kTileBytes, 64);
    _tile_loadd(2, a0, 64);
    _tile_loadd(3, a0 + kTileBytes, 64);
    _tile_dpbusd(0, 2, 6);
    _tile_dpbusd(1, 3, 6);
    _tile_loadd(7, b + (step + 1) * kTileBytes, 64);
    _tile_loadd(4, a0 + 2 * kTileBytes, 64);
    _tile_loadd(5, a0 + 3 * kTileBytes, 64);
    _tile_dpbusd(0, 4, 7);
    _tile_dpbusd(1, 5, 7);
  }
  _tile_stored(0, c_lo, 64);
  _tile_stored(1, c_hi, 64);
}

// acc[r] += float(lo + 8 hi) * (d[r] d_x) - float(sum of mins * bsums) * (dmin[r] d_x).
inline void q4_k_scale_and_add(const int32_t* c_lo, const int32_t* c_hi, const PreparedStrip& s, int64_t i,
                               const float* d_x, const int32_t* bsum_pairs, __m512 acc[kStripRows]) {
  const __m512 x = _mm512_load_ps(d_x);
  __m512i pairs[4];
  for (int p = 0; p < 4; ++p) pairs[p] = _mm512_load_si512(bsum_pairs + p * kGroupTokens);
  const float* d = s.d.data() + i * kStripRows;
  const float* dmin = s.dmin.data() + i * kStripRows;
  const int32_t* mins = s.mins.data() + i * kStripRows * 4;
  for (int r = 0; r < kStripRows; ++r) {
    const __m512i sums = _mm512_add_epi32(_mm512_load_si512(c_lo + r * kGroupTokens),
                                          _mm512_slli_epi32(_mm512_load_si512(c_hi + r * kGroupTokens), 3));
    __m512i min_sums = _mm512_setzero_si512();
    for (int p = 0; p < 4; ++p) min_sums = _mm512_dpwssd_epi32(min_sums, _mm512_set1_epi32(mins[4 * r + p]), pairs[p]);
    acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums), _mm512_mul_ps(_mm512_set1_ps(d[r]), x), acc[r]);
    acc[r] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(min_sums), _mm512_mul_ps(_mm512_set1_ps(dmin[r]), x), acc[r]);
  }
}

void q4_k_strip(const PreparedStrip& s, int64_t n_blocks, const Activations& a, int n_rows, int64_t n_tokens,
                float* y, int64_t y_stride) {
  alignas(64) int32_t c[4][kCFloats];  // two super-blocks' lo / hi sums
  for (int64_t g = 0; g < a.n_groups; ++g) {
    const auto tiles_of = [&](int64_t i) { return a.q.data() + (g * n_blocks + i) * 4 * kTileBytes; };
    const auto d_x = [&](int64_t i) { return a.d.data() + (g * n_blocks + i) * kGroupTokens; };
    const auto bsums = [&](int64_t i) { return a.bsum_pairs.data() + (g * n_blocks + i) * 4 * kGroupTokens; };
    __m512 acc[kStripRows];
    for (auto& v : acc) v = _mm512_setzero_ps();
    // Super-block i + 1's products are issued before i is scaled, so the tile unit works on them
    // while the vector units scale (their results go to the other half of c).
    q4_k_block_products(s.a.data(), tiles_of(0), c[0], c[1]);
    for (int64_t i = 0; i < n_blocks; ++i) {
      int32_t* now = c[2 * (i % 2)];
      int32_t* next = c[2 * ((i + 1) % 2)];
      if (i + 1 < n_blocks) q4_k_block_products(s.a.data() + (i + 1) * 8 * kTileBytes, tiles_of(i + 1), next, next + kCFloats);
      q4_k_scale_and_add(now, now + kCFloats, s, i, d_x(i), bsums(i), acc);
    }
    const int n_tok = static_cast<int>(std::min<int64_t>(kGroupTokens, n_tokens - g * kGroupTokens));
    write_outputs(acc, n_rows, n_tok, y + g * kGroupTokens * y_stride, y_stride);
  }
}

// ---- Q6_K --------------------------------------------------------------------------------------

// Q6_K scales are signed 8-bit. In balanced base 8, scale = 64 a + 8 b + c with digits in -3..4,
// so scale * (q - 32) = sum_k 8^k A_k with A_k = (q - 32) * digit_k, each within a signed byte
// (-32 * 4 = -128 .. -32 * -3 = 96): three products per k-step.
constexpr int kQ6KDigits = 3;

// The 16 sub-block scales' three digits as 16-bit lanes: digits[k] lane j = digit k of scale j.
inline void q6_k_scale_digits(const int8_t* scales, __m256i digits[kQ6KDigits]) {
  const __m256i three = _mm256_set1_epi16(3), seven = _mm256_set1_epi16(7);
  __m256i rest = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(scales)));
  for (int k = 0; k < kQ6KDigits - 1; ++k) {
    digits[k] = _mm256_sub_epi16(_mm256_and_si256(_mm256_add_epi16(rest, three), seven), three);
    rest = _mm256_srai_epi16(_mm256_sub_epi16(rest, digits[k]), 3);
  }
  digits[kQ6KDigits - 1] = rest;  // -2..2 for scales in -128..127
}

void prepare_q6_k(const uint8_t* w, size_t w_row_bytes, int n_rows, int next_rows, int64_t n_blocks,
                  PreparedStrip& s) {
  constexpr int kTilesPerBlock = 4 * kQ6KDigits;
  s.a.resize(static_cast<size_t>(n_blocks * kTilesPerBlock * kTileBytes));
  s.d.resize(static_cast<size_t>(n_blocks * kStripRows));
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  const __m512i m2 = _mm512_set1_epi8(3);
  const __m512i low_bytes = _mm512_set1_epi16(0x00ff);
  for (int64_t i = 0; i < n_blocks; ++i) {
    for (int r = 0; r < kStripRows; ++r) {
      int8_t* rows = s.a.data() + i * kTilesPerBlock * kTileBytes + r * 64;
      if (r >= n_rows) {
        for (int k = 0; k < kTilesPerBlock; ++k) _mm512_store_si512(rows + k * kTileBytes, _mm512_setzero_si512());
        s.d[i * kStripRows + r] = 0;
        continue;
      }
      const BlockQ6_K& b = reinterpret_cast<const BlockQ6_K*>(w + r * w_row_bytes)[i];
      if (r < next_rows) prefetch_block(reinterpret_cast<const uint8_t*>(&b) + kStripRows * w_row_bytes, sizeof(b));
      // The quants (0..63) in element order, 64 per register (as the AVX-512 dot kernel).
      __m512i q[4];
      for (int h = 0; h < 2; ++h) {
        const __m512i ql = _mm512_loadu_si512(b.ql + 64 * h);
        const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh + 32 * h));
        const __m512i qh01 = _mm512_inserti64x4(_mm512_castsi256_si512(qh), _mm256_srli_epi16(qh, 2), 1);
        const __m512i qh23 = _mm512_srli_epi16(qh01, 4);
        q[2 * h] = _mm512_or_si512(_mm512_and_si512(ql, m4), _mm512_slli_epi16(_mm512_and_si512(qh01, m2), 4));
        q[2 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4),
                                       _mm512_slli_epi16(_mm512_and_si512(qh23, m2), 4));
      }
      __m256i digits[kQ6KDigits];
      q6_k_scale_digits(b.scales, digits);
      for (int step = 0; step < 4; ++step) {
        // Sub-block 4 step + L (16 elements) is 128-bit quarter L of this step's register.
        const __m512i index = _mm512_inserti64x4(
            _mm512_castsi256_si512(_mm256_set_m128i(_mm_set1_epi16(static_cast<short>(4 * step + 1)),
                                                    _mm_set1_epi16(static_cast<short>(4 * step)))),
            _mm256_set_m128i(_mm_set1_epi16(static_cast<short>(4 * step + 3)), _mm_set1_epi16(static_cast<short>(4 * step + 2))),
            1);
        // q - 32 as signed 16-bit lanes, even and odd bytes apart, so a 16-bit multiply by a
        // signed digit gives each byte's product in the low byte of its lane.
        const __m512i centered = _mm512_sub_epi8(q[step], _mm512_set1_epi8(32));
        const __m512i even = _mm512_srai_epi16(_mm512_slli_epi16(centered, 8), 8);
        const __m512i odd = _mm512_srai_epi16(centered, 8);
        for (int k = 0; k < kQ6KDigits; ++k) {
          const __m512i digit = _mm512_permutexvar_epi16(index, _mm512_castsi256_si512(digits[k]));
          const __m512i tile_row = _mm512_ternarylogic_epi32(_mm512_mullo_epi16(even, digit), low_bytes,
                                                             _mm512_slli_epi16(_mm512_mullo_epi16(odd, digit), 8), 0xEA);
          _mm512_store_si512(rows + (step * kQ6KDigits + k) * kTileBytes, tile_row);
        }
      }
      s.d[i * kStripRows + r] = _cvtsh_ss(b.d);
    }
  }
}

// A super-block's products: accumulator k (0..2) sums digit k's tiles. Operands alternate between
// two sets (A 3 / 4 / 5 with B 6, and the same A with B 7) so the next k-step's activation load
// does not wait for this one's products.
inline void q6_k_block_products(const int8_t* a, const int8_t* b, int32_t* c) {
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  for (int step = 0; step < 4; step += 2) {
    const int8_t* digits = a + step * kQ6KDigits * kTileBytes;
    _tile_loadd(6, b + step * kTileBytes, 64);
    _tile_loadd(3, digits, 64);
    _tile_dpbssd(0, 3, 6);
    _tile_loadd(4, digits + kTileBytes, 64);
    _tile_dpbssd(1, 4, 6);
    _tile_loadd(5, digits + 2 * kTileBytes, 64);
    _tile_dpbssd(2, 5, 6);
    digits += kQ6KDigits * kTileBytes;
    _tile_loadd(7, b + (step + 1) * kTileBytes, 64);
    _tile_loadd(3, digits, 64);
    _tile_dpbssd(0, 3, 7);
    _tile_loadd(4, digits + kTileBytes, 64);
    _tile_dpbssd(1, 4, 7);
    _tile_loadd(5, digits + 2 * kTileBytes, 64);
    _tile_dpbssd(2, 5, 7);
  }
  _tile_stored(0, c, 64);
  _tile_stored(1, c + kCFloats, 64);
  _tile_stored(2, c + 2 * kCFloats, 64);
}

void q6_k_strip(const PreparedStrip& s, int64_t n_blocks, const Activations& a, int n_rows, int64_t n_tokens,
                float* y, int64_t y_stride) {
  alignas(64) int32_t c[kQ6KDigits * kCFloats];
  alignas(64) int32_t sums[kCFloats];
  for (int64_t g = 0; g < a.n_groups; ++g) {
    __m512 acc[kStripRows];
    for (auto& v : acc) v = _mm512_setzero_ps();
    for (int64_t i = 0; i < n_blocks; ++i) {
      const int64_t gb = g * n_blocks + i;
      q6_k_block_products(s.a.data() + i * 4 * kQ6KDigits * kTileBytes, a.q.data() + gb * 4 * kTileBytes, c);
      for (int r = 0; r < kStripRows; ++r) {
        __m512i v = _mm512_load_si512(c + (kQ6KDigits - 1) * kCFloats + r * kGroupTokens);
        for (int k = kQ6KDigits - 2; k >= 0; --k) {
          v = _mm512_add_epi32(_mm512_slli_epi32(v, 3), _mm512_load_si512(c + k * kCFloats + r * kGroupTokens));
        }
        _mm512_store_si512(sums + r * kGroupTokens, v);
      }
      scale_and_add(sums, s.d.data() + i * kStripRows, _mm512_load_ps(a.d.data() + gb * kGroupTokens), acc);
    }
    const int n_tok = static_cast<int>(std::min<int64_t>(kGroupTokens, n_tokens - g * kGroupTokens));
    write_outputs(acc, n_rows, n_tok, y + g * kGroupTokens * y_stride, y_stride);
  }
}

}  // namespace

void pack_activations(DType vec_dot_type, const uint8_t* x, size_t x_row_bytes, int64_t n_tokens, int64_t n_cols,
                      PackedActivations& out) {
  out.vec_dot_type = vec_dot_type;
  out.n_tokens = n_tokens;
  out.n_cols = n_cols;
  if (vec_dot_type == DType::kQ8_0) {
    pack_q8_0(x, x_row_bytes, n_tokens, n_cols / kQK8_0, out);
  } else {
    pack_q8_k(x, x_row_bytes, n_tokens, n_cols / kQK_K, out);
  }
}

void matmul_packed(DType type, const uint8_t* w, size_t w_row_bytes, const PackedActivations& x, float* y,
                   int64_t y_stride, int64_t row_begin, int64_t row_end) {
  thread_local PreparedStrip strip;
  thread_local AlignedVector<uint8_t> short_strip;
  const int64_t n_tokens = x.n_tokens;
  const int next_rows = kStripRows;  // past row_end too: the next chunk of the matrix is usually next
  if (type == DType::kQ8_0) {
    use_tile_shape(TileShape::kHalfRows);
    for (int64_t r0 = row_begin; r0 < row_end; r0 += kStripRows) {
      const int n_rows = static_cast<int>(std::min<int64_t>(kStripRows, row_end - r0));
      const uint8_t* rows = w + r0 * w_row_bytes;
      if (n_rows < kStripRows) {  // the tiles read 16 rows: copy a short strip and pad it with zeros
        short_strip.assign(kStripRows * w_row_bytes, 0);
        std::memcpy(short_strip.data(), rows, n_rows * w_row_bytes);
        rows = short_strip.data();
      }
      q8_0_strip(rows, w_row_bytes, x.n_blocks, x, n_rows, w + (r0 + kStripRows) * w_row_bytes, next_rows, n_tokens,
                 y + r0, y_stride);
    }
    return;
  }
  use_tile_shape(TileShape::kFullRows);
  for (int64_t r0 = row_begin; r0 < row_end; r0 += kStripRows) {
    const int n_rows = static_cast<int>(std::min<int64_t>(kStripRows, row_end - r0));
    const uint8_t* rows = w + r0 * w_row_bytes;
    if (type == DType::kQ4_K) {
      prepare_q4_k_or_q5_k<BlockQ4_K, false>(rows, w_row_bytes, n_rows, next_rows, x.n_blocks, strip);
      q4_k_strip(strip, x.n_blocks, x, n_rows, n_tokens, y + r0, y_stride);
    } else if (type == DType::kQ5_K) {
      prepare_q4_k_or_q5_k<BlockQ5_K, true>(rows, w_row_bytes, n_rows, next_rows, x.n_blocks, strip);
      q4_k_strip(strip, x.n_blocks, x, n_rows, n_tokens, y + r0, y_stride);
    } else {
      prepare_q6_k(rows, w_row_bytes, n_rows, next_rows, x.n_blocks, strip);
      q6_k_strip(strip, x.n_blocks, x, n_rows, n_tokens, y + r0, y_stride);
    }
  }
}

}  // namespace moe::kernels::int8_tiles::amx

// Internal helpers for the AVX-512 (and AMX) translation units only. Everything has internal
// linkage so no AVX-512 copy of an inline function can be chosen by the linker for baseline code.
#pragma once

// GCC 12's _mm512_undefined_* (inside _mm512_cvtph_ps, _mm512_reduce_*_ps, ...) initialise a
// variable with itself, which -Wuninitialized then reports inside the intrinsic headers. The
// pragma must precede the header's first inclusion in the translation unit.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace moe::kernels::avx512 {
namespace {

inline float fp16_to_fp32(uint16_t h) { return _cvtsh_ss(h); }
inline uint16_t fp32_to_fp16(float f) {
  return static_cast<uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

using TileFn = void (*)(int64_t n, const uint8_t* w, size_t w_row_bytes, const uint8_t* x,
                        size_t x_row_bytes, float* y, int64_t y_stride);

// Calls Kernel<R, T> for the runtime tile shape (1..4 x 1..4): the shapes are template
// parameters so the R x T accumulators live in registers.
template <template <int, int> class Kernel>
void dispatch_tile(int64_t n, const uint8_t* w, size_t w_row_bytes, int n_rows, const uint8_t* x,
                   size_t x_row_bytes, int n_tokens, float* y, int64_t y_stride) {
  static constexpr TileFn kTiles[4][4] = {
      {Kernel<1, 1>::run, Kernel<1, 2>::run, Kernel<1, 3>::run, Kernel<1, 4>::run},
      {Kernel<2, 1>::run, Kernel<2, 2>::run, Kernel<2, 3>::run, Kernel<2, 4>::run},
      {Kernel<3, 1>::run, Kernel<3, 2>::run, Kernel<3, 3>::run, Kernel<3, 4>::run},
      {Kernel<4, 1>::run, Kernel<4, 2>::run, Kernel<4, 3>::run, Kernel<4, 4>::run},
  };
  kTiles[n_rows - 1][n_tokens - 1](n, w, w_row_bytes, x, x_row_bytes, y, y_stride);
}

// Decode streams rows tile after tile; while one tile computes, the bytes one tile-length ahead
// (at least kPrefetchAhead bytes past the end of this tile) are prefetched a slice per block, so
// a core keeps more reads in flight than the hardware prefetcher starts on its own (it stops at
// every 4 KiB page). With one-row tiles the lead would otherwise be a single short row (576 bytes
// for a Q4_K row of 1024): 2 KiB ahead measured best (Q4_K, two threads from DRAM: 20.7 GB/s
// at one row ahead, 22.5 at 2 KiB, 21.6 at 4 KiB, 15.9 at 8 KiB). Prefetching past the end of
// the matrix is harmless: prefetches never fault.
inline constexpr size_t kPrefetchAhead = 2048;

inline void prefetch_next_tile_slice(const uint8_t* next_tile, size_t tile_bytes, int64_t step, int64_t n_steps) {
  const size_t slice = (tile_bytes + static_cast<size_t>(n_steps) - 1) / static_cast<size_t>(n_steps);
  const size_t extra = kPrefetchAhead > tile_bytes ? kPrefetchAhead - tile_bytes : 0;
  const uint8_t* begin = next_tile + extra + static_cast<size_t>(step) * slice;
  for (size_t offset = 0; offset < slice; offset += 64) _mm_prefetch(reinterpret_cast<const char*>(begin + offset), _MM_HINT_T0);
}

// Unpacks the 12 bytes of 6-bit scales and mins of a Q4_K/Q5_K super-block into scales 0..7
// (bytes 0..7) and mins 0..7 (bytes 8..15) (what ggml's get_scale_min_k4 does one value at a
// time), inside one 128-bit register: each output word is built from the packed words u0 u1 u2
// by shuffles and per-lane shifts, with no round trip through general registers (whose inserts
// back into a vector cost the shuffle port the K-quant loops are bound by). Reads 16 bytes: the
// 12 packed ones and the 4 after them (the block's quants).
inline __m128i unpack_scales_mins(const uint8_t* packed) {
  const __m128i u = _mm_loadu_si128(reinterpret_cast<const __m128i*>(packed));  // u0 u1 u2 -
  const __m128i x = _mm_shuffle_epi32(u, _MM_SHUFFLE(2, 1, 2, 0));                // u0 u2 u1 u2
  const __m128i y = _mm_shuffle_epi32(u, _MM_SHUFFLE(1, 1, 0, 0));                // u0 u0 u1 u1
  // Words 0 and 2: scales 0-3 and mins 0-3, the low 6 bits of u0 and u1.
  const __m128i low = _mm_and_si128(x, _mm_set1_epi32(0x3f3f3f3f));
  // Words 1 and 3: scales / mins 4-7, low 4 bits from u2 (its low / high nibbles), top two bits
  // from the top of u0 / u1.
  const __m128i nibbles = _mm_and_si128(_mm_srlv_epi32(x, _mm_setr_epi32(0, 0, 0, 4)), _mm_set1_epi32(0x0f0f0f0f));
  const __m128i top = _mm_slli_epi32(_mm_and_si128(_mm_srli_epi32(y, 6), _mm_set1_epi32(0x03030303)), 4);
  return _mm_blend_epi32(low, _mm_or_si128(nibbles, top), 0b1010);
}

// Writes the horizontal sums of the R x T accumulators to y[t * y_stride + r].
template <int R, int T>
inline void store_sums(const __m512 (&acc)[R][T], float* y, int64_t y_stride) {
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) y[t * y_stride + r] = _mm512_reduce_add_ps(acc[r][t]);
  }
}

}  // namespace
}  // namespace moe::kernels::avx512

// Internal helpers shared by the AMX translation units (bf16 tiles, int8 tiles): the tile
// configurations and a 16 x 16 fp32 transpose. Internal linkage, as avx512_common.h.
#pragma once

#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstdint>

namespace moe::kernels::tiles::amx {

// The tile shapes a kernel runs with. Tiles 0-3 are accumulators (16 x 16 int32 / fp32), 4-5
// hold weights (A), 6-7 activations (B).
enum class TileShape {
  kFullRows,   // every tile 16 rows of 64 bytes (bf16 k-steps of 32, int8 k-steps of 64)
  kHalfRows,   // A 16 rows of 32 bytes, B 8 rows of 64 bytes: int8 k-steps of 32 (one Q8_0 block)
};

// Loads the configuration for `shape` unless this thread's tiles already have it (a reload
// zeroes every tile, so kernels set it at their start and keep nothing across calls). One
// definition (amx_tiles.cpp) for every translation unit: the shape a thread's tiles have is one
// fact, whichever kernel set it.
void use_tile_shape(TileShape shape);

namespace {

// out[j][i] = in[i][j] for a 16 x 16 matrix of 32-bit values (held as fp32 registers).
inline void transpose_16x16(const __m512 in[16], __m512 out[16]) {
  __m512 a[16], b[16];
  for (int i = 0; i < 8; ++i) {  // 32-bit interleave of row pairs
    a[2 * i] = _mm512_unpacklo_ps(in[2 * i], in[2 * i + 1]);
    a[2 * i + 1] = _mm512_unpackhi_ps(in[2 * i], in[2 * i + 1]);
  }
  for (int j = 0; j < 4; ++j) {  // 64-bit: each 128-bit lane now holds a transposed 4 x 4 block
    b[4 * j + 0] = _mm512_shuffle_ps(a[4 * j], a[4 * j + 2], 0x44);
    b[4 * j + 1] = _mm512_shuffle_ps(a[4 * j], a[4 * j + 2], 0xEE);
    b[4 * j + 2] = _mm512_shuffle_ps(a[4 * j + 1], a[4 * j + 3], 0x44);
    b[4 * j + 3] = _mm512_shuffle_ps(a[4 * j + 1], a[4 * j + 3], 0xEE);
  }
  for (int m = 0; m < 4; ++m) {  // 128-bit lanes: lane L of b[4j + m] goes to out[4L + m], slot j
    const __m512 u0 = _mm512_shuffle_f32x4(b[m], b[4 + m], 0x44);
    const __m512 u1 = _mm512_shuffle_f32x4(b[m], b[4 + m], 0xEE);
    const __m512 u2 = _mm512_shuffle_f32x4(b[8 + m], b[12 + m], 0x44);
    const __m512 u3 = _mm512_shuffle_f32x4(b[8 + m], b[12 + m], 0xEE);
    out[m] = _mm512_shuffle_f32x4(u0, u2, 0x88);
    out[4 + m] = _mm512_shuffle_f32x4(u0, u2, 0xDD);
    out[8 + m] = _mm512_shuffle_f32x4(u1, u3, 0x88);
    out[12 + m] = _mm512_shuffle_f32x4(u1, u3, 0xDD);
  }
}

}  // namespace
}  // namespace moe::kernels::tiles::amx

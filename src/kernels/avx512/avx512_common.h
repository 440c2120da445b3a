// Internal helpers for the AVX-512 translation units only. Everything has internal linkage so
// no AVX-512 copy of an inline function can be chosen by the linker for baseline code.
#pragma once

// GCC 12's _mm512_undefined_* (inside _mm512_cvtph_ps, _mm512_reduce_*_ps, ...) initialise a
// variable with itself, which -Wuninitialized then reports inside the intrinsic headers. The
// pragma must precede the header's first inclusion in the translation unit.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

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

// Writes the horizontal sums of the R x T accumulators to y[t * y_stride + r].
template <int R, int T>
inline void store_sums(const __m512 (&acc)[R][T], float* y, int64_t y_stride) {
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) y[t * y_stride + r] = _mm512_reduce_add_ps(acc[r][t]);
  }
}

}  // namespace
}  // namespace moe::kernels::avx512

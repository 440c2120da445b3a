// Batched products on the CPU's matrix unit (Intel AMX): weights dequantized to bf16 a strip of
// 16 rows at a time, activations rounded to bf16 once per batch, fp32 accumulation in tiles.
//
// Why: a prefill or a big expert group multiplies one weight matrix by many tokens. The int8
// dot kernels (kernels.h) pay the weight decode once per 4 tokens and run at ~64 MACs a cycle at
// best; a tile unit does 512 bf16 MACs a cycle, so dequantizing a strip once and feeding it to
// the tiles for every token is several times faster from ~4 tokens up. The numbers are not
// llama.cpp's (it quantizes activations to 8 bits; these round them to bf16, which is about as
// precise), so callers use these only where they do not promise llama.cpp's bits: see enabled().
#pragma once

#include <cstddef>
#include <cstdint>

#include "formats/dtype.h"

namespace moe::kernels::tiles {

inline constexpr int kTileRows = 16;    // weight rows per strip (tile height)
inline constexpr int kTileTokens = 16;  // tokens per tile column group
inline constexpr int kColumnStep = 32;  // n_cols must be a multiple of this (bf16 per tile row)

// Returns whether the CPU has AMX-BF16 and the kernel let this process use the tile registers
// (Linux asks for that once per process: arch_prctl ARCH_REQ_XCOMP_PERM). Cached.
bool available();

// Returns whether tile products should be used: available() and switched on, by set_enabled(true)
// or the environment variable MOE_AMX=1. Off by default: the int8 kernels give llama.cpp's bits.
bool enabled();
void set_enabled(bool on);

// Returns whether rows of `type` can be dequantized for the tiles (every type with to_float).
bool supports(DType type);

// Returns whether products with weights of `type` should use the tiles: the types whose own
// rounding is at least as coarse as bf16's (the quantized types, and BF16 itself). F32 and F16
// weights keep the exact kernels: bf16 would drop bits they carry.
bool recommended(DType type);

// Returns the fewest tokens from which a product with `type` weights is faster on the tiles than
// on the int8 kernels (bench/kernel_lab "prefill/", 2048 x 1024 matrix, one thread): a strip's
// bf16 dequantization costs about as much as decoding it for 4 tokens in the int8 kernels for
// Q4_K and Q8_0 (fast table / widening dequantizers), for 8 tokens for Q6_K and the types that
// go through to_float.
int64_t min_tokens(DType type);

// Elements (uint16_t bf16) of n_tokens activation rows of n_cols packed for the tiles: tokens in
// groups of kTileTokens (zero-padded), columns in pairs, so one group's 32 columns are one tile.
size_t packed_size(int64_t n_tokens, int64_t n_cols);

// Rounds rows[t][c] (t < n_tokens, c in [col_begin, col_end)) to bf16 into `packed` (laid out for
// n_tokens x n_cols). Column ranges may be packed separately (by different threads); col_begin
// and col_end must be even. Padding tokens are written as zeros.
void pack_activations(const float* const* rows, int64_t n_tokens, int64_t n_cols, int64_t col_begin,
                      int64_t col_end, uint16_t* packed);

// y[t * y_stride + r] = sum_c W[r][c] * X[t][c] for r in [row_begin, row_end), t < n_tokens, with
// W of `type` (rows `w_row_bytes` apart) and X packed by pack_activations. n_cols must be a
// multiple of kColumnStep. Each weight strip is dequantized once and used for every token.
void matmul(DType type, const uint8_t* w, size_t w_row_bytes, int64_t n_cols, const uint16_t* packed_x,
            int64_t n_tokens, float* y, int64_t y_stride, int64_t row_begin, int64_t row_end);

// Dequantizes n_rows rows of n_cols to bf16 (row r at out + r * out_stride), as matmul does:
// the type's to_float value rounded to nearest even. Exposed for tests.
void dequantize_rows_bf16(DType type, const uint8_t* w, size_t w_row_bytes, int n_rows, int64_t n_cols,
                          uint16_t* out, int64_t out_stride);

namespace ref {
// Scalar references: bf16 rounding (nearest even, as VCVTNE2PS2BF16: subnormals flush to zero)
// and the product matmul computes, from ref to_float, in double.
uint16_t round_to_bf16(float f);
float bf16_to_float(uint16_t h);
void matmul(DType type, const uint8_t* w, size_t w_row_bytes, int64_t n_cols, const float* x, int64_t n_tokens,
            float* y, int64_t y_stride, int64_t row_begin, int64_t row_end);
}  // namespace ref

}  // namespace moe::kernels::tiles

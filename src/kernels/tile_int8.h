// Batched products on the CPU's matrix unit (Intel AMX) in int8, from the activations llama.cpp's
// CPU backend makes (rows of Q8_0 / Q8_K blocks, as matmul_rows takes them).
//
// Why: the bf16 tile products (tile_gemm.h) are fast but round activations to bf16, so their
// logits drift from llama.cpp's and a near-tie expert choice can flip. These keep llama.cpp's
// quantized activations and compute every block's integer dot product exactly, as ggml does;
// only the float steps after it (one fma per block and output, in block order) differ from
// ggml's 8-lane sums, in the last bits. The tile unit multiplies int8 only, so a weight block's
// integer scales are folded into the tile operands in small digits whose products stay 8-bit:
//   Q8_0: the quants themselves (one 32-column tile product per block, scaled per block);
//   Q4_K / Q5_K: q * (scale & 7) and q * (scale >> 3), two products recombined as lo + 8 * hi;
//   Q6_K: (q - 32) * digit for the three balanced base-8 digits (-3..4) of the scale, recombined
//   likewise.
// Each recombination is exact integer arithmetic, so a super-block's sum is the integer ggml's
// kernels form before converting it to float.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/aligned_vector.h"
#include "formats/dtype.h"

namespace moe::kernels::int8_tiles {

inline constexpr int kStripRows = 16;   // weight rows per tile product
inline constexpr int kGroupTokens = 16;  // tokens per tile product

// Returns whether the CPU has AMX-INT8 (with AVX-512 BW/VNNI) and the kernel let this process
// use the tile registers. Cached.
bool available();

// Returns whether the model should use these products: available() and not switched off (by
// set_enabled(false) or MOE_INT8_TILES=0). On by default: the logits stay within float rounding
// of llama.cpp's; switched off, batches take the dot kernels and llama.cpp's exact bits.
bool enabled();
void set_enabled(bool on);

// Returns whether products with weights of `type` have an int8 tile kernel: Q8_0, Q4_K, Q5_K, Q6_K.
bool supports(DType type);

// Returns the fewest tokens from which a product with `type` weights is faster here than on the
// int8 dot kernels (kernels.h); bench/kernel_lab "prefill_int8/".
int64_t min_tokens(DType type);

// y[t * y_stride + r] = dot(row r of W, row t of X) for r in [row_begin, row_end), t < n_tokens:
// W of `type` (rows w_row_bytes apart), X rows in type's vec_dot_type (x_row_bytes apart).
// Each output is the sum over blocks, in block order, of fma(float(exact integer block sum),
// d_w * d_x, acc) (and for Q4_K / Q5_K the mins term, fma(-float(sum of min * bsum), dmin_w * d_x, acc)),
// bit-identical to ref::matmul.
void matmul(DType type, const uint8_t* w, size_t w_row_bytes, int64_t n_cols, const uint8_t* x, size_t x_row_bytes,
            int64_t n_tokens, float* y, int64_t y_stride, int64_t row_begin, int64_t row_end);

// Activations packed for the tile unit once, for any number of products with weights whose
// vec_dot_type they are in (Q8_0, or Q8_K for Q4_K / Q5_K / Q6_K). Why: a product split into row
// chunks (the expert FFN's tasks) would otherwise pack the same group once per chunk. Block b of
// token group g (16 tokens, zero-padded):
//   Q8_0: one 8-row B tile (32 columns) at q + (g * blocks_even + b) * 512;
//   Q8_K: four 16-row B tiles (64 columns each) at q + ((g * n_blocks + b) * 4 + step) * 1024;
// scales at d + (g * n_blocks + b) * 16, and (Q8_K) the sub-block sums in pairs (sub-blocks 2p,
// 2p + 1 as two int16) at bsum_pairs + ((g * n_blocks + b) * 4 + p) * 16.
struct PackedActivations {
  DType vec_dot_type = DType::kQ8_0;
  int64_t n_tokens = 0;
  int64_t n_cols = 0;
  int64_t n_groups = 0;
  int64_t n_blocks = 0;
  int64_t blocks_even = 0;
  AlignedVector<int8_t> q;
  AlignedVector<float> d;
  AlignedVector<int32_t> bsum_pairs;
};

// Packs n_tokens rows of X (in weight_type's vec_dot_type, x_row_bytes apart) into `out`.
void pack_activations(DType weight_type, const uint8_t* x, size_t x_row_bytes, int64_t n_tokens, int64_t n_cols,
                      PackedActivations& out);

// matmul on activations packed by pack_activations for this type's vec_dot_type: the same bits.
void matmul_packed(DType type, const uint8_t* w, size_t w_row_bytes, const PackedActivations& x, float* y,
                   int64_t y_stride, int64_t row_begin, int64_t row_end);

namespace ref {
// Scalar reference of matmul: the same integer block sums and float steps, one output at a time.
void matmul(DType type, const uint8_t* w, size_t w_row_bytes, int64_t n_cols, const uint8_t* x, size_t x_row_bytes,
            int64_t n_tokens, float* y, int64_t y_stride, int64_t row_begin, int64_t row_end);
}  // namespace ref

}  // namespace moe::kernels::int8_tiles

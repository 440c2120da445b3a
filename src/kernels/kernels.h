// The kernel table: one entry per tensor type (ggml's type traits), holding the functions that
// convert, quantize and take dot products of that type. A scalar reference is always built;
// AVX2 and AVX-512 versions live in their own translation units (compiled with their own
// flags) and are chosen once at start-up from cpuid.
#pragma once

#include <cstddef>
#include <cstdint>

#include "formats/dtype.h"

namespace moe::kernels {

enum class Isa { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

const char* isa_name(Isa isa);

// Returns the best ISA this CPU supports (honours MOE_FORCE_ISA, see core/cpu_features.h).
Isa best_isa();

struct TypeTraits {
  DType type;
  int64_t block_size;   // elements per block
  size_t block_bytes;   // bytes per block
  // The type activations are converted to before a dot product with this type (as ggml pairs
  // them: Q4_0/Q5_0/Q8_0 -> Q8_0, Q4_1/Q5_1 -> Q8_1, F16 -> F16, BF16 -> BF16, F32 -> F32).
  DType vec_dot_type;
  // Converts n elements (a whole number of blocks) to float.
  void (*to_float)(const void* src, float* dst, int64_t n);
  // Quantizes n floats (a whole number of blocks) into this type, rounding as ggml's reference
  // quantizer does; null for types that cannot be produced.
  void (*from_float)(const float* src, void* dst, int64_t n);
  // Returns the dot product of n elements: `w` of this type and `x` of vec_dot_type.
  float (*vec_dot)(int64_t n, const void* w, const void* x);
  // Converts activations to this type the way ggml's x86 CPU backend does before its dot
  // products, so our logits follow llama.cpp's. Same as from_float except for Q8_0/Q8_1, where
  // ggml's SIMD quantizer uses 127/amax (not 1/d) and rounds half to even (not half away from
  // zero). Null for types that are never activations.
  void (*from_float_activation)(const float* src, void* dst, int64_t n) = nullptr;
  // Optional fast path of matmul_rows: dots of `n_rows` (1..kTileRows) W rows with `n_tokens`
  // (1..kTileTokens) X rows into y[t * y_stride + r], each bit-identical to vec_dot. Null when
  // the type has none (matmul_rows then loops vec_dot).
  void (*vec_dot_tile)(int64_t n, const uint8_t* w, size_t w_row_bytes, int n_rows,
                       const uint8_t* x, size_t x_row_bytes, int n_tokens, float* y,
                       int64_t y_stride) = nullptr;
  // The same tile in the order llama.cpp sums batches in (llamafile's sgemm; see SumOrder).
  // Set for F32/F16, whose two orders differ; null where the batched order is vec_dot's.
  void (*vec_dot_tile_batched)(int64_t n, const uint8_t* w, size_t w_row_bytes, int n_rows,
                               const uint8_t* x, size_t x_row_bytes, int n_tokens, float* y,
                               int64_t y_stride) = nullptr;
  // Rows per tile for up to kTileTokens tokens (decode, batched decode). Tiles that prefetch the
  // rows after them stream fastest one row at a time, a single linear read per thread (Q4_K on
  // AVX-512, two threads from DRAM: 24 GB/s at 1 row vs 16.5 at 4 for one token, 20.5 vs 15.5
  // for two; olmoe-shaped Q4_K_M decode 21.6 -> 26 t/s); the others keep kTileRows.
  int decode_tile_rows = 4;
};

// llama.cpp's CPU backend sums a matrix product in one of two orders: ggml's vec_dot for a single
// token, llamafile's sgemm for a batch whose shapes it takes. For the quantized types both sum
// blocks in order and agree; for F32/F16 (weights, and attention over an F16/F32 KV cache) they
// differ in the last bits, which is enough to change greedy tokens of a Q8_0 model.
//
// kTileBlocks is ours, not llama.cpp's: the int8 tile unit (tile_int8.h) forms the same exact
// integer sum per block and adds it with one fma per block and output. matmul_rows takes it for
// the types and token counts int8_tiles covers and falls back to kVecDot elsewhere.
enum class SumOrder { kVecDot, kBatched, kTileBlocks };

// Returns the order llama.cpp's AVX-512 backend takes for an (n_rows, n_cols) F32/F16 matrix
// times n_tokens vectors that are already in its vec_dot_type: sgemm needs at least two tokens,
// n_cols a multiple of 16 and n_rows a multiple of 4.
SumOrder llama_cpp_sum_order(int64_t n_rows, int64_t n_cols, int64_t n_tokens);

// The largest tile vec_dot_tile takes: rows x tokens per pass.
inline constexpr int kTileRows = 4;
inline constexpr int kTileTokens = 4;

// Returns the kernels for `type` on the best ISA, or nullptr if the type has none.
const TypeTraits* type_traits(DType type);

// Returns the kernels for `type` on a given ISA (nullptr if that ISA lacks the type or is not
// supported by this CPU). Isa::kScalar always exists for every supported type.
const TypeTraits* type_traits(DType type, Isa isa);

// Y[t * y_stride + r] = dot(row r of W, row t of X) for r in [row_begin, row_end) and
// t in [0, n_tokens). W rows are `w_row_bytes` apart; X rows (already in w's vec_dot_type)
// are `x_row_bytes` apart. Processes several rows and tokens per pass so each weight block is
// loaded once per group of tokens. `order` picks the summation order (see SumOrder).
void matmul_rows(const TypeTraits& traits, const uint8_t* w, size_t w_row_bytes, int64_t n_cols,
                 const uint8_t* x, size_t x_row_bytes, int64_t n_tokens, float* y, int64_t y_stride,
                 int64_t row_begin, int64_t row_end, SumOrder order = SumOrder::kVecDot);

}  // namespace moe::kernels

// Internal: the AMX translation unit's entry points behind kernels/tile_gemm.h.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/tile_gemm.h"

namespace moe::kernels::tiles::amx {

void pack_activations(const float* const* rows, int64_t n_tokens, int64_t n_cols, int64_t col_begin,
                      int64_t col_end, uint16_t* packed);
void dequantize_rows_bf16(DType type, const uint8_t* w, size_t w_row_bytes, int n_rows, int64_t n_cols,
                          uint16_t* out, int64_t out_stride);
void matmul(DType type, const uint8_t* w, size_t w_row_bytes, int64_t n_cols, const uint16_t* packed_x,
            int64_t n_tokens, float* y, int64_t y_stride, int64_t row_begin, int64_t row_end);

}  // namespace moe::kernels::tiles::amx

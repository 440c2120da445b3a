// Internal: the AMX-INT8 translation unit's entry point behind kernels/tile_int8.h.
#pragma once

#include <cstddef>
#include <cstdint>

#include "formats/dtype.h"
#include "kernels/tile_int8.h"

namespace moe::kernels::int8_tiles::amx {

void pack_activations(DType vec_dot_type, const uint8_t* x, size_t x_row_bytes, int64_t n_tokens, int64_t n_cols,
                      PackedActivations& out);
void matmul_packed(DType type, const uint8_t* w, size_t w_row_bytes, const PackedActivations& x, float* y,
                   int64_t y_stride, int64_t row_begin, int64_t row_end);

}  // namespace moe::kernels::int8_tiles::amx

// Kernel selection and matmul_rows. The tables are assembled once: the scalar table, copied and
// overridden by each ISA the CPU supports (see kernel_table.h).
#include "kernels/kernels.h"

#include <algorithm>
#include <array>
#include <vector>

#include "core/check.h"
#include "core/cpu_features.h"
#include "kernels/kernel_table.h"
#include "kernels/tile_int8.h"

namespace moe::kernels {

namespace {

bool cpu_has(Isa isa) {
  const CpuFeatures& f = cpu_features();
  const bool avx2 = f.avx2 && f.fma && f.f16c;
  switch (isa) {
    case Isa::kScalar:
      return true;
    case Isa::kAvx2:
      return avx2;
    case Isa::kAvx512:
      // VNNI is required: our int8 dots are built on vpdpbusd. (AVX512DQ is implied by BW on
      // every CPU that has VNNI, so cpu_features() does not report it separately.)
      return avx2 && f.avx512f && f.avx512bw && f.avx512vl && f.avx512vnni;
  }
  return false;
}

using IsaTables = std::array<std::vector<TypeTraits>, 3>;

IsaTables build_tables() {
  IsaTables tables;
  const auto scalar = ref::all_type_traits();
  tables[static_cast<int>(Isa::kScalar)].assign(scalar.begin(), scalar.end());
  if (cpu_has(Isa::kAvx2)) {
    auto& t = tables[static_cast<int>(Isa::kAvx2)];
    t.assign(scalar.begin(), scalar.end());
    for (TypeTraits& traits : t) avx2::override_kernels(traits);
  }
  if (cpu_has(Isa::kAvx512)) {
    // Starts from the AVX2 table so types without AVX-512 kernels still get AVX2 ones.
    auto& t = tables[static_cast<int>(Isa::kAvx512)];
    t = tables[static_cast<int>(Isa::kAvx2)];
    for (TypeTraits& traits : t) avx512::override_kernels(traits, cpu_features().avx512bf16);
  }
  return tables;
}

const IsaTables& tables() {
  static const IsaTables kTables = build_tables();
  return kTables;
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return "scalar";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512:
      return "avx512";
  }
  return "unknown";
}

Isa best_isa() {
  static const Isa kBest = cpu_has(Isa::kAvx512) ? Isa::kAvx512
                           : cpu_has(Isa::kAvx2) ? Isa::kAvx2
                                                 : Isa::kScalar;
  return kBest;
}

const TypeTraits* type_traits(DType type) { return type_traits(type, best_isa()); }

const TypeTraits* type_traits(DType type, Isa isa) {
  for (const TypeTraits& traits : tables()[static_cast<int>(isa)]) {
    if (traits.type == type) return &traits;
  }
  return nullptr;
}

// The conditions under which ggml_compute_forward_mul_mat hands a product to llamafile_sgemm
// (tinyBLAS with 16-float vectors needs k % 16 == 0 and m % 4 == 0; it declines n < 2).
SumOrder llama_cpp_sum_order(int64_t n_rows, int64_t n_cols, int64_t n_tokens) {
  return n_tokens >= 2 && n_cols % 16 == 0 && n_rows % 4 == 0 ? SumOrder::kBatched : SumOrder::kVecDot;
}

// Rows outer, tokens inner: a group of kTileRows weight rows is streamed from memory once and
// stays in L1 while every token group passes over it. Up to kTileTokens tokens (decode, batched
// decode): decode_tile_rows rows per tile, as these are bound by how fast one thread streams
// weights; beyond, compute dominates and the rows share their activation loads.

void matmul_rows(const TypeTraits& traits, const uint8_t* w, size_t w_row_bytes, int64_t n_cols,
                 const uint8_t* x, size_t x_row_bytes, int64_t n_tokens, float* y, int64_t y_stride,
                 int64_t row_begin, int64_t row_end, SumOrder order) {
  MOE_CHECK(traits.vec_dot != nullptr);
  MOE_CHECK(n_cols % traits.block_size == 0);
  if (order == SumOrder::kTileBlocks) {
    if (int8_tiles::available() && int8_tiles::supports(traits.type)) {
      return int8_tiles::matmul(traits.type, w, w_row_bytes, n_cols, x, x_row_bytes, n_tokens, y, y_stride, row_begin,
                                row_end);
    }
    order = SumOrder::kVecDot;
  }
  auto* const tile = order == SumOrder::kBatched && traits.vec_dot_tile_batched != nullptr
                         ? traits.vec_dot_tile_batched
                         : traits.vec_dot_tile;
  const int64_t tile_rows = n_tokens <= kTileTokens ? traits.decode_tile_rows : kTileRows;
  for (int64_t r0 = row_begin; r0 < row_end; r0 += tile_rows) {
    const int n_rows = static_cast<int>(std::min<int64_t>(tile_rows, row_end - r0));
    const uint8_t* w_tile = w + r0 * w_row_bytes;
    for (int64_t t0 = 0; t0 < n_tokens; t0 += kTileTokens) {
      const int n_tok = static_cast<int>(std::min<int64_t>(kTileTokens, n_tokens - t0));
      const uint8_t* x_tile = x + t0 * x_row_bytes;
      float* y_tile = y + t0 * y_stride + r0;
      if (tile != nullptr) {
        tile(n_cols, w_tile, w_row_bytes, n_rows, x_tile, x_row_bytes, n_tok, y_tile, y_stride);
        continue;
      }
      for (int t = 0; t < n_tok; ++t) {
        for (int r = 0; r < n_rows; ++r) {
          y_tile[t * y_stride + r] =
              traits.vec_dot(n_cols, w_tile + r * w_row_bytes, x_tile + t * x_row_bytes);
        }
      }
    }
  }
}

}  // namespace moe::kernels

// Dispatch and scalar references of the tile products (kernels/tile_gemm.h).
#include "kernels/tile_gemm.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <bit>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/check.h"
#include "core/cpu_features.h"
#include "kernels/amx/amx_tiles.h"
#include "kernels/kernels.h"

namespace moe::kernels::tiles {

namespace {

// Linux keeps the 8 KiB tile state off until a process asks (arch/x86/include/uapi/asm/prctl.h).
constexpr int kArchReqXcompPerm = 0x1023;
constexpr int kXfeatureXtiledata = 18;

bool request_tile_state() {
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
}

// Off unless asked for (MOE_AMX=1 or --amx): bf16 activations move logits off llama.cpp's bits.
bool enabled_by_environment() {
  const char* env = std::getenv("MOE_AMX");
  return env != nullptr && std::strcmp(env, "1") == 0;
}

std::atomic<bool>& switch_state() {
  static std::atomic<bool> on{enabled_by_environment()};
  return on;
}

}  // namespace

bool available() {
  static const bool kAvailable = cpu_features().amx_bf16 && request_tile_state();
  return kAvailable;
}

bool enabled() { return switch_state().load(std::memory_order_relaxed) && available(); }

void set_enabled(bool on) { switch_state().store(on, std::memory_order_relaxed); }

bool supports(DType type) {
  const TypeTraits* traits = type_traits(type);
  return traits != nullptr && traits->to_float != nullptr;
}

bool recommended(DType type) { return type != DType::kF32 && type != DType::kF16 && supports(type); }

int64_t min_tokens(DType type) { return type == DType::kQ4_K || type == DType::kQ8_0 ? 5 : 8; }

size_t packed_size(int64_t n_tokens, int64_t n_cols) {
  const int64_t n_groups = (n_tokens + kTileTokens - 1) / kTileTokens;
  return static_cast<size_t>(n_groups * kTileTokens * n_cols);
}

void pack_activations(const float* const* rows, int64_t n_tokens, int64_t n_cols, int64_t col_begin,
                      int64_t col_end, uint16_t* packed) {
  MOE_CHECK(available());
  MOE_CHECK(col_begin % 2 == 0 && col_end % 2 == 0 && 0 <= col_begin && col_begin <= col_end && col_end <= n_cols);
  amx::pack_activations(rows, n_tokens, n_cols, col_begin, col_end, packed);
}

void matmul(DType type, const uint8_t* w, size_t w_row_bytes, int64_t n_cols, const uint16_t* packed_x,
            int64_t n_tokens, float* y, int64_t y_stride, int64_t row_begin, int64_t row_end) {
  MOE_CHECK(available() && supports(type));
  amx::matmul(type, w, w_row_bytes, n_cols, packed_x, n_tokens, y, y_stride, row_begin, row_end);
}

void dequantize_rows_bf16(DType type, const uint8_t* w, size_t w_row_bytes, int n_rows, int64_t n_cols,
                          uint16_t* out, int64_t out_stride) {
  MOE_CHECK(available() && supports(type));
  amx::dequantize_rows_bf16(type, w, w_row_bytes, n_rows, n_cols, out, out_stride);
}

namespace ref {

uint16_t round_to_bf16(float f) {
  auto bits = std::bit_cast<uint32_t>(f);
  if ((bits & 0x7f800000u) == 0) return static_cast<uint16_t>((bits >> 16) & 0x8000u);  // zero, subnormal
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);  // quiet NaN
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

float bf16_to_float(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }

void matmul(DType type, const uint8_t* w, size_t w_row_bytes, int64_t n_cols, const float* x, int64_t n_tokens,
            float* y, int64_t y_stride, int64_t row_begin, int64_t row_end) {
  const TypeTraits* traits = type_traits(type, Isa::kScalar);
  MOE_CHECK(traits != nullptr && traits->to_float != nullptr);
  std::vector<float> row(static_cast<size_t>(n_cols));
  for (int64_t r = row_begin; r < row_end; ++r) {
    traits->to_float(w + r * w_row_bytes, row.data(), n_cols);
    for (int64_t t = 0; t < n_tokens; ++t) {
      double sum = 0;
      for (int64_t c = 0; c < n_cols; ++c) {
        sum += static_cast<double>(bf16_to_float(round_to_bf16(row[c]))) *
               bf16_to_float(round_to_bf16(x[t * n_cols + c]));
      }
      y[t * y_stride + r] = static_cast<float>(sum);
    }
  }
}

}  // namespace ref

}  // namespace moe::kernels::tiles

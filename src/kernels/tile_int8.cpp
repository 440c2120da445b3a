// Dispatch and scalar references of the int8 tile products (kernels/tile_int8.h).
#include "kernels/tile_int8.h"

#include <xmmintrin.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "core/check.h"
#include "core/cpu_features.h"
#include "kernels/amx/amx_int8.h"
#include "kernels/blocks.h"
#include "kernels/fp16.h"
#include "kernels/quant_tables.h"
#include "kernels/tile_gemm.h"

namespace moe::kernels::int8_tiles {

bool available() {
  // tiles::available() asks Linux for the tile state (once per process), which both units share.
  static const bool kAvailable = cpu_features().amx_int8 && tiles::available();
  return kAvailable;
}

namespace {

bool enabled_by_environment() {
  const char* env = std::getenv("MOE_INT8_TILES");
  return env == nullptr || std::strcmp(env, "0") != 0;
}

std::atomic<bool>& switch_state() {
  static std::atomic<bool> on{enabled_by_environment()};
  return on;
}

}  // namespace

bool enabled() { return switch_state().load(std::memory_order_relaxed) && available(); }

void set_enabled(bool on) { switch_state().store(on, std::memory_order_relaxed); }

bool supports(DType type) {
  return type == DType::kQ8_0 || type == DType::kQ4_K || type == DType::kQ5_K || type == DType::kQ6_K;
}

// Crossovers measured with the weights coming from DRAM (bench/kernel_lab "prefill/.../cold",
// one 2048 x 1024 matrix, one thread): Q8_0 from 2 tokens (192 vs 224 us), Q4_K from 5 (~240 vs
// 260), Q5_K from 2 (its dot kernel has no multi-token tile: 243 vs 281 us), Q6_K from 8 (its
// tiles need three digit products per k-step: 358 vs 353 us at 8, 347 vs 648 at 16).
int64_t min_tokens(DType type) {
  switch (type) {
    case DType::kQ8_0:
      return 2;
    case DType::kQ4_K:
      return 5;
    case DType::kQ5_K:
      return 2;
    default:
      return 8;
  }
}

namespace {

DType activation_type(DType weight_type) { return weight_type == DType::kQ8_0 ? DType::kQ8_0 : DType::kQ8_K; }

}  // namespace

void pack_activations(DType weight_type, const uint8_t* x, size_t x_row_bytes, int64_t n_tokens, int64_t n_cols,
                      PackedActivations& out) {
  MOE_CHECK(available() && supports(weight_type));
  MOE_CHECK(n_cols % (weight_type == DType::kQ8_0 ? kQK8_0 : kQK_K) == 0 && n_tokens >= 0);
  amx::pack_activations(activation_type(weight_type), x, x_row_bytes, n_tokens, n_cols, out);
}

void matmul_packed(DType type, const uint8_t* w, size_t w_row_bytes, const PackedActivations& x, float* y,
                   int64_t y_stride, int64_t row_begin, int64_t row_end) {
  MOE_CHECK(available() && supports(type) && x.vec_dot_type == activation_type(type) && row_begin <= row_end);
  // The kernels gather row scales with 32-bit offsets of up to 15 rows.
  MOE_CHECK(w_row_bytes < (size_t{1} << 27));
  if (x.n_tokens == 0 || row_begin == row_end) return;
  amx::matmul_packed(type, w, w_row_bytes, x, y, y_stride, row_begin, row_end);
}

void matmul(DType type, const uint8_t* w, size_t w_row_bytes, int64_t n_cols, const uint8_t* x, size_t x_row_bytes,
            int64_t n_tokens, float* y, int64_t y_stride, int64_t row_begin, int64_t row_end) {
  thread_local PackedActivations packed;
  // The first strip's rows, into L2 while the activations are packed.
  const size_t first_strip = static_cast<size_t>(std::min<int64_t>(kStripRows, row_end - row_begin)) * w_row_bytes;
  for (size_t offset = 0; offset < first_strip; offset += 64) {
    _mm_prefetch(reinterpret_cast<const char*>(w + row_begin * w_row_bytes + offset), _MM_HINT_T1);
  }
  pack_activations(type, x, x_row_bytes, n_tokens, n_cols, packed);
  matmul_packed(type, w, w_row_bytes, packed, y, y_stride, row_begin, row_end);
}

namespace ref {

namespace {

float dot_q8_0(const BlockQ8_0* w, const BlockQ8_0* x, int64_t n_blocks) {
  float acc = 0;
  for (int64_t i = 0; i < n_blocks; ++i) {
    int32_t sum = 0;
    for (int k = 0; k < kQK8_0; ++k) sum += int32_t{w[i].qs[k]} * x[i].qs[k];
    acc = std::fmaf(static_cast<float>(sum), fp16_to_fp32(w[i].d) * fp16_to_fp32(x[i].d), acc);
  }
  return acc;
}

// Element e of a Q4_K super-block: its 4-bit quant.
int q4_k_quant(const BlockQ4_K& b, int e) {
  const uint8_t byte = b.qs[32 * (e / 64) + e % 32];
  return e % 64 < 32 ? byte & 0x0f : byte >> 4;
}

// Element e of a Q5_K super-block: its 4 low bits as Q4_K's, the fifth in bit 2 c + h of qh[l]
// (e = 64 c + 32 h + l).
int q5_k_quant(const BlockQ5_K& b, int e) {
  const uint8_t byte = b.qs[32 * (e / 64) + e % 32];
  const int low = e % 64 < 32 ? byte & 0x0f : byte >> 4;
  const int bit = 2 * (e / 64) + (e % 64) / 32;
  return low | ((b.qh[e % 32] >> bit) & 1) << 4;
}

// Q4_K and Q5_K: sum_j scale_j * (q . x over sub-block j) - the mins term, as ggml sums them.
template <class Block, int (*Quant)(const Block&, int)>
float dot_q4_k_or_q5_k(const Block* w, const BlockQ8_K* x, int64_t n_blocks) {
  float acc = 0;
  for (int64_t i = 0; i < n_blocks; ++i) {
    int32_t sum = 0, mins = 0;
    for (int j = 0; j < kQK_K / 32; ++j) {
      uint8_t scale = 0, min = 0;
      scale_min_k4(j, w[i].scales, &scale, &min);
      int32_t sub = 0;
      for (int e = 32 * j; e < 32 * j + 32; ++e) sub += Quant(w[i], e) * x[i].qs[e];
      sum += scale * sub;
      mins += min * (x[i].bsums[2 * j] + x[i].bsums[2 * j + 1]);
    }
    acc = std::fmaf(static_cast<float>(sum), fp16_to_fp32(w[i].d) * x[i].d, acc);
    acc = std::fmaf(-static_cast<float>(mins), fp16_to_fp32(w[i].dmin) * x[i].d, acc);
  }
  return acc;
}

// Element e of a Q6_K super-block: its quant minus 32 (ggml's dequantize_row_q6_K layout).
int q6_k_quant(const BlockQ6_K& b, int e) {
  const int half = e / 128, c = e % 128 / 32, l = e % 32;
  const uint8_t ql = b.ql[64 * half + l + 32 * (c % 2)];
  const int low = c < 2 ? ql & 0x0f : ql >> 4;
  const int high = (b.qh[32 * half + l] >> (2 * c)) & 3;
  return (low | high << 4) - 32;
}

float dot_q6_k(const BlockQ6_K* w, const BlockQ8_K* x, int64_t n_blocks) {
  float acc = 0;
  for (int64_t i = 0; i < n_blocks; ++i) {
    int32_t sum = 0;
    for (int e = 0; e < kQK_K; ++e) sum += w[i].scales[e / 16] * q6_k_quant(w[i], e) * x[i].qs[e];
    acc = std::fmaf(static_cast<float>(sum), fp16_to_fp32(w[i].d) * x[i].d, acc);
  }
  return acc;
}

}  // namespace

void matmul(DType type, const uint8_t* w, size_t w_row_bytes, int64_t n_cols, const uint8_t* x, size_t x_row_bytes,
            int64_t n_tokens, float* y, int64_t y_stride, int64_t row_begin, int64_t row_end) {
  MOE_CHECK(supports(type));
  for (int64_t r = row_begin; r < row_end; ++r) {
    const uint8_t* row = w + r * w_row_bytes;
    for (int64_t t = 0; t < n_tokens; ++t) {
      const uint8_t* xt = x + t * x_row_bytes;
      float& out = y[t * y_stride + r];
      switch (type) {
        case DType::kQ8_0:
          out = dot_q8_0(reinterpret_cast<const BlockQ8_0*>(row), reinterpret_cast<const BlockQ8_0*>(xt),
                         n_cols / kQK8_0);
          break;
        case DType::kQ4_K:
          out = dot_q4_k_or_q5_k<BlockQ4_K, q4_k_quant>(reinterpret_cast<const BlockQ4_K*>(row),
                                                         reinterpret_cast<const BlockQ8_K*>(xt), n_cols / kQK_K);
          break;
        case DType::kQ5_K:
          out = dot_q4_k_or_q5_k<BlockQ5_K, q5_k_quant>(reinterpret_cast<const BlockQ5_K*>(row),
                                                         reinterpret_cast<const BlockQ8_K*>(xt), n_cols / kQK_K);
          break;
        default:
          out = dot_q6_k(reinterpret_cast<const BlockQ6_K*>(row), reinterpret_cast<const BlockQ8_K*>(xt),
                         n_cols / kQK_K);
      }
    }
  }
}

}  // namespace ref

}  // namespace moe::kernels::int8_tiles

// Scalar to_float / from_float of the table-valued 4-bit types: IQ4_NL, IQ4_XS (non-linear
// levels) and MXFP4 (E2M1 values with an E8M0 exponent, GPT-OSS's expert format). Quantizers
// reproduce llama-quantize's output without an importance matrix (ggml's quantize_iq4_nl /
// quantize_iq4_xs with 7 scale trials, quantize_row_mxfp4_ref) operation for operation.
#include <cmath>
#include <cstring>

#include "kernels/blocks.h"
#include "kernels/fp16.h"
#include "kernels/quant_tables.h"
#include "kernels/ref/ref_kquant_search.h"
#include "kernels/ref/ref_kquants.h"

namespace moe::kernels::ref {

namespace {

constexpr float kGroupMaxEps = 1e-15f;
constexpr int kIq4Trials = 7;  // scale trials either side of the first guess (llama-quantize's)

// Index of the table value nearest to v (table sorted ascending; the upper one wins ties).
int nearest_level(const int8_t* values, float v) {
  if (v <= values[0]) return 0;
  if (v >= values[15]) return 15;
  int lo = 0, hi = 15;
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    if (v < values[mid]) {
      hi = mid;
    } else {
      lo = mid;
    }
  }
  return v - values[hi - 1] < values[hi] - v ? hi - 1 : hi;
}

// Sums sum w q x and sum w q^2 (w = x^2) of the levels x * inv_scale selects.
void level_sums(const float* x, float inv_scale, float* sumqx, float* sumq2, uint8_t* levels) {
  *sumqx = 0;
  *sumq2 = 0;
  for (int j = 0; j < 32; ++j) {
    const int l = nearest_level(kIq4nlValues, inv_scale * x[j]);
    if (levels != nullptr) levels[j] = static_cast<uint8_t>(l);
    const float q = kIq4nlValues[l];
    const float w = x[j] * x[j];
    *sumqx += w * q * x[j];
    *sumq2 += w * q * q;
  }
}

// Best scale of one 32-element block: start at max / -127, then try 2 kIq4Trials + 1 inverse
// scales, keeping the one maximising sumqx^2 / sumq2. Returns 0 for an all-zero block.
float search_iq4_scale(const float* x, uint8_t* levels) {
  float amax = 0, max = 0;
  for (int j = 0; j < 32; ++j) {
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  if (amax < kGroupMaxEps) return 0.0f;
  const float d0 = -max / static_cast<float>(kIq4nlValues[0]);
  float sumqx, sumq2;
  level_sums(x, 1 / d0, &sumqx, &sumq2, levels);
  float d = sumq2 > 0 ? sumqx / sumq2 : 0.f;
  float best = d * sumqx;
  for (int t = -kIq4Trials; t <= kIq4Trials; ++t) {
    const float inv_scale = static_cast<float>(t + kIq4nlValues[0]) / max;
    level_sums(x, inv_scale, &sumqx, &sumq2, nullptr);
    if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
      d = sumqx / sumq2;
      best = d * sumqx;
    }
  }
  return d;
}

void pack_nibbles(const uint8_t* levels, uint8_t* qs) {
  for (int j = 0; j < 16; ++j) qs[j] = static_cast<uint8_t>(levels[j] | (levels[16 + j] << 4));
}

void quantize_iq4_nl_block(const float* x, BlockIQ4_NL& y) {
  uint8_t levels[32];
  const float d = search_iq4_scale(x, levels);
  y.d = fp32_to_fp16(d);
  const float id = d != 0.0f ? 1 / d : 0;  // requantize with the unrounded (float) scale
  for (int j = 0; j < 32; ++j) levels[j] = static_cast<uint8_t>(nearest_level(kIq4nlValues, id * x[j]));
  pack_nibbles(levels, y.qs);
}

// IQ4_XS: per-32 scales quantized to 6 bits (signed, stored + 32) against the super-block's
// largest-magnitude one, then every block requantized with its stored scale.
void quantize_iq4_xs_block(const float* x, BlockIQ4_XS& y) {
  uint8_t levels[kQK_K];
  float scales[8];
  float max_scale = 0, amax_scale = 0;
  for (int ib = 0; ib < 8; ++ib) {
    scales[ib] = search_iq4_scale(x + 32 * ib, levels + 32 * ib);
    if (std::fabs(scales[ib]) > amax_scale) {
      amax_scale = std::fabs(scales[ib]);
      max_scale = scales[ib];
    }
  }
  y.scales_h = 0;
  std::memset(y.scales_l, 0, sizeof(y.scales_l));
  const float d = -max_scale / 32;
  y.d = fp32_to_fp16(d);
  const float id = d != 0.0f ? 1 / d : 0.f;
  for (int ib = 0; ib < 8; ++ib) {
    int l = nearest_int(id * scales[ib]);
    l = l < -32 ? -32 : l > 31 ? 31 : l;
    const float dl = d * static_cast<float>(l);
    const float idl = dl != 0.0f ? 1 / dl : 0.f;
    for (int j = 0; j < 32; ++j) {
      levels[32 * ib + j] = static_cast<uint8_t>(nearest_level(kIq4nlValues, idl * x[32 * ib + j]));
    }
    l += 32;
    y.scales_l[ib / 2] |= static_cast<uint8_t>((l & 0x0f) << (4 * (ib % 2)));
    y.scales_h |= static_cast<uint16_t>((l >> 4) << (2 * ib));
  }
  for (int ib = 0; ib < 8; ++ib) pack_nibbles(levels + 32 * ib, y.qs + 16 * ib);
}

// Index of the doubled E2M1 value nearest to x / scale (first wins ties, so +0 beats -0).
int nearest_mxfp4(float x, float half_scale) {
  int best = 0;
  float best_err = std::fabs(static_cast<float>(kMxfp4Values[0]) * half_scale - x);
  for (int i = 1; i < 16; ++i) {
    const float err = std::fabs(static_cast<float>(kMxfp4Values[i]) * half_scale - x);
    if (err < best_err) {
      best = i;
      best_err = err;
    }
  }
  return best;
}

void quantize_mxfp4_block(const float* x, BlockMXFP4& y) {
  float amax = 0;
  for (int j = 0; j < 32; ++j) {
    if (amax < std::fabs(x[j])) amax = std::fabs(x[j]);
  }
  // Exponent so that amax lands in [4, 8) times 2^(e-127): E2M1's largest value is 6.
  // ggml casts the float straight to uint8_t; on x86 that is a truncation to int, low byte kept.
  const float e_float = std::floor(std::log2(amax)) - 2 + 127;
  y.e = amax > 0.0f ? static_cast<uint8_t>(static_cast<int>(e_float)) : 0;
  const float half_scale = mxfp4_half_scale(y.e);
  for (int j = 0; j < 16; ++j) {
    y.qs[j] = static_cast<uint8_t>(nearest_mxfp4(x[j], half_scale) | (nearest_mxfp4(x[16 + j], half_scale) << 4));
  }
}

}  // namespace

void from_float_iq4_nl(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockIQ4_NL*>(dst);
  for (int64_t i = 0; i < n / kQK4_NL; ++i) quantize_iq4_nl_block(src + i * kQK4_NL, b[i]);
}

void from_float_iq4_xs(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockIQ4_XS*>(dst);
  for (int64_t i = 0; i < n / kQK_K; ++i) quantize_iq4_xs_block(src + i * kQK_K, b[i]);
}

void from_float_mxfp4(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockMXFP4*>(dst);
  for (int64_t i = 0; i < n / kQK_MXFP4; ++i) quantize_mxfp4_block(src + i * kQK_MXFP4, b[i]);
}

void to_float_iq4_nl(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const BlockIQ4_NL*>(src);
  for (int64_t i = 0; i < n / kQK4_NL; ++i, dst += kQK4_NL) {
    const float d = fp16_to_fp32(b[i].d);
    for (int j = 0; j < 16; ++j) {
      dst[j] = d * static_cast<float>(kIq4nlValues[b[i].qs[j] & 0x0f]);
      dst[j + 16] = d * static_cast<float>(kIq4nlValues[b[i].qs[j] >> 4]);
    }
  }
}

void to_float_iq4_xs(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const BlockIQ4_XS*>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = fp16_to_fp32(b[i].d);
    for (int ib = 0; ib < 8; ++ib, dst += 32) {
      const int ls = ((b[i].scales_l[ib / 2] >> (4 * (ib % 2))) & 0x0f) | (((b[i].scales_h >> (2 * ib)) & 3) << 4);
      const float dl = d * static_cast<float>(ls - 32);
      const uint8_t* qs = b[i].qs + 16 * ib;
      for (int j = 0; j < 16; ++j) {
        dst[j] = dl * static_cast<float>(kIq4nlValues[qs[j] & 0x0f]);
        dst[j + 16] = dl * static_cast<float>(kIq4nlValues[qs[j] >> 4]);
      }
    }
  }
}

void to_float_mxfp4(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const BlockMXFP4*>(src);
  for (int64_t i = 0; i < n / kQK_MXFP4; ++i, dst += kQK_MXFP4) {
    const float d = mxfp4_half_scale(b[i].e);
    for (int j = 0; j < 16; ++j) {
      dst[j] = static_cast<float>(kMxfp4Values[b[i].qs[j] & 0x0f]) * d;
      dst[j + 16] = static_cast<float>(kMxfp4Values[b[i].qs[j] >> 4]) * d;
    }
  }
}

}  // namespace moe::kernels::ref

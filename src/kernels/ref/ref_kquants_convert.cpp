// Scalar to_float / from_float of Q2_K..Q6_K and Q8_K, following ggml's quantize_row_*_ref
// (what llama-quantize writes when it has no importance matrix) and dequantize_row_* step for
// step: same float operations in the same order, same integer truncations.
#include <algorithm>
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

int clamp_int(int v, int lo, int hi) { return std::max(lo, std::min(hi, v)); }

// Packs 2-bit levels: byte l of 128-element half h holds elements h*128 + l + 32 s at bits 2s.
void pack_2bit(const uint8_t* levels, uint8_t* qs) {
  for (int j = 0; j < kQK_K; j += 128) {
    for (int l = 0; l < 32; ++l) {
      qs[j / 4 + l] = static_cast<uint8_t>(levels[j + l] | (levels[j + l + 32] << 2) |
                                           (levels[j + l + 64] << 4) | (levels[j + l + 96] << 6));
    }
  }
}

// Q4_K/Q5_K scale and min of the 8 sub-blocks, quantized to 6 bits against the largest of each
// and packed into 12 bytes (the inverse of scale_min_k4).
void pack_scales_mins_k4(const float* scales, const float* mins, float max_scale, float max_min,
                         uint8_t* packed) {
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  for (int j = 0; j < 8; ++j) {
    const auto ls = static_cast<uint8_t>(std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_scale * scales[j]))));
    const auto lm = static_cast<uint8_t>(std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_min * mins[j]))));
    if (j < 4) {
      packed[j] = ls;
      packed[j + 4] = lm;
    } else {
      packed[j + 4] = static_cast<uint8_t>((ls & 0x0f) | ((lm & 0x0f) << 4));
      packed[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
      packed[j] |= static_cast<uint8_t>((lm >> 4) << 6);
    }
  }
}

// First pass of Q4_K/Q5_K: a (scale, min) per 32-element sub-block, weighted by rms + |x|.
// Returns the largest scale and min through the pointers.
void search_k4_subblocks(const float* x, int nmax, AffineSearch params, uint8_t* levels,
                         float* scales, float* mins, float* max_scale, float* max_min) {
  float weights[32];
  uint8_t scratch[32];
  *max_scale = 0;
  *max_min = 0;
  for (int j = 0; j < kQK_K / 32; ++j) {
    const float* xs = x + 32 * j;
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xs[l]);
    scales[j] = search_affine_scale(32, nmax, xs, weights, levels + 32 * j, &mins[j], scratch, params);
    if (scales[j] > *max_scale) *max_scale = scales[j];
    if (mins[j] > *max_min) *max_min = mins[j];
  }
}

// Second pass of Q4_K/Q5_K: requantize each sub-block with its stored (6-bit) scale and min.
void requantize_k4(const float* x, int nmax, uint16_t d_bits, uint16_t dmin_bits, const uint8_t* packed,
                   uint8_t* levels) {
  for (int j = 0; j < kQK_K / 32; ++j) {
    uint8_t sc, m;
    scale_min_k4(j, packed, &sc, &m);
    const float d = fp16_to_fp32(d_bits) * static_cast<float>(sc);
    if (d == 0.0f) continue;
    const float dm = fp16_to_fp32(dmin_bits) * static_cast<float>(m);
    for (int ii = 0; ii < 32; ++ii) {
      levels[32 * j + ii] = static_cast<uint8_t>(clamp_int(nearest_int((x[32 * j + ii] + dm) / d), 0, nmax));
    }
  }
}

void quantize_q2_k_block(const float* x, BlockQ2_K& y) {
  uint8_t levels[kQK_K];
  uint8_t scratch[16];
  float weights[16];
  float mins[kQK_K / 16];
  float scales[kQK_K / 16];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < kQK_K / 16; ++j) {
    for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
    scales[j] = search_affine_scale(16, 3, x + 16 * j, weights, levels + 16 * j, &mins[j], scratch,
                                    AffineSearch{-0.5f, 0.1f, 15, true});
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  // Scales and mins in 4 bits each against their maxima (scale low nibble, min high).
  const float q4scale = 15.f;
  if (max_scale > 0) {
    const float iscale = q4scale / max_scale;
    for (int j = 0; j < kQK_K / 16; ++j) y.scales[j] = static_cast<uint8_t>(nearest_int(iscale * scales[j]));
    y.d = fp32_to_fp16(max_scale / q4scale);
  } else {
    std::memset(y.scales, 0, sizeof(y.scales));
    y.d = fp32_to_fp16(0.f);
  }
  if (max_min > 0) {
    const float iscale = q4scale / max_min;
    for (int j = 0; j < kQK_K / 16; ++j) y.scales[j] |= static_cast<uint8_t>(nearest_int(iscale * mins[j]) << 4);
    y.dmin = fp32_to_fp16(max_min / q4scale);
  } else {
    y.dmin = fp32_to_fp16(0.f);
  }
  for (int j = 0; j < kQK_K / 16; ++j) {
    const float d = fp16_to_fp32(y.d) * static_cast<float>(y.scales[j] & 0x0f);
    if (d == 0.0f) continue;
    const float dm = fp16_to_fp32(y.dmin) * static_cast<float>(y.scales[j] >> 4);
    for (int ii = 0; ii < 16; ++ii) {
      levels[16 * j + ii] = static_cast<uint8_t>(clamp_int(nearest_int((x[16 * j + ii] + dm) / d), 0, 3));
    }
  }
  pack_2bit(levels, y.qs);
}

// Q3_K's 16 scales in 6 bits (biased by 32) against the signed largest one.
void pack_q3_k_scales(const float* scales, float max_scale, BlockQ3_K& y) {
  std::memset(y.scales, 0, 12);
  if (max_scale == 0.0f) {
    y.d = fp32_to_fp16(0.f);
    return;
  }
  const float iscale = -32.f / max_scale;
  for (int j = 0; j < kQK_K / 16; ++j) {
    auto l = static_cast<int8_t>(nearest_int(iscale * scales[j]));
    l = static_cast<int8_t>(clamp_int(l, -32, 31) + 32);
    if (j < 8) {
      y.scales[j] = static_cast<uint8_t>(l & 0x0f);
    } else {
      y.scales[j - 8] |= static_cast<uint8_t>((l & 0x0f) << 4);
    }
    l = static_cast<int8_t>(l >> 4);
    y.scales[j % 4 + 8] |= static_cast<uint8_t>(l << (2 * (j / 4)));
  }
  y.d = fp32_to_fp16(1 / iscale);
}

void quantize_q3_k_block(const float* x, BlockQ3_K& y) {
  int8_t levels[kQK_K];
  float scales[kQK_K / 16];
  float max_scale = 0, amax = 0;
  for (int j = 0; j < kQK_K / 16; ++j) {
    scales[j] = search_q3_scale(16, 4, x + 16 * j, levels + 16 * j);
    const float scale = std::fabs(scales[j]);
    if (scale > amax) {
      amax = scale;
      max_scale = scales[j];
    }
  }
  pack_q3_k_scales(scales, max_scale, y);
  int8_t stored[16];
  unpack_q3_k_scales(y.scales, stored);
  for (int j = 0; j < kQK_K / 16; ++j) {
    const float d = fp16_to_fp32(y.d) * static_cast<float>(static_cast<int8_t>(stored[j] - 32));
    if (d == 0.0f) continue;
    for (int ii = 0; ii < 16; ++ii) {
      levels[16 * j + ii] = static_cast<int8_t>(clamp_int(nearest_int(x[16 * j + ii] / d), -4, 3) + 4);
    }
  }
  // Third bit of element e -> bit e / 32 of hmask[e % 32]; the low two bits stay in levels.
  std::memset(y.hmask, 0, sizeof(y.hmask));
  uint8_t low[kQK_K];
  for (int j = 0; j < kQK_K; ++j) {
    int l = levels[j];
    if (l > 3) {
      y.hmask[j % 32] |= static_cast<uint8_t>(1 << (j / 32));
      l -= 4;
    }
    low[j] = static_cast<uint8_t>(l);
  }
  pack_2bit(low, y.qs);
}

void quantize_q4_k_block(const float* x, BlockQ4_K& y) {
  uint8_t levels[kQK_K];
  float scales[8], mins[8], max_scale, max_min;
  search_k4_subblocks(x, 15, AffineSearch{-1.f, 0.1f, 20, false}, levels, scales, mins, &max_scale, &max_min);
  pack_scales_mins_k4(scales, mins, max_scale, max_min, y.scales);
  y.d = fp32_to_fp16(max_scale / 63.f);
  y.dmin = fp32_to_fp16(max_min / 63.f);
  requantize_k4(x, 15, y.d, y.dmin, y.scales, levels);
  for (int c = 0; c < kQK_K / 64; ++c) {
    for (int l = 0; l < 32; ++l) {
      y.qs[32 * c + l] = static_cast<uint8_t>(levels[64 * c + l] | (levels[64 * c + l + 32] << 4));
    }
  }
}

void quantize_q5_k_block(const float* x, BlockQ5_K& y) {
  uint8_t levels[kQK_K];
  float scales[8], mins[8], max_scale, max_min;
  search_k4_subblocks(x, 31, AffineSearch{-0.5f, 0.1f, 15, false}, levels, scales, mins, &max_scale, &max_min);
  pack_scales_mins_k4(scales, mins, max_scale, max_min, y.scales);
  y.d = fp32_to_fp16(max_scale / 63.f);
  y.dmin = fp32_to_fp16(max_min / 63.f);
  requantize_k4(x, 31, y.d, y.dmin, y.scales, levels);
  std::memset(y.qh, 0, sizeof(y.qh));
  for (int c = 0; c < kQK_K / 64; ++c) {
    for (int l = 0; l < 32; ++l) {
      int l1 = levels[64 * c + l];
      int l2 = levels[64 * c + l + 32];
      if (l1 > 15) {
        l1 -= 16;
        y.qh[l] |= static_cast<uint8_t>(1 << (2 * c));
      }
      if (l2 > 15) {
        l2 -= 16;
        y.qh[l] |= static_cast<uint8_t>(2 << (2 * c));
      }
      y.qs[32 * c + l] = static_cast<uint8_t>(l1 | (l2 << 4));
    }
  }
}

void pack_q6_k(const int8_t* levels, BlockQ6_K& y) {
  for (int h = 0; h < 2; ++h) {
    const int8_t* lv = levels + 128 * h;
    uint8_t* ql = y.ql + 64 * h;
    uint8_t* qh = y.qh + 32 * h;
    for (int l = 0; l < 32; ++l) {
      ql[l] = static_cast<uint8_t>((lv[l] & 0x0f) | ((lv[l + 64] & 0x0f) << 4));
      ql[l + 32] = static_cast<uint8_t>((lv[l + 32] & 0x0f) | ((lv[l + 96] & 0x0f) << 4));
      qh[l] = static_cast<uint8_t>((lv[l] >> 4) | ((lv[l + 32] >> 4) << 2) | ((lv[l + 64] >> 4) << 4) |
                                   ((lv[l + 96] >> 4) << 6));
    }
  }
}

void quantize_q6_k_block(const float* x, BlockQ6_K& y) {
  int8_t levels[kQK_K];
  float scales[kQK_K / 16];
  float max_scale = 0, max_abs_scale = 0;
  for (int ib = 0; ib < kQK_K / 16; ++ib) {
    scales[ib] = search_signed_scale(16, 32, x + 16 * ib, levels + 16 * ib);
    if (std::fabs(scales[ib]) > max_abs_scale) {
      max_abs_scale = std::fabs(scales[ib]);
      max_scale = scales[ib];
    }
  }
  if (max_abs_scale < kGroupMaxEps) {
    std::memset(&y, 0, sizeof(y));
    return;
  }
  const float iscale = -128.f / max_scale;
  y.d = fp32_to_fp16(1 / iscale);
  for (int ib = 0; ib < kQK_K / 16; ++ib) {
    y.scales[ib] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[ib])));
  }
  for (int j = 0; j < kQK_K / 16; ++j) {
    const float d = fp16_to_fp32(y.d) * static_cast<float>(y.scales[j]);
    if (d == 0.0f) continue;
    for (int ii = 0; ii < 16; ++ii) {
      levels[16 * j + ii] = static_cast<int8_t>(clamp_int(nearest_int(x[16 * j + ii] / d), -32, 31) + 32);
    }
  }
  pack_q6_k(levels, y);
}

}  // namespace

void from_float_q2_k(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ2_K*>(dst);
  for (int64_t i = 0; i < n / kQK_K; ++i) quantize_q2_k_block(src + i * kQK_K, b[i]);
}

void from_float_q3_k(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ3_K*>(dst);
  for (int64_t i = 0; i < n / kQK_K; ++i) quantize_q3_k_block(src + i * kQK_K, b[i]);
}

void from_float_q4_k(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ4_K*>(dst);
  for (int64_t i = 0; i < n / kQK_K; ++i) quantize_q4_k_block(src + i * kQK_K, b[i]);
}

void from_float_q5_k(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ5_K*>(dst);
  for (int64_t i = 0; i < n / kQK_K; ++i) quantize_q5_k_block(src + i * kQK_K, b[i]);
}

void from_float_q6_k(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ6_K*>(dst);
  for (int64_t i = 0; i < n / kQK_K; ++i) quantize_q6_k_block(src + i * kQK_K, b[i]);
}

// ggml's quantize_row_q8_K_ref, which its x86 build also uses for activations: scale -127/max
// (the signed extreme maps to -127 exactly), ties to even, and the 16-element sums.
void from_float_q8_k(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ8_K*>(dst);
  for (int64_t i = 0; i < n / kQK_K; ++i, src += kQK_K) {
    float max = 0, amax = 0;
    for (int j = 0; j < kQK_K; ++j) {
      if (std::fabs(src[j]) > amax) {
        amax = std::fabs(src[j]);
        max = src[j];
      }
    }
    std::memset(b[i].bsums, 0, sizeof(b[i].bsums));  // (ggml leaves them stale; they are unused)
    if (amax == 0.0f) {
      b[i].d = 0;
      std::memset(b[i].qs, 0, kQK_K);
      continue;
    }
    const float iscale = -127.f / max;
    for (int j = 0; j < kQK_K; ++j) b[i].qs[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * src[j])));
    for (int j = 0; j < kQK_K / 16; ++j) {
      int sum = 0;
      for (int ii = 0; ii < 16; ++ii) sum += b[i].qs[16 * j + ii];
      b[i].bsums[j] = static_cast<int16_t>(sum);
    }
    b[i].d = 1 / iscale;
  }
}

void to_float_q2_k(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const BlockQ2_K*>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i, dst += kQK_K) {
    const float d = fp16_to_fp32(b[i].d);
    const float dmin = fp16_to_fp32(b[i].dmin);
    for (int e = 0; e < kQK_K; ++e) {
      const int half = e / 128, shift = 2 * ((e % 128) / 32), l = e % 32;
      const uint8_t sc = b[i].scales[e / 16];
      const float dl = d * static_cast<float>(sc & 0x0f);
      const float ml = dmin * static_cast<float>(sc >> 4);
      dst[e] = dl * static_cast<float>((b[i].qs[32 * half + l] >> shift) & 3) - ml;
    }
  }
}

void to_float_q3_k(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const BlockQ3_K*>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i, dst += kQK_K) {
    const float d = fp16_to_fp32(b[i].d);
    int8_t scales[16];
    unpack_q3_k_scales(b[i].scales, scales);
    for (int e = 0; e < kQK_K; ++e) {
      const int half = e / 128, shift = 2 * ((e % 128) / 32), l = e % 32;
      const float dl = d * static_cast<float>(scales[e / 16] - 32);
      const int low = (b[i].qs[32 * half + l] >> shift) & 3;
      const int high = (b[i].hmask[l] >> (e / 32)) & 1;
      dst[e] = dl * static_cast<float>(low - (high ? 0 : 4));
    }
  }
}

void to_float_q4_k(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const BlockQ4_K*>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i, dst += kQK_K) {
    const float d = fp16_to_fp32(b[i].d);
    const float dmin = fp16_to_fp32(b[i].dmin);
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      scale_min_k4(j, b[i].scales, &sc, &m);
      const float dl = d * static_cast<float>(sc);
      const float ml = dmin * static_cast<float>(m);
      const uint8_t* q = b[i].qs + 32 * (j / 2);
      const int shift = 4 * (j % 2);
      for (int l = 0; l < 32; ++l) dst[32 * j + l] = dl * static_cast<float>((q[l] >> shift) & 0x0f) - ml;
    }
  }
}

void to_float_q5_k(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const BlockQ5_K*>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i, dst += kQK_K) {
    const float d = fp16_to_fp32(b[i].d);
    const float dmin = fp16_to_fp32(b[i].dmin);
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      scale_min_k4(j, b[i].scales, &sc, &m);
      const float dl = d * static_cast<float>(sc);
      const float ml = dmin * static_cast<float>(m);
      const uint8_t* q = b[i].qs + 32 * (j / 2);
      const int shift = 4 * (j % 2);
      for (int l = 0; l < 32; ++l) {
        const int q5 = ((q[l] >> shift) & 0x0f) + (((b[i].qh[l] >> j) & 1) << 4);
        dst[32 * j + l] = dl * static_cast<float>(q5) - ml;
      }
    }
  }
}

void to_float_q6_k(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const BlockQ6_K*>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i, dst += kQK_K) {
    const float d = fp16_to_fp32(b[i].d);
    for (int e = 0; e < kQK_K; ++e) {
      const int half = e / 128, s = (e % 128) / 32, l = e % 32;
      const uint8_t ql = b[i].ql[64 * half + l + 32 * (s & 1)];
      const int low = (ql >> (4 * (s >> 1))) & 0x0f;
      const int high = (b[i].qh[32 * half + l] >> (2 * s)) & 3;
      const float q = static_cast<float>(static_cast<int8_t>(low | (high << 4)) - 32);
      dst[e] = d * static_cast<float>(b[i].scales[e / 16]) * q;
    }
  }
}

void to_float_q8_k(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const BlockQ8_K*>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i, dst += kQK_K) {
    for (int j = 0; j < kQK_K; ++j) dst[j] = b[i].d * static_cast<float>(b[i].qs[j]);
  }
}

}  // namespace moe::kernels::ref

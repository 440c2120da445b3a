// Scalar dots of the K-quants, IQ4 and MXFP4 types, in the float order of ggml's x86 (AVX2)
// kernels so every ISA returns the same bits as llama.cpp's CPU backend:
//  - per block, 8 exact int32 "lanes": lane k sums the products of the elements whose position
//    within their 32-element chunk is 4k..4k+3 (what maddubs + madd produce), scales applied;
//  - each lane is converted to float and fused-multiply-added into an 8-lane accumulator with
//    the block's combined scale;
//  - the accumulator is reduced as ggml's hsum_float_8.
// The integer lane sums are exact, so any ISA can form them its own way; only the float steps
// must be replayed, with std::fma where ggml fuses (including fmas GCC contracts in its tails).
#include <cmath>
#include <cstdint>

#include "kernels/blocks.h"
#include "kernels/fp16.h"
#include "kernels/quant_tables.h"
#include "kernels/ref/ref_kquants.h"

namespace moe::kernels::ref {

namespace {

using Lanes = int32_t[8];

// ((a4 + a0) + (a6 + a2)) + ((a5 + a1) + (a7 + a3)): ggml's hsum_float_8.
float hsum8(const float* a) {
  float r[4];
  for (int j = 0; j < 4; ++j) r[j] = a[4 + j] + a[j];
  return (r[0] + r[2]) + (r[1] + r[3]);
}

void fma_lanes(float scale, const Lanes lanes, float* acc) {
  for (int k = 0; k < 8; ++k) acc[k] = std::fma(scale, static_cast<float>(lanes[k]), acc[k]);
}

int lane_of(int e) { return (e % 32) / 4; }

// Lanes of sum_e scale(e) * q(e) * y[e] over one 256-element super-block.
template <typename QuantAt, typename ScaleAt>
void kquant_lanes(const int8_t* y, QuantAt q, ScaleAt scale, Lanes lanes) {
  for (int k = 0; k < 8; ++k) lanes[k] = 0;
  for (int e = 0; e < kQK_K; ++e) lanes[lane_of(e)] += scale(e) * q(e) * y[e];
}

// ggml pairs the Q8_K 16-element sums with the mins as madd does: lane k gets groups 2k, 2k+1.
void bsum_lanes(const BlockQ8_K& y, const int* per_group, Lanes lanes) {
  for (int k = 0; k < 8; ++k) lanes[k] = per_group[2 * k] * y.bsums[2 * k] + per_group[2 * k + 1] * y.bsums[2 * k + 1];
}

void scales_mins_k4(const uint8_t* packed, int* scales, int* mins) {
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    scale_min_k4(j, packed, &sc, &m);
    scales[j] = sc;
    mins[j] = m;
  }
}

// Q4_K/Q5_K mins term: 4 lanes of min_j * (sum of the 32 x quants of sub-block j), pairs of
// sub-blocks per lane.
void mins_k4_lanes(const BlockQ8_K& y, const int* mins, int32_t* lanes4) {
  for (int k = 0; k < 4; ++k) {
    const int s0 = y.bsums[4 * k] + y.bsums[4 * k + 1];
    const int s1 = y.bsums[4 * k + 2] + y.bsums[4 * k + 3];
    lanes4[k] = mins[2 * k] * s0 + mins[2 * k + 1] * s1;
  }
}

}  // namespace

float vec_dot_q2_k_q8_k(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const BlockQ2_K*>(w);
  const auto* b = static_cast<const BlockQ8_K*>(x);
  float acc[8] = {};
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = b[i].d * fp16_to_fp32(a[i].d);
    const float dmin = -b[i].d * fp16_to_fp32(a[i].dmin);
    int mins[16];
    for (int j = 0; j < 16; ++j) mins[j] = a[i].scales[j] >> 4;
    Lanes lanes;
    bsum_lanes(b[i], mins, lanes);
    fma_lanes(dmin, lanes, acc);
    const uint8_t* qs = a[i].qs;
    kquant_lanes(
        b[i].qs, [&](int e) { return (qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3; },
        [&](int e) { return a[i].scales[e / 16] & 0x0f; }, lanes);
    fma_lanes(d, lanes, acc);
  }
  return hsum8(acc);
}

float vec_dot_q3_k_q8_k(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const BlockQ3_K*>(w);
  const auto* b = static_cast<const BlockQ8_K*>(x);
  float acc[8] = {};
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = b[i].d * fp16_to_fp32(a[i].d);
    int8_t scales[16];
    unpack_q3_k_scales(a[i].scales, scales);
    const BlockQ3_K& blk = a[i];
    Lanes lanes;
    kquant_lanes(
        b[i].qs,
        [&](int e) {
          const int low = (blk.qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
          return low - (((blk.hmask[e % 32] >> (e / 32)) & 1) ? 0 : 4);
        },
        [&](int e) { return scales[e / 16] - 32; }, lanes);
    fma_lanes(d, lanes, acc);
  }
  return hsum8(acc);
}

float vec_dot_q4_k_q8_k(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const BlockQ4_K*>(w);
  const auto* b = static_cast<const BlockQ8_K*>(x);
  float acc[8] = {};
  float acc_m[4] = {};
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = b[i].d * fp16_to_fp32(a[i].d);
    const float dmin = -b[i].d * fp16_to_fp32(a[i].dmin);
    int scales[8], mins[8];
    scales_mins_k4(a[i].scales, scales, mins);
    int32_t lanes4[4];
    mins_k4_lanes(b[i], mins, lanes4);
    for (int k = 0; k < 4; ++k) acc_m[k] = std::fma(dmin, static_cast<float>(lanes4[k]), acc_m[k]);
    const uint8_t* qs = a[i].qs;
    Lanes lanes;
    kquant_lanes(
        b[i].qs, [&](int e) { return (qs[32 * (e / 64) + e % 32] >> (4 * ((e / 32) % 2))) & 0x0f; },
        [&](int e) { return scales[e / 32]; }, lanes);
    fma_lanes(d, lanes, acc);
  }
  return hsum8(acc) + ((acc_m[0] + acc_m[2]) + (acc_m[1] + acc_m[3]));
}

float vec_dot_q5_k_q8_k(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const BlockQ5_K*>(w);
  const auto* b = static_cast<const BlockQ8_K*>(x);
  float acc[8] = {};
  float sum_mins = 0.0f;  // ggml keeps this one scalar (and GCC fuses its update)
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = b[i].d * fp16_to_fp32(a[i].d);
    const float dmin = -b[i].d * fp16_to_fp32(a[i].dmin);
    int scales[8], mins[8];
    scales_mins_k4(a[i].scales, scales, mins);
    int32_t lanes4[4];
    mins_k4_lanes(b[i], mins, lanes4);
    sum_mins = std::fma(dmin, static_cast<float>(lanes4[0] + lanes4[1] + lanes4[2] + lanes4[3]), sum_mins);
    const BlockQ5_K& blk = a[i];
    Lanes lanes;
    kquant_lanes(
        b[i].qs,
        [&](int e) {
          const int low = (blk.qs[32 * (e / 64) + e % 32] >> (4 * ((e / 32) % 2))) & 0x0f;
          return low | (((blk.qh[e % 32] >> (e / 32)) & 1) << 4);
        },
        [&](int e) { return scales[e / 32]; }, lanes);
    fma_lanes(d, lanes, acc);
  }
  return hsum8(acc) + sum_mins;
}

// The 6-bit quants enter unsigned (0..63); the offset 32 comes off per lane as
// 32 * (scale-weighted Q8_K sums), lane k taking sub-blocks 2k and 2k + 1 (madd pairing).
float vec_dot_q6_k_q8_k(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const BlockQ6_K*>(w);
  const auto* b = static_cast<const BlockQ8_K*>(x);
  float acc[8] = {};
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = b[i].d * fp16_to_fp32(a[i].d);
    const BlockQ6_K& blk = a[i];
    int scales[16];
    for (int j = 0; j < 16; ++j) scales[j] = blk.scales[j];
    Lanes offset, lanes;
    bsum_lanes(b[i], scales, offset);
    kquant_lanes(
        b[i].qs,
        [&](int e) {
          const int half = e / 128, s = (e % 128) / 32, l = e % 32;
          const int low = (blk.ql[64 * half + l + 32 * (s & 1)] >> (4 * (s >> 1))) & 0x0f;
          return low | (((blk.qh[32 * half + l] >> (2 * s)) & 3) << 4);
        },
        [&](int e) { return scales[e / 16]; }, lanes);
    for (int k = 0; k < 8; ++k) lanes[k] -= offset[k] * 32;
    fma_lanes(d, lanes, acc);
  }
  return hsum8(acc);
}

float vec_dot_iq4_xs_q8_k(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const BlockIQ4_XS*>(w);
  const auto* b = static_cast<const BlockQ8_K*>(x);
  float acc[8] = {};
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const BlockIQ4_XS& blk = a[i];
    int scales[8];
    for (int j = 0; j < 8; ++j) {
      scales[j] = (((blk.scales_l[j / 2] >> (4 * (j % 2))) & 0x0f) | (((blk.scales_h >> (2 * j)) & 3) << 4)) - 32;
    }
    Lanes lanes;
    kquant_lanes(
        b[i].qs, [&](int e) { return kIq4nlValues[(blk.qs[16 * (e / 32) + e % 16] >> (4 * ((e % 32) / 16))) & 0x0f]; },
        [&](int e) { return scales[e / 32]; }, lanes);
    fma_lanes(fp16_to_fp32(blk.d) * b[i].d, lanes, acc);
  }
  return hsum8(acc);
}

namespace {

// IQ4_NL and MXFP4 against Q8_0: blocks of 32 with a 16-entry value table. ggml alternates two
// accumulators (even and odd blocks), sums them before the reduction, then finishes an odd last
// block in scalar code, which GCC compiles to one fma.
template <typename Block, typename ScaleOf>
float dot_table_q8_0(int64_t n, const Block* a, const BlockQ8_0* b, const int8_t* table, ScaleOf scale_of) {
  const int64_t nb = n / 32;
  float acc[2][8] = {};
  int64_t ib = 0;
  for (; ib + 1 < nb; ib += 2) {
    for (int h = 0; h < 2; ++h) {
      Lanes lanes = {};
      for (int e = 0; e < 32; ++e) {
        const int q = table[(a[ib + h].qs[e % 16] >> (4 * (e / 16))) & 0x0f];
        lanes[e / 4] += q * b[ib + h].qs[e];
      }
      fma_lanes(fp16_to_fp32(b[ib + h].d) * scale_of(a[ib + h]), lanes, acc[h]);
    }
  }
  float both[8];
  for (int k = 0; k < 8; ++k) both[k] = acc[0][k] + acc[1][k];
  float sum = hsum8(both);
  for (; ib < nb; ++ib) {
    int sumi = 0;
    for (int e = 0; e < 32; ++e) sumi += table[(a[ib].qs[e % 16] >> (4 * (e / 16))) & 0x0f] * b[ib].qs[e];
    sum = std::fma(fp16_to_fp32(b[ib].d) * scale_of(a[ib]), static_cast<float>(sumi), sum);
  }
  return sum;
}

}  // namespace

float vec_dot_iq4_nl_q8_0(int64_t n, const void* w, const void* x) {
  return dot_table_q8_0(n, static_cast<const BlockIQ4_NL*>(w), static_cast<const BlockQ8_0*>(x), kIq4nlValues,
                        [](const BlockIQ4_NL& blk) { return fp16_to_fp32(blk.d); });
}

float vec_dot_mxfp4_q8_0(int64_t n, const void* w, const void* x) {
  return dot_table_q8_0(n, static_cast<const BlockMXFP4*>(w), static_cast<const BlockQ8_0*>(x), kMxfp4Values,
                        [](const BlockMXFP4& blk) { return mxfp4_half_scale(blk.e); });
}

}  // namespace moe::kernels::ref

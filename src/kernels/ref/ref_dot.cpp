// Scalar dot products, following ggml's generic (non-SIMD) code: integer sums per block, one
// float multiply-add per block.
#include <cstring>

#include "kernels/blocks.h"
#include "kernels/fp16.h"
#include "kernels/ref/ref_kernels.h"

namespace moe::kernels::ref {

namespace {

uint32_t load_qh(const uint8_t* qh_bytes) {
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, 4);
  return qh;
}

// Returns sum_j q5[j] * y[j] for one Q5 block's nibbles and fifth bits, with `offset` taken
// from each weight (16 for Q5_0, 0 for Q5_1).
int dot_q5_block(const uint8_t* qs, uint32_t qh, const int8_t* y, int offset) {
  int sum0 = 0;
  int sum1 = 0;
  for (int j = 0; j < 16; ++j) {
    const int high0 = static_cast<int>(((qh >> j) << 4) & 0x10);
    const int high1 = static_cast<int>((qh >> (j + 12)) & 0x10);
    sum0 += (((qs[j] & 0x0f) | high0) - offset) * y[j];
    sum1 += (((qs[j] >> 4) | high1) - offset) * y[j + 16];
  }
  return sum0 + sum1;
}

int dot_q4_block(const uint8_t* qs, const int8_t* y, int offset) {
  int sum0 = 0;
  int sum1 = 0;
  for (int j = 0; j < 16; ++j) {
    sum0 += ((qs[j] & 0x0f) - offset) * y[j];
    sum1 += ((qs[j] >> 4) - offset) * y[j + 16];
  }
  return sum0 + sum1;
}

}  // namespace

float vec_dot_bf16(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const uint16_t*>(w);
  const auto* b = static_cast<const uint16_t*>(x);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(bf16_to_fp32(a[i]) * bf16_to_fp32(b[i]));
  return static_cast<float>(sum);
}

float vec_dot_q4_0_q8_0(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const BlockQ4_0*>(w);
  const auto* b = static_cast<const BlockQ8_0*>(x);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQK8_0; ++i) {
    const int sumi = dot_q4_block(a[i].qs, b[i].qs, 8);
    sum += static_cast<float>(sumi) * fp16_to_fp32(a[i].d) * fp16_to_fp32(b[i].d);
  }
  return sum;
}

float vec_dot_q4_1_q8_1(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const BlockQ4_1*>(w);
  const auto* b = static_cast<const BlockQ8_1*>(x);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQK8_1; ++i) {
    const int sumi = dot_q4_block(a[i].qs, b[i].qs, 0);
    sum += (fp16_to_fp32(a[i].d) * fp16_to_fp32(b[i].d)) * static_cast<float>(sumi) +
           fp16_to_fp32(a[i].m) * fp16_to_fp32(b[i].s);
  }
  return sum;
}

float vec_dot_q5_0_q8_0(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const BlockQ5_0*>(w);
  const auto* b = static_cast<const BlockQ8_0*>(x);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQK8_0; ++i) {
    const int sumi = dot_q5_block(a[i].qs, load_qh(a[i].qh), b[i].qs, 16);
    sum += (fp16_to_fp32(a[i].d) * fp16_to_fp32(b[i].d)) * static_cast<float>(sumi);
  }
  return sum;
}

float vec_dot_q5_1_q8_1(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const BlockQ5_1*>(w);
  const auto* b = static_cast<const BlockQ8_1*>(x);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQK8_1; ++i) {
    const int sumi = dot_q5_block(a[i].qs, load_qh(a[i].qh), b[i].qs, 0);
    sum += (fp16_to_fp32(a[i].d) * fp16_to_fp32(b[i].d)) * static_cast<float>(sumi) +
           fp16_to_fp32(a[i].m) * fp16_to_fp32(b[i].s);
  }
  return sum;
}

float vec_dot_q8_0_q8_0(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const BlockQ8_0*>(w);
  const auto* b = static_cast<const BlockQ8_0*>(x);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQK8_0; ++i) {
    int sumi = 0;
    for (int j = 0; j < kQK8_0; ++j) sumi += a[i].qs[j] * b[i].qs[j];
    sum += static_cast<float>(sumi) * (fp16_to_fp32(a[i].d) * fp16_to_fp32(b[i].d));
  }
  return sum;
}

}  // namespace moe::kernels::ref

// Block layouts of the quantized types, byte-for-byte as GGUF/ggml store them (ggml-common.h),
// so tensors are used straight from the mapped file. Each block holds `kQK*` elements.
// The structs are packed (alignment 1): a row of 34-byte Q8_0 blocks may start at any byte of
// a file or buffer, and reading `d` through a misaligned 2-byte-aligned struct would be UB.
#pragma once

#include <cstdint>

namespace moe::kernels {

inline constexpr int kQK4_0 = 32;
inline constexpr int kQK4_1 = 32;
inline constexpr int kQK5_0 = 32;
inline constexpr int kQK5_1 = 32;
inline constexpr int kQK8_0 = 32;
inline constexpr int kQK8_1 = 32;

// x[j] = d * (q[j] - 8); qs[j] holds element j in its low nibble and j + 16 in its high nibble.
struct __attribute__((packed)) BlockQ4_0 {
  uint16_t d;  // fp16 scale
  uint8_t qs[kQK4_0 / 2];
};
static_assert(sizeof(BlockQ4_0) == 2 + 16, "q4_0 block must be 18 bytes");

// x[j] = d * q[j] + m; nibbles as in Q4_0.
struct __attribute__((packed)) BlockQ4_1 {
  uint16_t d;  // fp16 scale
  uint16_t m;  // fp16 minimum
  uint8_t qs[kQK4_1 / 2];
};
static_assert(sizeof(BlockQ4_1) == 4 + 16, "q4_1 block must be 20 bytes");

// x[j] = d * (q[j] - 16); low 4 bits as in Q4_0, bit 4 of element j is bit j of qh (little-endian).
struct __attribute__((packed)) BlockQ5_0 {
  uint16_t d;     // fp16 scale
  uint8_t qh[4];  // fifth bits (bytes, not uint32_t: the struct has no padding, as in ggml)
  uint8_t qs[kQK5_0 / 2];
};
static_assert(sizeof(BlockQ5_0) == 2 + 4 + 16, "q5_0 block must be 22 bytes");

// x[j] = d * q[j] + m; bits as in Q5_0.
struct __attribute__((packed)) BlockQ5_1 {
  uint16_t d;  // fp16 scale
  uint16_t m;  // fp16 minimum
  uint8_t qh[4];
  uint8_t qs[kQK5_1 / 2];
};
static_assert(sizeof(BlockQ5_1) == 4 + 4 + 16, "q5_1 block must be 24 bytes");

// x[j] = d * qs[j].
struct __attribute__((packed)) BlockQ8_0 {
  uint16_t d;  // fp16 scale
  int8_t qs[kQK8_0];
};
static_assert(sizeof(BlockQ8_0) == 2 + 32, "q8_0 block must be 34 bytes");

// Activation type paired with Q4_1/Q5_1: s lets the dot product apply their minimum m with one
// multiply per block (sum_j (d_w q_j + m) d_x y_j = d_w d_x sum q_j y_j + m s).
struct __attribute__((packed)) BlockQ8_1 {
  uint16_t d;  // fp16 scale
  uint16_t s;  // fp16 of d * sum(qs)
  int8_t qs[kQK8_1];
};
static_assert(sizeof(BlockQ8_1) == 4 + 32, "q8_1 block must be 36 bytes");

}  // namespace moe::kernels

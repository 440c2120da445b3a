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

// ---- K-quants: super-blocks of kQK_K = 256 elements (ggml-common.h). ----
inline constexpr int kQK_K = 256;
inline constexpr int kQK4_NL = 32;
inline constexpr int kQK_MXFP4 = 32;

// x = d * (q & 3 scale) - dmin * min over 16 sub-blocks of 16; scales[j] holds the 4-bit scale
// (low nibble) and 4-bit min (high nibble) of sub-block j. qs byte l of 128-element half h
// holds elements h*128 + l + 32*s in bits 2s..2s+1.
struct __attribute__((packed)) BlockQ2_K {
  uint8_t scales[kQK_K / 16];
  uint8_t qs[kQK_K / 4];
  uint16_t d;     // fp16 super-block scale of the scales
  uint16_t dmin;  // fp16 super-block scale of the mins
};
static_assert(sizeof(BlockQ2_K) == 16 + 64 + 4, "q2_K block must be 84 bytes");

// x = d * (scale_j - 32) * (q - 4): q's low 2 bits packed as in Q2_K, its third bit in hmask
// (element e -> bit e / 32 of byte e % 32); 16 six-bit scales packed into 12 bytes.
struct __attribute__((packed)) BlockQ3_K {
  uint8_t hmask[kQK_K / 8];
  uint8_t qs[kQK_K / 4];
  uint8_t scales[12];
  uint16_t d;  // fp16
};
static_assert(sizeof(BlockQ3_K) == 32 + 64 + 12 + 2, "q3_K block must be 110 bytes");

// x = d * scale_j * q - dmin * min_j over 8 sub-blocks of 32; six-bit scales and mins packed
// into 12 bytes (see get_scale_min_k4). qs byte l of 64-element chunk c holds element
// c*64 + l (low nibble) and c*64 + 32 + l (high nibble).
struct __attribute__((packed)) BlockQ4_K {
  uint16_t d;     // fp16
  uint16_t dmin;  // fp16
  uint8_t scales[12];
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ4_K) == 4 + 12 + 128, "q4_K block must be 144 bytes");

// As Q4_K plus a fifth bit: element c*64 + l + 32*s has it in bit 2c + s of qh[l].
struct __attribute__((packed)) BlockQ5_K {
  uint16_t d;     // fp16
  uint16_t dmin;  // fp16
  uint8_t scales[12];
  uint8_t qh[kQK_K / 8];
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ5_K) == 4 + 12 + 32 + 128, "q5_K block must be 176 bytes");

// x = d * scales[j] * (q - 32) over 16 sub-blocks of 16; q = 4 bits from ql, 2 from qh.
// In 128-element half h: ql[l] holds elements l (low) and l + 64 (high), ql[l + 32] holds
// l + 32 and l + 96; qh[l] bits 2s..2s+1 belong to element l + 32*s.
struct __attribute__((packed)) BlockQ6_K {
  uint8_t ql[kQK_K / 2];
  uint8_t qh[kQK_K / 4];
  int8_t scales[kQK_K / 16];
  uint16_t d;  // fp16
};
static_assert(sizeof(BlockQ6_K) == 128 + 64 + 16 + 2, "q6_K block must be 210 bytes");

// The K-quants' activation type: float scale, and sums of each 16 quants so the weights'
// minimums / offsets cost one multiply per 16 elements.
struct __attribute__((packed)) BlockQ8_K {
  float d;
  int8_t qs[kQK_K];
  int16_t bsums[kQK_K / 16];
};
static_assert(sizeof(BlockQ8_K) == 4 + 256 + 32, "q8_K block must be 292 bytes");

// x[j] = d * kIq4nlValues[q[j]], nibbles as in Q4_0.
struct __attribute__((packed)) BlockIQ4_NL {
  uint16_t d;  // fp16
  uint8_t qs[kQK4_NL / 2];
};
static_assert(sizeof(BlockIQ4_NL) == 2 + 16, "iq4_nl block must be 18 bytes");

// IQ4_NL's values with a six-bit scale (stored minus 32) per 32 elements: low 4 bits in
// scales_l (nibble j % 2 of byte j / 2), high 2 bits in bits 2j..2j+1 of scales_h.
struct __attribute__((packed)) BlockIQ4_XS {
  uint16_t d;  // fp16
  uint16_t scales_h;
  uint8_t scales_l[kQK_K / 64];
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockIQ4_XS) == 4 + 4 + 128, "iq4_xs block must be 136 bytes");

// OCP microscaling FP4: x[j] = 2^(e - 127) * e2m1(q[j]) with one E8M0 exponent per 32
// elements; nibbles as in Q4_0 (element j low, j + 16 high).
struct __attribute__((packed)) BlockMXFP4 {
  uint8_t e;  // E8M0 shared exponent
  uint8_t qs[kQK_MXFP4 / 2];
};
static_assert(sizeof(BlockMXFP4) == 1 + 16, "mxfp4 block must be 17 bytes");

}  // namespace moe::kernels

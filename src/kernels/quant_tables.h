// Lookup tables and bit-unpacking helpers shared by the K-quant, IQ4 and MXFP4 kernels of every
// ISA. Internal linkage (anonymous namespace): ISA translation units include this with their
// own flags, and an external inline copy built with AVX-512 could be picked for baseline code.
#pragma once

#include <cstdint>
#include <cstring>

namespace moe::kernels {
namespace {

// IQ4_NL / IQ4_XS: the 16 non-linear levels (ggml's kvalues_iq4nl), denser near zero.
alignas(16) constexpr int8_t kIq4nlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                                 1,    13,   25,  38,  53,  69,  89,  113};

// MXFP4: the E2M1 values doubled (0, 0.5, 1, 1.5, 2, 3, 4, 6 -> integers), sign in bit 3. The
// doubling is undone by taking half of the E8M0 scale (mxfp4_half_scale).
alignas(16) constexpr int8_t kMxfp4Values[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

// Returns 2^(e - 128), i.e. half of the E8M0 scale 2^(e - 127) (ggml_e8m0_to_fp32_half);
// e < 2 gives the subnormals 2^-128 and 2^-127.
inline float mxfp4_half_scale(uint8_t e) {
  const uint32_t bits = e < 2 ? 0x00200000u << e : static_cast<uint32_t>(e - 1) << 23;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Q4_K/Q5_K: scale (6 bits) and min (6 bits) of sub-block j from the 12 packed bytes. Sub-blocks
// 0..3 sit in the low 6 bits of bytes j and j + 4; 4..7 take their low 4 bits from byte j + 4
// and their top 2 bits from the spare top bits of bytes j - 4 and j.
inline void scale_min_k4(int j, const uint8_t* q, uint8_t* scale, uint8_t* min) {
  if (j < 4) {
    *scale = q[j] & 63;
    *min = q[j + 4] & 63;
  } else {
    *scale = static_cast<uint8_t>((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4));
    *min = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// Q3_K: the 16 six-bit scales (still biased by 32) from their 12 packed bytes: low nibbles in
// bytes 0..7 (scale j and j + 8 share byte j % 8), top 2 bits in bytes 8..11.
inline void unpack_q3_k_scales(const uint8_t* packed, int8_t* scales) {
  for (int j = 0; j < 16; ++j) {
    const int low = j < 8 ? packed[j] & 0x0f : packed[j - 8] >> 4;
    const int high = (packed[8 + j % 4] >> (2 * (j / 4))) & 3;
    scales[j] = static_cast<int8_t>(low | (high << 4));
  }
}

}  // namespace
}  // namespace moe::kernels

// K-quants, IQ4 and MXFP4: known-answer blocks (derived by hand, or written by ggml's own
// quantize_row_*_ref for the same input), and dots that are bit-identical on every ISA (each ISA
// replays ggml's x86 float order, so the scalar reference is exact, not approximate).
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "kernel_test_util.h"

namespace moe::kernels::test {
namespace {

std::vector<uint8_t> quantize(DType type, const std::vector<float>& x) {
  const TypeTraits& t = *type_traits(type, Isa::kScalar);
  std::vector<uint8_t> out(row_bytes(t, static_cast<int64_t>(x.size())));
  t.from_float(x.data(), out.data(), static_cast<int64_t>(x.size()));
  return out;
}

// A 256-element input with exact float values and no structure a search could shortcut:
// x[e] = ((37 e) mod 256 - 128) / 32, a permutation of -4 .. 3.97 in steps of 1/32.
std::vector<float> scrambled_ramp() {
  std::vector<float> x(256);
  for (int e = 0; e < 256; ++e) x[e] = static_cast<float>((e * 37) % 256 - 128) / 32.0f;
  return x;
}

// Bytes ggml's quantize_row_q4_K_ref writes for scrambled_ramp() (llama.cpp, no imatrix).
TEST(KQuantKnownAnswer, Q4_KMatchesGgml) {
  const std::vector<uint8_t> expected = {
      0x9c, 0x20, 0x1c, 0x2c, 0xf4, 0xf4, 0xff, 0xf5, 0xfe, 0xf7, 0xff, 0xfb, 0x44, 0xdf, 0x94, 0x23, 0xa0, 0xc2,
      0xf5, 0x07, 0x2a, 0x5c, 0x7f, 0xa0, 0xc3, 0xf5, 0x08, 0x3a, 0x5d, 0x8f, 0xa0, 0xd3, 0xf5, 0x08, 0x3a, 0x5d,
      0x8f, 0xa1, 0xd3, 0xf5, 0x18, 0x3a, 0x6d, 0x8f, 0xa1, 0xd3, 0xf6, 0x18, 0xe4, 0x06, 0x28, 0x5a, 0x7c, 0xae,
      0xc2, 0xe4, 0x06, 0x38, 0x5a, 0x7c, 0xae, 0xc2, 0xf4, 0x06, 0x38, 0x5a, 0x8c, 0xae, 0xc2, 0xf4, 0x06, 0x38,
      0x5a, 0x8c, 0xa0, 0xd2, 0xf4, 0x16, 0x38, 0x6a, 0x27, 0x4a, 0x6c, 0x8f, 0xa0, 0xc2, 0xe5, 0x27, 0x4a, 0x6c,
      0x8f, 0xa0, 0xc3, 0x05, 0x28, 0x4a, 0x6c, 0x8f, 0xa0, 0xc3, 0x05, 0x28, 0x4a, 0x6d, 0x8f, 0xa1, 0xc3, 0x05,
      0x28, 0x4a, 0x6d, 0x8f, 0x5c, 0x7f, 0xa0, 0xc2, 0xf5, 0x07, 0x3a, 0x5c, 0x8f, 0xa0, 0xd3, 0xf5, 0x08, 0x3a,
      0x5c, 0x8f, 0xa0, 0xd3, 0xf5, 0x08, 0x3a, 0x5d, 0x8f, 0xa1, 0xd3, 0xf5, 0x18, 0x3a, 0x6d, 0x8f, 0xb1, 0xd3};
  EXPECT_EQ(quantize(DType::kQ4_K, scrambled_ramp()), expected);
}

// Bytes ggml's quantize_row_q6_K_ref writes for scrambled_ramp().
TEST(KQuantKnownAnswer, Q6_KMatchesGgml) {
  const std::vector<uint8_t> expected = {
      0x00, 0x79, 0xd3, 0x4c, 0xa5, 0x1e, 0x97, 0x01, 0x6a, 0xd3, 0x3d, 0xa6, 0x0f, 0x88, 0xf2, 0x5b, 0xc3, 0x3d,
      0xa7, 0x11, 0x7b, 0xe0, 0x4a, 0xb4, 0x2e, 0x98, 0xf2, 0x6c, 0xd1, 0x4b, 0xb5, 0x1f, 0x99, 0x03, 0xad, 0x31,
      0xdb, 0x65, 0x0f, 0xaa, 0x14, 0xbe, 0x42, 0xec, 0x76, 0x10, 0xaa, 0x25, 0xa2, 0x4d, 0xe3, 0x99, 0x3f, 0xd5,
      0x0b, 0xb1, 0x5c, 0xf2, 0x98, 0x4e, 0xe4, 0x1a, 0xb0, 0x6b, 0x10, 0xb6, 0x0b, 0xa1, 0x4e, 0xe4, 0x89, 0x2f,
      0xc5, 0x1b, 0xb0, 0x5d, 0xf3, 0x99, 0x3e, 0xd4, 0xfb, 0x51, 0xab, 0x01, 0x67, 0xce, 0x24, 0xea, 0x40, 0xaa,
      0xf0, 0x57, 0xbd, 0x13, 0xd9, 0x30, 0x98, 0xf1, 0x5b, 0xb4, 0x1d, 0xc6, 0x2f, 0x89, 0xe2, 0x4b, 0xa4, 0x0e,
      0xb7, 0x10, 0x7a, 0xd3, 0x4c, 0xb5, 0x2f, 0x88, 0xf0, 0x6a, 0xd3, 0x3d, 0xa6, 0x10, 0x79, 0xe1, 0x5a, 0xc4,
      0x3d, 0x97, 0xf8, 0x2c, 0x1d, 0x51, 0x42, 0x86, 0xf7, 0xf8, 0x2c, 0x1d, 0x51, 0x42, 0x86, 0xfb, 0xe8, 0x2c,
      0x11, 0x5d, 0x4e, 0x8b, 0xf7, 0xe4, 0x20, 0x11, 0x5d, 0x4e, 0xbb, 0xf7, 0xe4, 0x20, 0x11, 0x5d, 0xb2, 0x75,
      0x44, 0x08, 0x1b, 0xdf, 0xee, 0xb1, 0x75, 0x44, 0x08, 0x1b, 0xdf, 0xe2, 0xb1, 0x75, 0x74, 0x38, 0x2b, 0xef,
      0x92, 0x81, 0x45, 0x74, 0x38, 0x2f, 0xdf, 0x92, 0x81, 0x45, 0x74, 0x38, 0x7f, 0x75, 0x73, 0x8b, 0x85, 0x80,
      0x7a, 0x71, 0x8f, 0x89, 0x7f, 0x7b, 0x75, 0x8d, 0x8b, 0x81, 0x10, 0x14};
  EXPECT_EQ(quantize(DType::kQ6_K, scrambled_ramp()), expected);
}

// All ones, by hand: each 16-group's search keeps iscale -32 (level -32, scale -1/32; the
// nudged scales only tie), so d = fp16(1/4096) = 0x0c00, every int8 scale is -128 (0x80) and
// every 6-bit quant is -32 + 32 = 0: ql and qh all zero. Dequantized: 2^-12 * -128 * -32 = 1.
TEST(KQuantKnownAnswer, Q6_KOfOnesByHand) {
  std::vector<uint8_t> expected(210, 0);
  for (int j = 0; j < 16; ++j) expected[192 + j] = 0x80;
  expected[208] = 0x00;
  expected[209] = 0x0c;
  const std::vector<float> ones(256, 1.0f);
  EXPECT_EQ(quantize(DType::kQ6_K, ones), expected);
  for (Isa isa : available_isas()) {
    std::vector<float> back(256);
    type_traits(DType::kQ6_K, isa)->to_float(expected.data(), back.data(), 256);
    EXPECT_EQ(back, ones) << isa_name(isa);
  }
}

// x[j] = half of the doubled E2M1 value j % 16. amax = 6, floor(log2 6) = 2, so e = 2 - 2 + 127
// = 0x7f and the half scale is 0.5: every value is exact, q[j] = j % 16, except -0 (index 8),
// which ties with +0 and takes the first index, 0. Byte j = q | q << 4.
TEST(KQuantKnownAnswer, MXFP4ByHand) {
  const float doubled[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = 0.5f * doubled[j % 16];
  std::vector<uint8_t> expected = {0x7f};
  for (int j = 0; j < 16; ++j) expected.push_back(static_cast<uint8_t>(j == 8 ? 0 : j * 0x11));
  EXPECT_EQ(quantize(DType::kMXFP4, x), expected);
  for (Isa isa : available_isas()) {
    std::vector<float> back(32);
    type_traits(DType::kMXFP4, isa)->to_float(expected.data(), back.data(), 32);
    EXPECT_EQ(back, x) << isa_name(isa);
  }
}

// Q4_K's 6-bit scale/min packing, by hand: sub-block j gets scale j + 1 and min 2j + 40 (above
// 31, so the top bits are used), every quant 3, d = 1, dmin = 0.5: x = (j + 1) * 3 - (j + 20).
TEST(KQuantKnownAnswer, Q4_KScalePackingDequantizes) {
  std::vector<uint8_t> block(144, 0);
  block[1] = 0x3c;  // d = 1
  block[3] = 0x38;  // dmin = 0.5
  uint8_t* scales = block.data() + 4;
  for (int j = 0; j < 8; ++j) {
    const int sc = j + 1, m = 2 * j + 40;
    if (j < 4) {
      scales[j] = static_cast<uint8_t>(sc);
      scales[j + 4] = static_cast<uint8_t>(m);
    } else {
      scales[j + 4] = static_cast<uint8_t>((sc & 0x0f) | ((m & 0x0f) << 4));
      scales[j - 4] |= static_cast<uint8_t>((sc >> 4) << 6);
      scales[j] |= static_cast<uint8_t>((m >> 4) << 6);
    }
  }
  for (int j = 0; j < 128; ++j) block[16 + j] = 0x33;
  for (Isa isa : available_isas()) {
    std::vector<float> out(256);
    type_traits(DType::kQ4_K, isa)->to_float(block.data(), out.data(), 256);
    for (int e = 0; e < 256; ++e) {
      const int j = e / 32;
      ASSERT_EQ(out[e], static_cast<float>((j + 1) * 3 - (j + 20))) << isa_name(isa) << " e=" << e;
    }
  }
}

// Q8_K: scale -127 / (signed extreme), ties to even, 16-element sums.
TEST(KQuantKnownAnswer, Q8_KActivations) {
  std::vector<float> x(256, 0.0f);
  x[0] = -127.0f;  // the extreme: iscale = 1, d = 1
  x[1] = 2.5f;     // -> 2 (ties to even)
  x[2] = 3.5f;     // -> 4
  x[17] = -0.5f;   // -> 0 (-0 rounds to 0)
  for (Isa isa : available_isas()) {
    std::vector<uint8_t> q(292);
    type_traits(DType::kQ8_K, isa)->from_float_activation(x.data(), q.data(), 256);
    float d;
    std::memcpy(&d, q.data(), 4);
    EXPECT_EQ(d, 1.0f) << isa_name(isa);
    EXPECT_EQ(static_cast<int8_t>(q[4]), -127);
    EXPECT_EQ(static_cast<int8_t>(q[5]), 2);
    EXPECT_EQ(static_cast<int8_t>(q[6]), 4);
    EXPECT_EQ(static_cast<int8_t>(q[4 + 17]), 0);
    int16_t bsum0;
    std::memcpy(&bsum0, q.data() + 260, 2);
    EXPECT_EQ(bsum0, -127 + 2 + 4);
  }
}

// Every ISA reproduces ggml's x86 float order, so all must equal the scalar reference exactly.
class KQuantDotTest : public ::testing::TestWithParam<DType> {};

TEST_P(KQuantDotTest, EveryIsaBitIdenticalToScalar) {
  const DType type = GetParam();
  const TypeTraits& ref = *type_traits(type, Isa::kScalar);
  const TypeTraits& act = *type_traits(ref.vec_dot_type, Isa::kScalar);
  for (int64_t blocks : {1, 2, 3, 8, 9, 33}) {
    const int64_t n = ref.block_size * blocks;
    std::vector<uint8_t> w(row_bytes(ref, n)), x(row_bytes(act, n));
    ref.from_float(gaussian(n, static_cast<uint32_t>(blocks)).data(), w.data(), n);
    to_activation(act, gaussian(n, 77, 2.0f).data(), x.data(), n);
    const float expected = ref.vec_dot(n, w.data(), x.data());
    for (Isa isa : available_isas()) {
      const float got = type_traits(type, isa)->vec_dot(n, w.data(), x.data());
      EXPECT_EQ(got, expected) << isa_name(isa) << " n=" << n;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(NewTypes, KQuantDotTest,
                         ::testing::Values(DType::kQ2_K, DType::kQ3_K, DType::kQ4_K, DType::kQ5_K,
                                           DType::kQ6_K, DType::kIQ4_NL, DType::kIQ4_XS, DType::kMXFP4),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

}  // namespace
}  // namespace moe::kernels::test

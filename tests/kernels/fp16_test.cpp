// Scalar fp16/bf16 conversions (kernels/fp16.h) against the hardware instructions: F16C's
// vcvtph2ps / vcvtps2ph for every half and many floats, AVX512_BF16's vcvtneps2bf16 for bf16.
#include <gtest/gtest.h>
#include <immintrin.h>

#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "core/cpu_features.h"
#include "kernels/fp16.h"

namespace moe::kernels {
namespace {

__attribute__((target("f16c"))) float hw_half_to_float(uint16_t h) { return _cvtsh_ss(h); }

__attribute__((target("f16c"))) uint16_t hw_float_to_half(float f) {
  return static_cast<uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

__attribute__((target("avx512f,avx512vl,avx512bf16"))) uint16_t hw_float_to_bf16(float f) {
  const __m128bh h = _mm_cvtneps_pbh(_mm_set1_ps(f));
  uint16_t out[8];
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), reinterpret_cast<__m128i>(h));
  return out[0];
}

float from_bits(uint32_t b) { return std::bit_cast<float>(b); }

// Floats that stress fp16 rounding: zeros, the subnormal range and its edges, exact ties
// (halfway between two halves, both parities), overflow to inf, inf and NaNs.
std::vector<float> fp16_edge_cases() {
  std::vector<float> v = {0.0f, -0.0f, 1.0f, -1.0f, 65504.0f, 65519.0f, 65520.0f, 1e10f, -1e10f,
                          std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                          std::numeric_limits<float>::quiet_NaN(), from_bits(0x7f800001), from_bits(0xffc12345),
                          std::ldexp(1.0f, -14), std::ldexp(1.0f, -24), std::ldexp(1.0f, -25),
                          std::ldexp(1.5f, -25), std::ldexp(1.0f, -26), std::ldexp(3.0f, -25),
                          std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::min()};
  for (uint32_t h = 0; h < 0x7c00; h += 97) {  // ties between consecutive halves
    const float lo = hw_half_to_float(static_cast<uint16_t>(h));
    const float hi = hw_half_to_float(static_cast<uint16_t>(h + 1));
    v.push_back(lo + (hi - lo) / 2);
    v.push_back(-(lo + (hi - lo) / 2));
  }
  return v;
}

class Fp16Test : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cpu_features().f16c) GTEST_SKIP() << "CPU (or MOE_FORCE_ISA) has no F16C";
  }
};

TEST_F(Fp16Test, EveryHalfToFloatMatchesF16c) {
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    const float want = hw_half_to_float(static_cast<uint16_t>(h));
    const float got = fp16_to_fp32(static_cast<uint16_t>(h));
    if (std::isnan(want)) {
      // F16C quiets signalling NaNs; ours keeps the payload as is. Both are NaN of one sign.
      ASSERT_TRUE(std::isnan(got)) << std::hex << h;
      ASSERT_EQ(std::signbit(got), std::signbit(want)) << std::hex << h;
    } else {
      ASSERT_EQ(std::bit_cast<uint32_t>(got), std::bit_cast<uint32_t>(want)) << std::hex << h;
    }
  }
}

TEST_F(Fp16Test, FloatToHalfEdgeCasesMatchF16c) {
  for (float f : fp16_edge_cases()) {
    ASSERT_EQ(fp32_to_fp16(f), hw_float_to_half(f)) << std::hexfloat << f;
  }
}

TEST_F(Fp16Test, RandomFloatBitsMatchF16c) {
  std::mt19937 rng(1);
  for (int i = 0; i < 2'000'000; ++i) {
    const float f = from_bits(rng());
    ASSERT_EQ(fp32_to_fp16(f), hw_float_to_half(f)) << std::hex << std::bit_cast<uint32_t>(f);
  }
}

TEST(Bf16Test, KnownAnswers) {
  EXPECT_EQ(fp32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(fp32_to_bf16(from_bits(0x3f808000)), 0x3f80);  // tie, even stays
  EXPECT_EQ(fp32_to_bf16(from_bits(0x3f818000)), 0x3f82);  // tie, odd rounds up
  EXPECT_EQ(fp32_to_bf16(from_bits(0x3f808001)), 0x3f81);  // just above the tie
  EXPECT_EQ(fp32_to_bf16(from_bits(0x7f7fffff)), 0x7f80);  // rounds up to inf
  EXPECT_EQ(fp32_to_bf16(from_bits(0x7f800001)), 0x7fc0);  // signalling NaN -> quiet NaN
  EXPECT_EQ(fp32_to_bf16(from_bits(0x00018000)), 0x0002);  // subnormals are kept (as ggml)
  EXPECT_EQ(bf16_to_fp32(0xc040), -3.0f);
}

// vcvtneps2bf16 flushes subnormals to zero, so those are left to the known answers above.
TEST(Bf16Test, NormalFloatsMatchAvx512Bf16) {
  if (!cpu_features().avx512bf16) GTEST_SKIP() << "CPU (or MOE_FORCE_ISA) has no AVX512_BF16";
  std::mt19937 rng(2);
  for (int i = 0; i < 2'000'000; ++i) {
    const float f = from_bits(rng());
    if (std::fpclassify(f) == FP_SUBNORMAL || std::isnan(f)) continue;
    ASSERT_EQ(fp32_to_bf16(f), hw_float_to_bf16(f)) << std::hex << std::bit_cast<uint32_t>(f);
  }
}

}  // namespace
}  // namespace moe::kernels

// Quantizers and dequantizers: hand-derived known answers (bytes as llama.cpp writes them),
// round-trip error bounds per type, and SIMD conversions equal to the scalar ones bit for bit.
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

std::vector<float> ramp(float start, float step) {
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = start + step * static_cast<float>(j);
  return x;
}

// x = -16..15. The extreme is -16, so d = -16 / -8 = 2 (fp16 0x4000), id = 0.5, and
// q = min(15, trunc(x / 2 + 8.5)) = min(15, (j + 1) / 2). Byte j packs q[j] | q[j + 16] << 4.
TEST(QuantizeKnownAnswer, Q4_0) {
  const std::vector<uint8_t> expected = {0x00, 0x40, 0x80, 0x91, 0x91, 0xa2, 0xa2, 0xb3, 0xb3,
                                         0xc4, 0xc4, 0xd5, 0xd5, 0xe6, 0xe6, 0xf7, 0xf7, 0xf8};
  EXPECT_EQ(quantize(DType::kQ4_0, ramp(-16.0f, 1.0f)), expected);
}

// x = 1 + j/2 for j < 16, then 8.5: min 1 (0x3c00), d = 7.5 / 15 = 0.5 (0x3800), q[j] = j for
// j < 16 and 15 after, so byte j = j | 0xf0.
TEST(QuantizeKnownAnswer, Q4_1) {
  std::vector<float> x = ramp(1.0f, 0.5f);
  for (int j = 16; j < 32; ++j) x[j] = 8.5f;
  std::vector<uint8_t> expected = {0x00, 0x38, 0x00, 0x3c};
  for (int j = 0; j < 16; ++j) expected.push_back(static_cast<uint8_t>(j | 0xf0));
  EXPECT_EQ(quantize(DType::kQ4_1, x), expected);
}

// x = -16..15: d = -16 / -16 = 1 (0x3c00), q[j] = trunc(x + 16.5) = j. Nibbles j | j << 4;
// fifth bits set for j >= 16: qh = 0xffff0000 little-endian.
TEST(QuantizeKnownAnswer, Q5_0) {
  std::vector<uint8_t> expected = {0x00, 0x3c, 0x00, 0x00, 0xff, 0xff};
  for (int j = 0; j < 16; ++j) expected.push_back(static_cast<uint8_t>(j * 0x11));
  EXPECT_EQ(quantize(DType::kQ5_0, ramp(-16.0f, 1.0f)), expected);
}

// x = 1 + j/2: d = 15.5 / 31 = 0.5, m = 1, q[j] = j; bytes as in Q5_0 after d and m.
TEST(QuantizeKnownAnswer, Q5_1) {
  std::vector<uint8_t> expected = {0x00, 0x38, 0x00, 0x3c, 0x00, 0x00, 0xff, 0xff};
  for (int j = 0; j < 16; ++j) expected.push_back(static_cast<uint8_t>(j * 0x11));
  EXPECT_EQ(quantize(DType::kQ5_1, ramp(1.0f, 0.5f)), expected);
}

// amax = 127 so d = 1 (0x3c00) and the halves show the rounding rule: the reference (files)
// rounds half away from zero; ggml's x86 activation quantizer rounds half to even.
std::vector<float> q8_halves() {
  std::vector<float> x(32, 0.0f);
  const float halves[] = {127.0f, -2.5f, -1.5f, -0.5f, 0.5f, 1.5f, 2.5f, -127.0f, 3.25f, -3.75f};
  std::copy(std::begin(halves), std::end(halves), x.begin());
  return x;
}

TEST(QuantizeKnownAnswer, Q8_0RoundsHalfAwayFromZero) {
  std::vector<uint8_t> expected(34, 0);
  expected[1] = 0x3c;
  const int8_t q[] = {127, -3, -2, -1, 1, 2, 3, -127, 3, -4};
  for (int j = 0; j < 10; ++j) expected[2 + j] = static_cast<uint8_t>(q[j]);
  EXPECT_EQ(quantize(DType::kQ8_0, q8_halves()), expected);
}

TEST(QuantizeKnownAnswer, Q8ActivationsRoundHalfToEvenOnEveryIsa) {
  const int8_t q[] = {127, -2, -2, 0, 0, 2, 2, -127, 3, -4};
  const int sum = 127 - 2 - 2 + 0 + 0 + 2 + 2 - 127 + 3 - 4;  // -1 -> s = fp16(-1) = 0xbc00
  for (Isa isa : available_isas()) {
    std::vector<uint8_t> q8_0(34), q8_1(36);
    type_traits(DType::kQ8_0, isa)->from_float_activation(q8_halves().data(), q8_0.data(), 32);
    type_traits(DType::kQ8_1, isa)->from_float_activation(q8_halves().data(), q8_1.data(), 32);
    EXPECT_EQ(q8_0[1], 0x3c) << isa_name(isa);
    EXPECT_EQ(q8_1[1], 0x3c) << isa_name(isa);
    EXPECT_EQ(q8_1[2] | q8_1[3] << 8, 0xbc00) << isa_name(isa) << " sum " << sum;
    for (int j = 0; j < 32; ++j) {
      const int8_t want = j < 10 ? q[j] : 0;
      EXPECT_EQ(static_cast<int8_t>(q8_0[2 + j]), want) << isa_name(isa) << " j=" << j;
      EXPECT_EQ(static_cast<int8_t>(q8_1[4 + j]), want) << isa_name(isa) << " j=" << j;
    }
  }
}

TEST(DequantizeKnownAnswer, Q4_0) {
  const std::vector<uint8_t> block = {0x00, 0x40, 0x80, 0x91, 0x91, 0xa2, 0xa2, 0xb3, 0xb3,
                                      0xc4, 0xc4, 0xd5, 0xd5, 0xe6, 0xe6, 0xf7, 0xf7, 0xf8};
  for (Isa isa : available_isas()) {
    std::vector<float> out(32);
    type_traits(DType::kQ4_0, isa)->to_float(block.data(), out.data(), 32);
    for (int j = 0; j < 32; ++j) {
      const int q = std::min(15, (j + 1) / 2);
      EXPECT_EQ(out[j], 2.0f * static_cast<float>(q - 8)) << isa_name(isa) << " j=" << j;
    }
  }
}

// Relative RMS error of a quantize/dequantize round trip of Gaussian data. The bounds sit a
// little above what each format gives (step / sqrt(12) for a step of amax/8, range/15, ...).
struct RoundTripBound {
  DType type;
  double max_relative_rmse;
};

class RoundTripTest : public ::testing::TestWithParam<RoundTripBound> {};

TEST_P(RoundTripTest, ErrorWithinFormatBound) {
  const auto [type, bound] = GetParam();
  const int64_t n = 32 * 512;
  const std::vector<float> x = gaussian(n, 42);
  for (Isa isa : available_isas()) {
    const TypeTraits& t = *type_traits(type, isa);
    std::vector<uint8_t> q(row_bytes(t, n));
    std::vector<float> back(n);
    t.from_float(x.data(), q.data(), n);
    t.to_float(q.data(), back.data(), n);
    double err = 0.0, signal = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      err += (back[i] - x[i]) * static_cast<double>(back[i] - x[i]);
      signal += x[i] * static_cast<double>(x[i]);
    }
    EXPECT_LE(std::sqrt(err / signal), bound) << isa_name(isa);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Types, RoundTripTest,
    ::testing::Values(RoundTripBound{DType::kF32, 0.0}, RoundTripBound{DType::kF16, 3e-4},
                      RoundTripBound{DType::kBF16, 3e-3}, RoundTripBound{DType::kQ8_0, 8e-3},
                      RoundTripBound{DType::kQ8_1, 8e-3}, RoundTripBound{DType::kQ4_0, 0.12},
                      RoundTripBound{DType::kQ4_1, 0.11}, RoundTripBound{DType::kQ5_0, 0.06},
                      RoundTripBound{DType::kQ5_1, 0.055}, RoundTripBound{DType::kQ2_K, 0.31},
                      RoundTripBound{DType::kQ3_K, 0.16}, RoundTripBound{DType::kQ4_K, 0.075},
                      RoundTripBound{DType::kQ5_K, 0.038}, RoundTripBound{DType::kQ6_K, 0.019},
                      RoundTripBound{DType::kQ8_K, 7.2e-3}, RoundTripBound{DType::kIQ4_NL, 0.08},
                      RoundTripBound{DType::kIQ4_XS, 0.08}, RoundTripBound{DType::kMXFP4, 0.12}),
    [](const auto& info) { return "type" + std::to_string(static_cast<int>(info.param.type)); });

// Every ISA's to_float / from_float / from_float_activation equals the scalar one exactly.
class ConversionTest : public ::testing::TestWithParam<DType> {};

TEST_P(ConversionTest, SimdEqualsScalarBitForBit) {
  const DType type = GetParam();
  const TypeTraits& ref = *type_traits(type, Isa::kScalar);
  for (int64_t blocks : {1, 2, 3, 7, 64, 129}) {
    const int64_t n = blocks * (ref.block_size == 1 ? 37 : ref.block_size);
    std::vector<float> x = gaussian(n, static_cast<uint32_t>(blocks), 2.0f);
    x[n / 2] = 0.0f;
    std::vector<uint8_t> want(row_bytes(ref, n)), want_act(row_bytes(ref, n));
    std::vector<float> want_back(n);
    ref.from_float(x.data(), want.data(), n);
    ref.to_float(want.data(), want_back.data(), n);
    if (ref.from_float_activation) ref.from_float_activation(x.data(), want_act.data(), n);
    for (Isa isa : available_isas()) {
      const TypeTraits& t = *type_traits(type, isa);
      std::vector<uint8_t> got(want.size()), got_act(want.size());
      std::vector<float> got_back(n);
      t.from_float(x.data(), got.data(), n);
      t.to_float(want.data(), got_back.data(), n);
      EXPECT_EQ(got, want) << isa_name(isa) << " n=" << n;
      EXPECT_EQ(0, std::memcmp(got_back.data(), want_back.data(), n * sizeof(float))) << isa_name(isa);
      ASSERT_EQ(t.from_float_activation == nullptr, ref.from_float_activation == nullptr);
      if (!t.from_float_activation) continue;
      t.from_float_activation(x.data(), got_act.data(), n);
      EXPECT_EQ(got_act, want_act) << isa_name(isa) << " n=" << n;
    }
  }
}

// The Q8_K scale takes its sign from the first element of largest magnitude: a block whose
// largest magnitude appears as -3 before +3 (and one the other way round, and one with a NaN)
// must quantize the same on every ISA.
TEST(Q8KActivation, TiesAndNaNMatchScalar) {
  constexpr int64_t kQK_K = 256;  // Q8_K block
  const TypeTraits& ref = *type_traits(DType::kQ8_K, Isa::kScalar);
  std::vector<float> x = gaussian(3 * kQK_K, 5, 0.5f);
  x[40] = -3.0f;
  x[200] = 3.0f;
  x[kQK_K + 17] = 3.0f;
  x[kQK_K + 18] = -3.0f;
  x[2 * kQK_K + 3] = std::nanf("");
  std::vector<uint8_t> want(row_bytes(ref, x.size()));
  ref.from_float_activation(x.data(), want.data(), static_cast<int64_t>(x.size()));
  for (Isa isa : available_isas()) {
    std::vector<uint8_t> got(want.size());
    type_traits(DType::kQ8_K, isa)->from_float_activation(x.data(), got.data(), static_cast<int64_t>(x.size()));
    EXPECT_EQ(got, want) << isa_name(isa);
  }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, ConversionTest,
                         ::testing::Values(DType::kF32, DType::kF16, DType::kBF16, DType::kQ4_0,
                                           DType::kQ4_1, DType::kQ5_0, DType::kQ5_1,
                                           DType::kQ8_0, DType::kQ8_1, DType::kQ2_K, DType::kQ3_K,
                                           DType::kQ4_K, DType::kQ5_K, DType::kQ6_K, DType::kQ8_K,
                                           DType::kIQ4_NL, DType::kIQ4_XS, DType::kMXFP4),
                         [](const auto& info) { return "type" + std::to_string(static_cast<int>(info.param)); });

// The activation quantizer keeps the dot product of Q8_0 close to the float one.
TEST(ActivationQuantizer, DotCloseToFloat) {
  const int64_t n = 4096;
  const std::vector<float> w = gaussian(n, 1), x = gaussian(n, 2);
  double exact = 0.0, abs_sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    exact += static_cast<double>(w[i]) * x[i];
    abs_sum += std::fabs(static_cast<double>(w[i]) * x[i]);
  }
  const TypeTraits& t = *type_traits(DType::kQ8_0);
  std::vector<uint8_t> wq(row_bytes(t, n)), xq(row_bytes(t, n));
  t.from_float(w.data(), wq.data(), n);
  t.from_float_activation(x.data(), xq.data(), n);
  EXPECT_LT(std::fabs(t.vec_dot(n, wq.data(), xq.data()) - exact) / abs_sum, 1e-3);
}

}  // namespace
}  // namespace moe::kernels::test

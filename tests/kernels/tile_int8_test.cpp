// Int8 tile (AMX-INT8) products against their scalar reference (bit-exact: the same integer block
// sums and float steps) and against the dot kernels llama.cpp's numbers come from (within the
// rounding of a different float summation order).
#include "kernels/tile_int8.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>

#include "kernel_test_util.h"
#include "kernels/blocks.h"
#include "kernels/fp16.h"
#include "kernels/tile_gemm.h"

namespace moe::kernels::test {
namespace {

// Rows of random bytes, so every quant, scale and min bit pattern occurs, with sane fp16 block
// factors (random ones would be NaN or huge).
std::vector<uint8_t> random_weight_rows(DType type, int64_t n_rows, int64_t n_cols, uint32_t seed) {
  const TypeTraits& t = *type_traits(type, Isa::kScalar);
  std::vector<uint8_t> out(row_bytes(t, n_cols) * static_cast<size_t>(n_rows));
  std::mt19937 rng(seed);
  for (uint8_t& b : out) b = static_cast<uint8_t>(rng());
  std::uniform_real_distribution<float> factor(-0.02f, 0.02f);
  const auto set_fp16 = [&](uint8_t* at) {
    const uint16_t h = fp32_to_fp16(factor(rng));
    std::memcpy(at, &h, 2);
  };
  for (size_t b = 0; b < out.size() / t.block_bytes; ++b) {
    uint8_t* block = out.data() + b * t.block_bytes;
    switch (type) {
      case DType::kQ8_0:
        set_fp16(block + offsetof(BlockQ8_0, d));
        break;
      case DType::kQ4_K:
        set_fp16(block + offsetof(BlockQ4_K, d));
        set_fp16(block + offsetof(BlockQ4_K, dmin));
        break;
      case DType::kQ5_K:
        set_fp16(block + offsetof(BlockQ5_K, d));
        set_fp16(block + offsetof(BlockQ5_K, dmin));
        break;
      default:
        set_fp16(block + offsetof(BlockQ6_K, d));
    }
  }
  return out;
}

// Activations as the model makes them: floats quantized by the weight type's activation quantizer.
std::vector<uint8_t> activation_rows(DType weight_type, int64_t n_tokens, int64_t n_cols, uint32_t seed) {
  const TypeTraits& wt = *type_traits(weight_type);
  const TypeTraits& xt = *type_traits(wt.vec_dot_type);
  const std::vector<float> x = gaussian(n_tokens * n_cols, seed);
  std::vector<uint8_t> out(row_bytes(xt, n_cols) * static_cast<size_t>(n_tokens));
  const auto quantize = xt.from_float_activation != nullptr ? xt.from_float_activation : xt.from_float;
  for (int64_t t = 0; t < n_tokens; ++t) quantize(x.data() + t * n_cols, out.data() + t * row_bytes(xt, n_cols), n_cols);
  return out;
}

class Int8TileTypes : public ::testing::TestWithParam<DType> {
 protected:
  void SetUp() override {
    if (!int8_tiles::available()) GTEST_SKIP() << "no AMX-INT8 on this CPU";
  }
};

// Token counts around the 16-token groups, a row range with short first and last strips, an
// output stride wider than the rows, and (Q8_0) an odd number of blocks per row.
TEST_P(Int8TileTypes, MatchesTheScalarReferenceBitForBit) {
  const DType type = GetParam();
  const int64_t n_cols = type == DType::kQ8_0 ? 32 * 23 : 256 * 3;
  const int64_t n_rows = 45, row_begin = 3, row_end = 44;
  const std::vector<uint8_t> w = random_weight_rows(type, n_rows, n_cols, 7);
  const size_t w_rb = row_bytes(*type_traits(type), n_cols);
  for (int64_t n_tokens : {1, 4, 15, 16, 17, 33, 40}) {
    const std::vector<uint8_t> x = activation_rows(type, n_tokens, n_cols, 100 + static_cast<uint32_t>(n_tokens));
    const size_t x_rb = x.size() / static_cast<size_t>(n_tokens);
    const int64_t y_stride = n_rows + 5;
    std::vector<float> got(static_cast<size_t>(n_tokens * y_stride), -1.0f), want = got;
    int8_tiles::matmul(type, w.data(), w_rb, n_cols, x.data(), x_rb, n_tokens, got.data(), y_stride, row_begin, row_end);
    int8_tiles::ref::matmul(type, w.data(), w_rb, n_cols, x.data(), x_rb, n_tokens, want.data(), y_stride, row_begin,
                            row_end);
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(got[i], want[i]) << "tokens " << n_tokens << " index " << i << " (row " << i % y_stride << ")";
    }
  }
}

// The reference sums the same integers as ggml's dot kernels, so it differs from vec_dot only by
// float rounding: a few ulps of the partial sums, which (random bytes: large scales of both signs)
// reach the size of the largest output.
TEST_P(Int8TileTypes, ReferenceAgreesWithTheDotKernels) {
  const DType type = GetParam();
  const int64_t n_cols = 2048, n_rows = 16, n_tokens = 8;
  const std::vector<uint8_t> w = random_weight_rows(type, n_rows, n_cols, 9);
  const TypeTraits& traits = *type_traits(type);
  const size_t w_rb = row_bytes(traits, n_cols);
  const std::vector<uint8_t> x = activation_rows(type, n_tokens, n_cols, 10);
  const size_t x_rb = x.size() / n_tokens;
  std::vector<float> got(static_cast<size_t>(n_rows * n_tokens));
  int8_tiles::ref::matmul(type, w.data(), w_rb, n_cols, x.data(), x_rb, n_tokens, got.data(), n_rows, 0, n_rows);
  std::vector<float> want(got.size());
  float largest = 0;
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t r = 0; r < n_rows; ++r) {
      want[t * n_rows + r] = traits.vec_dot(n_cols, w.data() + r * w_rb, x.data() + t * x_rb);
      largest = std::max(largest, std::fabs(want[t * n_rows + r]));
    }
  }
  ASSERT_GT(largest, 1.0f);  // the data is not degenerate
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-5f * largest) << "output " << i;
}

INSTANTIATE_TEST_SUITE_P(Types, Int8TileTypes, ::testing::Values(DType::kQ8_0, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

// The two tile units configure the tiles differently (Q8_0's int8 products take 32-column
// tiles): one thread alternating between them must get each product right every time.
TEST(Int8Tiles, AlternatingWithTheBf16TilesOnOneThread) {
  if (!int8_tiles::available() || !tiles::available()) GTEST_SKIP() << "no AMX-INT8 and AMX-BF16 on this CPU";
  const int64_t n_cols = 256, n_rows = 16, n_tokens = 8;
  const std::vector<uint8_t> w = random_weight_rows(DType::kQ8_0, n_rows, n_cols, 21);
  const size_t w_rb = row_bytes(*type_traits(DType::kQ8_0), n_cols);
  const std::vector<uint8_t> x = activation_rows(DType::kQ8_0, n_tokens, n_cols, 22);
  const std::vector<float> xf = gaussian(n_tokens * n_cols, 23);
  std::vector<const float*> rows;
  for (int64_t t = 0; t < n_tokens; ++t) rows.push_back(xf.data() + t * n_cols);
  std::vector<uint16_t> packed(tiles::packed_size(n_tokens, n_cols));
  tiles::pack_activations(rows.data(), n_tokens, n_cols, 0, n_cols, packed.data());
  std::vector<float> int8_want(static_cast<size_t>(n_rows * n_tokens)), bf16_want(int8_want.size());
  int8_tiles::ref::matmul(DType::kQ8_0, w.data(), w_rb, n_cols, x.data(), x.size() / n_tokens, n_tokens,
                          int8_want.data(), n_rows, 0, n_rows);
  tiles::ref::matmul(DType::kQ8_0, w.data(), w_rb, n_cols, xf.data(), n_tokens, bf16_want.data(), n_rows, 0, n_rows);
  for (int round = 0; round < 3; ++round) {
    std::vector<float> got(int8_want.size());
    int8_tiles::matmul(DType::kQ8_0, w.data(), w_rb, n_cols, x.data(), x.size() / n_tokens, n_tokens, got.data(),
                       n_rows, 0, n_rows);
    ASSERT_EQ(got, int8_want) << "round " << round;
    tiles::matmul(DType::kQ8_0, w.data(), w_rb, n_cols, packed.data(), n_tokens, got.data(), n_rows, 0, n_rows);
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_NEAR(got[i], bf16_want[i], 1e-3f * (1.0f + std::fabs(bf16_want[i]))) << "round " << round << " output " << i;
    }
  }
}

TEST(Int8Tiles, SupportsExactlyTheTypesWithKernels) {
  EXPECT_TRUE(int8_tiles::supports(DType::kQ8_0));
  EXPECT_TRUE(int8_tiles::supports(DType::kQ4_K));
  EXPECT_TRUE(int8_tiles::supports(DType::kQ5_K));
  EXPECT_TRUE(int8_tiles::supports(DType::kQ6_K));
  EXPECT_FALSE(int8_tiles::supports(DType::kQ3_K));
  EXPECT_FALSE(int8_tiles::supports(DType::kF16));
}

}  // namespace
}  // namespace moe::kernels::test

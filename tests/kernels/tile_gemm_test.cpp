// Tile (AMX-BF16) products against their scalar references: the bf16 rounding, the dequantized
// strips (bit-exact: the same floats rounded the same way), and the products (within float
// accumulation error of a double-precision sum of the same bf16 inputs).
#include "kernels/tile_gemm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "kernel_test_util.h"

namespace moe::kernels::test {
namespace {

using tiles::ref::bf16_to_float;
using tiles::ref::round_to_bf16;

TEST(Bf16Rounding, NearestEvenFlushesSubnormalsKeepsSpecials) {
  EXPECT_EQ(round_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(round_to_bf16(-2.0f), 0xc000);
  // 1 + 2^-8 is half-way between 1 and 1 + 2^-7: ties go to the even mantissa (1.0).
  EXPECT_EQ(round_to_bf16(1.0f + 1.0f / 256), 0x3f80);
  // 1 + 3 * 2^-8 is half-way between 1 + 2^-7 (odd) and 1 + 2^-6 (even).
  EXPECT_EQ(round_to_bf16(1.0f + 3.0f / 256), 0x3f82);
  EXPECT_EQ(round_to_bf16(1.0f + 1.0f / 128 + 1.0f / 1024), 0x3f81);
  EXPECT_EQ(round_to_bf16(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_EQ(round_to_bf16(-std::numeric_limits<float>::denorm_min()), 0x8000);
  EXPECT_EQ(round_to_bf16(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_TRUE(std::isnan(bf16_to_float(round_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_EQ(bf16_to_float(0x3fc0), 1.5f);
}

TEST(TileSwitch, SetEnabledTurnsTheTilesOffAndOn) {
  const bool before = tiles::enabled();
  tiles::set_enabled(false);
  EXPECT_FALSE(tiles::enabled());
  tiles::set_enabled(true);
  EXPECT_EQ(tiles::enabled(), tiles::available());
  tiles::set_enabled(before);
}

std::vector<uint8_t> random_rows(DType type, int64_t n_rows, int64_t n_cols, uint32_t seed) {
  const TypeTraits& t = *type_traits(type, Isa::kScalar);
  const std::vector<float> w = gaussian(n_rows * n_cols, seed, 0.5f);
  std::vector<uint8_t> out(row_bytes(t, n_cols) * static_cast<size_t>(n_rows));
  t.from_float(w.data(), out.data(), n_rows * n_cols);
  return out;
}

class TileTypes : public ::testing::TestWithParam<DType> {
 protected:
  void SetUp() override {
    if (!tiles::available()) GTEST_SKIP() << "no AMX-BF16 on this CPU";
  }
};

// The fast dequantizers (Q8_0, Q4_K, Q6_K) and the to_float fallback (the others) must give
// exactly round_to_bf16 of the scalar to_float, element by element.
TEST_P(TileTypes, DequantizedStripIsTheRoundedReference) {
  const DType type = GetParam();
  const TypeTraits& scalar = *type_traits(type, Isa::kScalar);
  const int64_t n_cols = 512, n_rows = 37;  // 74 blocks of 256: every scale / min bit pattern
  const std::vector<uint8_t> w = random_rows(type, n_rows, n_cols, 11);
  const size_t rb = row_bytes(scalar, n_cols);
  std::vector<uint16_t> got(static_cast<size_t>(n_rows * n_cols));
  tiles::dequantize_rows_bf16(type, w.data(), rb, static_cast<int>(n_rows), n_cols, got.data(), n_cols);
  std::vector<float> want(static_cast<size_t>(n_cols));
  for (int64_t r = 0; r < n_rows; ++r) {
    scalar.to_float(w.data() + r * rb, want.data(), n_cols);
    for (int64_t c = 0; c < n_cols; ++c) {
      ASSERT_EQ(got[r * n_cols + c], round_to_bf16(want[c])) << "row " << r << " col " << c;
    }
  }
}

// Products over token counts around the 16-token groups and 4-group passes, and a row range
// with a short last strip; activations packed in two column ranges (as the expert FFN does).
// Types with small blocks get a column count that is no multiple of the 256-column spans the
// weights are dequantized in.
TEST_P(TileTypes, MatmulMatchesTheReference) {
  const DType type = GetParam();
  const TypeTraits& scalar = *type_traits(type, Isa::kScalar);
  const int64_t n_cols = scalar.block_size <= 32 ? 608 : 512, n_rows = 40, row_begin = 3, row_end = 37;
  const std::vector<uint8_t> w = random_rows(type, n_rows, n_cols, 21);
  const size_t rb = row_bytes(scalar, n_cols);
  for (int64_t n_tokens : {1, 5, 16, 17, 64, 70}) {
    const std::vector<float> x = gaussian(n_tokens * n_cols, static_cast<uint32_t>(100 + n_tokens));
    std::vector<const float*> rows;
    for (int64_t t = 0; t < n_tokens; ++t) rows.push_back(x.data() + t * n_cols);
    std::vector<uint16_t> packed(tiles::packed_size(n_tokens, n_cols), 0xffff);
    tiles::pack_activations(rows.data(), n_tokens, n_cols, 0, 256, packed.data());
    tiles::pack_activations(rows.data(), n_tokens, n_cols, 256, n_cols, packed.data());
    const float sentinel = -12345.0f;
    std::vector<float> got(static_cast<size_t>(n_tokens * n_rows), sentinel);
    std::vector<float> want(got.size(), sentinel);
    tiles::matmul(type, w.data(), rb, n_cols, packed.data(), n_tokens, got.data(), n_rows, row_begin, row_end);
    tiles::ref::matmul(type, w.data(), rb, n_cols, x.data(), n_tokens, want.data(), n_rows, row_begin, row_end);
    std::vector<float> w_row(static_cast<size_t>(n_cols));
    for (int64_t r = 0; r < n_rows; ++r) {
      scalar.to_float(w.data() + r * rb, w_row.data(), n_cols);
      for (int64_t t = 0; t < n_tokens; ++t) {
        const size_t i = static_cast<size_t>(t * n_rows + r);
        if (r < row_begin || r >= row_end) {
          ASSERT_EQ(got[i], sentinel) << "wrote outside the row range at row " << r;
          continue;
        }
        double magnitude = 0;
        for (int64_t c = 0; c < n_cols; ++c) magnitude += std::fabs(w_row[c] * x[t * n_cols + c]);
        ASSERT_NEAR(got[i], want[i], 1e-5 * magnitude + 1e-6)
            << dtype_name(type) << " tokens " << n_tokens << " row " << r << " token " << t;
      }
    }
  }
}

// A token's result must not depend on which tokens share its product (the expert FFN relies on
// it: the same token gives the same bits in a group of 5 or of 70).
TEST_P(TileTypes, TokenResultDoesNotDependOnTheBatch) {
  const DType type = GetParam();
  const TypeTraits& scalar = *type_traits(type, Isa::kScalar);
  const int64_t n_cols = 768, n_rows = 32, n_tokens = 70;
  const std::vector<uint8_t> w = random_rows(type, n_rows, n_cols, 31);
  const size_t rb = row_bytes(scalar, n_cols);
  const std::vector<float> x = gaussian(n_tokens * n_cols, 41);
  std::vector<const float*> rows;
  for (int64_t t = 0; t < n_tokens; ++t) rows.push_back(x.data() + t * n_cols);
  std::vector<uint16_t> packed(tiles::packed_size(n_tokens, n_cols));
  tiles::pack_activations(rows.data(), n_tokens, n_cols, 0, n_cols, packed.data());
  std::vector<float> together(static_cast<size_t>(n_tokens * n_rows));
  tiles::matmul(type, w.data(), rb, n_cols, packed.data(), n_tokens, together.data(), n_rows, 0, n_rows);
  for (int64_t t : {0, 17, 33, 69}) {
    std::vector<uint16_t> one(tiles::packed_size(1, n_cols));
    tiles::pack_activations(&rows[static_cast<size_t>(t)], 1, n_cols, 0, n_cols, one.data());
    std::vector<float> alone(static_cast<size_t>(n_rows));
    tiles::matmul(type, w.data(), rb, n_cols, one.data(), 1, alone.data(), n_rows, 0, n_rows);
    for (int64_t r = 0; r < n_rows; ++r) ASSERT_EQ(alone[r], together[t * n_rows + r]) << "token " << t << " row " << r;
  }
}

INSTANTIATE_TEST_SUITE_P(Types, TileTypes,
                         ::testing::Values(DType::kQ8_0, DType::kQ4_K, DType::kQ6_K, DType::kQ5_K, DType::kQ4_0,
                                           DType::kF16, DType::kF32, DType::kBF16),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

}  // namespace
}  // namespace moe::kernels::test

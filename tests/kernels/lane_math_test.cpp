// lane_math (the scalar emulation of ggml's AVX-512 exp and lane sums) and the ops built on it:
// exp_lane is a good exp; the AVX-512 groups give the scalar emulation's bits; masked softmax
// entries are exact zeros.
#include "kernels/lane_math.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernel_test_util.h"
#include "kernels/avx512/avx512_kernels.h"
#include "kernels/ops.h"

namespace moe::kernels::test {
namespace {

// ggml documents at most 1.45 ulp plus the final rounding: about 2 ulp, 2.4e-7 relative.
TEST(ExpLane, WithinTwoUlpOfExpOverTheFloatRange) {
  for (float x = -87.0f; x < 88.0f; x += 0.0137f) {
    const double exact = std::exp(static_cast<double>(x));
    ASSERT_LE(std::fabs(exp_lane(x) - exact), 2.4e-7 * exact) << "x=" << x;
  }
  EXPECT_EQ(exp_lane(0.0f), 1.0f);
}

TEST(ExpLane, FlushesOutOfRangeAndKeepsNan) {
  EXPECT_EQ(exp_lane(-INFINITY), 0.0f);
  EXPECT_EQ(exp_lane(-200.0f), 0.0f);
  EXPECT_EQ(exp_lane(200.0f), INFINITY);
  EXPECT_EQ(exp_lane(INFINITY), INFINITY);
  EXPECT_TRUE(std::isnan(exp_lane(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_GT(exp_lane(-100.0f), 0.0f);  // subnormal, not flushed
}

// The pairing decides the rounding: 2^24 + 1 is not a float, so adding the 1s early or late
// gives different sums.
TEST(ReduceAddLanes, PairsUpperAndLowerHalvesFirst) {
  float lanes[kLanes] = {};
  lanes[0] = 16777216.0f;  // 2^24
  lanes[8] = 1.0f;         // paired with lane 0 first: 2^24 + 1 rounds to 2^24
  lanes[4] = 1.0f;         // joins lane 0 in the second step: again lost
  lanes[2] = 1.0f;
  lanes[10] = 1.0f;  // lanes 2 and 10 make 2, added to lane 0's 2^24 in the third step: kept
  EXPECT_EQ(reduce_add_lanes(lanes), 16777218.0f);
}

std::vector<float> spread_values(int64_t n, uint32_t seed) {
  std::vector<float> v = gaussian(n, seed, 8.0f);
  v[3] = -INFINITY;  // a masked position
  v[17] = -150.0f;   // e^(x - max) underflows to zero
  return v;
}

TEST(ExpGroups, Avx512MatchesTheScalarEmulationBitForBit) {
  if (best_isa() != Isa::kAvx512) GTEST_SKIP() << "needs AVX-512";
  const int64_t n = 16 * 37;
  std::vector<float> simd = spread_values(n, 5), scalar = simd;
  const float max_value = 3.5f;
  const double simd_sum = avx512::exp_sub_sum_groups(simd.data(), n, max_value);
  double scalar_sum = 0.0;
  for (int64_t i = 0; i < n; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) scalar[i + l] = exp_lane(scalar[i + l] - max_value);
    scalar_sum += reduce_add_lanes(scalar.data() + i);
  }
  EXPECT_EQ(simd_sum, scalar_sum);
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(simd[i], scalar[i]) << "i=" << i;
}

TEST(SwigluGroups, Avx512MatchesTheScalarEmulationBitForBit) {
  if (best_isa() != Isa::kAvx512) GTEST_SKIP() << "needs AVX-512";
  const int64_t n = 16 * 29;
  const std::vector<float> gate = gaussian(n, 8, 6.0f), up = gaussian(n, 9);
  std::vector<float> out(n);
  avx512::swiglu_groups(gate.data(), up.data(), out.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_EQ(out[i], gate[i] / (1.0f + exp_lane(0.0f - gate[i])) * up[i]) << "i=" << i;
  }
}

TEST(Softmax, MaskedEntriesAreExactZerosAndTheRestSumsToOne) {
  for (int64_t n : {5, 16, 37, 64, 256}) {
    std::vector<float> x = gaussian(n, static_cast<uint32_t>(n), 4.0f);
    for (int64_t i = n / 2; i < n; i += 2) x[i] = -INFINITY;
    softmax(x.data(), n);
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      if (i >= n / 2 && (i - n / 2) % 2 == 0) {
        ASSERT_EQ(x[i], 0.0f) << "n=" << n << " i=" << i;
      }
      sum += x[i];
    }
    EXPECT_NEAR(sum, 1.0, 1e-6) << "n=" << n;
  }
}

TEST(Swiglu, MatchesSiluTimesUpAcrossGroupAndTailLengths) {
  for (int64_t n : {1, 15, 16, 17, 100}) {
    const std::vector<float> gate = gaussian(n, 1, 4.0f), up = gaussian(n, 2);
    std::vector<float> out(n);
    swiglu(gate.data(), up.data(), out.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const double g = gate[i];
      ASSERT_NEAR(out[i], g / (1.0 + std::exp(-g)) * up[i], 1e-6 * (std::fabs(g * up[i]) + 1e-6)) << "n=" << n;
    }
  }
}

}  // namespace
}  // namespace moe::kernels::test

#include "kernels/lane_math.h"

#include <cmath>

namespace moe::kernels {

float reduce_add_lanes(const float* lanes) {
  float eight[8];
  for (int i = 0; i < 8; ++i) eight[i] = lanes[i + 8] + lanes[i];
  float four[4];
  for (int i = 0; i < 4; ++i) four[i] = eight[i + 4] + eight[i];
  return (four[0] + four[2]) + (four[1] + four[3]);
}

float exp_lane(float x) {
  // x = n ln2 + b with n integral: adding 1.5 * 2^23 rounds x / ln2 to an integer in the low
  // mantissa bits; ln2 is split in two constants so b keeps its low bits.
  constexpr float kShift = 0x1.8p23f;
  constexpr float kInvLn2 = 0x1.715476p+0f;
  constexpr float kLn2Hi = 0x1.62e4p-1f;
  constexpr float kLn2Lo = 0x1.7f7d1cp-20f;
  const float z = std::fma(x, kInvLn2, kShift);
  const float n = z - kShift;
  const float b = std::fma(-n, kLn2Lo, std::fma(-n, kLn2Hi, x));
  // e^b on [-ln2/2, ln2/2]: 1 + c1 b + (c2 + c3 b) b^2 + (c4 + c5 b) b^4.
  constexpr float kC1 = 0x1.ffffecp-1f;
  constexpr float kC2 = 0x1.fffdb6p-2f;
  constexpr float kC3 = 0x1.555e66p-3f;
  constexpr float kC4 = 0x1.573e2ep-5f;
  constexpr float kC5 = 0x1.0e4020p-7f;
  const float u = b * b;
  const float j = std::fma(std::fma(std::fma(kC5, b, kC4), u, std::fma(kC3, b, kC2)), u, std::fma(kC1, b, 1.0f));
  if (std::isnan(n)) return n;
  // Beyond |n| > 192 the scaling would leave the float range: flush to 0 or +inf.
  if (std::fabs(n) > 192.0f) return n <= 0.0f ? 0.0f : INFINITY;
  return std::ldexp(j, static_cast<int>(n));
}

}  // namespace moe::kernels

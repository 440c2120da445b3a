// Finite-difference gradient checks for the training ops: the analytic gradient of a scalar
// loss against central differences, element by element.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "train/rng.h"

namespace moe::train::testing {

inline std::vector<float> random_vector(size_t n, uint64_t seed, float scale = 1.0f) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = scale * rng.normal();
  return v;
}

// Returns sum(a * b) in double: the scalar loss <out, dout> whose gradient w.r.t. out is dout.
inline double dot(const std::vector<float>& a, const std::vector<float>& b) {
  double sum = 0.0;
  for (size_t i = 0; i < a.size(); ++i) sum += static_cast<double>(a[i]) * b[i];
  return sum;
}

// Checks `analytic` (d loss / d x) against central differences of loss() over up to
// `max_checks` evenly spread elements of x. The error is relative to the largest gradient, the
// scale float rounding works at.
inline void expect_gradient(const char* what, std::vector<float>& x, const std::vector<float>& analytic,
                            const std::function<double()>& loss, float eps = 1e-2f, double tolerance = 2e-2,
                            size_t max_checks = 96) {
  ASSERT_EQ(x.size(), analytic.size()) << what;
  double scale = 1e-6;
  for (float g : analytic) scale = std::max(scale, static_cast<double>(std::fabs(g)));
  const size_t stride = std::max<size_t>(1, x.size() / max_checks);
  double worst = 0.0;
  size_t worst_index = 0;
  double worst_fd = 0.0;
  for (size_t i = 0; i < x.size(); i += stride) {
    const float saved = x[i];
    x[i] = saved + eps;
    const double plus = loss();
    x[i] = saved - eps;
    const double minus = loss();
    x[i] = saved;
    const double fd = (plus - minus) / (2.0 * eps);
    const double err = std::fabs(fd - analytic[i]) / scale;
    if (err > worst) {
      worst = err;
      worst_index = i;
      worst_fd = fd;
    }
  }
  EXPECT_LT(worst, tolerance) << what << ": element " << worst_index << " analytic " << analytic[worst_index]
                              << " vs finite difference " << worst_fd << " (largest gradient " << scale << ")";
}

}  // namespace moe::train::testing

#include "kernels/ops.h"

#include <cmath>

#include "kernels/avx512/avx512_kernels.h"
#include "kernels/kernels.h"
#include "kernels/lane_math.h"

namespace moe::kernels {

void rms_norm(const float* x, const float* weight, float* out, int64_t n, float eps) {
  // As ggml: each square rounded to float, the sum accumulated in double (ggml_float).
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i] * x[i]);
  const float mean = static_cast<float>(sum / static_cast<double>(n));
  const float scale = 1.0f / std::sqrt(mean + eps);
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale * weight[i];
}

void rope(float* head, int64_t n_rot, int64_t pos, float freq_base, float freq_scale, RopeLayout layout) {
  const float theta_scale = std::pow(freq_base, -2.0f / static_cast<float>(n_rot));
  // Same order of float operations as ggml's rope cache: the unscaled angle is advanced by
  // repeated multiplication and freq_scale applied last, so positions agree to the last bit.
  float theta_extrapolated = static_cast<float>(pos);
  const int64_t half = n_rot / 2;
  for (int64_t i = 0; i < half; ++i) {
    const float theta = freq_scale * theta_extrapolated;
    const float cos_t = std::cos(theta);
    const float sin_t = std::sin(theta);
    const int64_t a = layout == RopeLayout::kNormal ? 2 * i : i;
    const int64_t b = layout == RopeLayout::kNormal ? 2 * i + 1 : i + half;
    const float x0 = head[a];
    const float x1 = head[b];
    // GCC contracts ggml's x0*cos - x1*sin and x0*sin + x1*cos into these fmas (its default
    // -ffp-contract=fast with -mfma); writing them out gives llama.cpp's bits.
    head[a] = std::fma(x0, cos_t, -(x1 * sin_t));
    head[b] = std::fma(x0, sin_t, x1 * cos_t);
    theta_extrapolated *= theta_scale;
  }
}

// Both follow ggml's AVX-512 loops (ggml_vec_soft_max_f32, ggml_vec_swiglu_f32) so the results
// are llama.cpp's to the bit: whole groups of 16 use its exp polynomial (exp_lane) and, for the
// softmax, add each group's reduced sum to a double; the remaining elements use expf. The
// groups run on AVX-512 when the CPU has it, else lane by lane here (same bits).
namespace {

bool use_avx512() { return best_isa() == Isa::kAvx512; }

double exp_sub_sum_groups(float* x, int64_t n, float max_value) {
  if (use_avx512()) return avx512::exp_sub_sum_groups(x, n, max_value);
  double sum = 0.0;
  for (int64_t i = 0; i + kLanes <= n; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) x[i + l] = exp_lane(x[i + l] - max_value);
    sum += static_cast<double>(reduce_add_lanes(x + i));
  }
  return sum;
}

void swiglu_groups(const float* gate, const float* up, float* out, int64_t n) {
  if (use_avx512()) return avx512::swiglu_groups(gate, up, out, n);
  for (int64_t i = 0; i < n; ++i) out[i] = gate[i] / (1.0f + exp_lane(0.0f - gate[i])) * up[i];
}

}  // namespace

void softmax(float* x, int64_t n) {
  float max_value = -INFINITY;
  for (int64_t i = 0; i < n; ++i) max_value = std::fmax(max_value, x[i]);
  const int64_t n_groups = n - n % kLanes;
  double sum = exp_sub_sum_groups(x, n_groups, max_value);
  for (int64_t i = n_groups; i < n; ++i) {
    x[i] = std::exp(x[i] - max_value);
    sum += static_cast<double>(x[i]);
  }
  const auto inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void swiglu(const float* gate, const float* up, float* out, int64_t n) {
  const int64_t n_groups = n - n % kLanes;
  swiglu_groups(gate, up, out, n_groups);
  for (int64_t i = n_groups; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void axpy(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void add(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

}  // namespace moe::kernels

#include "kernels/ops.h"

#include <cmath>

namespace moe::kernels {

void rms_norm(const float* x, const float* weight, float* out, int64_t n, float eps) {
  // ggml accumulates the sum of squares in double (ggml_float); doing the same keeps our
  // numbers closest to llama.cpp's.
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
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
    head[a] = x0 * cos_t - x1 * sin_t;
    head[b] = x0 * sin_t + x1 * cos_t;
    theta_extrapolated *= theta_scale;
  }
}

void softmax(float* x, int64_t n) {
  float max_value = -INFINITY;
  for (int64_t i = 0; i < n; ++i) max_value = std::fmax(max_value, x[i]);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max_value);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void swiglu(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void axpy(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void add(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

}  // namespace moe::kernels

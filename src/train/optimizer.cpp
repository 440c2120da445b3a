#include "train/optimizer.h"

#include <cmath>
#include <numbers>

namespace moe::train {

float learning_rate(const OptimizerConfig& c, int64_t step) {
  if (c.warmup > 0 && step < c.warmup) return c.lr * static_cast<float>(step + 1) / static_cast<float>(c.warmup);
  const int64_t decay_steps = std::max<int64_t>(1, c.total_steps - c.warmup);
  const double progress = std::min(1.0, static_cast<double>(step - c.warmup) / static_cast<double>(decay_steps));
  const double cosine = 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
  const double floor = c.lr * c.min_lr_ratio;
  return static_cast<float>(floor + (c.lr - floor) * cosine);
}

AdamW::AdamW(const OptimizerConfig& config, const TrainModel& model) : config_(config) {
  for (const Param& p : model.params()) {
    m_.emplace_back(p.value.size(), 0.0f);
    v_.emplace_back(p.value.size(), 0.0f);
  }
}

double AdamW::clip_gradients(ThreadPool& pool, TrainModel& model) const {
  // Per-parameter sums in order, then a fixed-order total: the same norm for any thread count.
  std::vector<Param>& params = model.params();
  std::vector<double> sums(params.size(), 0.0);
  pool.parallel_for(static_cast<int64_t>(params.size()), 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      double s = 0.0;
      for (float g : params[static_cast<size_t>(i)].grad) s += static_cast<double>(g) * g;
      sums[static_cast<size_t>(i)] = s;
    }
  });
  double total = 0.0;
  for (double s : sums) total += s;
  const double norm = std::sqrt(total);
  if (config_.clip_norm > 0.0f && norm > config_.clip_norm) {
    const auto scale = static_cast<float>(config_.clip_norm / norm);
    for (Param& p : params) {
      for (float& g : p.grad) g *= scale;
    }
  }
  return norm;
}

void AdamW::step(ThreadPool& pool, TrainModel& model, float lr) {
  ++steps_;
  const auto t = static_cast<double>(steps_);
  const auto correction1 = static_cast<float>(1.0 - std::pow(static_cast<double>(config_.beta1), t));
  const auto correction2 = static_cast<float>(1.0 - std::pow(static_cast<double>(config_.beta2), t));
  const float b1 = config_.beta1, b2 = config_.beta2, eps = config_.eps;
  std::vector<Param>& params = model.params();
  for (size_t i = 0; i < params.size(); ++i) {
    Param& p = params[i];
    float* m = m_[i].data();
    float* v = v_[i].data();
    const float decay = p.decay ? lr * config_.weight_decay : 0.0f;
    pool.parallel_for(p.size(), 4096, [&](int64_t begin, int64_t end) {
      for (int64_t j = begin; j < end; ++j) {
        const float g = p.grad[static_cast<size_t>(j)];
        m[j] = b1 * m[j] + (1.0f - b1) * g;
        v[j] = b2 * v[j] + (1.0f - b2) * g * g;
        const float m_hat = m[j] / correction1;
        const float v_hat = v[j] / correction2;
        float& w = p.value[static_cast<size_t>(j)];
        w -= lr * m_hat / (std::sqrt(v_hat) + eps) + decay * w;
      }
    });
  }
}

}  // namespace moe::train

// AdamW (decoupled weight decay, none on norms), a linear-warmup + cosine learning-rate
// schedule and global-norm gradient clipping.
#pragma once

#include <cstdint>
#include <vector>

#include "core/thread_pool.h"
#include "train/model.h"

namespace moe::train {

struct OptimizerConfig {
  float lr = 3e-3f;            // peak learning rate
  float min_lr_ratio = 0.1f;   // the cosine ends at lr * min_lr_ratio
  int64_t warmup = 100;        // steps of linear warmup from 0
  int64_t total_steps = 1000;  // the cosine reaches its floor here
  float beta1 = 0.9f;
  float beta2 = 0.95f;
  float eps = 1e-8f;
  float weight_decay = 0.1f;
  float clip_norm = 1.0f;      // global gradient norm limit; 0 disables
};

// Returns the learning rate for 0-based `step`.
float learning_rate(const OptimizerConfig& config, int64_t step);

class AdamW {
 public:
  AdamW(const OptimizerConfig& config, const TrainModel& model);

  // Scales every gradient so their global L2 norm is at most clip_norm; returns the norm
  // before clipping.
  double clip_gradients(ThreadPool& pool, TrainModel& model) const;
  // Applies one update with learning rate `lr` (bias-corrected moments; decay on decay params).
  void step(ThreadPool& pool, TrainModel& model, float lr);

  int64_t steps_taken() const { return steps_; }
  // Moments per parameter, in TrainModel::params() order (for checkpoints).
  std::vector<std::vector<float>>& first_moments() { return m_; }
  std::vector<std::vector<float>>& second_moments() { return v_; }
  const std::vector<std::vector<float>>& first_moments() const { return m_; }
  const std::vector<std::vector<float>>& second_moments() const { return v_; }
  void set_steps_taken(int64_t steps) { steps_ = steps; }
  const OptimizerConfig& config() const { return config_; }

 private:
  OptimizerConfig config_;
  std::vector<std::vector<float>> m_;
  std::vector<std::vector<float>> v_;
  int64_t steps_ = 0;
};

}  // namespace moe::train

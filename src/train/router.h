// Mixtral-style routing for training: softmax over router logits, top-k, weights renormalised
// over the kept experts (the gradient flows through the kept weights), plus the load-balancing
// terms: Switch-style auxiliary loss, DeepSeek-V3 aux-loss-free bias, and the router z-loss.
#pragma once

#include <cstdint>
#include <vector>

#include "core/thread_pool.h"

namespace moe::train {

enum class BalanceMode {
  kAuxLoss,  // Switch Transformer: coef * n_expert * sum_e f_e * P_e
  kBias,     // DeepSeek-V3: a per-expert bias added for selection only, nudged toward balance
};

struct RouterSpec {
  int n_expert = 0;
  int n_expert_used = 0;
  BalanceMode balance = BalanceMode::kAuxLoss;
  float aux_coef = 0.01f;   // weight of the Switch loss (kAuxLoss only)
  float z_coef = 0.001f;    // weight of the z-loss mean(logsumexp(logits)^2); 0 disables
  float bias_rate = 0.001f; // step of the bias update (kBias only)
};

// Routing decisions of one layer for T tokens, kept for the backward pass.
struct Routing {
  std::vector<float> probs;      // (T, n_expert) softmax of the router logits
  std::vector<float> lse;        // (T) logsumexp of the router logits (z-loss)
  std::vector<int32_t> experts;  // (T, n_expert_used) chosen experts, highest score first
  std::vector<float> weights;    // (T, n_expert_used) renormalised weights of the chosen
  std::vector<int64_t> counts;   // (n_expert) tokens routed to each expert
};

// Routes T tokens. `bias` (n_expert, may be null) is added to the probabilities for the choice
// only; without it the choice equals model::route_token's (ties go to the lower index).
void route_forward(ThreadPool& pool, const RouterSpec& spec, const float* logits, const float* bias, int64_t T,
                   Routing& routing);

struct RouterLoss {
  double aux = 0.0;  // Switch loss, already weighted by aux_coef (0 in bias mode)
  double z = 0.0;    // z-loss, already weighted by z_coef
};
// Returns the balancing losses of a routing (for the loss total and logs).
RouterLoss router_loss(const RouterSpec& spec, const Routing& routing, int64_t T);

// dlogits (T, n_expert) = gradient of sum(dweights * weights) + router_loss w.r.t. the logits.
// dweights (T, n_expert_used) is the gradient reaching the renormalised weights.
void route_backward(ThreadPool& pool, const RouterSpec& spec, const Routing& routing, const float* dweights, int64_t T,
                    float* dlogits);

// DeepSeek-V3's update after a step: bias_e += rate * sign(mean load - load_e).
void update_balance_bias(const RouterSpec& spec, const std::vector<int64_t>& counts, float* bias);

}  // namespace moe::train

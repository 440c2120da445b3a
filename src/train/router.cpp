#include "train/router.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "kernels/ops.h"

namespace moe::train {

namespace {

void route_token(const RouterSpec& spec, const float* logits, const float* bias, float* probs, float& lse,
                 int32_t* experts, float* weights) {
  const int n = spec.n_expert;
  const float max_value = *std::max_element(logits, logits + n);
  double sum = 0.0;
  for (int e = 0; e < n; ++e) sum += std::exp(static_cast<double>(logits[e] - max_value));
  lse = static_cast<float>(std::log(sum)) + max_value;
  // The same softmax as inference, so the choice and the weights match model::route_token.
  std::copy(logits, logits + n, probs);
  kernels::softmax(probs, n);
  std::vector<float> score(probs, probs + n);
  if (bias != nullptr) {
    for (int e = 0; e < n; ++e) score[static_cast<size_t>(e)] += bias[e];
  }
  std::vector<int> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + spec.n_expert_used, order.end(), [&](int a, int b) {
    return score[static_cast<size_t>(a)] > score[static_cast<size_t>(b)] ||
           (score[static_cast<size_t>(a)] == score[static_cast<size_t>(b)] && a < b);
  });
  float kept = 0.0f;
  for (int j = 0; j < spec.n_expert_used; ++j) {
    experts[j] = order[static_cast<size_t>(j)];
    kept += probs[experts[j]];
  }
  for (int j = 0; j < spec.n_expert_used; ++j) weights[j] = probs[experts[j]] / kept;
}

}  // namespace

void route_forward(ThreadPool& pool, const RouterSpec& spec, const float* logits, const float* bias, int64_t T,
                   Routing& r) {
  const int n = spec.n_expert;
  const int k = spec.n_expert_used;
  r.probs.resize(static_cast<size_t>(T * n));
  r.lse.resize(static_cast<size_t>(T));
  r.experts.resize(static_cast<size_t>(T * k));
  r.weights.resize(static_cast<size_t>(T * k));
  pool.parallel_for(T, 32, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      route_token(spec, logits + t * n, bias, r.probs.data() + t * n, r.lse[static_cast<size_t>(t)],
                  r.experts.data() + t * k, r.weights.data() + t * k);
    }
  });
  r.counts.assign(static_cast<size_t>(n), 0);
  for (int32_t e : r.experts) ++r.counts[static_cast<size_t>(e)];
}

namespace {

// P_e: the mean router probability of each expert over the tokens.
std::vector<double> mean_probs(const Routing& r, int n, int64_t T) {
  std::vector<double> mean(static_cast<size_t>(n), 0.0);
  for (int64_t t = 0; t < T; ++t) {
    for (int e = 0; e < n; ++e) mean[static_cast<size_t>(e)] += r.probs[static_cast<size_t>(t * n + e)];
  }
  for (double& m : mean) m /= static_cast<double>(T);
  return mean;
}

// f_e: the fraction of the T * k choices that went to each expert.
double load_fraction(const RouterSpec& spec, const Routing& r, int e, int64_t T) {
  return static_cast<double>(r.counts[static_cast<size_t>(e)]) / static_cast<double>(T * spec.n_expert_used);
}

}  // namespace

RouterLoss router_loss(const RouterSpec& spec, const Routing& r, int64_t T) {
  RouterLoss loss;
  if (spec.balance == BalanceMode::kAuxLoss && spec.aux_coef > 0.0f) {
    const std::vector<double> mean = mean_probs(r, spec.n_expert, T);
    double sum = 0.0;
    for (int e = 0; e < spec.n_expert; ++e) sum += load_fraction(spec, r, e, T) * mean[static_cast<size_t>(e)];
    loss.aux = spec.aux_coef * spec.n_expert * sum;
  }
  if (spec.z_coef > 0.0f) {
    double sum = 0.0;
    for (float lse : r.lse) sum += static_cast<double>(lse) * lse;
    loss.z = spec.z_coef * sum / static_cast<double>(T);
  }
  return loss;
}

void route_backward(ThreadPool& pool, const RouterSpec& spec, const Routing& r, const float* dweights, int64_t T,
                    float* dlogits) {
  const int n = spec.n_expert;
  const int k = spec.n_expert_used;
  // The Switch loss is linear in the probabilities: dL/dp_e = coef * n * f_e / T (f_e is a
  // count and has no gradient, as in the paper).
  std::vector<float> aux_grad(static_cast<size_t>(n), 0.0f);
  if (spec.balance == BalanceMode::kAuxLoss && spec.aux_coef > 0.0f) {
    for (int e = 0; e < n; ++e) {
      aux_grad[static_cast<size_t>(e)] =
          static_cast<float>(spec.aux_coef * n * load_fraction(spec, r, e, T) / static_cast<double>(T));
    }
  }
  const float z_scale = 2.0f * spec.z_coef / static_cast<float>(T);
  pool.parallel_for(T, 32, [&](int64_t begin, int64_t end) {
    std::vector<float> dprobs(static_cast<size_t>(n));
    for (int64_t t = begin; t < end; ++t) {
      const float* p = r.probs.data() + t * n;
      const int32_t* chosen = r.experts.data() + t * k;
      const float* w = r.weights.data() + t * k;
      const float* dw = dweights + t * k;
      std::copy(aux_grad.begin(), aux_grad.end(), dprobs.begin());
      // w_j = p_j / S over the kept experts: dp_j = (dw_j - sum_i dw_i w_i) / S.
      float kept = 0.0f, dot = 0.0f;
      for (int j = 0; j < k; ++j) {
        kept += p[chosen[j]];
        dot += dw[j] * w[j];
      }
      for (int j = 0; j < k; ++j) dprobs[static_cast<size_t>(chosen[j])] += (dw[j] - dot) / kept;
      // Softmax backward: dl_e = p_e (dp_e - sum_f p_f dp_f).
      float mean = 0.0f;
      for (int e = 0; e < n; ++e) mean += p[e] * dprobs[static_cast<size_t>(e)];
      const float dz = z_scale * r.lse[static_cast<size_t>(t)];
      for (int e = 0; e < n; ++e) dlogits[t * n + e] = p[e] * (dprobs[static_cast<size_t>(e)] - mean) + dz * p[e];
    }
  });
}

void update_balance_bias(const RouterSpec& spec, const std::vector<int64_t>& counts, float* bias) {
  int64_t total = 0;
  for (int64_t c : counts) total += c;
  const double mean = static_cast<double>(total) / spec.n_expert;
  for (int e = 0; e < spec.n_expert; ++e) {
    const double c = static_cast<double>(counts[static_cast<size_t>(e)]);
    if (c < mean) bias[e] += spec.bias_rate;
    if (c > mean) bias[e] -= spec.bias_rate;
  }
}

}  // namespace moe::train

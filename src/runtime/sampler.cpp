#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>

#include "core/check.h"

namespace moe::runtime {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// NaN logits (a broken model) must not poison comparisons or the softmax: treat as impossible.
float sanitize(float logit) { return std::isnan(logit) ? kNegInf : logit; }

// Higher logit first; equal logits by lower id, so every step is deterministic.
template <typename T>
bool before(const T& a, const T& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

}  // namespace

Sampler::Sampler(SamplerParams params) : params_(params), rng_(params.seed) {}

void Sampler::reset() {
  history_.clear();
  rng_.seed(params_.seed);
}

void Sampler::accept(int32_t token) {
  if (params_.repeat_last_n == 0) return;
  history_.push_back(token);
  const auto window = static_cast<size_t>(params_.repeat_last_n);
  if (params_.repeat_last_n > 0 && history_.size() > window) {
    history_.erase(history_.begin(), history_.end() - static_cast<std::ptrdiff_t>(window));
  }
}

int32_t Sampler::sample(std::span<const float> logits) {
  MOE_CHECK_MSG(!logits.empty(), "sampler called with no logits");
  load_candidates(logits);
  apply_penalties();
  if (params_.temperature <= 0.0f) return pick_greedy();
  apply_top_k();
  apply_top_p();
  apply_min_p();
  for (Candidate& c : candidates_) c.logit /= params_.temperature;
  return draw();
}

void Sampler::load_candidates(std::span<const float> logits) {
  candidates_.resize(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) {
    candidates_[i] = {static_cast<int32_t>(i), sanitize(logits[i])};
  }
}

// llama.cpp's penalties sampler: repetition (divide positive logits, multiply the others),
// then frequency (per occurrence) and presence (once) over the window.
void Sampler::apply_penalties() {
  const bool off = params_.repeat_penalty == 1.0f && params_.frequency_penalty == 0.0f &&
                   params_.presence_penalty == 0.0f;
  if (off || history_.empty()) return;
  std::unordered_map<int32_t, int> counts;
  for (int32_t token : history_) ++counts[token];
  for (const auto& [token, count] : counts) {
    if (token < 0 || static_cast<size_t>(token) >= candidates_.size()) continue;
    float& logit = candidates_[token].logit;  // still indexed by id: nothing filtered yet
    logit = logit <= 0.0f ? logit * params_.repeat_penalty : logit / params_.repeat_penalty;
    logit -= static_cast<float>(count) * params_.frequency_penalty + params_.presence_penalty;
  }
}

void Sampler::apply_top_k() {
  const auto by_logit = [](const Candidate& a, const Candidate& b) { return before(a, b); };
  const auto n = static_cast<int64_t>(candidates_.size());
  if (params_.top_k > 0 && params_.top_k < n) {
    std::partial_sort(candidates_.begin(), candidates_.begin() + params_.top_k, candidates_.end(),
                      by_logit);
    candidates_.resize(static_cast<size_t>(params_.top_k));
  } else {
    std::sort(candidates_.begin(), candidates_.end(), by_logit);
  }
}

// Keeps the smallest prefix (of the sorted candidates) whose probability mass reaches top_p.
void Sampler::apply_top_p() {
  if (params_.top_p >= 1.0f || candidates_.size() <= 1) return;
  const float max_logit = candidates_.front().logit;
  double total = 0.0;
  for (const Candidate& c : candidates_)
    total += std::exp(static_cast<double>(c.logit - max_logit));
  double cumulative = 0.0;
  size_t keep = candidates_.size();
  for (size_t i = 0; i < candidates_.size(); ++i) {
    cumulative += std::exp(static_cast<double>(candidates_[i].logit - max_logit)) / total;
    if (cumulative >= params_.top_p) {
      keep = i + 1;
      break;
    }
  }
  candidates_.resize(keep);
}

// Keeps tokens with p >= min_p * p_max, i.e. logit >= max_logit + log(min_p).
void Sampler::apply_min_p() {
  if (params_.min_p <= 0.0f || candidates_.size() <= 1) return;
  const float threshold = candidates_.front().logit + std::log(params_.min_p);
  size_t keep = 1;  // the most likely token always stays
  while (keep < candidates_.size() && candidates_[keep].logit >= threshold) ++keep;
  candidates_.resize(keep);
}

int32_t Sampler::pick_greedy() const {
  const Candidate* best = &candidates_.front();
  for (const Candidate& c : candidates_) {
    if (c.logit > best->logit) best = &c;  // strict: ties keep the lower id
  }
  return best->id;
}

// Samples from the softmax of the candidates (sorted, highest first) with one uniform draw.
int32_t Sampler::draw() {
  const float max_logit = candidates_.front().logit;
  if (max_logit == kNegInf) return candidates_.front().id;  // nothing possible: lowest id
  probs_.resize(candidates_.size());
  double total = 0.0;
  for (size_t i = 0; i < candidates_.size(); ++i) {
    probs_[i] = std::exp(candidates_[i].logit - max_logit);
    total += probs_[i];
  }
  // 32 random bits scaled to [0, 1): the same on every platform, unlike the std distributions.
  const double u = static_cast<double>(rng_()) * 0x1p-32 * total;
  double cumulative = 0.0;
  for (size_t i = 0; i < candidates_.size(); ++i) {
    cumulative += probs_[i];
    if (u < cumulative) return candidates_[i].id;
  }
  return candidates_.front().id;  // rounding left u at the very top: take the likeliest
}

namespace {

// log(sum(exp(logits))), the normaliser of log_softmax.
float log_normalizer(std::span<const float> logits) {
  float max_logit = kNegInf;
  for (float logit : logits) max_logit = std::max(max_logit, sanitize(logit));
  double total = 0.0;
  for (float logit : logits) total += std::exp(static_cast<double>(sanitize(logit) - max_logit));
  return static_cast<float>(std::log(total)) + max_logit;
}

}  // namespace

float token_logprob(std::span<const float> logits, int32_t id) {
  return sanitize(logits[static_cast<size_t>(id)]) - log_normalizer(logits);
}

std::vector<TokenLogprob> top_logprobs(std::span<const float> logits, int32_t n) {
  if (logits.empty() || n <= 0) return {};
  const float log_total = log_normalizer(logits);

  std::vector<TokenLogprob> all(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) {
    all[i] = {static_cast<int32_t>(i), sanitize(logits[i]) - log_total};
  }
  const size_t keep = std::min(all.size(), static_cast<size_t>(n));
  std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(keep), all.end(),
                    [](const TokenLogprob& a, const TokenLogprob& b) {
                      return a.logprob > b.logprob || (a.logprob == b.logprob && a.id < b.id);
                    });
  all.resize(keep);
  return all;
}

}  // namespace moe::runtime

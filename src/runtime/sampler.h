// Token sampling from logits with llama.cpp's default chain and semantics:
//   penalties -> top_k -> top_p -> min_p -> temperature -> sample from the softmax.
// temperature 0 is greedy (argmax after penalties, ties to the lowest id).
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace moe::runtime {

struct SamplerParams {
  float temperature = 0.8f;        // 0 (or below): greedy
  int32_t top_k = 40;              // <= 0: off
  float top_p = 0.95f;             // >= 1: off
  float min_p = 0.05f;             // <= 0: off; keeps p >= min_p * p_max
  float repeat_penalty = 1.0f;     // 1: off; logit > 0 is divided by it, otherwise multiplied
  int32_t repeat_last_n = 64;      // penalty window in accepted tokens; 0: off, < 0: all
  float presence_penalty = 0.0f;   // subtracted once from every token in the window
  float frequency_penalty = 0.0f;  // subtracted per occurrence in the window
  uint32_t seed = 0;               // same seed and inputs -> same tokens
};

// A token and its log-probability under the softmax of the raw logits.
struct TokenLogprob {
  int32_t id = 0;
  float logprob = 0.0f;
};

class Sampler {
 public:
  explicit Sampler(SamplerParams params);

  // Returns the next token for `logits` (one per vocabulary entry, must not be empty). Does not
  // record it: call accept() with the token actually used, so penalties see it.
  int32_t sample(std::span<const float> logits);

  // Adds `token` to the penalty history (prompt tokens may be accepted too, as llama.cpp does).
  void accept(int32_t token);

  // Clears the history and restarts the random sequence from the seed.
  void reset();

  const SamplerParams& params() const { return params_; }

 private:
  struct Candidate {
    int32_t id;
    float logit;
  };

  void load_candidates(std::span<const float> logits);
  void apply_penalties();
  void apply_top_k();  // also sorts the candidates by logit, highest first
  void apply_top_p();
  void apply_min_p();
  int32_t pick_greedy() const;
  int32_t draw();

  SamplerParams params_;
  std::mt19937 rng_;
  std::vector<int32_t> history_;       // accepted tokens, oldest first, at most the window
  std::vector<Candidate> candidates_;  // reused between calls: vocabularies are large
  std::vector<float> probs_;
};

// Returns the `n` most likely tokens under log_softmax(logits), most likely first (ties to the
// lower id). For OpenAI-style "logprobs"; independent of any sampler settings.
std::vector<TokenLogprob> top_logprobs(std::span<const float> logits, int32_t n);

// Returns log_softmax(logits)[id], computed as top_logprobs computes it (`id` must be in range).
float token_logprob(std::span<const float> logits, int32_t id);

}  // namespace moe::runtime

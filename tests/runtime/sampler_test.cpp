#include "runtime/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace moe::runtime {
namespace {

SamplerParams greedy_params() {
  SamplerParams params;
  params.temperature = 0.0f;
  return params;
}

// Plain sampling from the softmax: every filter off.
SamplerParams plain_params(uint32_t seed) {
  SamplerParams params;
  params.temperature = 1.0f;
  params.top_k = 0;
  params.top_p = 1.0f;
  params.min_p = 0.0f;
  params.seed = seed;
  return params;
}

const std::vector<float> kLogits = {0.5f, 2.0f, -1.0f, 1.5f, 2.0f, 0.0f};

TEST(Sampler, GreedyPicksArgmaxLowestIdOnTies) {
  Sampler sampler(greedy_params());
  EXPECT_EQ(sampler.sample(kLogits), 1);  // ids 1 and 4 tie at 2.0
  const std::vector<float> single = {-3.0f, -1.0f, -2.0f};
  EXPECT_EQ(sampler.sample(single), 1);
}

TEST(Sampler, SameSeedSameSequence) {
  Sampler a(plain_params(7));
  Sampler b(plain_params(7));
  Sampler c(plain_params(8));
  std::vector<int32_t> seq_a, seq_b, seq_c;
  for (int i = 0; i < 200; ++i) {
    seq_a.push_back(a.sample(kLogits));
    seq_b.push_back(b.sample(kLogits));
    seq_c.push_back(c.sample(kLogits));
  }
  EXPECT_EQ(seq_a, seq_b);
  EXPECT_NE(seq_a, seq_c);
  a.reset();
  for (int i = 0; i < 200; ++i) ASSERT_EQ(a.sample(kLogits), seq_b[i]);
}

TEST(Sampler, TopKOneAndTinyTopPAreGreedy) {
  SamplerParams top_k = plain_params(3);
  top_k.top_k = 1;
  SamplerParams top_p = plain_params(3);
  top_p.top_p = 1e-6f;
  Sampler by_k(top_k);
  Sampler by_p(top_p);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(by_k.sample(kLogits), 1);
    EXPECT_EQ(by_p.sample(kLogits), 1);
  }
}

TEST(Sampler, MinPDropsUnlikelyTokens) {
  // p(1) = p(4) = max; p(3) = e^-0.5 max ~ 0.61 max; the rest are below 0.5 max.
  SamplerParams params = plain_params(11);
  params.min_p = 0.5f;
  Sampler sampler(params);
  std::vector<int> counts(kLogits.size(), 0);
  for (int i = 0; i < 3000; ++i) ++counts[sampler.sample(kLogits)];
  EXPECT_EQ(counts[0] + counts[2] + counts[5], 0);
  EXPECT_GT(counts[1], 0);
  EXPECT_GT(counts[3], 0);
  EXPECT_GT(counts[4], 0);
}

TEST(Sampler, RepeatPenaltyChangesThePick) {
  const std::vector<float> logits = {1.0f, 3.0f, 2.5f, -1.0f};
  SamplerParams params = greedy_params();
  params.repeat_penalty = 1.5f;  // 3.0 / 1.5 = 2.0 < 2.5
  Sampler sampler(params);
  EXPECT_EQ(sampler.sample(logits), 1);
  sampler.accept(1);
  EXPECT_EQ(sampler.sample(logits), 2);
  // Negative logits are multiplied: -1.0 * 1.5 must stay below the others.
  sampler.accept(3);
  EXPECT_EQ(sampler.sample(logits), 2);
}

TEST(Sampler, RepeatWindowForgetsOldTokens) {
  const std::vector<float> logits = {1.0f, 3.0f, 2.5f};
  SamplerParams params = greedy_params();
  params.repeat_penalty = 1.5f;
  params.repeat_last_n = 2;
  Sampler sampler(params);
  sampler.accept(1);
  EXPECT_EQ(sampler.sample(logits), 2);
  sampler.accept(0);
  sampler.accept(0);  // token 1 has left the window of 2
  EXPECT_EQ(sampler.sample(logits), 1);
}

TEST(Sampler, PresenceAndFrequencyPenalties) {
  const std::vector<float> logits = {2.0f, 1.0f};
  SamplerParams presence = greedy_params();
  presence.presence_penalty = 1.5f;
  Sampler by_presence(presence);
  by_presence.accept(0);
  EXPECT_EQ(by_presence.sample(logits), 1);

  SamplerParams frequency = greedy_params();
  frequency.frequency_penalty = 0.6f;
  Sampler by_frequency(frequency);
  by_frequency.accept(0);
  EXPECT_EQ(by_frequency.sample(logits), 0);  // 2.0 - 0.6 > 1.0
  by_frequency.accept(0);
  EXPECT_EQ(by_frequency.sample(logits), 1);  // 2.0 - 1.2 < 1.0
}

TEST(Sampler, FrequenciesMatchSoftmax) {
  Sampler sampler(plain_params(2024));
  constexpr int kDraws = 20000;
  std::vector<int> counts(kLogits.size(), 0);
  for (int i = 0; i < kDraws; ++i) ++counts[sampler.sample(kLogits)];
  double total = 0.0;
  for (float logit : kLogits) total += std::exp(logit);
  for (size_t id = 0; id < kLogits.size(); ++id) {
    const double expected = std::exp(kLogits[id]) / total;
    const double observed = static_cast<double>(counts[id]) / kDraws;
    // Five standard deviations of a binomial proportion over 20k draws.
    const double tolerance = 5.0 * std::sqrt(expected * (1.0 - expected) / kDraws);
    EXPECT_NEAR(observed, expected, tolerance) << "token " << id;
  }
}

TEST(Sampler, TemperatureSharpens) {
  SamplerParams params = plain_params(5);
  params.temperature = 0.05f;  // logit gap 0.5 / 0.05 = 10: token 3 almost never beats 1 and 4
  Sampler sampler(params);
  int others = 0;
  for (int i = 0; i < 2000; ++i) {
    const int32_t id = sampler.sample(kLogits);
    if (id != 1 && id != 4) ++others;
  }
  EXPECT_LT(others, 5);
}

TEST(Sampler, NanLogitsAreNeverPicked) {
  const std::vector<float> logits = {NAN, 1.0f, NAN};
  Sampler greedy(greedy_params());
  EXPECT_EQ(greedy.sample(logits), 1);
  Sampler plain(plain_params(1));
  for (int i = 0; i < 50; ++i) EXPECT_EQ(plain.sample(logits), 1);
}

TEST(TopLogprobs, SortedAndNormalised) {
  const auto top = top_logprobs(kLogits, 3);
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0].id, 1);
  EXPECT_EQ(top[1].id, 4);
  EXPECT_EQ(top[2].id, 3);
  double total = 0.0;
  for (float logit : kLogits) total += std::exp(logit);
  EXPECT_NEAR(top[0].logprob, 2.0 - std::log(total), 1e-5);
  EXPECT_NEAR(top[2].logprob, 1.5 - std::log(total), 1e-5);
  EXPECT_EQ(top_logprobs(kLogits, 100).size(), kLogits.size());
  EXPECT_TRUE(top_logprobs(kLogits, 0).empty());
}

}  // namespace
}  // namespace moe::runtime

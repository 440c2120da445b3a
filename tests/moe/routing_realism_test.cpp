// moe gen's routing realism: skewed routers concentrate expert use; topic routers make a token
// stream that stays in one region of ids keep to a few experts (temporal locality), while the
// same stream on a model without topics does not.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <functional>

#include "model/context.h"
#include "model/model.h"
#include "model/random_model.h"
#include "model/routing_stats.h"
#include "store_test_util.h"

namespace moe::experts {
namespace {

using testing::TempFile;

Status write_model(const std::string& path, const model::RandomModelOptions& options) {
  MOE_ASSIGN_OR_RETURN(model::HParams hp, model::preset_hparams("llama", "small-moe"));
  formats::GgufWriter writer;
  const tokenizer::VocabData vocab = tokenizer::builtin_byte_vocab();
  tokenizer::write_vocab_metadata(vocab, writer);
  hp.n_vocab = static_cast<int64_t>(vocab.tokens.size());
  ThreadPool pool(2);
  MOE_TRY(model::add_random_model(hp, options, pool, writer));
  return writer.write(path);
}

// Returns the share of layer `layer`'s expert picks that went to its `top` most used experts
// when `tokens` are evaluated.
double top_share(const std::string& path, const std::vector<int32_t>& tokens, int layer, int top) {
  auto m = model::Model::load(path);
  if (!m.ok()) return -1.0;
  ThreadPool pool(2);
  model::ContextParams params;
  params.n_ctx = 256;
  auto ctx = model::InferenceContext::create(**m, params, pool);
  if (!ctx.ok()) return -1.0;
  model::RoutingStats stats((*m)->hparams().n_layer, (*m)->hparams().moe.n_expert);
  (*ctx)->set_routing_stats(&stats);
  if (!(*ctx)->eval(tokens).ok()) return -1.0;
  std::vector<int64_t> counts;
  int64_t total = 0;
  for (int64_t e = 0; e < stats.n_expert(); ++e) {
    counts.push_back(stats.count(layer, e));
    total += counts.back();
  }
  std::sort(counts.begin(), counts.end(), std::greater<>());
  int64_t kept = 0;
  for (int i = 0; i < top; ++i) kept += counts[static_cast<size_t>(i)];
  return static_cast<double>(kept) / static_cast<double>(total);
}

// `n` token ids spread over [first, first + span).
std::vector<int32_t> tokens_in(int32_t first, int32_t span, int n) {
  std::vector<int32_t> tokens;
  for (int i = 0; i < n; ++i) tokens.push_back(first + (i * 37) % span);
  return tokens;
}

TEST(RoutingRealism, SkewedRoutersConcentrateExpertUse) {
  TempFile flat("flat"), skewed("skewed");
  model::RandomModelOptions options;
  options.weight_type = DType::kQ8_0;
  ASSERT_TRUE(write_model(flat.path, options).ok());
  options.router_skew = 3.0f;
  ASSERT_TRUE(write_model(skewed.path, options).ok());
  const std::vector<int32_t> tokens = tokens_in(0, 259, 96);
  // small-moe: 8 experts, top-2, so a flat router gives the top 2 experts about 2/8 of the picks
  // per slot; skew 3 makes the two widest routers win most tokens.
  const double flat_share = top_share(flat.path, tokens, 0, 2);
  const double skewed_share = top_share(skewed.path, tokens, 0, 2);
  ASSERT_GT(flat_share, 0.0);
  EXPECT_GT(skewed_share, flat_share + 0.1) << flat_share << " vs " << skewed_share;
  std::printf("layer 0: top-2 share %.3f flat, %.3f skewed\n", flat_share, skewed_share);
}

TEST(RoutingRealism, TopicsMakeAStreamInOneTopicKeepToFewExperts) {
  TempFile plain("plain"), topical("topical");
  model::RandomModelOptions options;
  options.weight_type = DType::kQ8_0;
  ASSERT_TRUE(write_model(plain.path, options).ok());
  options.router_topics = 4;
  ASSERT_TRUE(write_model(topical.path, options).ok());
  // Byte vocab of 259 ids in 4 topics: ids 65..129 are topic 1, whose 2 of the 8 experts of
  // each layer the router favours.
  const std::vector<int32_t> one_topic = tokens_in(66, 60, 64);
  for (int layer : {0, 3}) {
    const double plain_share = top_share(plain.path, one_topic, layer, 2);
    const double topic_share = top_share(topical.path, one_topic, layer, 2);
    ASSERT_GT(plain_share, 0.0);
    EXPECT_GT(topic_share, plain_share + 0.15) << "layer " << layer << ": " << plain_share << " vs " << topic_share;
    std::printf("layer %d: top-2 share %.3f without topics, %.3f with\n", layer, plain_share, topic_share);
  }
}

}  // namespace
}  // namespace moe::experts

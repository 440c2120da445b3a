// `moe serve` with the expert store: under a budget that holds only a few of the routed experts,
// greedy completions (alone and sharing steps) carry the same tokens and log-probabilities as
// without the store, /metrics reports the cache, and bad store options are clean errors. A
// server without the store reports no cache metrics.
#include <gtest/gtest.h>

#include <cstdio>
#include <thread>

#include "../cli_runner.h"
#include "server_process.h"

namespace moe::server::testing {
namespace {

using moe::test::CommandResult;

CommandResult moe(const std::string& args) { return moe::test::run_moe(MOE_CLI_PATH, args); }

// Scheduler options both servers run with: the store's budget depends on them (KV memory).
const std::vector<std::string> kServeArgs = {"--parallel", "4", "-c", "256", "-b", "64"};

std::string joined(const std::vector<std::string>& args) {
  std::string out;
  for (const std::string& a : args) out += " " + a;
  return out;
}

// Completion of `prompt` with the greedy tokens' log-probabilities (their last bits show whether
// the logits are the same).
json greedy_completion(const std::string& prompt) {
  return {{"prompt", prompt}, {"max_tokens", 12}, {"temperature", 0}, {"ignore_eos", true}, {"logprobs", 2}};
}

class ServeExpertStore : public ::testing::Test {
 protected:
  void SetUp() override {
    const CommandResult r = moe("gen --arch olmoe --preset small-moe --type q4_K --seed 5 -q -o " + model_);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  void TearDown() override { std::remove(model_.c_str()); }

  // Returns a budget a little above the smallest the server accepts (which the error for a
  // too-small one names: "give at least 79.6 MiB"): room for only a few experts.
  std::string small_budget() {
    const CommandResult probe = moe("serve -m " + model_ + joined(kServeArgs) + " --expert-store on --mem-budget 1M");
    EXPECT_EQ(probe.exit_code, 1);
    const size_t at = probe.err.find("give at least ");
    if (at == std::string::npos) {
      ADD_FAILURE() << probe.err;
      return "1M";
    }
    const double mib = std::stod(probe.err.substr(at + 14));
    return std::to_string(static_cast<long long>((mib + 1.0) * 1048576.0));
  }

  std::vector<std::string> args(std::vector<std::string> store) {
    store.insert(store.begin(), kServeArgs.begin(), kServeArgs.end());
    return store;
  }

  std::string model_ = moe::test::temp_path_for("moe-serve-store", "small-moe.gguf");
};

TEST_F(ServeExpertStore, GreedyOutputEqualsTheRunWithoutTheStoreAndMetricsShowTheCache) {
  const std::string budget = small_budget();
  ServerProcess plain(model_, args({"--expert-store", "off"}));
  ServerProcess stored(model_, args({"--expert-store", "on", "--mem-budget", budget}));
  const std::vector<std::string> prompts = {"The expert store", "In the beginning", "Hello", "abc def ghi"};
  std::vector<json> expected;
  for (const std::string& p : prompts) {
    const HttpReply r = post(plain, "/v1/completions", greedy_completion(p).dump());
    ASSERT_EQ(r.status, 200) << r.body;
    expected.push_back(r.json_body()["choices"]);
  }
  // One at a time, then all together (their steps share the store's experts).
  for (size_t i = 0; i < prompts.size(); ++i) {
    const HttpReply r = post(stored, "/v1/completions", greedy_completion(prompts[i]).dump());
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json_body()["choices"], expected[i]) << prompts[i];
  }
  std::vector<HttpReply> together(prompts.size());
  std::vector<std::thread> clients;
  for (size_t i = 0; i < prompts.size(); ++i) {
    clients.emplace_back(
        [&, i] { together[i] = post(stored, "/v1/completions", greedy_completion(prompts[i]).dump()); });
  }
  for (std::thread& t : clients) t.join();
  for (size_t i = 0; i < prompts.size(); ++i) {
    ASSERT_EQ(together[i].status, 200) << together[i].body;
    EXPECT_EQ(together[i].json_body()["choices"], expected[i]) << prompts[i];
  }

  // The cache really was too small for the model, and worked for its living.
  const double slots = metric(stored, "moe_expert_store_cache_slots");
  EXPECT_GT(slots, 0);
  EXPECT_LT(slots, metric(stored, "moe_expert_store_experts"));
  EXPECT_EQ(metric(stored, "moe_expert_store_budget_bytes"), std::stod(budget));
  EXPECT_GT(metric(stored, "moe_expert_store_resident_bytes"), 0);
  const double hits = metric(stored, "moe_expert_store_hits_total");
  const double late = metric(stored, "moe_expert_store_late_prefetches_total");
  const double misses = metric(stored, "moe_expert_store_misses_total");
  EXPECT_GT(misses, 0);
  EXPECT_GE(hits, 0);
  EXPECT_GT(hits + misses, 0);
  EXPECT_EQ(hits + late + misses, metric(stored, "moe_expert_store_expert_uses_total"));
  const double ratio = metric(stored, "moe_expert_store_hit_ratio");
  EXPECT_NEAR(ratio, hits / (hits + late + misses), 1e-6);
  EXPECT_GT(metric(stored, "moe_expert_store_read_bytes_total"), 0);
  EXPECT_GT(metric(stored, "moe_expert_store_evictions_total"), 0);
  EXPECT_GE(metric(stored, "moe_expert_store_prefetch_issued_total"),
            metric(stored, "moe_expert_store_prefetch_hits_total"));
  EXPECT_GE(metric(stored, "moe_expert_store_tokens_total"), metric(stored, "moe_prompt_tokens_total"));
  const double cached = metric(stored, "moe_expert_store_cached_experts");
  EXPECT_GT(cached, 0);
  EXPECT_LE(cached, slots);
  const std::string text = get(stored, "/metrics").body;
  EXPECT_NE(text.find("# TYPE moe_expert_store_misses_total counter"), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE moe_expert_store_hit_ratio gauge"), std::string::npos) << text;

  // Without the store: no cache metrics at all.
  const std::string plain_text = get(plain, "/metrics").body;
  EXPECT_NE(plain_text.find("moe_active_sequences"), std::string::npos);
  EXPECT_EQ(plain_text.find("moe_expert_store"), std::string::npos) << plain_text;
}

TEST_F(ServeExpertStore, BadStoreOptionsAreCleanErrors) {
  const std::string serve = "serve -m " + model_ + " --port 0";
  const CommandResult small = moe(serve + " --expert-store on --mem-budget 1M");
  EXPECT_EQ(small.exit_code, 1);
  EXPECT_NE(small.err.find("moe: error: memory budget 1.0 MiB is too small"), std::string::npos) << small.err;
  const CommandResult unit = moe(serve + " --mem-budget 12Q");
  EXPECT_EQ(unit.exit_code, 1);
  EXPECT_NE(unit.err.find("'12Q' has an unknown unit"), std::string::npos) << unit.err;
  const CommandResult policy = moe(serve + " --expert-store on --mem-budget 1G --cache-policy nope");
  EXPECT_EQ(policy.exit_code, 1);
  EXPECT_NE(policy.err.find("unknown cache policy 'nope'"), std::string::npos) << policy.err;
  const CommandResult pins = moe(serve + " --expert-store on --mem-budget 1G --pin-experts 1-2");
  EXPECT_EQ(pins.exit_code, 1);
  EXPECT_NE(pins.err.find("'1-2' is not layer:expert"), std::string::npos) << pins.err;
  const CommandResult mode = moe(serve + " --expert-store maybe");
  EXPECT_NE(mode.exit_code, 0);
  EXPECT_NE(mode.err.find("--expert-store: maybe not in {auto,on,off}"), std::string::npos) << mode.err;

  const std::string dense = moe::test::temp_path_for("moe-serve-store", "dense.gguf");
  ASSERT_EQ(moe("gen --arch llama --preset tiny -q -o " + dense).exit_code, 0);
  const CommandResult not_moe = moe("serve -m " + dense + " --port 0 --expert-store on --mem-budget 1G");
  std::remove(dense.c_str());
  EXPECT_EQ(not_moe.exit_code, 1);
  EXPECT_NE(not_moe.err.find("the expert store needs a MoE model"), std::string::npos) << not_moe.err;
}

}  // namespace
}  // namespace moe::server::testing

// The expert store's part of GET /metrics: Prometheus text with HELP and TYPE for every metric,
// counters from StoreStats, the hit ratio, the memory from the plan; absent without a store.
#include <gtest/gtest.h>

#include "moe/expert_store.h"
#include "server/metrics.h"

namespace moe::server {
namespace {

TEST(ExpertStoreMetrics, RendersCountersRatioAndMemory) {
  experts::StoreStats stats;
  stats.tokens = 40;
  stats.expert_uses = 200;
  stats.hits = 150;
  stats.late_prefetches = 10;
  stats.misses = 40;
  stats.reads = 70;
  stats.prefetch_reads = 30;
  stats.prefetch_used = 20;
  stats.evictions = 60;
  stats.bytes_read = 123456789;
  stats.stall_seconds = 0.25;
  experts::StorePlan plan;
  plan.budget_bytes = 1000000;
  plan.resident_bytes = 400000;
  plan.slot_bytes = 4096;
  plan.n_slots = 12;
  plan.n_experts = 32;
  const std::string text = render_expert_store_metrics(stats, plan, 5);
  for (const char* line : {
           "# HELP moe_expert_store_hits_total ",
           "# TYPE moe_expert_store_hits_total counter\nmoe_expert_store_hits_total 150\n",
           "\nmoe_expert_store_misses_total 40\n",
           "\nmoe_expert_store_late_prefetches_total 10\n",
           "\nmoe_expert_store_expert_uses_total 200\n",
           "# TYPE moe_expert_store_hit_ratio gauge\nmoe_expert_store_hit_ratio 0.750000\n",
           "\nmoe_expert_store_reads_total 70\n",
           "\nmoe_expert_store_read_bytes_total 123456789\n",
           "\nmoe_expert_store_evictions_total 60\n",
           "\nmoe_expert_store_prefetch_issued_total 30\n",
           "\nmoe_expert_store_prefetch_hits_total 20\n",
           "\nmoe_expert_store_stall_seconds_total 0.250000\n",
           "# TYPE moe_expert_store_budget_bytes gauge\nmoe_expert_store_budget_bytes 1000000\n",
           "\nmoe_expert_store_resident_bytes 400000\n",
           "\nmoe_expert_store_cache_capacity_bytes 49152\n",
           "\nmoe_expert_store_cache_used_bytes 20480\n",
           "\nmoe_expert_store_cache_slots 12\n",
           "\nmoe_expert_store_cached_experts 5\n",
           "\nmoe_expert_store_experts 32\n",
       }) {
    EXPECT_NE(text.find(line), std::string::npos) << "missing: " << line << "\nin:\n" << text;
  }
  // Every sample line has its HELP and TYPE lines.
  size_t samples = 0, types = 0, helps = 0;
  for (size_t at = 0; at < text.size();) {
    const size_t end = text.find('\n', at);
    const std::string line = text.substr(at, end - at);
    if (line.rfind("# TYPE ", 0) == 0) {
      ++types;
    } else if (line.rfind("# HELP ", 0) == 0) {
      ++helps;
    } else {
      ++samples;
    }
    at = end + 1;
  }
  EXPECT_EQ(samples, types);
  EXPECT_EQ(samples, helps);
}

TEST(ExpertStoreMetrics, NoUsesIsARatioOfZero) {
  const std::string text = render_expert_store_metrics(experts::StoreStats{}, experts::StorePlan{}, 0);
  EXPECT_NE(text.find("\nmoe_expert_store_hit_ratio 0.000000\n"), std::string::npos) << text;
}

TEST(ExpertStoreMetrics, AbsentWithoutAStore) {
  Metrics metrics;
  metrics.set_active_sequences(2);
  const std::string text = metrics.render();
  EXPECT_NE(text.find("\nmoe_active_sequences 2\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("moe_expert_store"), std::string::npos) << text;
}

}  // namespace
}  // namespace moe::server

// Each eviction policy ranks experts as it promises.
#include <gtest/gtest.h>

#include "moe/cache_policy.h"

namespace moe::experts {
namespace {

TEST(CachePolicy, LruEvictsTheLeastRecentlyUsed) {
  auto p = make_policy(PolicyKind::kLru, 1, 4, 8.0);
  p->on_insert(0, 1);
  p->on_insert(1, 2);
  p->on_use(0, 1, 3);  // 0 used after 1 was inserted
  EXPECT_LT(p->keep_score(1, 4), p->keep_score(0, 4));
}

TEST(CachePolicy, LfuKeepsTheFrequentOneUntilItsCountDecays) {
  auto p = make_policy(PolicyKind::kLfu, 1, 4, /*half_life=*/4.0);
  for (uint64_t t = 1; t <= 8; ++t) p->on_use(0, 1, t);  // hot early
  p->on_use(1, 1, 9);
  p->on_use(1, 1, 10);  // used twice, recently
  // Plain LRU would evict 0 now; LFU keeps it (8 uses, barely decayed).
  EXPECT_LT(p->keep_score(1, 10), p->keep_score(0, 10));
  // 40 ticks (10 half-lives) later its count has decayed below the other's.
  p->on_use(1, 1, 50);
  EXPECT_LT(p->keep_score(0, 50), p->keep_score(1, 50));
}

TEST(CachePolicy, RoutingComparesSharesWithinEachLayer) {
  // Layer 0 is flat (4 experts used equally), layer 1 is skewed (expert 0 takes every token).
  auto p = make_policy(PolicyKind::kRouting, 2, 4, 1000.0);
  for (uint64_t t = 1; t <= 8; ++t) {
    for (int e = 0; e < 4; ++e) p->on_use(e, 1, t);  // layer 0, entries 0..3
    p->on_use(4 + 0, 4, t);                          // layer 1, expert 0
    p->on_use(4 + 1, 1, t);                          // layer 1, expert 1 (rare)
  }
  // Layer 1's hot expert outranks layer 0's, which outrank layer 1's rare one; raw counts (LFU)
  // would rank expert 1 of layer 1 equal to layer 0's experts.
  EXPECT_GT(p->keep_score(4, 8), p->keep_score(0, 8));
  EXPECT_GT(p->keep_score(0, 8), p->keep_score(5, 8));
  auto lfu = make_policy(PolicyKind::kLfu, 2, 4, 1000.0);
  for (uint64_t t = 1; t <= 8; ++t) {
    lfu->on_use(0, 1, t);
    lfu->on_use(5, 1, t);
  }
  EXPECT_NEAR(lfu->keep_score(0, 8), lfu->keep_score(5, 8), 1e-6);
}

TEST(CachePolicy, NamesRoundTrip) {
  for (PolicyKind k : {PolicyKind::kLru, PolicyKind::kLfu, PolicyKind::kRouting}) {
    auto parsed = policy_from_name(policy_name(k));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, k);
  }
  auto bad = policy_from_name("fifo");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("lru, lfu, routing"), std::string::npos);
}

}  // namespace
}  // namespace moe::experts
